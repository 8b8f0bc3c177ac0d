package lint

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RuntimeCallable is the marker that says a SECURITY DEFINER function was
// reviewed and may be executed by the runtime roles: it answers only about
// the caller (their id, their groups, their role in a group), or checks the
// caller's rights before it reads or changes anything else. IAM008 leaves a
// function whose comment contains it alone; iamc's runtime marks its own.
const RuntimeCallable = "[runtime-callable]"

// IAM008: a helper in a schema PostgREST does not serve is not an endpoint,
// but any RPC a developer writes can call it (an invoker function passes
// its arguments on as the caller), so a definer helper a runtime role may
// execute runs with its owner's rights on whatever arguments a request
// reaches it with: iam.group_exists(bigint) told anyone which group ids
// exist. Functions in the served schemas are the API and reviewed as such;
// without --schemas every schema is checked. Definers executable by PUBLIC
// are IAM002's (an error) and not repeated here.
var ruleDefinerRuntimeExecute = Rule{
	ID:          "IAM008",
	Name:        "definer_runtime_execute",
	Level:       Warning,
	Description: "SECURITY DEFINER helper outside the exposed schemas executable by a runtime role",
	check:       checkDefinerRuntimeExecute,
}

func checkDefinerRuntimeExecute(ctx context.Context, e *env) ([]Finding, error) {
	if len(e.runtime) == 0 {
		return nil, nil
	}
	rows, err := e.tx.Query(ctx, `
select p.oid::pg_catalog.regprocedure::text,
       case p.prokind when 'p' then 'procedure' else 'function' end,
       pg_catalog.pg_get_userbyid(p.proowner),
       array(select r from pg_catalog.unnest($1::text[]) r
             where pg_catalog.has_function_privilege(r, p.oid, 'EXECUTE') order by 1),
       -- Who holds the grant the runtime roles execute it through (the
       -- role itself, or a role it is a member of): what to revoke from.
       array(select distinct pg_catalog.pg_get_userbyid(a.grantee)::text
             from pg_catalog.aclexplode(p.proacl) a
             where a.privilege_type = 'EXECUTE' and a.grantee <> 0 and a.grantee <> p.proowner
               and exists (select from pg_catalog.unnest($1::text[]) r where pg_catalog.pg_has_role(r, a.grantee, 'MEMBER'))
             order by 1)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
  and not n.nspname = any(coalesce($2::text[], '{}'))
  and not pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
  and pg_catalog.strpos(coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), ''), $3) = 0
  and `+userSchemas+`
  and `+notExtensionMember("pg_catalog.pg_proc", "p.oid")+`
order by 1`, e.runtime, e.cfg.Schemas, RuntimeCallable)
	if err != nil {
		return nil, err
	}
	type fn struct {
		Sig, Kind, Owner string
		Roles            []string
		Grantees         []string
	}
	fns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fn])
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, f := range fns {
		if len(f.Roles) == 0 {
			continue
		}
		from := f.Grantees
		if len(from) == 0 {
			from = f.Roles
		}
		quoted := make([]string, len(from))
		for i, r := range from {
			quoted[i] = quoteIdent(r)
		}
		out = append(out, Finding{
			Object: f.Sig,
			Message: fmt.Sprintf("SECURITY DEFINER %s outside the exposed schemas is executable by %s: any RPC can call it with any arguments, with %s's rights",
				f.Kind, commaAnd(f.Roles), f.Owner),
			Remediation: fmt.Sprintf("revoke execute on %s %s from %s; or, if it answers only about the caller, mark it: comment on %s %s is '%s ...'",
				f.Kind, f.Sig, strings.Join(quoted, ", "), f.Kind, f.Sig, RuntimeCallable),
		})
	}
	return out, nil
}
