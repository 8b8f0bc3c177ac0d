package lint

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// IAM002: functions are executable by PUBLIC unless revoked, so a SECURITY
// DEFINER function nobody revoked can be called by every role, the
// anonymous one included, with its owner's rights (PostgREST exposes
// functions of the served schemas as /rpc/...).
var ruleDefinerPublicExecute = Rule{
	ID:          "IAM002",
	Name:        "security_definer_public_execute",
	Level:       Error,
	Description: "SECURITY DEFINER function executable by PUBLIC",
	check:       checkDefinerPublicExecute,
}

func checkDefinerPublicExecute(ctx context.Context, e *env) ([]Finding, error) {
	rows, err := e.tx.Query(ctx, `
select p.oid::pg_catalog.regprocedure::text,
       case p.prokind when 'p' then 'procedure' else 'function' end,
       pg_catalog.pg_get_userbyid(p.proowner)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
  and exists (select from pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
              where a.grantee = 0 and a.privilege_type = 'EXECUTE')
  and `+userSchemas+`
  and `+notExtensionMember("pg_catalog.pg_proc", "p.oid")+`
order by 1`)
	if err != nil {
		return nil, err
	}
	type fn struct{ Sig, Kind, Owner string }
	fns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fn])
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, f := range fns {
		fix := fmt.Sprintf("revoke execute on %s %s from public;", f.Kind, f.Sig)
		if e.cfg.Authenticated != "" {
			fix += fmt.Sprintf(" grant execute on %s %s to %s; (only if signed-in users need it)", f.Kind, f.Sig, quoteIdent(e.cfg.Authenticated))
		}
		out = append(out, Finding{
			Object:      f.Sig,
			Message:     fmt.Sprintf("SECURITY DEFINER %s is executable by PUBLIC: every role, anonymous included, runs it as %s", f.Kind, f.Owner),
			Remediation: fix,
		})
	}
	return out, nil
}
