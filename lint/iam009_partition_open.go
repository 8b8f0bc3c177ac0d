package lint

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// IAM009: a partition of a table with row-level security (any ancestor has
// it), in an exposed schema, that does not keep to the parent's rules when
// queried directly. A partition is a table of its own: PostgreSQL applies
// only the row-level security and the privileges of the table a query
// names, so a request for the partition skips its parent's policies, and
// PostgREST serves every table of its schemas.
//
// Levels:
//
//   - error: a runtime role or PUBLIC holds a privilege on it and its row
//     level security is off (every row in it, whoever asks), or on with
//     policies of its own (those decide, not the parent's);
//   - warning: its row-level security is off and nobody can reach it yet:
//     the first privilege granted on it (pg_partman's inherit_privileges,
//     default privileges, a GRANT) opens every row in it;
//   - info: a runtime role or PUBLIC holds a privilege on it, with
//     row-level security on and no policy (it sees no row; revoke it).
//
// iamc keeps every partition of a resource locked down (row-level security
// enabled and forced, no policy, no privilege but its owner's): iamc build
// does it for existing partitions and its event trigger for new ones.
// Partitions of foreign tables cannot have row-level security: only their
// privileges count. IAM007 leaves these partitions to this rule.
var rulePartitionOpen = Rule{
	ID:          "IAM009",
	Name:        "partition_open",
	Level:       Error,
	Description: "partition of a table with row-level security that a direct query reaches past the parent's policies",
	check:       checkPartitionOpen,
}

// partitionOfRLS is the SQL condition "c is a partition of a table with
// row-level security" (some ancestor, itself left out, has it).
const partitionOfRLS = `c.relispartition and exists (
      select from pg_catalog.pg_partition_ancestors(c.oid) a
      join pg_catalog.pg_class ac on ac.oid = a.relid
      where a.relid <> c.oid and ac.relrowsecurity)`

func checkPartitionOpen(ctx context.Context, e *env) ([]Finding, error) {
	if len(e.exposed) == 0 {
		return nil, nil
	}
	rows, err := e.tx.Query(ctx, `
select pg_catalog.format('%I.%I', n.nspname, c.relname), c.oid, c.relkind::text, c.relrowsecurity,
       (select pg_catalog.format('%I.%I', rn.nspname, r.relname) from pg_catalog.pg_class r
        join pg_catalog.pg_namespace rn on rn.oid = r.relnamespace where r.oid = pg_catalog.pg_partition_root(c.oid)),
       (select pg_catalog.count(*) from pg_catalog.pg_policy p where p.polrelid = c.oid)::int
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[])
  and c.relkind in ('r', 'p', 'f') and `+partitionOfRLS+`
  and `+notExtensionMember("pg_catalog.pg_class", "c.oid")+`
order by 1`, e.exposed)
	if err != nil {
		return nil, err
	}
	type partition struct {
		Name     string
		OID      uint32
		Kind     string
		RLS      bool
		Root     string
		Policies int
	}
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[partition])
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, p := range parts {
		var reach, who []string
		for _, role := range append(append([]string{}, e.runtime...), "public") {
			privs, err := privileges(ctx, e.tx, role, p.OID)
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
			reach = append(reach, fmt.Sprintf("%s can %s", name, commaAnd(privs)))
			who = append(who, quoteIdent(role))
		}
		lock := fmt.Sprintf("alter table %s enable row level security; alter table %s force row level security;", p.Name, p.Name)
		if p.Kind == "f" {
			lock = ""
		}
		revoke := ""
		if len(who) > 0 {
			revoke = fmt.Sprintf(" revoke all on table %s from %s;", p.Name, strings.Join(who, ", "))
		}
		fix := strings.TrimSpace(lock+revoke) + " (iamc does this for the partitions of its resources, and its event trigger iam_lock_partitions for new ones)"
		of := fmt.Sprintf("partition of %s, whose row-level security does not apply to direct queries", p.Root)
		open := !p.RLS || p.Kind == "f"
		switch {
		case len(reach) > 0 && open:
			state := "row-level security is disabled"
			if p.Kind == "f" {
				state = "a foreign table has no row-level security"
			}
			out = append(out, Finding{Level: Error, Object: p.Name, Remediation: fix,
				Message: fmt.Sprintf("%s: %s and %s: every row in it, whoever asks", of, state, strings.Join(reach, "; "))})
		case len(reach) > 0 && p.Policies > 0:
			out = append(out, Finding{Level: Error, Object: p.Name, Remediation: fix,
				Message: fmt.Sprintf("%s: %s, and its own %d polic%s decide which rows", of, strings.Join(reach, "; "), p.Policies, plural(p.Policies, "y", "ies"))})
		case open:
			out = append(out, Finding{Level: Warning, Object: p.Name, Remediation: fix,
				Message: fmt.Sprintf("%s: row-level security is disabled, so the first privilege granted on it (pg_partman's inherit_privileges, default privileges, a GRANT) opens every row in it", of)})
		case len(reach) > 0:
			out = append(out, Finding{Level: Info, Object: p.Name, Remediation: strings.TrimSpace(revoke),
				Message: fmt.Sprintf("%s: %s (it has no policy: no row)", of, strings.Join(reach, "; "))})
		}
	}
	return out, nil
}
