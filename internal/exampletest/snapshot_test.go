package exampletest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	. "github.com/iamc/iamc/internal/exampletest"
)

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
