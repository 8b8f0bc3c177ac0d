package policies_test

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

// TestSnapshotSeesEveryChange: the snapshot covers the example's tables and
// the group tables, notices a change in any of them made by the superuser,
// and ignores a sequence that moved on (see dbState).
func TestSnapshotSeesEveryChange(t *testing.T) {
	db := GroupsDB(t)
	before := Snapshot(t, db)
	for _, table := range []string{"app.todos", "app.chats", "iam.groups", "iam.group_members", "iam.settings"} {
		if _, ok := before[table]; !ok {
			t.Errorf("the snapshot has no %s (tables: %v)", table, keys(before))
		}
	}
	WantUnchanged(t, db, before) // nothing happened: no difference

	// A sequence moving on (as under a refused insert) is no change.
	db.Exec(t, "select nextval(pg_get_serial_sequence('iam.groups', 'id'))")
	if diff := cmp.Diff(before, Snapshot(t, db)); diff != "" {
		t.Errorf("a nextval showed as a change:\n%s", diff)
	}

	changes := []struct{ name, do, undo string }{
		{"a new group", "insert into iam.groups (id, name, created_by) overriding system value values (-1, 'probe', 'probe')",
			"delete from iam.groups where id = -1"},
		{"a changed setting", "update iam.settings set admin_role = 'probe'", ""},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			st := Snapshot(t, db)
			db.Exec(t, c.do)
			if cmp.Equal(st, Snapshot(t, db)) {
				t.Errorf("%q as superuser: the snapshot did not change", c.do)
			}
			if c.undo != "" {
				db.Exec(t, c.undo)
			} else {
				restoreSettings(t, db, st)
			}
			if diff := cmp.Diff(st, Snapshot(t, db)); diff != "" {
				t.Fatalf("could not undo %q:\n%s", c.do, diff)
			}
		})
	}
}

// restoreSettings puts iam.settings back as it was in st.
func restoreSettings(t *testing.T, db *Database, st DBState) {
	t.Helper()
	rows := st["iam.settings"]
	if len(rows) != 1 {
		t.Fatalf("iam.settings had %d rows, want 1", len(rows))
	}
	db.Exec(t, "update iam.settings s set admin_role = r.admin_role from jsonb_populate_record(null::iam.settings, $1::jsonb) r", rows[0])
}

func keys(st DBState) []string {
	var out []string
	for k := range st {
		out = append(out, k)
	}
	return out
}
