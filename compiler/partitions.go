package compiler

import (
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/stdlib"
)

// Partitioned tables. The compiler does not know which resources are
// partitioned (it never sees a database); what it writes works for both:
// everything of a resource goes on the table itself, where PostgreSQL's
// partitioned tables pass it on to every partition, present and future
// (indexes, the row guard trigger, the group foreign key, the owner
// column's default), or apply it to every row read or written through the
// table (policies, grants). What does not pass on is row-level security
// itself: a partition queried directly is a table of its own, and only its
// own (absent) policies and grants apply. Two statements close that:
//
//   - each resource's section calls iam.lock_partitions(table) (runtime):
//     every partition gets row-level security enabled and forced, with no
//     policy, and no privilege for anyone but its owner (a no-op for a
//     plain table);
//   - the preamble, run by a superuser where a resource is partitioned,
//     installs the event trigger iam_lock_partitions, which does the same
//     to partitions as they are created or attached, and undoes grants on
//     them (stdlib/partition_guard.sql).

// PartitionTrigger is the event trigger that locks down new partitions;
// PartitionTriggerFunction the function it runs (regprocedure text).
const (
	PartitionTrigger         = stdlib.PartitionTrigger
	PartitionTriggerFunction = stdlib.DDLSchema + ".lock_partitions()"
)

// PartitionTriggerProblemSQL says why new partitions are not locked down
// as they are created, or ” when the event trigger is in place: enabled,
// running PartitionTriggerFunction, which a superuser owns. The catalog
// check and plan ask it, as any role (no name lookup that needs USAGE on
// schema iam_ddl); $1 is PartitionTrigger.
var PartitionTriggerProblemSQL = `
select case
    when e.oid is null then 'there is no event trigger ' || $1
    when e.evtenabled = 'D' then 'the event trigger ' || $1 || ' is disabled'
    when fn.nspname is distinct from '` + stdlib.DDLSchema + `' or f.proname <> 'lock_partitions' or f.pronargs <> 0
        then 'the event trigger ' || $1 || ' does not run ` + PartitionTriggerFunction + `'
    when not fo.rolsuper then 'the function of the event trigger ' || $1 || ' is owned by ' || fo.rolname || ', not by a superuser'
    else '' end
from (select) one
left join pg_catalog.pg_event_trigger e on e.evtname = $1
left join pg_catalog.pg_proc f on f.oid = e.evtfoid
left join pg_catalog.pg_namespace fn on fn.oid = f.pronamespace
left join pg_catalog.pg_roles fo on fo.oid = f.proowner`

// partitionGuard is the preamble's statement that installs the event
// trigger (as a superuser, when a resource's table is partitioned).
func partitionGuard(m *lang.Model) Statement {
	var tables []string
	for _, r := range m.Resources {
		tables = append(tables, "pg_catalog.to_regclass("+quoteLiteral(qualify(r.Schema, r.Table))+")")
	}
	return Statement{
		Why: "Partitioned resources: new partitions are locked down as they are created or attached (row-level security enabled and forced, no privilege but their owner's), " +
			"by an event trigger whose function a superuser owns. Run by a superuser where a resource's table is partitioned; otherwise nothing.",
		SQL:    stdlib.PartitionGuard(tables),
		Object: &Object{Kind: ObjectEventTrigger, Name: PartitionTrigger},
	}
}

// lockPartitions: the partitions of the resource's table, if it has any,
// are reached only through it.
func (b *resourceBuild) lockPartitions() {
	b.add("A partition queried directly skips this table's policies: each partition (if the table is partitioned) gets row-level security enabled and forced with no policy, and no privilege but its owner's.",
		"call iam.lock_partitions(%s::regclass);", quoteLiteral(b.table))
	b.out[len(b.out)-1].Object = &Object{Kind: ObjectPartitions, Schema: b.r.Schema, Name: b.r.Table, Table: b.r.Table}
}

// describeCall is what a call of a runtime procedure manages, as its SQL
// says: the partitions of a table for iam.lock_partitions.
func describeCall(proc []string, table string) *Object {
	if len(proc) != 2 || proc[0] != "iam" || proc[1] != "lock_partitions" {
		return nil
	}
	schema, name, ok := splitQualified(table)
	if !ok {
		return nil
	}
	return &Object{Kind: ObjectPartitions, Schema: schema, Name: name, Table: name}
}

// splitQualified reads schema.table as the generated SQL quotes it, with
// PostgreSQL's parser.
func splitQualified(s string) (schema, name string, ok bool) {
	tree, err := pg_query.Parse("select from " + s)
	if err != nil || len(tree.Stmts) != 1 {
		return "", "", false
	}
	from := tree.Stmts[0].Stmt.GetSelectStmt().GetFromClause()
	if len(from) != 1 || from[0].GetRangeVar() == nil {
		return "", "", false
	}
	rv := from[0].GetRangeVar()
	return rv.Schemaname, rv.Relname, rv.Schemaname != ""
}
