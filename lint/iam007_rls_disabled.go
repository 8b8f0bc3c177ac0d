package lint

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// IAM007: a table of an exposed schema without row-level security, on which
// a runtime role (or PUBLIC) holds SELECT, INSERT, UPDATE or DELETE: every
// request that reaches it sees or changes every row, whoever sent it.
// Privileges count whether granted directly, through a role the runtime role
// belongs to, or to PUBLIC, and on some columns only. Partitions of a table
// with row-level security are IAM009's.
var ruleRLSDisabled = Rule{
	ID:          "IAM007",
	Name:        "rls_disabled",
	Level:       Error,
	Description: "table in an exposed schema with row-level security disabled that a runtime role can access",
	check:       checkRLSDisabled,
}

func checkRLSDisabled(ctx context.Context, e *env) ([]Finding, error) {
	if len(e.exposed) == 0 {
		return nil, nil
	}
	rows, err := e.tx.Query(ctx, `
select pg_catalog.format('%I.%I', n.nspname, c.relname), c.oid
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[])
  and c.relkind in ('r', 'p') and not c.relrowsecurity
  and not (`+partitionOfRLS+`)
  and `+notExtensionMember("pg_catalog.pg_class", "c.oid")+`
order by 1`, e.exposed)
	if err != nil {
		return nil, err
	}
	type table struct {
		Name string
		OID  uint32
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, t := range tables {
		var parts, who []string
		for _, role := range append(append([]string{}, e.runtime...), "public") {
			privs, err := privileges(ctx, e.tx, role, t.OID)
			if err != nil {
				return nil, err
			}
			if len(privs) == 0 {
				continue
			}
			name := role
			if role == "public" {
				name = "PUBLIC"
			}
			parts = append(parts, fmt.Sprintf("%s can %s", name, commaAnd(privs)))
			who = append(who, quoteIdent(role))
		}
		if len(parts) == 0 {
			continue
		}
		out = append(out, Finding{
			Object:  t.Name,
			Message: fmt.Sprintf("row-level security is disabled and %s: every row, whoever asks", strings.Join(parts, "; ")),
			Remediation: fmt.Sprintf("alter table %s enable row level security; alter table %s force row level security; then create policies "+
				"(or an iamc resource), or revoke all on table %s from %s;", t.Name, t.Name, t.Name, strings.Join(who, ", ")),
		})
	}
	return out, nil
}
