package deploy

import (
	"fmt"
	"strings"
	"testing"
)

// TestApplyIsAudited: every apply that commits appends one entry to the
// runtime's audit trail, in its own transaction, saying what it applied
// (its record, versions, hashes, resources, each change) and by whom (the
// login role); an apply with nothing to do commits nothing and appends
// nothing, and one that fails appends nothing either.
func TestApplyIsAudited(t *testing.T) {
	e := newEnv(t, allFiles)
	p := e.plan()
	r := e.apply(Options{})
	entries := func() string {
		return e.query(`select count(*)::text from iam.audit_log where action = 'iamc.apply'`)
	}
	if got := entries(); got != "1" {
		t.Fatalf("%s apply entries after the first apply, want 1", got)
	}
	got := e.query(`select concat_ws(' | ', actor is null, db_role = session_user, object,
	        new_value ->> 'applied', new_value ->> 'iamc_version', new_value ->> 'runtime_version',
	        new_value ->> 'script_hash' = (select script_hash from iam.applied where id = 1),
	        jsonb_array_length(new_value -> 'changes'), new_value -> 'resources' ? 'app.todos')
	    from iam.audit_log where action = 'iamc.apply'`)
	want := fmt.Sprintf("t | t | iam.applied %d | %d | test | 4 | t | %d | t", r.RecordID, r.RecordID, len(p.Changes))
	if got != want {
		t.Errorf("the apply's entry: %s, want %s", got, want)
	}
	if got := e.query(`select (new_value -> 'changes' ? 'create trigger audit_log_append_only on iam.audit_log')::text from iam.audit_log where action = 'iamc.apply'`); got != "true" {
		t.Errorf("the entry does not list the trigger it created")
	}

	// Nothing to do: nothing committed, nothing appended.
	if r := e.apply(Options{}); r.Applied || r.RecordID != 0 {
		t.Fatalf("second apply: applied %v, record %d", r.Applied, r.RecordID)
	}
	if got := entries(); got != "1" {
		t.Errorf("%s apply entries after an apply with nothing to do, want 1", got)
	}

	// A change, then a failed apply.
	e.files(with(allFiles, "todos.iam", strings.Replace(todosFile, "owner can read, create, write, delete", "owner can read, create, write", 1)))
	e.apply(Options{})
	if got := entries(); got != "2" {
		t.Errorf("%s apply entries after a second change, want 2", got)
	}
	e.exec(`alter table app.notes rename column owner_id to author`)
	if _, err := Apply(t.Context(), e.connect(), e.input(), Options{}); err == nil {
		t.Fatal("apply over a renamed owner column succeeded")
	}
	if got := entries(); got != "2" {
		t.Errorf("%s apply entries after a failed apply, want 2", got)
	}
}

// TestTransferAddedAndRemoved: owner can transfer adds the transfer policy
// and <table>_transfer; removing it drops both (the function found by its
// comment, as page functions are), and the plan after each apply is clean.
func TestTransferAddedAndRemoved(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	transferable := with(allFiles, "todos.iam", strings.Replace(todosFile, "owner can read, create, write, delete", "owner can read, create, write, delete, transfer", 1))
	e.files(transferable)
	p := e.plan()
	var created []string
	for _, c := range p.Changes {
		if c.Action == Create && strings.Contains(c.Object.Name, "transfer") {
			created = append(created, c.Object.Kind+" "+c.Object.Name)
		}
	}
	want := []string{
		"function app.todos_transfer(bigint, text, text, text)",
		"grant on function app.todos_transfer(bigint, text, text, text) to web_user",
		`policy "iam: authenticated can transfer" on app.todos`,
	}
	if strings.Join(created, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan creates:\n%s\nwant:\n%s", strings.Join(created, "\n"), strings.Join(want, "\n"))
	}
	e.apply(Options{})
	if p := e.plan(); p.HasChanges() || len(p.Drift) > 0 {
		t.Errorf("plan after adding transfer:\n%s", text(t, p))
	}
	e.files(allFiles)
	e.apply(Options{})
	if got := e.query(`select (to_regprocedure('app.todos_transfer(bigint, text, text, text)') is null)::text`); got != "true" {
		t.Error("the transfer function stayed after owner can transfer went")
	}
	if got := e.query(`select count(*)::text from pg_policy where polname = 'iam: authenticated can transfer'`); got != "0" {
		t.Error("the transfer policy stayed after owner can transfer went")
	}
	if p := e.plan(); p.HasChanges() || len(p.Drift) > 0 {
		t.Errorf("plan after removing transfer:\n%s", text(t, p))
	}
}
