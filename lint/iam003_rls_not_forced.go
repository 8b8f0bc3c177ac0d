package lint

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// IAM003: with row-level security enabled but not forced, the table's owner
// (and every role that can become the owner: its members) is exempt from the
// policies. Views and SECURITY DEFINER functions owned by that role read and
// write the table unfiltered too.
//
// Reported when RLS is enabled (relrowsecurity) and not forced
// (relforcerowsecurity), and either
//
//   - a runtime role can become the owner (it is the owner or a member of
//     it): error, a request can SET ROLE and skip every policy; or
//   - the owner is not a superuser or BYPASSRLS role and the table has
//     policies: warning, the owner's views and functions skip them.
//
// A superuser owner skips RLS whether forced or not, and a table with no
// policy denies everyone but the owner; neither is reported unless a
// runtime role can become the owner.
var ruleRLSNotForced = Rule{
	ID:          "IAM003",
	Name:        "rls_not_forced",
	Level:       Error,
	Description: "row-level security enabled but not forced: the table owner, and roles that can become it, skip the policies",
	check:       checkRLSNotForced,
}

func checkRLSNotForced(ctx context.Context, e *env) ([]Finding, error) {
	rows, err := e.tx.Query(ctx, `
select pg_catalog.format('%I.%I', n.nspname, c.relname),
       pg_catalog.pg_get_userbyid(c.relowner),
       r.rolsuper or r.rolbypassrls,
       (select pg_catalog.count(*) from pg_catalog.pg_policy pol where pol.polrelid = c.oid)::int,
       array(select x from pg_catalog.unnest($1::text[]) x
             where pg_catalog.pg_has_role(x, c.relowner, 'MEMBER') order by pg_catalog.array_position($1::text[], x))
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_roles r on r.oid = c.relowner
where c.relkind in ('r', 'p') and c.relrowsecurity and not c.relforcerowsecurity
  and `+userSchemas+`
  and `+notExtensionMember("pg_catalog.pg_class", "c.oid")+`
order by 1`, e.runtime)
	if err != nil {
		return nil, err
	}
	type table struct {
		Name, Owner    string
		OwnerBypasses  bool
		Policies       int
		RuntimeMembers []string
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, t := range tables {
		force := fmt.Sprintf("alter table %s force row level security;", t.Name)
		switch {
		case len(t.RuntimeMembers) > 0:
			var who []string
			fix := force
			for _, m := range t.RuntimeMembers {
				if m == t.Owner {
					who = append(who, m+" owns the table")
					fix += fmt.Sprintf(" alter table %s owner to <a role no request runs as>;", t.Name)
				} else {
					who = append(who, fmt.Sprintf("%s can become its owner %s", m, t.Owner))
					fix += fmt.Sprintf(" revoke %s from %s;", quoteIdent(t.Owner), quoteIdent(m))
				}
			}
			out = append(out, Finding{
				Level:       Error,
				Object:      t.Name,
				Message:     fmt.Sprintf("row-level security is not forced and %s: requests can skip every policy", strings.Join(who, ", ")),
				Remediation: fix,
			})
		case !t.OwnerBypasses && t.Policies > 0:
			out = append(out, Finding{
				Level:  Warning,
				Object: t.Name,
				Message: fmt.Sprintf("row-level security is not forced: the owner %s, and its views and SECURITY DEFINER functions, skip the table's %d polic%s",
					t.Owner, t.Policies, plural(t.Policies, "y", "ies")),
				Remediation: force,
			})
		}
	}
	return out, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
