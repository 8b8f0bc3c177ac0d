package stdlib_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/stdlib"
)

// releasedRuntimes are the runtime versions earlier releases installed;
// testdata/released/vN.sql is the build of policies/ each one made (with
// the schema.sql of its day: each applies over the current one).
var releasedRuntimes = []int32{1, 2, 3}

// TestUpgradeFromReleasedRuntime applies the build of policies/ made by
// each release that installed an older runtime, uses it (rows, a group, a
// member, a chat), then applies the current build over it as a user would
// (psql -f). The upgraded database must keep every row, serve the same
// answers from both sides, and hold exactly the runtime objects of a fresh
// install: nothing left behind, nothing missing, nothing different.
func TestUpgradeFromReleasedRuntime(t *testing.T) {
	s := Server(t)
	current, err := BuildScript(Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range releasedRuntimes {
		if version >= stdlib.Version {
			t.Fatalf("released runtime %d is not older than this build's (%d)", version, stdlib.Version)
		}
		t.Run("from version "+strconv.Itoa(int(version)), func(t *testing.T) {
			upgradeFrom(t, s, version, current)
		})
	}
}

func upgradeFrom(t *testing.T, s *pgtest.Server, version int32, current string) {
	ctx := context.Background()
	released, err := os.ReadFile(fmt.Sprintf("testdata/released/v%d.sql", version))
	if err != nil {
		t.Fatal(err)
	}
	db := NewDatabase(t, fmt.Sprintf("upgrade_v%d", version), "schema.sql")
	CloseWhenDone(t, db)
	if out, err := ApplyScript(ctx, s, db.Name, string(released)); err != nil {
		t.Fatalf("applying the released build: %v\n%s", err, out)
	}
	if got := Scalar[int32](t, db, `select version from iam.runtime`); got != version {
		t.Fatalf("the released build installed runtime version %d, want %d", got, version)
	}

	// Use it as the released version allowed.
	carol := KeycloakUser("carol", "c0c00000-0000-4000-8000-00000000c0c0")
	team := CreateGroup(t, db, Alice, "team")
	AddMember(t, db, Alice, team, BobID, "")
	todos := Requester{T: t, DB: db, Who: Alice, Path: "/todos"}
	if _, err := todos.Exec("POST", `insert into app.todos (title) values ('private'), ('shared')`); err != nil {
		t.Fatal(err)
	}
	if _, err := todos.Exec("PATCH", `update app.todos set group_id = $1 where title = 'shared'`, team); err != nil {
		t.Fatal(err)
	}
	chats := Requester{T: t, DB: db, Who: Alice, Path: "/chats"}
	if _, err := chats.Exec("POST", `insert into app.chats (body, group_id) values ('hello team', $1)`, team); err != nil {
		t.Fatal(err)
	}
	type view struct{ Todos, Chats, Groups []string }
	seen := func(who Person) view {
		t.Helper()
		var v view
		for _, q := range []struct {
			into *[]string
			path string
			sql  string
		}{
			{&v.Todos, "/todos", `select title from app.todos order by id`},
			{&v.Chats, "/chats", `select body from app.chats order by id`},
			{&v.Groups, "/groups", `select name from app.groups order by id`},
		} {
			err := Requester{T: t, DB: db, Who: who, Path: q.path}.Do("GET", func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, q.sql)
				if err != nil {
					return err
				}
				*q.into, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if err != nil {
				t.Fatalf("%s: GET %s: %v", who.Name, q.path, err)
			}
		}
		return v
	}
	before := map[string]view{"alice": seen(Alice), "bob": seen(Bob), "carol": seen(carol)}
	want := map[string]view{
		"alice": {Todos: []string{"private", "shared"}, Chats: []string{"hello team"}, Groups: []string{"team"}},
		"bob":   {Todos: []string{"shared"}, Chats: []string{"hello team"}, Groups: []string{"team"}},
		"carol": {Todos: []string{}, Chats: []string{}, Groups: []string{}},
	}
	if diff := cmp.Diff(want, before); diff != "" {
		t.Fatalf("what each user sees under the released runtime (-want +got):\n%s", diff)
	}
	dataBefore := applicationData(t, db)
	// Version 2 brought the deny list: a block made under it must hold after
	// the upgrade, now enforced by the runtime itself.
	mallory := KeycloakUser("mallory", "3a110000-0000-4000-8000-0000000a1104")
	if version >= 2 {
		db.Exec(t, "select iam.block_subject($1, 'blocked before the upgrade')", mallory.Claims["sub"])
	}

	// Upgrade: the current build, applied over the released one.
	if out, err := ApplyScript(ctx, s, db.Name, current); err != nil {
		t.Fatalf("applying the current build over the released one: %v\n%s", err, out)
	}
	if version >= 2 {
		_, err := Requester{T: t, DB: db, Who: mallory, Path: "/todos"}.Exec("GET", `select id from app.todos`)
		WantSQLError(t, err, "28000", "this user is blocked")
	}
	if got := Scalar[int32](t, db, `select version from iam.runtime`); got != stdlib.Version {
		t.Errorf("runtime version after the upgrade: %d, want %d", got, stdlib.Version)
	}
	// Exactly the steps the released runtime lacked ran: those numbered
	// above its version.
	if got, want := stepsRun(t, db), stepsAfter(int(version)); got != want {
		t.Errorf("steps run by the upgrade from %d: %q, want %q", version, got, want)
	}
	if diff := cmp.Diff(dataBefore, applicationData(t, db)); diff != "" {
		t.Errorf("the upgrade changed data (-before +after):\n%s", diff)
	}
	after := map[string]view{"alice": seen(Alice), "bob": seen(Bob), "carol": seen(carol)}
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("what each user sees after the upgrade (-want +got):\n%s", diff)
	}
	// Both sides still hold for writes: bob posts into the team, carol cannot.
	bobChats := Requester{T: t, DB: db, Who: Bob, Path: "/chats"}
	if _, err := bobChats.Exec("POST", `insert into app.chats (body, group_id) values ('hi', $1)`, team); err != nil {
		t.Errorf("bob posting into his group after the upgrade: %v", err)
	}
	carolChats := Requester{T: t, DB: db, Who: carol, Path: "/chats"}
	_, err = carolChats.Exec("POST", `insert into app.chats (body, group_id) values ('let me in', $1)`, team)
	WantSQLError(t, err, "42501", "group "+strconv.FormatInt(team, 10))

	// Group ids: the released runtime numbered them 1, 2, 3; team keeps its
	// id (the data above is unchanged), and a new group gets a random one
	// (below 2^32 once in four billion draws).
	if team != 1 {
		t.Errorf("the released runtime gave team id %d, want 1 (sequential)", team)
	}
	if next := CreateGroup(t, db, Bob, "after the upgrade"); next < 1<<32 || next >= 1<<53 {
		t.Errorf("a group created after the upgrade has id %d, want a random one in [2^32, 2^53)", next)
	}

	// The upgraded runtime is a fresh install's runtime.
	fresh := NewDatabase(t, fmt.Sprintf("upgrade_fresh_v%d", version), "schema.sql")
	CloseWhenDone(t, fresh)
	if out, err := ApplyScript(ctx, s, fresh.Name, current); err != nil {
		t.Fatalf("applying the current build to a fresh database: %v\n%s", err, out)
	}
	if diff := cmp.Diff(catalogObjects(t, fresh), catalogObjects(t, db)); diff != "" {
		t.Errorf("the upgraded database's objects differ from a fresh install's (-fresh +upgraded):\n%s", diff)
	}
	if got, want := stepsRun(t, fresh), stepsAfter(0); got != want {
		t.Errorf("steps run by a fresh install: %q, want %q", got, want)
	}

	// Applied again, the build runs no step and changes nothing.
	steps := Scalar[string](t, db, `select string_agg(name || ' ' || applied_at, ', ' order by name) from iam.migrations`)
	objects, data := catalogObjects(t, db), applicationData(t, db)
	if out, err := ApplyScript(ctx, s, db.Name, current); err != nil {
		t.Fatalf("applying the current build again: %v\n%s", err, out)
	}
	if got := Scalar[string](t, db, `select string_agg(name || ' ' || applied_at, ', ' order by name) from iam.migrations`); got != steps {
		t.Errorf("applied again, the build ran steps: %s, before %s", got, steps)
	}
	if diff := cmp.Diff(objects, catalogObjects(t, db)); diff != "" {
		t.Errorf("applied again, the build changed objects (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(data, applicationData(t, db)); diff != "" {
		t.Errorf("applied again, the build changed data (-before +after):\n%s", diff)
	}
}

// stepsRun lists the steps iam.migrations says ran in db, by name.
func stepsRun(t *testing.T, db *Database) string {
	t.Helper()
	return Scalar[string](t, db, `select coalesce(string_agg(name, ' ' order by name), '') from iam.migrations`)
}

// stepsAfter lists the steps numbered above a runtime version: those a
// database at that version runs.
func stepsAfter(version int) string {
	var out []string
	for _, m := range stdlib.Migrations {
		if m.Version > version {
			out = append(out, m.Name)
		}
	}
	return strings.Join(out, " ")
}

// TestMigrationStepsRunOnlyWhenOlder: a step runs where the installed
// runtime is older than its number, and only there. Something a step made
// and a DBA dropped stays dropped while the version says the step ran
// (tables are the steps' business, not every build's); set back a
// version, and the steps above it run again, changing nothing that is
// already there: the data stays and the objects are a fresh install's.
func TestMigrationStepsRunOnlyWhenOlder(t *testing.T) {
	ctx := context.Background()
	s := Server(t)
	current, err := BuildScript(Dir)
	if err != nil {
		t.Fatal(err)
	}
	db := NewDatabase(t, "migration_steps", "schema.sql")
	CloseWhenDone(t, db)
	apply := func(what string) {
		t.Helper()
		if out, err := ApplyScript(ctx, s, db.Name, current); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
	}
	apply("a fresh install")
	fresh := catalogObjects(t, db)
	team := CreateGroup(t, db, Alice, "team")
	AddMember(t, db, Alice, team, BobID, "admin")
	data := applicationData(t, db)
	ranAt := func(step stdlib.Migration) string {
		t.Helper()
		return Scalar[string](t, db, `select coalesce((select applied_at::text from iam.migrations where name = $1), 'never')`, step.Name)
	}
	last := stdlib.Migrations[len(stdlib.Migrations)-1]
	before := ranAt(last)

	db.Exec(t, `drop index iam.group_members_user_id_idx`)
	apply("applying again")
	if got := Scalar[bool](t, db, `select to_regclass('iam.group_members_user_id_idx') is null`); !got {
		t.Errorf("a step ran again at the installed version: the index it made (dropped by hand) is back")
	}
	if got := ranAt(last); got != before {
		t.Errorf("step %s ran again at the installed version (applied %s, before %s)", last.Name, got, before)
	}

	// One version back: only the steps above it run.
	db.Exec(t, `update iam.runtime set version = $1`, last.Version-1)
	first := ranAt(stdlib.Migrations[0])
	apply("applying over a version set back by one")
	if got := ranAt(last); got == before {
		t.Errorf("step %s did not run over version %d", last.Name, last.Version-1)
	}
	if got := ranAt(stdlib.Migrations[0]); got != first {
		t.Errorf("step %s ran over version %d", stdlib.Migrations[0].Name, last.Version-1)
	}

	// Back to nothing: every step runs again, the first one too (the index
	// comes back), over tables that have everything.
	db.Exec(t, `update iam.runtime set version = 0`)
	apply("applying over version 0")
	if got := stepsRun(t, db); got != stepsAfter(0) {
		t.Errorf("steps recorded: %q, want %q", got, stepsAfter(0))
	}
	if diff := cmp.Diff(fresh, catalogObjects(t, db)); diff != "" {
		t.Errorf("after every step ran again, the objects differ from a fresh install's (-fresh +now):\n%s", diff)
	}
	if diff := cmp.Diff(data, applicationData(t, db)); diff != "" {
		t.Errorf("running the steps again changed data (-before +after):\n%s", diff)
	}
}

// applicationData is every row of the example's tables and of the group
// tables, as text, read as the superuser.
func applicationData(t *testing.T, db *Database) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"app.todos", "app.chats", "iam.groups", "iam.group_members"} {
		rows, err := db.SU.Query(context.Background(), `select t::text from `+table+` t order by t::text`)
		if err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		out[table], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
	}
	return out
}

// catalogObjects describes what iamc installs, in a form that does not
// depend on the order objects were created in: functions (definition,
// definer, ACL), tables' columns, indexes, constraints (checks, keys),
// policies, triggers, and the privileges of the runtime roles on the
// tables.
func catalogObjects(t *testing.T, db *Database) map[string][]string {
	t.Helper()
	queries := map[string]string{
		"functions": `select p.oid::regprocedure::text || ' definer=' || p.prosecdef || ' acl=' || coalesce(p.proacl::text, '') ||
			E'\n' || pg_get_functiondef(p.oid)
			from pg_proc p where p.pronamespace in ('iam'::regnamespace, 'app'::regnamespace)`,
		"columns": `select table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable ||
			' default=' || coalesce(column_default, '')
			from information_schema.columns where table_schema in ('iam', 'app')`,
		"indexes": `select schemaname || '.' || indexname || ': ' || indexdef from pg_indexes where schemaname in ('iam', 'app')`,
		"constraints": `select c.conrelid::regclass::text || ' ' || c.conname || ': ' || pg_get_constraintdef(c.oid)
			from pg_constraint c where c.connamespace in ('iam'::regnamespace, 'app'::regnamespace)`,
		"policies":   `select schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd || ' ' || roles::text || ' ' || coalesce(qual, '') || ' / ' || coalesce(with_check, '') from pg_policies where schemaname in ('iam', 'app')`,
		"triggers":   `select tgrelid::regclass::text || ' ' || pg_get_triggerdef(oid) from pg_trigger where not tgisinternal`,
		"privileges": `select c.oid::regclass::text || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity || ' forced=' || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '') from pg_class c where c.relnamespace in ('iam'::regnamespace, 'app'::regnamespace) and c.relkind in ('r', 'v', 'S')`,
		"comments": `select d.classoid::regclass::text || ' ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
			from pg_description d where d.classoid in ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_policy'::regclass)
			and pg_describe_object(d.classoid, d.objoid, d.objsubid) ~ ' (iam|app)\.'`,
	}
	out := map[string][]string{}
	for name, sql := range queries {
		rows, err := db.SU.Query(context.Background(), `select x from (`+sql+`) s(x) order by x`)
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		out[name], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
	}
	return out
}

// TestUpgradeSerialGroupIDs: an install whose iam.groups.id is a serial
// (a nextval default and an owned sequence, as a hand-made or pre-release
// install may have it; the released runtimes used an identity, which
// TestUpgradeFromReleasedRuntime covers) is upgraded in place: its groups
// keep their ids, the sequence goes, new ids are random, and the runtime
// objects are a fresh install's.
func TestUpgradeSerialGroupIDs(t *testing.T) {
	ctx := context.Background()
	s := Server(t)
	current, err := BuildScript(Dir)
	if err != nil {
		t.Fatal(err)
	}
	db := NewDatabase(t, "upgrade_serial", "schema.sql")
	CloseWhenDone(t, db)
	db.Exec(t, `create schema iam authorization api_owner`)
	db.Exec(t, `set role api_owner`)
	db.Exec(t, `create table iam.groups (
		id bigserial primary key,
		name text not null check (length(btrim(name)) between 1 and 200),
		token_name text unique,
		created_by text not null,
		created_at timestamptz not null default now())`)
	db.Exec(t, `insert into iam.groups (name, created_by) values ('first', 'u1'), ('second', 'u2')`)
	db.Exec(t, `reset role`)
	if got := Scalar[string](t, db, `select coalesce(pg_get_serial_sequence('iam.groups', 'id'), '')`); got == "" {
		t.Fatal("the serial column has no sequence: the set-up is not what this test is about")
	}

	if out, err := ApplyScript(ctx, s, db.Name, current); err != nil {
		t.Fatalf("applying the current build over a serial iam.groups.id: %v\n%s", err, out)
	}
	if got := Scalar[string](t, db, `select string_agg(id || ' ' || name, ', ' order by id) from iam.groups`); got != "1 first, 2 second" {
		t.Errorf("groups after the upgrade: %s, want 1 first, 2 second", got)
	}
	// The serial's sequence went with its default (iam.audit_log's identity
	// has one of its own).
	if got := Scalar[int64](t, db, `select count(*) from pg_class s
	    where s.relkind = 'S' and s.relnamespace = 'iam'::regnamespace
	      and not exists (select from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = s.oid
	                      and d.refobjid = 'iam.audit_log'::regclass and d.deptype = 'i')`); got != 0 {
		t.Errorf("schema iam still holds %d sequence(s) besides iam.audit_log's", got)
	}
	if next := CreateGroup(t, db, Alice, "after the upgrade"); next < 1<<32 || next >= 1<<53 {
		t.Errorf("a group created after the upgrade has id %d, want a random one in [2^32, 2^53)", next)
	}
	fresh := NewDatabase(t, "upgrade_serial_fresh", "schema.sql")
	CloseWhenDone(t, fresh)
	if out, err := ApplyScript(ctx, s, fresh.Name, current); err != nil {
		t.Fatalf("applying the current build to a fresh database: %v\n%s", err, out)
	}
	if diff := cmp.Diff(catalogObjects(t, fresh), catalogObjects(t, db)); diff != "" {
		t.Errorf("the upgraded database's objects differ from a fresh install's (-fresh +upgraded):\n%s", diff)
	}
}
