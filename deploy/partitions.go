package deploy

import (
	"context"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/iamc/iamc/compiler"
)

// Partitioned resources. The build locks every partition of a resource
// down (iam.lock_partitions) and, run by a superuser, installs the event
// trigger that locks new ones down as they are made; the snapshot reads
// each partition's row-level security and grants as objects of its root
// table, so a plan names every partition apply changes.

// partitionWarning: after the build's statements, the partitioned
// resources whose new partitions would not be locked down as they are
// created (no event trigger: the build was not run by a superuser).
func (r *run) partitionWarning(ctx context.Context) ([]string, error) {
	var tables []string
	for _, t := range r.tables {
		if t.model != nil && t.partitioned {
			tables = append(tables, t.Name)
		}
	}
	if len(tables) == 0 {
		return nil, nil
	}
	var problem string
	if err := r.tx.QueryRow(ctx, compiler.PartitionTriggerProblemSQL, compiler.PartitionTrigger).Scan(&problem); err != nil {
		return nil, fmt.Errorf("looking up the event trigger %s: %w", compiler.PartitionTrigger, err)
	}
	if problem == "" {
		return nil, nil
	}
	return []string{fmt.Sprintf("new partitions of %s are not locked down when they are created: %s (creating one needs a superuser); "+
		"until apply runs as a superuser, a partition made later has row-level security off until the next apply, and a privilege granted on it meanwhile opens every row in it",
		strings.Join(tables, ", "), problem)}, nil
}

// buildPartitionedConcurrently builds an index of a partitioned table
// without blocking its writes, the way PostgreSQL's documentation says
// (CREATE INDEX, "Building Indexes Concurrently"), since CREATE INDEX
// CONCURRENTLY refuses a partitioned table: the index is created on the
// table alone (ON ONLY: invalid, and nothing is read), then, partition by
// partition, a leaf's index is built concurrently and attached (a
// partition that is partitioned itself gets an index ON ONLY too, and the
// same below it); once every partition's index is attached, PostgreSQL
// marks the table's valid. A run left half-done is resumed: what is
// attached already stays. An index defined otherwise than the build says
// is left to the transaction (a partitioned index cannot be dropped
// concurrently); it reports false then.
func (r *run) buildPartitionedConcurrently(ctx context.Context, st indexState) (bool, error) {
	if st.exists && st.differs {
		return false, nil
	}
	b := &partitionedIndex{run: r, st: st}
	if err := b.ensure(ctx, st.ix.schema, st.ix.table, st.ix.schema, st.ix.name, true); err != nil {
		return false, err
	}
	return true, nil
}

// partitionedIndex is one index of the build being built partition by
// partition.
type partitionedIndex struct {
	*run
	st indexState
}

// statement is the build's index statement for another relation and name:
// ON ONLY for a partitioned one, CONCURRENTLY for a leaf.
func (b *partitionedIndex) statement(schema, table, name string, partitioned bool) (string, error) {
	tree, err := pg_query.Parse(b.st.ix.sql)
	if err != nil {
		return "", err
	}
	is := tree.Stmts[0].Stmt.GetIndexStmt()
	is.Relation.Schemaname, is.Relation.Relname, is.Idxname = schema, table, name
	is.Relation.Inh = !partitioned
	is.Concurrent, is.IfNotExists = !partitioned, true
	return pg_query.Deparse(tree)
}

func (b *partitionedIndex) exec(ctx context.Context, sql, what string) error {
	if _, err := b.conn.Exec(ctx, sql); err != nil {
		return b.explain(err, what+" (building "+b.st.display+" partition by partition)")
	}
	return nil
}

// ensure makes index schema.name on table (partitioned or a leaf) cover
// every row: on a leaf, built concurrently; on a partitioned table, ON
// ONLY, with an index of each partition attached.
func (b *partitionedIndex) ensure(ctx context.Context, schema, table, ixSchema, ix string, partitioned bool) error {
	qualified := qualify(ixSchema, ix)
	if !partitioned {
		// An invalid index of this name is a concurrent build that failed.
		var invalid bool
		if err := b.conn.QueryRow(ctx, `select exists (select from pg_index i where i.indexrelid = to_regclass($1) and not i.indisvalid)`, qualified).Scan(&invalid); err != nil {
			return err
		}
		if invalid {
			if err := b.exec(ctx, "drop index concurrently if exists "+qualified, "dropping the invalid index "+qualified); err != nil {
				return err
			}
		}
		sql, err := b.statement(schema, table, ix, false)
		if err != nil {
			return err
		}
		if err := b.exec(ctx, sql, "building the index "+qualified+" of partition "+qualify(schema, table)+" concurrently"); err != nil {
			_, _ = b.conn.Exec(context.WithoutCancel(ctx), "drop index concurrently if exists "+qualified)
			return err
		}
		return nil
	}
	sql, err := b.statement(schema, table, ix, true)
	if err != nil {
		return err
	}
	if err := b.exec(ctx, sql, "creating the index "+qualified+" on "+qualify(schema, table)+" alone"); err != nil {
		return err
	}
	// Each partition, with the index of it attached to this one, if any.
	rows, err := b.conn.Query(ctx, `select n.nspname, c.relname, c.relkind = 'p',
	        coalesce((select ic.relname from pg_inherits x
	                  join pg_index i on i.indexrelid = x.inhrelid
	                  join pg_class ic on ic.oid = i.indexrelid
	                  where x.inhparent = to_regclass($2) and i.indrelid = c.oid), '')
	    from pg_inherits h
	    join pg_class c on c.oid = h.inhrelid
	    join pg_namespace n on n.oid = c.relnamespace
	    where h.inhparent = to_regclass($1)
	    order by n.nspname, c.relname`, qualify(schema, table), qualified)
	if err != nil {
		return err
	}
	type partition struct {
		schema, table string
		partitioned   bool
		attached      string
	}
	var parts []partition
	for rows.Next() {
		var p partition
		if err := rows.Scan(&p.schema, &p.table, &p.partitioned, &p.attached); err != nil {
			rows.Close()
			return err
		}
		parts = append(parts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range parts {
		if p.attached != "" {
			if p.partitioned { // its own partitions may still lack theirs
				if err := b.ensure(ctx, p.schema, p.table, p.schema, p.attached, true); err != nil {
					return err
				}
			}
			continue
		}
		name := compiler.DerivedName(p.table, ix)
		if err := b.ensure(ctx, p.schema, p.table, p.schema, name, p.partitioned); err != nil {
			return err
		}
		if err := b.exec(ctx, fmt.Sprintf("alter index %s attach partition %s", qualified, qualify(p.schema, name)),
			"attaching the index of partition "+qualify(p.schema, p.table)); err != nil {
			return err
		}
	}
	return nil
}
