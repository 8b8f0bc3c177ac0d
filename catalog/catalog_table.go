package catalog

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// checkTable reports, for a resource's table, what will leak or hurt
// later: row-level security off, no primary key, and triggers or policies
// that iamc did not write.
func (c *catalogCheck) checkTable(r *lang.ResourceModel, t *tableFacts) error {
	table := compiler.Qualify(r.Schema, r.Table)
	if !t.RLS {
		c.add(r.Pos, LevelWarning, "iamc build enables and forces it (expected before the first build); if it was built, something turned it off since",
			"row-level security is off on %s: every role with a privilege on it sees and changes every row", r.QualifiedName())
	}
	if !t.HasPK {
		c.add(r.Pos, LevelWarning, fmt.Sprintf("alter table %s add primary key (<key columns>);", table),
			"table %s has no primary key: PostgREST needs one for PUT, upserts (Prefer: resolution=...) and the Location header of POST; PATCH and DELETE by filter still work",
			r.QualifiedName())
	}

	rows, err := c.db.Query(c.ctx, `
select t.tgname from pg_catalog.pg_trigger t
where t.tgrelid = $1 and not t.tgisinternal and t.tgname <> $2
order by 1`, t.OID, compiler.GuardTrigger)
	if err != nil {
		return fmt.Errorf("listing the triggers of %s: %w", r.QualifiedName(), err)
	}
	triggers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing the triggers of %s: %w", r.QualifiedName(), err)
	}
	for _, name := range triggers {
		c.add(r.Pos, LevelWarning,
			fmt.Sprintf("make sure it cannot change the owner or group of a row, or drop it: drop trigger %s on %s;", compiler.QuoteIdent(name), table),
			"table %s has trigger %s, which iamc did not write: a BEFORE ROW trigger firing after %s (triggers fire in name order) can change the owner or group column the guard checked",
			r.QualifiedName(), name, compiler.GuardTrigger)
	}

	rows, err = c.db.Query(c.ctx, `
select p.polname, p.polpermissive from pg_catalog.pg_policy p
where p.polrelid = $1 and p.polname <> all ($2::text[])
order by 1`, t.OID, compiler.PolicyNames())
	if err != nil {
		return fmt.Errorf("listing the policies of %s: %w", r.QualifiedName(), err)
	}
	type policy struct {
		Name       string
		Permissive bool
	}
	policies, err := pgx.CollectRows(rows, pgx.RowToStructByPos[policy])
	if err != nil {
		return fmt.Errorf("listing the policies of %s: %w", r.QualifiedName(), err)
	}
	for _, p := range policies {
		hint := fmt.Sprintf("say what it allows as rules in the .iam file, then drop policy %s on %s;", compiler.QuoteIdent(p.Name), table)
		if p.Permissive {
			c.add(r.Pos, LevelWarning, hint,
				"table %s has policy %q, which iamc did not write: PostgreSQL ORs permissive policies, so it can let requests see or change rows the rules do not allow",
				r.QualifiedName(), p.Name)
		} else {
			c.add(r.Pos, LevelWarning, hint,
				"table %s has restrictive policy %q, which iamc did not write: it takes away access the rules give",
				r.QualifiedName(), p.Name)
		}
	}
	return nil
}

// checkIndex warns when no valid index leads with column (then with the
// page key, for a resource with one): the policies look rows up by it, and
// without an index every request reads the whole table; the page function
// walks (column, key) in key order. A partial index counts only when its
// predicate is `column IS NOT NULL` (what iamc builds for an optional group
// column; the policies imply it).
func (c *catalogCheck) checkIndex(r *lang.ResourceModel, rel uint32, need compiler.ColumnNeed) error {
	// The index's leading columns as the build makes them: the tenant
	// (when the resource has one), the column, the page key.
	cols := need.IndexColumns(r)
	var indexed bool
	err := c.db.QueryRow(c.ctx, `
select exists (
    select from pg_catalog.pg_index i
    where i.indrelid = $1 and i.indisvalid and i.indnkeyatts >= pg_catalog.cardinality($2::text[])
      and (select pg_catalog.array_agg(a.attname::text order by k.n)
           from pg_catalog.unnest(i.indkey[0:pg_catalog.cardinality($2::text[]) - 1]) with ordinality k (attnum, n)
           join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) = $2::text[]
      and (i.indpred is null
           or pg_catalog.pg_get_expr(i.indpred, i.indrelid) = pg_catalog.format('(%I IS NOT NULL)', $3::text)))`,
		rel, cols, need.Column).Scan(&indexed)
	if err != nil {
		return fmt.Errorf("looking up the indexes of %s: %w", r.QualifiedName(), err)
	}
	if indexed {
		return nil
	}
	table, why := compiler.Qualify(r.Schema, r.Table), need.LookupWhy
	quoted := make([]string, len(cols))
	for i, col := range cols {
		quoted[i] = compiler.QuoteIdent(col)
	}
	name := compiler.ArmIndexName(r, need)
	if r.PageKey != "" {
		why += " (and the page function walks it in " + r.PageKey + " order)"
	}
	create := fmt.Sprintf("create index %s on %s (%s)", compiler.QuoteIdent(name), table, strings.Join(quoted, ", "))
	if need.Partial {
		create += fmt.Sprintf(" where %s is not null", compiler.QuoteIdent(need.Column))
	}
	c.add(need.Pos, LevelWarning, fmt.Sprintf("iamc build creates it (expected before the first build): %s;", create),
		"no index of %s leads with %s: %s, so without one every request reads the whole table", r.QualifiedName(), strings.Join(cols, ", "), why)
	return nil
}

// checkPageKey reports a page key that is not a column, not an integer
// (the page function's "no cursor" is the largest bigint), or not unique
// and not null: pages ordered by it would repeat or skip rows. A
// partitioned table's unique indexes must hold its partition key, so its
// key can be unique on its own only when it is partitioned by it; its key
// may instead be an identity column GENERATED ALWAYS, whose values come
// from one sequence and which no insert or update through the API can set
// (SPEC §5, "Partitioned tables").
func (c *catalogCheck) checkPageKey(r *lang.ResourceModel, t *tableFacts) error {
	var exists, integer, unique, always bool
	var partKey string
	err := c.db.QueryRow(c.ctx, `
select exists (select from pg_catalog.pg_attribute a where a.attrelid = $1 and a.attname = $2 and a.attnum > 0 and not a.attisdropped),
       exists (select from pg_catalog.pg_attribute a where a.attrelid = $1 and a.attname = $2 and a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)),
       exists (select from pg_catalog.pg_index i
               join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
               where i.indrelid = $1 and a.attname = $2 and a.attnotnull
                 and i.indisunique and i.indisvalid and i.indnkeyatts = 1 and i.indpred is null and i.indexprs is null),
       exists (select from pg_catalog.pg_attribute a where a.attrelid = $1 and a.attname = $2 and a.attidentity = 'a'),
       coalesce((select pg_catalog.pg_get_partkeydef(c.oid) from pg_catalog.pg_class c where c.oid = $1 and c.relkind = 'p'), '')`,
		t.OID, r.PageKey).Scan(&exists, &integer, &unique, &always, &partKey)
	if err != nil {
		return fmt.Errorf("looking up the page key of %s: %w", r.QualifiedName(), err)
	}
	table := compiler.Qualify(r.Schema, r.Table)
	switch {
	case !exists:
		c.add(r.PagePos, LevelError, "page by the primary key column (usually id)",
			"column %s does not exist in %s", r.PageKey, r.QualifiedName())
	case !integer:
		c.add(r.PagePos, LevelError, "page by an identity or serial column (smallint, integer or bigint)",
			"page key %s of %s is not an integer column: the page function's cursor is an integer", r.PageKey, r.QualifiedName())
	case unique:
	case partKey != "" && always:
		// Unique by construction: one sequence, never set by a request.
	case partKey != "":
		key := compiler.QuoteIdent(r.PageKey)
		c.add(r.PagePos, LevelError,
			fmt.Sprintf("make it an identity column generated always (alter table %s alter column %s add generated always as identity; or alter column %s set generated always), or partition %s by %s",
				table, key, key, r.QualifiedName(), r.PageKey),
			"page key %s of %s is neither unique on its own nor an identity column generated always: %s is partitioned (%s), so a unique index must hold the partition key, and pages ordered by %s would repeat or skip rows that share a value",
			r.PageKey, r.QualifiedName(), r.QualifiedName(), partKey, r.PageKey)
	default:
		c.add(r.PagePos, LevelError, fmt.Sprintf("page by the primary key, or: alter table %s alter column %s set not null, add unique (%s);", table, compiler.QuoteIdent(r.PageKey), compiler.QuoteIdent(r.PageKey)),
			"page key %s of %s is not a unique, not-null column on its own: pages ordered by it would repeat or skip rows", r.PageKey, r.QualifiedName())
	}
	return nil
}

// deleteActions names pg_constraint.confdeltype.
var deleteActions = map[string]string{"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}

// checkGroupForeignKey warns when the group column has no foreign key to
// iam.groups(id) (iamc build adds it; before the first build it is
// missing), or only one whose delete action is not the one iamc chooses.
func (c *catalogCheck) checkGroupForeignKey(r *lang.ResourceModel, rel uint32) error {
	rows, err := c.db.Query(c.ctx, `
select k.conname, k.confdeltype::text
from pg_catalog.pg_constraint k
join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
where k.conrelid = $1 and k.contype = 'f' and pg_catalog.cardinality(k.conkey) = 1 and a.attname = $2
  and k.confrelid = pg_catalog.to_regclass('iam.groups')::pg_catalog.oid
order by 1`, rel, r.GroupColumn)
	if err != nil {
		return fmt.Errorf("looking up the foreign keys of %s: %w", r.QualifiedName(), err)
	}
	type fk struct{ Name, Action string }
	fks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fk])
	if err != nil {
		return fmt.Errorf("looking up the foreign keys of %s: %w", r.QualifiedName(), err)
	}
	_, want := compiler.GroupDeleteAction(r)
	consequence := "a deleted group's rows go back to their owners"
	if r.GroupRequired {
		consequence = "a deleted group's rows are deleted with it"
	}
	iamcFK := compiler.GroupForeignKeyName(r)
	if len(fks) == 0 {
		c.add(r.GroupPos, LevelWarning,
			fmt.Sprintf("iamc build adds it (expected before the first build): %s, on delete %s", iamcFK, deleteActions[want]),
			"column %s.%s has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them",
			r.QualifiedName(), r.GroupColumn)
		return nil
	}
	for _, k := range fks {
		if k.Action == want {
			return nil
		}
	}
	k := fks[0]
	effect := "delete_group fails while the group has rows"
	switch k.Action {
	case "c":
		effect = "deleting a group deletes its rows"
	case "n":
		effect = "a deleted group's rows stay, in no group"
	case "d":
		effect = "a deleted group's rows move to the column's default"
	}
	c.add(r.GroupPos, LevelWarning,
		fmt.Sprintf("alter table %s drop constraint %s; then iamc build adds %s (on delete %s)", compiler.Qualify(r.Schema, r.Table), compiler.QuoteIdent(k.Name), iamcFK, deleteActions[want]),
		"the foreign key %s of %s.%s is on delete %s: %s, where iamc expects that %s",
		k.Name, r.QualifiedName(), r.GroupColumn, deleteActions[k.Action], effect, consequence)
	return nil
}

// checkReference reports a parent column that is not a foreign key to the
// parent's key: the parent rules follow it, so it must point at exactly one
// parent row (the key is unique: PostgreSQL's foreign keys insist).
func (c *catalogCheck) checkReference(r *lang.ResourceModel, rel uint32, need compiler.ColumnNeed) error {
	ref := need.References
	parent := compiler.Qualify(ref.Schema, ref.Table)
	var found bool
	err := c.db.QueryRow(c.ctx, `
select exists (
    select from pg_catalog.pg_constraint k
    join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
    join pg_catalog.pg_attribute f on f.attrelid = k.confrelid and f.attnum = k.confkey[1]
    where k.contype = 'f' and k.conrelid = $1 and pg_catalog.cardinality(k.conkey) = 1
      and k.confrelid = pg_catalog.to_regclass($2) and a.attname = $3 and f.attname = $4)`,
		rel, parent, need.Column, ref.Column).Scan(&found)
	if err != nil {
		return fmt.Errorf("looking up the foreign keys of %s: %w", r.QualifiedName(), err)
	}
	if !found {
		c.add(need.Pos, LevelError,
			fmt.Sprintf("alter table %s add foreign key (%s) references %s (%s) on delete cascade;",
				compiler.Qualify(r.Schema, r.Table), compiler.QuoteIdent(need.Column), parent, compiler.QuoteIdent(ref.Column)),
			"column %s of %s is not a foreign key to %s.%s.%s: the parent rules follow it to one parent row", need.Column, r.QualifiedName(), ref.Schema, ref.Table, ref.Column)
	}
	return nil
}
