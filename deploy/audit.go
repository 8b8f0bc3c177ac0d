package deploy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// auditApply appends the apply to the runtime's audit trail (iam.audit_log,
// SPEC §11 "People"), in the apply's transaction: an apply that commits has
// its entry, one that fails has none. The entry says what was applied (the
// record in iam.applied, the versions, the hashes, the resources and each
// change, as plan prints it) and by whom (the login role, db_role; actor is
// NULL, as for any SQL without a token).
func auditApply(ctx context.Context, tx pgx.Tx, recordID int64, rec *Record, plan *Plan) error {
	changes := make([]string, 0, len(plan.Changes))
	for _, c := range plan.Changes {
		changes = append(changes, fmt.Sprintf("%s %s %s", c.Action, c.Object.Kind, c.Object.Name))
	}
	resources := make([]string, len(rec.Resources))
	for i, r := range rec.Resources {
		resources[i] = r.Name
	}
	value, err := json.Marshal(map[string]any{
		"applied":         recordID,
		"iamc_version":    rec.IamcVersion,
		"runtime_version": rec.RuntimeVersion,
		"source_hash":     rec.SourceHash,
		"script_hash":     rec.ScriptHash,
		"resources":       resources,
		"changes":         changes,
	})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `insert into iam.audit_log (actor, action, object, new_value)
	    values (null, 'iamc.apply', 'iam.applied ' || $1::bigint, $2::jsonb)`, recordID, string(value)); err != nil {
		return fmt.Errorf("recording the apply in iam.audit_log: %w", err)
	}
	return nil
}
