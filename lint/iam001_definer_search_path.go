package lint

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// IAM001: a SECURITY DEFINER function runs with its owner's rights and
// resolves unqualified names through the caller's search_path. A caller who
// can create objects in a schema on that path (or in pg_temp, which is
// searched first for tables) can make it run their code as the owner.
var ruleDefinerSearchPath = Rule{
	ID:          "IAM001",
	Name:        "security_definer_search_path",
	Level:       Error,
	Description: "SECURITY DEFINER function without a pinned search_path (SET search_path)",
	check:       checkDefinerSearchPath,
}

func checkDefinerSearchPath(ctx context.Context, e *env) ([]Finding, error) {
	rows, err := e.tx.Query(ctx, `
select p.oid::pg_catalog.regprocedure::text,
       case p.prokind when 'p' then 'procedure' else 'function' end,
       pg_catalog.pg_get_userbyid(p.proowner)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
  and not exists (select from pg_catalog.unnest(p.proconfig) c where c like 'search\_path=%')
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
		out = append(out, Finding{
			Object: f.Sig,
			Message: fmt.Sprintf("SECURITY DEFINER %s runs as %s but resolves names through the caller's search_path",
				f.Kind, f.Owner),
			Remediation: fmt.Sprintf("alter %s %s set search_path = pg_catalog, pg_temp; and schema-qualify every name in its body", f.Kind, f.Sig),
		})
	}
	return out, nil
}
