package catalog

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// partitionFacts is what the checks need to know about one partition of a
// resource's table (at any level).
type partitionFacts struct {
	Name          string // schema.table, quoted as needed
	Kind          string // relkind: r, p, f
	RLS, Forced   bool
	Owner         string
	Parent        string   // the table it is a partition of
	Reachable     []string // "web_user can select, insert", for the runtime roles and PUBLIC
	Grantees      []string // every role but the owner holding a privilege on it (public for PUBLIC)
	Policies      []string
	OtherTriggers []string // triggers of its own, not clones of the table's
}

// partitions lists the partitions of a table, at every level.
func (c *catalogCheck) partitions(rel uint32) ([]partitionFacts, error) {
	roles := []string{c.m.Roles.Authenticated, c.m.Roles.Anonymous, "public"}
	// has(role, privilege): on some column for select, insert and update;
	// a privilege held through PUBLIC is reported for PUBLIC only.
	has := func(role, priv string) string {
		return fmt.Sprintf("case when %[2]s in ('select', 'insert', 'update') then pg_catalog.has_any_column_privilege(%[1]s, c.oid, %[2]s) "+
			"else pg_catalog.has_table_privilege(%[1]s, c.oid, %[2]s) end", role, priv)
	}
	rows, err := c.db.Query(c.ctx, strings.NewReplacer("iam_has(r.role, p)", has("r.role", "p"), "iam_has('public', p)", has("'public'", "p")).Replace(`
select pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
       pg_catalog.pg_get_userbyid(c.relowner),
       (select pg_catalog.format('%I.%I', pn.nspname, pc.relname) from pg_catalog.pg_class pc
        join pg_catalog.pg_namespace pn on pn.oid = pc.relnamespace where pc.oid = t.parentrelid),
       array(select x.role || ' can ' || pg_catalog.array_to_string(x.privs, ', ')
             from (select r.role, array(
                          select p from pg_catalog.unnest(array['select', 'insert', 'update', 'delete', 'truncate']) p
                          where iam_has(r.role, p) and (r.role = 'public' or not iam_has('public', p))) as privs
                   from pg_catalog.unnest($2::text[]) r(role)
                   where r.role = 'public' or exists (select from pg_catalog.pg_roles o where o.rolname = r.role)) x
             where pg_catalog.cardinality(x.privs) > 0),
       array(select distinct case when a.grantee = 0 then 'public' else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) end
             from pg_catalog.aclexplode(c.relacl) a where a.grantee <> c.relowner order by 1),
       array(select p.polname::text from pg_catalog.pg_policy p where p.polrelid = c.oid order by 1),
       array(select g.tgname::text from pg_catalog.pg_trigger g where g.tgrelid = c.oid and not g.tgisinternal and g.tgparentid = 0 order by 1)
from pg_catalog.pg_partition_tree($1::pg_catalog.oid) t
join pg_catalog.pg_class c on c.oid = t.relid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where t.level > 0
order by t.level, n.nspname collate "C", c.relname collate "C"`), rel, roles)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (partitionFacts, error) {
		var p partitionFacts
		err := row.Scan(&p.Name, &p.Kind, &p.RLS, &p.Forced, &p.Owner, &p.Parent, &p.Reachable, &p.Grantees, &p.Policies, &p.OtherTriggers)
		for i, r := range p.Reachable { // "web_user can select, insert and update"
			who, privs, _ := strings.Cut(r, " can ")
			p.Reachable[i] = who + " can " + commaAnd(strings.Split(privs, ", "))
		}
		return p, err
	})
}

// partitionTriggerProblem says why new partitions are not locked down as
// they are created, or "" when the event trigger is in place: enabled,
// running iam_ddl.lock_partitions(), which a superuser owns.
func (c *catalogCheck) partitionTriggerProblem() (string, error) {
	var problem string
	err := c.db.QueryRow(c.ctx, compiler.PartitionTriggerProblemSQL,
		compiler.PartitionTrigger).Scan(&problem)
	return problem, err
}

// checkPartitions reports, for a partitioned resource, every partition (at
// any level) that breaks the rule iamc keeps for them (SPEC §5,
// "Partitioned tables"): row-level security enabled and forced, no policy,
// no privilege for anyone but the owner, owned by the owner role. A
// partition queried directly is a table of its own, and only its own
// row-level security and privileges apply. Also: new partitions are not
// locked down as they are created (no event trigger).
//
// Errors: a partition the runtime roles (or PUBLIC) can reach with
// row-level security off, or through policies of its own (the table's
// rules do not apply there); a partition the owner role does not own (iamc
// build cannot lock it down, nor change the table: its trigger and the
// owner column's default reach every partition). Warnings: row-level
// security off or not forced (expected before the first build), privileges
// of other roles, policies and triggers of its own, no event trigger.
func (c *catalogCheck) checkPartitions(r *lang.ResourceModel) error {
	t, err := c.table(r.Schema, r.Table)
	if err != nil || t == nil {
		return err
	}
	parts, err := c.partitions(t.OID)
	if err != nil {
		return fmt.Errorf("listing the partitions of %s: %w", r.QualifiedName(), err)
	}
	table, owner := compiler.Qualify(r.Schema, r.Table), c.m.Roles.Owner
	for _, p := range parts {
		of := "partition " + p.Name + " of " + r.QualifiedName()
		if p.Parent != table {
			of = fmt.Sprintf("partition %s of %s (under %s)", p.Name, r.QualifiedName(), p.Parent)
		}
		if p.Owner != owner {
			c.add(r.Pos, LevelError, fmt.Sprintf("alter table %s owner to %s;", p.Name, compiler.QuoteIdent(owner)),
				"%s is owned by %s, not by the owner role %s: iamc build cannot lock it down, nor change %s (its trigger and the owner column's default reach every partition)",
				of, p.Owner, owner, r.QualifiedName())
		}
		lock := fmt.Sprintf("alter table %s enable row level security, force row level security;", p.Name)
		if len(p.Grantees) > 0 {
			lock += fmt.Sprintf(" revoke all on table %s from %s cascade;", p.Name, strings.Join(p.Grantees, ", "))
		}
		open := p.Kind != "f" && !p.RLS
		switch {
		case len(p.Reachable) > 0 && open:
			c.add(r.Pos, LevelError, "iamc build locks every partition down (apply it), or now: "+lock,
				"%s has row-level security off and %s: queried directly (PostgREST serves every table of its schemas), it skips the policies of %s and shows every row in it",
				of, commaAnd(p.Reachable), r.QualifiedName())
		case len(p.Reachable) > 0 && len(p.Policies) > 0:
			c.add(r.Pos, LevelError, "iamc build revokes them (apply it), or now: "+lock,
				"%s has policies of its own (%s) and %s: queried directly, its policies decide, not the rules of %s",
				of, strings.Join(p.Policies, ", "), commaAnd(p.Reachable), r.QualifiedName())
		case open:
			c.add(r.Pos, LevelWarning, "iamc build enables and forces it (expected before the first build; afterwards the event trigger "+compiler.PartitionTrigger+" locks new partitions down)",
				"%s has row-level security off: the first privilege granted on it (pg_partman's inherit_privileges, default privileges, a GRANT) opens the rows in it to direct queries, past the policies of %s",
				of, r.QualifiedName())
		case p.Kind != "f" && !p.Forced:
			c.add(r.Pos, LevelWarning, "iamc build forces it (expected before the first build)",
				"%s has row-level security not forced: its owner %s, and its views and SECURITY DEFINER functions, read and change it directly past the policies of %s",
				of, p.Owner, r.QualifiedName())
		}
		if len(p.Grantees) > 0 && !(len(p.Reachable) > 0 && (open || len(p.Policies) > 0)) {
			c.add(r.Pos, LevelWarning, fmt.Sprintf("iamc build revokes them: revoke all on table %s from %s cascade;", p.Name, strings.Join(p.Grantees, ", ")),
				"%s grants privileges to %s: a partition is reached through %s, whose grants and policies apply; queried directly only its own do",
				of, strings.Join(p.Grantees, ", "), r.QualifiedName())
		}
		if len(p.Policies) > 0 && len(p.Reachable) == 0 {
			for _, pol := range p.Policies {
				c.add(r.Pos, LevelWarning, fmt.Sprintf("say what it allows as rules in the .iam file, then drop policy %s on %s;", compiler.QuoteIdent(pol), p.Name),
					"%s has policy %q: a partition queried directly is decided by its own policies, not by the rules of %s (iamc revokes every privilege on it, so it opens nothing until someone grants one)",
					of, pol, r.QualifiedName())
			}
		}
		for _, name := range p.OtherTriggers {
			c.add(r.Pos, LevelWarning,
				fmt.Sprintf("make sure it cannot change the owner or group of a row, or drop it: drop trigger %s on %s;", compiler.QuoteIdent(name), p.Name),
				"%s has trigger %s of its own, which iamc did not write: it fires for the rows of %s stored there, and a BEFORE ROW trigger firing after %s can change the owner or group column the guard checked",
				of, name, r.QualifiedName(), compiler.GuardTrigger)
		}
	}
	problem, err := c.partitionTriggerProblem()
	if err != nil {
		return fmt.Errorf("looking up the event trigger %s: %w", compiler.PartitionTrigger, err)
	}
	if problem != "" {
		c.add(r.Pos, LevelWarning, "apply the build once as a superuser: it installs the event trigger (creating one needs a superuser); until then, apply it after every new partition",
			"new partitions of %s are not locked down when they are created: %s, so a partition made later (by hand or by pg_partman) has row-level security off until the next build is applied, and a privilege granted on it meanwhile opens every row in it",
			r.QualifiedName(), problem)
	}
	return nil
}

// commaAnd joins words as "a, b and c".
func commaAnd(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
