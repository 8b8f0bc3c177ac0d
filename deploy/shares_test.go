package deploy

import (
	"strings"
	"testing"
)

// sharedTodosFile is todosFile with row shares.
const sharedTodosFile = `resource app.todos {
  owner column owner_id
  group column group_id
  share by id with users, groups
  owner can read, create, write, delete, share
  group member can read, create, write
  group admin can delete
  shared can read, write
}
`

// TestShares: plan and apply know the share objects of a resource (SPEC
// §21): the share table (kind table) with its row level security, grants,
// indexes, quota trigger and policies, grouped under it; the helpers in iam
// and the share API. After apply, plan says no changes; a change made by
// hand to a share table's policy is drift that apply reverts; when the
// files stop sharing, apply takes iamc's policies, trigger and grants off
// the share table and drops the share functions (after the resource's new
// policies no longer call them), and the table keeps its rows.
func TestShares(t *testing.T) {
	files := with(allFiles, "todos.iam", sharedTodosFile)
	e := newEnv(t, files)
	p := e.plan()
	golden(t, "plan-shares.txt", text(t, p))
	r := e.apply(Options{})
	if !r.Applied {
		t.Fatalf("apply:\n%s", resultText(t, r))
	}
	if p := e.plan(); p.HasChanges() {
		t.Fatalf("after apply, plan:\n%s", text(t, p))
	}

	// A share, made as the superuser.
	e.exec(`insert into app.todos (title, owner_id) values ('shared', '00000000-0000-4000-8000-00000000000a')`)
	e.exec(`insert into iam.app_todos_shares (row_id, user_id, shared_by)
	        select id, '00000000-0000-4000-8000-00000000000b', owner_id from app.todos`)

	// Drift on the share table: a policy widened by hand.
	e.exec(`alter policy "iam: authenticated can select" on iam.app_todos_shares using (true)`)
	e.exec(`grant update on iam.app_todos_shares to web_user`)
	p = e.plan()
	out := text(t, p)
	for _, want := range []string{
		"iam.app_todos_shares:\n",
		`  ~ replace policy "iam: authenticated can select" on iam.app_todos_shares: using  [drift: changed outside iamc; apply reverts it]`,
		"  ~ replace grant on table iam.app_todos_shares to web_user: select, insert, update, delete -> select, insert, delete  [drift: changed outside iamc; apply reverts it]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan after drift lacks %q:\n%s", want, out)
		}
	}
	e.apply(Options{})
	if p := e.plan(); p.HasChanges() {
		t.Fatalf("after the drift was reverted, plan:\n%s", text(t, p))
	}

	// The files stop sharing todos.
	e.files(allFiles)
	p = e.plan()
	golden(t, "plan-shares-removed.txt", text(t, p))
	e.apply(Options{})
	checks := map[string]string{
		`select count(*)::text from pg_policy where polrelid = 'iam.app_todos_shares'::regclass`:                                                                                     "0",
		`select count(*)::text from pg_trigger where tgrelid = 'iam.app_todos_shares'::regclass and not tgisinternal`:                                                                "0",
		`select has_table_privilege('web_user', 'iam.app_todos_shares', 'select,insert,delete')::text`:                                                                               "false",
		`select (relrowsecurity and relforcerowsecurity)::text from pg_class where oid = 'iam.app_todos_shares'::regclass`:                                                           "true",
		`select count(*)::text from iam.app_todos_shares`:                                                                                                                            "1",
		`select count(*)::text from pg_proc where proname in ('app_todos_shared', 'app_todos_share_quota', 'app_todos_share_audit', 'todos_share', 'todos_unshare', 'todos_shares')`: "0",
		`select count(*)::text from pg_policy where polrelid = 'app.todos'::regclass and pg_get_expr(polqual, polrelid) like '%shared%'`:                                             "0",
	}
	for sql, want := range checks {
		if got := e.query(sql); got != want {
			t.Errorf("%s = %s, want %s", sql, got, want)
		}
	}
	if p := e.plan(); p.HasChanges() {
		t.Errorf("after the shares went, plan:\n%s", text(t, p))
	}

	// Sharing again finds the table and its shares where they were.
	e.files(files)
	e.apply(Options{})
	if got := e.query(`select count(*)::text from pg_policy where polrelid = 'iam.app_todos_shares'::regclass`); got != "4" {
		t.Errorf("the share table has %s policies after sharing again, want 4", got)
	}
	if p := e.plan(); p.HasChanges() {
		t.Errorf("after sharing again, plan:\n%s", text(t, p))
	}
}
