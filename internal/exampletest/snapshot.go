package exampletest

// Refused writes leave the database as it was: checked, not assumed. A
// test takes a snapshot of the whole application state as the superuser
// before a request that must be refused (or must reach no row) and compares
// it with the state after.

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// DBState is every row of every table outside PostgreSQL's own schemas
// (app.*, iam.groups, iam.group_members, iam.settings, ...), keyed by
// table, each row as its jsonb text, in sorted order.
//
// Sequences are left out on purpose: nextval is never rolled back, so a
// refused INSERT can use up an id (the BEFORE trigger that refuses the row
// runs after the column default took its value). A gap in the ids is not a
// change of any row; every row of every table is compared.
type DBState map[string][]string

// Snapshot reads the application state of d as the superuser (who
// bypasses row level security, so it is every row).
func Snapshot(t testing.TB, d *Database) DBState {
	t.Helper()
	st, err := readState(t.Context(), d.SU)
	if err != nil {
		t.Fatalf("snapshot of database %s: %v", d.Name, err)
	}
	return st
}

func readState(ctx context.Context, su *pgx.Conn) (DBState, error) {
	rows, err := su.Query(ctx, `
		select format('%I.%I', n.nspname, c.relname)
		from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
		where c.relkind in ('r', 'p')
		  and n.nspname not in ('pg_catalog', 'information_schema')
		  and n.nspname not like 'pg\_toast%' and n.nspname not like 'pg\_temp%'
		order by 1`)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	st := DBState{}
	for _, table := range tables {
		var contents []string
		// The name comes from format('%I.%I'): quoted as needed.
		q := fmt.Sprintf("select coalesce(array_agg(r order by r), '{}') from (select to_jsonb(t)::text as r from %s t) s", table)
		if err := su.QueryRow(ctx, q).Scan(&contents); err != nil {
			return nil, fmt.Errorf("reading %s: %w", table, err)
		}
		st[table] = contents
	}
	return st, nil
}

// WantUnchanged re-reads the state of d as the superuser and reports every
// difference from before.
func WantUnchanged(t testing.TB, d *Database, before DBState) {
	t.Helper()
	if diff := cmp.Diff(before, Snapshot(t, d)); diff != "" {
		t.Errorf("the database changed although the request was refused or reached no row (-before +after):\n%s", diff)
	}
}
