package deploy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iamc/iamc/stdlib"
)

// count returns how many changes of each action a plan holds.
func count(p *Plan) map[Action]int {
	out := map[Action]int{}
	for _, c := range p.Changes {
		out[c.Action]++
	}
	return out
}

func appliedRows(e *env) string {
	return e.query(`select count(*)::text from iam.applied`)
}

// TestFreshApplyThenNoChanges: on a fresh database every object is a
// create (and the RLS flags a replace); apply commits them and records the
// apply; then plan says no changes and a second apply runs nothing.
func TestFreshApplyThenNoChanges(t *testing.T) {
	e := newEnv(t, allFiles)
	p := e.plan()
	golden(t, "plan-fresh.txt", text(t, p))
	if !p.HasChanges() || count(p)[Drop] != 0 || p.Record != nil || p.RuntimeInstalled != 0 {
		t.Errorf("fresh plan: %v changes, record %v, runtime %d", count(p), p.Record, p.RuntimeInstalled)
	}
	// Plan changed nothing.
	if got := e.query(`select (to_regnamespace('iam') is null)::text`); got != "true" {
		t.Error("plan left schema iam behind")
	}

	planned := 0
	for _, n := range count(p) {
		planned += n
	}
	r := e.apply(Options{})
	if !r.Applied || r.RecordID != 1 {
		t.Fatalf("first apply: applied %v, record %d", r.Applied, r.RecordID)
	}
	if !strings.HasSuffix(resultText(t, r), fmt.Sprintf("Applied: %d change(s) committed in one transaction, recorded as iam.applied #1.\n", planned)) {
		t.Errorf("first apply printed:\n%s", resultText(t, r))
	}
	var version, runtime int
	var sources []string
	var resources string
	if err := e.conn.QueryRow(t.Context(), `select iamc_version = 'test', runtime_version, sources, resources::text from iam.applied`).
		Scan(new(bool), &runtime, &sources, &resources); err != nil {
		t.Fatal(err)
	}
	if runtime != stdlib.Version || len(sources) != 4 || !strings.Contains(resources, `"name": "app.todos"`) {
		t.Errorf("iam.applied: runtime %d, sources %q, resources %s", runtime, sources, resources)
	}
	_ = version

	p = e.plan()
	golden(t, "plan-clean.txt", text(t, p))
	if p.HasChanges() || len(p.Drift) > 0 || !p.DriftKnown {
		t.Errorf("plan after apply: %v, drift %v, known %v", count(p), p.Drift, p.DriftKnown)
	}
	r = e.apply(Options{})
	if r.Applied || r.RecordID != 0 {
		t.Errorf("second apply: applied %v, record %d", r.Applied, r.RecordID)
	}
	if out := resultText(t, r); !strings.Contains(out, "No changes.") || !strings.HasSuffix(out, "Apply: no changes; nothing was committed.\n") {
		t.Errorf("second apply printed:\n%s", out)
	}
	if n := appliedRows(e); n != "1" {
		t.Errorf("the second apply wrote to iam.applied: %s rows", n)
	}
}

// TestPlanReplaceAndDrop: changes of the files show as create, replace and
// drop of exactly the objects they touch; apply makes them.
func TestPlanReplaceAndDrop(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})

	e.files(map[string]string{
		"iam.iam": iamFile,
		// todos: the group column becomes required (index, foreign key,
		// trigger and policies change) and members may no longer write.
		"todos.iam": `resource app.todos {
  owner column owner_id
  group column group_id required
  owner can read, create, write, delete
  group member can read, create
  group admin can delete
}
`,
		"chats.iam": chatsFile,
		// notes: owners may no longer delete; anonymous callers may read.
		"notes.iam": `resource app.notes {
  owner column owner_id
  owner can read, create, write
  anonymous can read
}
`,
	})
	p := e.plan()
	golden(t, "plan-change.txt", text(t, p))
	n := count(p)
	if n[Create] == 0 || n[Replace] == 0 || n[Drop] == 0 {
		t.Errorf("want creates, replaces and drops: %v", n)
	}
	for _, c := range p.Changes {
		if c.Drift != NoDrift {
			t.Errorf("a change of the files reported as drift: %+v", c)
		}
	}

	r := e.apply(Options{})
	if !r.Applied || r.RecordID != 2 {
		t.Fatalf("apply: %v #%d", r.Applied, r.RecordID)
	}
	if def := e.query(`select pg_get_indexdef('app.todos_group_id_iam_idx'::regclass)`); strings.Contains(def, "WHERE") {
		t.Errorf("the group index of a required column is still partial: %s", def)
	}
	if def := e.query(`select pg_get_constraintdef(oid) from pg_constraint where conname = 'todos_group_id_iam_fk'`); !strings.HasSuffix(def, "ON DELETE CASCADE") {
		t.Errorf("the group key of a required column: %s", def)
	}
	if got := e.query(`select count(*)::text from pg_policy where polrelid = 'app.notes'::regclass and polname = 'iam: authenticated can delete'`); got != "0" {
		t.Error("the delete policy of notes is still there")
	}
	if p := e.plan(); p.HasChanges() {
		t.Errorf("plan after apply:\n%s", text(t, p))
	}
}

// TestDrift: changes made by hand show as drift, named; apply reverts what
// iamc manages and says what it leaves.
func TestDrift(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})

	e.exec(`alter policy "iam: authenticated can select" on app.todos using (true)`)
	e.exec(`grant delete on app.todos to web_anon`)
	e.exec(`drop trigger iam_guard_row on app.notes`)
	e.exec(`alter table app.chats no force row level security`)
	e.exec(`create or replace function iam.role_rank(role_name text) returns integer language sql immutable
		set search_path = pg_catalog, pg_temp as $$ select 3 $$`)
	e.exec(`grant select on app.todos to reporting`)
	e.exec(`create policy "allow all" on app.todos for select to web_user using (true)`)
	e.exec(`drop index app.chats_owner_id_iam_idx`)
	e.exec(`alter table app.notes alter column owner_id drop default`)
	e.exec(`update iam.group_roles set rank = 10 where name = 'member'`)

	p := e.plan()
	got := text(t, p)
	golden(t, "plan-drift.txt", got)
	wantDrift := map[string]DriftWay{
		`policy "iam: authenticated can select" on app.todos`: Changed,
		`grant on table app.todos to web_anon`:                Created,
		`trigger iam_guard_row on app.notes`:                  Dropped,
		`rls app.chats`:                                       Changed,
		`function iam.role_rank(text)`:                        Changed,
		`index app.chats_owner_id_iam_idx`:                    Dropped,
		`column default owner_id on app.notes`:                Dropped,
		`settings iam.settings`:                               Changed,
	}
	for _, c := range p.Changes {
		key := c.Object.Kind + " " + c.Object.Name
		if c.Object.Kind == "rls" {
			key = "rls " + c.Object.Name
		}
		if way, ok := wantDrift[key]; ok {
			if c.Drift != way || !c.Reverts {
				t.Errorf("%s: drift %q reverts %v, want %q and reverted", key, c.Drift, c.Reverts, way)
			}
			delete(wantDrift, key)
		} else {
			t.Errorf("unexpected change %s %s", c.Action, key)
		}
	}
	for key := range wantDrift {
		t.Errorf("drift of %s not reported", key)
	}
	if len(p.Drift) != 2 {
		t.Errorf("want 2 drifts apply leaves (the reporting grant, the extra policy): %+v", p.Drift)
	}

	r := e.apply(Options{})
	if !r.Applied {
		t.Fatal("apply did not repair the drift")
	}
	if got := e.query(`select pg_get_expr(polqual, polrelid) from pg_policy where polname = 'iam: authenticated can select' and polrelid = 'app.todos'::regclass`); got == "true" {
		t.Error("the policy still says using (true)")
	}
	if got := e.query(`select has_table_privilege('web_anon', 'app.todos', 'delete')::text`); got != "false" {
		t.Error("web_anon may still delete")
	}
	if got := e.query(`select count(*)::text from pg_trigger where tgrelid = 'app.notes'::regclass and tgname = 'iam_guard_row'`); got != "1" {
		t.Error("the row guard of notes was not put back")
	}
	if got := e.query(`select relforcerowsecurity::text from pg_class where oid = 'app.chats'::regclass`); got != "true" {
		t.Error("RLS on chats is not forced again")
	}
	if got := e.query(`select (to_regclass('app.chats_owner_id_iam_idx') is not null)::text`); got != "true" {
		t.Error("the owner index of chats was not built again")
	}
	if got := e.query(`select string_agg(name, ' < ' order by rank) from iam.group_roles`); got != "member < admin < owner" {
		t.Errorf("group roles after apply: %s", got)
	}
	// What apply leaves: the grant to a role iamc does not manage, and the
	// policy it did not write. The apply recorded them; the policy stays
	// a warning.
	if got := e.query(`select has_table_privilege('reporting', 'app.todos', 'select')::text`); got != "true" {
		t.Error("apply revoked a grant to a role iamc does not manage")
	}
	p = e.plan()
	golden(t, "plan-drift-after.txt", text(t, p))
	if p.HasChanges() || len(p.Drift) != 0 || len(p.Warnings) != 1 {
		t.Errorf("plan after repair:\n%s", text(t, p))
	}

	// Drift apply cannot repair alone is no change: --detailed-exitcode
	// says 0, and apply commits nothing.
	e.exec(`grant insert on app.todos to reporting`)
	p = e.plan()
	if p.HasChanges() || len(p.Drift) != 1 || p.Drift[0].Way != Changed {
		t.Errorf("plan with drift apply leaves:\n%s", text(t, p))
	}
	if want := "  ! changed outside iamc: grant on table app.todos to reporting: select -> select, insert; apply leaves it: iamc revokes from public, web_user, web_anon only\n"; !strings.Contains(text(t, p), want) {
		t.Errorf("plan does not say %q:\n%s", want, text(t, p))
	}
	if r := e.apply(Options{}); r.Applied || r.RecordID != 0 {
		t.Errorf("apply with drift it cannot repair: applied %v, record %d", r.Applied, r.RecordID)
	}
}

// TestRemoveResource: a resource removed from the files loses iamc's
// policies, trigger, grants, foreign key and indexes; its RLS stays on and
// forced, and its rows stay.
func TestRemoveResource(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	e.exec(`insert into app.todos (title, owner_id) values ('a', gen_random_uuid()), ('b', gen_random_uuid())`)
	e.exec(`insert into app.notes (body, owner_id) values ('n', gen_random_uuid())`)

	e.files(without(allFiles, "todos.iam", "notes.iam"))
	p := e.plan()
	golden(t, "plan-remove.txt", text(t, p))
	if len(p.Removed) != 2 || p.Removed[0].Name != "app.notes" || p.Removed[1].Name != "app.todos" {
		t.Errorf("removed: %+v", p.Removed)
	}
	if n := count(p); n[Create] != 0 || n[Replace] != 0 || n[Drop] == 0 {
		t.Errorf("a removal is drops only: %v", n)
	}

	e.apply(Options{})
	for _, tbl := range []string{"app.todos", "app.notes"} {
		checks := map[string]string{
			`select count(*)::text from pg_policy where polrelid = $1::regclass`:                                                                          "0",
			`select count(*)::text from pg_trigger where tgrelid = $1::regclass and not tgisinternal`:                                                     "0",
			`select count(*)::text from pg_constraint where conrelid = $1::regclass and contype = 'f'`:                                                    "0",
			`select count(*)::text from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = $1::regclass and c.relname like '%iam_idx'`: "0",
			`select (relrowsecurity and relforcerowsecurity)::text from pg_class where oid = $1::regclass`:                                                "true",
			`select (has_table_privilege('web_user', $1, 'select,insert,update,delete') or has_table_privilege('web_anon', $1, 'select'))::text`:          "false",
			`select count(*)::text from pg_attrdef where adrelid = $1::regclass and pg_get_expr(adbin, adrelid) like '%user_id%'`:                         "0",
		}
		for sql, want := range checks {
			if got := e.query(sql, tbl); got != want {
				t.Errorf("%s: %s = %s, want %s", tbl, sql, got, want)
			}
		}
	}
	if got := e.query(`select has_sequence_privilege('web_user', 'app.notes_id_seq', 'usage')::text`); got != "false" {
		t.Error("web_user keeps USAGE on the sequence of a removed resource")
	}
	if got := e.query(`select (select count(*) from app.todos) || ',' || (select count(*) from app.notes)`); got != "2,1" {
		t.Errorf("rows after the removal: %s, want 2,1", got)
	}
	p = e.plan()
	if p.HasChanges() || len(p.Removed) != 0 || strings.Contains(text(t, p), "app.todos") {
		t.Errorf("plan after the removal:\n%s", text(t, p))
	}
	if got := e.query(`select resources::text from iam.applied order by id desc limit 1`); strings.Contains(got, "todos") {
		t.Errorf("the record still lists todos: %s", got)
	}
}

// TestRemovalWithoutRecord: a database built with psql (no iam.applied)
// still has its removed resources found, by iamc's objects on them.
func TestRemovalWithoutRecord(t *testing.T) {
	e := newEnv(t, allFiles)
	ctx := t.Context()
	if err := e.s.Exec(ctx, e.db, e.input().Output.Script()); err != nil {
		t.Fatal(err)
	}
	p := e.plan()
	if p.HasChanges() || p.Record != nil {
		t.Fatalf("after the script, plan:\n%s", text(t, p))
	}
	e.files(without(allFiles, "notes.iam"))
	p = e.plan()
	if len(p.Removed) != 1 || p.Removed[0].Name != "app.notes" {
		t.Fatalf("removed: %+v\n%s", p.Removed, text(t, p))
	}
	r := e.apply(Options{})
	if !r.Applied || r.RecordID != 1 {
		t.Fatalf("apply: %v #%d", r.Applied, r.RecordID)
	}
	if got := e.query(`select count(*)::text from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = 'app.notes'::regclass and c.relname like '%iam_idx'`); got != "0" {
		t.Error("the owner index of notes is still there")
	}
}

// TestApplyRecordsAScriptBuiltDatabase: applying over a database the psql
// script built changes nothing and records its state, for drift.
func TestApplyRecordsAScriptBuiltDatabase(t *testing.T) {
	e := newEnv(t, allFiles)
	if err := e.s.Exec(t.Context(), e.db, e.input().Output.Script()); err != nil {
		t.Fatal(err)
	}
	r := e.apply(Options{})
	if r.Applied || r.RecordID != 1 || !strings.Contains(resultText(t, r), "recorded the database's state as iam.applied #1") {
		t.Fatalf("apply over the script:\n%s", resultText(t, r))
	}
	e.exec(`grant delete on app.todos to web_anon`)
	p := e.plan()
	if len(p.Changes) != 1 || p.Changes[0].Drift != Created {
		t.Errorf("drift after the record:\n%s", text(t, p))
	}
}

// TestRuntimeTooNew: a newer runtime is refused, clearly, and nothing
// changes.
func TestRuntimeTooNew(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	newer := stdlib.Version + 1
	e.exec(fmt.Sprintf(`update iam.runtime set version = %d`, newer))
	e.files(without(allFiles, "notes.iam"))
	for name, run := range map[string]func() error{
		"plan":  func() error { _, err := e.tryPlan(Options{}); return err },
		"apply": func() error { _, err := Apply(t.Context(), e.connect(), e.input(), Options{}); return err },
		"apply --concurrent-indexes": func() error {
			_, err := Apply(t.Context(), e.connect(), e.input(), Options{ConcurrentIndexes: true})
			return err
		},
	} {
		err := run()
		var tooNew *RuntimeTooNewError
		if !errors.As(err, &tooNew) || tooNew.Installed != newer || tooNew.Supported != stdlib.Version {
			t.Errorf("%s: %v, want RuntimeTooNewError", name, err)
			continue
		}
		if want := fmt.Sprintf("the iam runtime in this database is version %d, newer than the one this iamc installs (version %d)", newer, stdlib.Version); !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := e.query(`select version::text from iam.runtime`); got != strconv.Itoa(newer) {
		t.Errorf("runtime version is now %s", got)
	}
	if n := appliedRows(e); n != "1" {
		t.Errorf("iam.applied has %s rows", n)
	}
	if got := e.query(`select count(*)::text from pg_policy where polrelid = 'app.notes'::regclass`); got != "4" {
		t.Error("the refused apply removed notes' policies")
	}
}

// TestRuntimeUpgrade simulates an older runtime: version 0, a function
// with an older body, a helper missing; groups and memberships exist.
// apply brings the current version back and keeps the data. (The upgrade
// from the released version 1 is policies/upgrade_test.go.)
func TestRuntimeUpgrade(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	fresh := e.query(`select pg_get_functiondef('iam.role_rank(text)'::regprocedure)`)

	e.exec(`update iam.runtime set version = 0`)
	e.exec(`create or replace function iam.role_rank(role_name text) returns integer language sql immutable
		set search_path = pg_catalog, pg_temp as $$ select case role_name when 'member' then 1 when 'owner' then 2 end $$`)
	e.exec(`drop function iam.group_exists(bigint)`)
	e.exec(`insert into iam.groups (name, created_by) values ('home', 'a'), ('work', 'b')`)
	e.exec(`insert into iam.group_members (group_id, user_id, role) select id, created_by, 'owner' from iam.groups`)
	e.exec(`insert into iam.group_members (group_id, user_id, role) select id, 'c', 'member' from iam.groups where name = 'home'`)

	p := e.plan()
	golden(t, "plan-upgrade.txt", text(t, p))
	if p.RuntimeInstalled != 0 {
		t.Errorf("runtime installed: %d", p.RuntimeInstalled)
	}
	r := e.apply(Options{})
	if !r.Applied {
		t.Fatal("apply did not upgrade")
	}
	if got := e.query(`select version::text from iam.runtime`); got != strconv.Itoa(stdlib.Version) {
		t.Errorf("runtime version %s after the upgrade", got)
	}
	// Back, and (an existence oracle) not executable by the runtime roles.
	if got := e.query(`select (to_regprocedure('iam.group_exists(bigint)') is not null and not has_function_privilege('web_user', 'iam.group_exists(bigint)', 'execute'))::text`); got != "true" {
		t.Error("iam.group_exists is not back, or executable by web_user")
	}
	if got := e.query(`select pg_get_functiondef('iam.role_rank(text)'::regprocedure)`); got != fresh {
		t.Errorf("iam.role_rank after the upgrade:\n%s", got)
	}
	if got := e.query(`select string_agg(g.name || ':' || m.user_id || ':' || m.role, ' ' order by g.name, m.user_id) from iam.groups g join iam.group_members m on m.group_id = g.id`); got != "home:a:owner home:c:member work:b:owner" {
		t.Errorf("groups and memberships after the upgrade: %s", got)
	}
	if p := e.plan(); p.HasChanges() {
		t.Errorf("plan after the upgrade:\n%s", text(t, p))
	}
}

// TestLockTimeout: a table held by another transaction makes plan and
// apply fail fast, saying why, and apply changes nothing.
func TestLockTimeout(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	e.files(without(allFiles, "notes.iam"))

	other := e.connect()
	ctx := t.Context()
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `select count(*) from app.todos`); err != nil { // holds ACCESS SHARE until the end
		t.Fatal(err)
	}
	opts := Options{LockTimeout: 300 * time.Millisecond}
	// The error, not a timer, proves apply gave up on lock_timeout (55P03)
	// instead of waiting for the other transaction.
	_, err = Apply(ctx, e.connect(), e.input(), opts)
	var lockErr *LockTimeoutError
	if !errors.As(err, &lockErr) {
		t.Fatalf("apply with app.todos in use: %v, want a lock timeout", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "lock_timeout (300ms) reached while running alter table app.todos") ||
		!strings.Contains(msg, "nothing was changed") || !strings.Contains(msg, "--lock-timeout") {
		t.Errorf("message: %s", msg)
	}
	if got := e.query(`select count(*)::text from pg_policy where polrelid = 'app.notes'::regclass`); got != "4" || appliedRows(e) != "1" {
		t.Error("the apply that timed out changed something")
	}
	if _, err := e.tryPlan(opts); !errors.As(err, &lockErr) {
		t.Errorf("plan with app.todos in use: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Another apply running: the advisory lock.
	if _, err := other.Exec(ctx, `select pg_advisory_lock(hashtext('iamc'))`); err != nil {
		t.Fatal(err)
	}
	_, err = Apply(ctx, e.connect(), e.input(), opts)
	if !errors.As(err, &lockErr) || !strings.Contains(err.Error(), "another iamc apply or build script is running") {
		t.Errorf("apply while another holds the iamc lock: %v", err)
	}
	if _, err := other.Exec(ctx, `select pg_advisory_unlock(hashtext('iamc'))`); err != nil {
		t.Fatal(err)
	}
	if r := e.apply(opts); !r.Applied {
		t.Error("apply after the locks were released did nothing")
	}
}

// TestConcurrentIndexes: --concurrent-indexes builds a missing index
// outside the transaction; an invalid index (a failed concurrent build) is
// rebuilt, by plain apply too.
func TestConcurrentIndexes(t *testing.T) {
	e := newEnv(t, allFiles)
	e.exec(`insert into app.todos (title, owner_id) select 't' || i, gen_random_uuid() from generate_series(1, 5000) i`)
	r := e.apply(Options{ConcurrentIndexes: true})
	if strings.Join(r.Concurrent, " ") != "app.chats_owner_id_iam_idx app.chats_group_id_iam_idx app.notes_owner_id_iam_idx app.todos_owner_id_iam_idx app.todos_group_id_iam_idx" {
		t.Errorf("built concurrently: %q", r.Concurrent)
	}
	for _, c := range r.Changes {
		if c.Object.Kind == "index" && c.Object.Table != "" {
			t.Errorf("the transaction built %s too", c.Object.Name)
		}
	}
	if p := e.plan(); p.HasChanges() || len(p.Drift) > 0 {
		t.Errorf("plan after a concurrent apply:\n%s", text(t, p))
	}

	// An invalid index, as a failed CREATE INDEX CONCURRENTLY leaves.
	e.exec(`update pg_index set indisvalid = false where indexrelid = 'app.todos_owner_id_iam_idx'::regclass`)
	p := e.plan()
	if len(p.Changes) != 1 || p.Changes[0].Action != Replace || p.Changes[0].Object.Name != "app.todos_owner_id_iam_idx" {
		t.Fatalf("plan with an invalid index:\n%s", text(t, p))
	}
	if got := text(t, p); !strings.Contains(got, "~ replace index app.todos_owner_id_iam_idx: valid invalid -> valid  [drift: changed outside iamc; apply reverts it]") {
		t.Errorf("plan:\n%s", got)
	}
	e.apply(Options{})
	if got := e.query(`select indisvalid::text from pg_index where indexrelid = 'app.todos_owner_id_iam_idx'::regclass`); got != "true" {
		t.Error("apply did not rebuild the invalid index")
	}

	e.exec(`drop index app.todos_owner_id_iam_idx`)
	r = e.apply(Options{ConcurrentIndexes: true})
	if strings.Join(r.Concurrent, " ") != "app.todos_owner_id_iam_idx" || r.RecordID == 0 {
		t.Errorf("rebuilt concurrently: %q, record %d", r.Concurrent, r.RecordID)
	}
	if p := e.plan(); p.HasChanges() || len(p.Drift) > 0 {
		t.Errorf("plan after rebuilding:\n%s", text(t, p))
	}
}

// TestMissingTable: a resource whose table does not exist stops plan before
// it runs anything.
func TestMissingTable(t *testing.T) {
	e := newEnv(t, with(allFiles, "x.iam", "resource app.missing {\n  owner column owner_id\n  owner can read\n}\n"))
	_, err := e.tryPlan(Options{})
	var missing *MissingTablesError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "app.missing (") || !strings.Contains(err.Error(), "x.iam:1)") {
		t.Errorf("plan with a missing table: %v", err)
	}
}

// TestStatementError: a statement that fails names itself and its resource.
func TestStatementError(t *testing.T) {
	e := newEnv(t, allFiles)
	e.exec(`alter table app.notes rename column owner_id to author`)
	_, err := Apply(t.Context(), e.connect(), e.input(), Options{})
	var se *StatementError
	if !errors.As(err, &se) || se.Err.Code != "42703" || !strings.Contains(err.Error(), "resource app.notes") ||
		!strings.Contains(err.Error(), "Nothing was changed") {
		t.Errorf("apply with a missing column: %v", err)
	}
	if got := e.query(`select (to_regnamespace('iam') is null)::text`); got != "true" {
		t.Error("the failed apply left schema iam behind")
	}
}

// TestGroupsRemoved: files without groups drop the group index and key of
// a resource (recorded by the last apply), and report no drift for what
// fell out of the build (the group API stays, untouched).
func TestGroupsRemoved(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	e.files(map[string]string{
		"todos.iam": "resource app.todos {\n  owner column owner_id\n  owner can read, create, write, delete\n}\n",
		"notes.iam": notesFile,
	})
	p := e.plan()
	golden(t, "plan-groups-removed.txt", text(t, p))
	if len(p.Drift) != 0 {
		t.Errorf("drift reported:\n%s", text(t, p))
	}
	for _, c := range p.Changes {
		if c.Drift != NoDrift {
			t.Errorf("change marked as drift: %s %s", c.Action, c.Object.Name)
		}
	}
	e.apply(Options{})
	if got := e.query(`select count(*)::text from pg_class where relname in ('todos_group_id_iam_idx', 'chats_group_id_iam_idx', 'chats_owner_id_iam_idx')`); got != "0" {
		t.Errorf("%s group or removed-resource indexes left", got)
	}
	if got := e.query(`select count(*)::text from pg_constraint k join pg_class c on c.oid = k.conrelid
	    where k.confrelid = 'iam.groups'::regclass and c.relnamespace <> 'iam'::regnamespace`); got != "0" {
		t.Errorf("%s group foreign keys left", got)
	}
	if got := e.query(`select (to_regprocedure('app.create_group(text)') is not null)::text`); got != "true" {
		t.Error("the group API was dropped")
	}
	if p := e.plan(); p.HasChanges() || len(p.Drift) != 0 {
		t.Errorf("plan after apply:\n%s", text(t, p))
	}
}

// TestPageByAddedAndRemoved: adding `page by id` replaces the one-column
// owner and group indexes with (column, id) ones and creates the page
// function; removing it drops the function and brings the one-column
// indexes back; no row is touched, and the plan after each apply is clean.
func TestPageByAddedAndRemoved(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	e.exec(`insert into app.todos (title, owner_id) values ('a', gen_random_uuid())`)
	indexes := `select string_agg(c.relname, ',' order by c.relname) from pg_index i join pg_class c on c.oid = i.indexrelid
	    where i.indrelid = 'app.todos'::regclass and c.relname like '%iam_idx'`
	page := `select (to_regprocedure('app.todos_page(bigint, integer, bigint)') is not null)::text`
	if got := e.query(indexes); got != "todos_group_id_iam_idx,todos_owner_id_iam_idx" {
		t.Fatalf("indexes before page by: %s", got)
	}

	paged := strings.Replace(todosFile, "  group column group_id\n", "  group column group_id\n  page by id\n", 1)
	e.files(with(allFiles, "todos.iam", paged))
	e.apply(Options{})
	if got := e.query(indexes); got != "todos_group_id_id_iam_idx,todos_owner_id_id_iam_idx" {
		t.Errorf("indexes with page by: %s", got)
	}
	if got := e.query(page); got != "true" {
		t.Error("no page function after page by")
	}
	if p := e.plan(); p.HasChanges() || len(p.Drift) != 0 {
		t.Errorf("plan after applying page by:\n%s", text(t, p))
	}

	e.files(allFiles)
	p := e.plan()
	if !strings.Contains(text(t, p), "todos_page") {
		t.Errorf("the plan does not drop todos_page:\n%s", text(t, p))
	}
	e.apply(Options{})
	if got := e.query(page); got != "false" {
		t.Error("the page function outlived page by")
	}
	if got := e.query(indexes); got != "todos_group_id_iam_idx,todos_owner_id_iam_idx" {
		t.Errorf("indexes after page by went: %s", got)
	}
	if got := e.query(`select count(*)::text from app.todos`); got != "1" {
		t.Errorf("rows after the changes: %s, want 1", got)
	}
	if p := e.plan(); p.HasChanges() || len(p.Drift) != 0 {
		t.Errorf("plan after removing page by:\n%s", text(t, p))
	}
}
