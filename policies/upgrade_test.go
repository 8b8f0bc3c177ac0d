package policies_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/stdlib"
)

// releasedRuntimes are the runtime versions earlier releases installed;
// testdata/released/vN.sql is the build of policies/ each one made.
var releasedRuntimes = []int32{1, 2, 3}

// TestUpgradeFromReleasedRuntime applies the build of policies/ made by
// each release that installed an older runtime, uses it (rows, a group, a
// member, a chat), then applies the current build over it as a user would
// (psql -f). The upgraded database must keep every row, serve the same
// answers from both sides, and hold exactly the runtime objects of a fresh
// install: nothing left behind, nothing missing, nothing different.
func TestUpgradeFromReleasedRuntime(t *testing.T) {
	s := server(t)
	current, err := buildScript(".")
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
	db := newDatabase(t, fmt.Sprintf("upgrade_v%d", version), "schema.sql")
	closeWhenDone(t, db)
	if out, err := applyScript(ctx, s, db.name, string(released)); err != nil {
		t.Fatalf("applying the released build: %v\n%s", err, out)
	}
	if got := scalar[int32](t, db, `select version from iam.runtime`); got != version {
		t.Fatalf("the released build installed runtime version %d, want %d", got, version)
	}

	// Use it as the released version allowed.
	carol := keycloakUser("carol", "c0c00000-0000-4000-8000-00000000c0c0")
	team := createGroup(t, db, alice, "team")
	addMember(t, db, alice, team, bobID, "")
	todos := requester{t: t, db: db, who: alice, path: "/todos"}
	if _, err := todos.exec("POST", `insert into app.todos (title) values ('private'), ('shared')`); err != nil {
		t.Fatal(err)
	}
	if _, err := todos.exec("PATCH", `update app.todos set group_id = $1 where title = 'shared'`, team); err != nil {
		t.Fatal(err)
	}
	chats := requester{t: t, db: db, who: alice, path: "/chats"}
	if _, err := chats.exec("POST", `insert into app.chats (body, group_id) values ('hello team', $1)`, team); err != nil {
		t.Fatal(err)
	}
	type view struct{ Todos, Chats, Groups []string }
	seen := func(who person) view {
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
			err := requester{t: t, db: db, who: who, path: q.path}.do("GET", func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, q.sql)
				if err != nil {
					return err
				}
				*q.into, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if err != nil {
				t.Fatalf("%s: GET %s: %v", who.name, q.path, err)
			}
		}
		return v
	}
	before := map[string]view{"alice": seen(alice), "bob": seen(bob), "carol": seen(carol)}
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
	mallory := keycloakUser("mallory", "3a110000-0000-4000-8000-0000000a1104")
	if version >= 2 {
		db.exec(t, "select iam.block_subject($1, 'blocked before the upgrade')", mallory.claims["sub"])
	}

	// Upgrade: the current build, applied over the released one.
	if out, err := applyScript(ctx, s, db.name, current); err != nil {
		t.Fatalf("applying the current build over the released one: %v\n%s", err, out)
	}
	if version >= 2 {
		_, err := requester{t: t, db: db, who: mallory, path: "/todos"}.exec("GET", `select id from app.todos`)
		wantSQLError(t, err, "28000", "this user is blocked")
	}
	if got := scalar[int32](t, db, `select version from iam.runtime`); got != stdlib.Version {
		t.Errorf("runtime version after the upgrade: %d, want %d", got, stdlib.Version)
	}
	if diff := cmp.Diff(dataBefore, applicationData(t, db)); diff != "" {
		t.Errorf("the upgrade changed data (-before +after):\n%s", diff)
	}
	after := map[string]view{"alice": seen(alice), "bob": seen(bob), "carol": seen(carol)}
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("what each user sees after the upgrade (-want +got):\n%s", diff)
	}
	// Both sides still hold for writes: bob posts into the team, carol cannot.
	bobChats := requester{t: t, db: db, who: bob, path: "/chats"}
	if _, err := bobChats.exec("POST", `insert into app.chats (body, group_id) values ('hi', $1)`, team); err != nil {
		t.Errorf("bob posting into his group after the upgrade: %v", err)
	}
	carolChats := requester{t: t, db: db, who: carol, path: "/chats"}
	_, err = carolChats.exec("POST", `insert into app.chats (body, group_id) values ('let me in', $1)`, team)
	wantSQLError(t, err, "42501", "group "+strconv.FormatInt(team, 10))

	// Group ids: the released runtime numbered them 1, 2, 3; team keeps its
	// id (the data above is unchanged), and a new group gets a random one
	// (below 2^32 once in four billion draws).
	if team != 1 {
		t.Errorf("the released runtime gave team id %d, want 1 (sequential)", team)
	}
	if next := createGroup(t, db, bob, "after the upgrade"); next < 1<<32 || next >= 1<<53 {
		t.Errorf("a group created after the upgrade has id %d, want a random one in [2^32, 2^53)", next)
	}

	// The upgraded runtime is a fresh install's runtime.
	fresh := newDatabase(t, fmt.Sprintf("upgrade_fresh_v%d", version), "schema.sql")
	closeWhenDone(t, fresh)
	if out, err := applyScript(ctx, s, fresh.name, current); err != nil {
		t.Fatalf("applying the current build to a fresh database: %v\n%s", err, out)
	}
	if diff := cmp.Diff(catalogObjects(t, fresh), catalogObjects(t, db)); diff != "" {
		t.Errorf("the upgraded database's objects differ from a fresh install's (-fresh +upgraded):\n%s", diff)
	}
}

// applicationData is every row of the example's tables and of the group
// tables, as text, read as the superuser.
func applicationData(t *testing.T, db *database) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"app.todos", "app.chats", "iam.groups", "iam.group_members"} {
		rows, err := db.su.Query(context.Background(), `select t::text from `+table+` t order by t::text`)
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
// definer, ACL), tables' columns, indexes, policies, triggers, and the
// privileges of the runtime roles on the tables.
func catalogObjects(t *testing.T, db *database) map[string][]string {
	t.Helper()
	queries := map[string]string{
		"functions": `select p.oid::regprocedure::text || ' definer=' || p.prosecdef || ' acl=' || coalesce(p.proacl::text, '') ||
			E'\n' || pg_get_functiondef(p.oid)
			from pg_proc p where p.pronamespace in ('iam'::regnamespace, 'app'::regnamespace)`,
		"columns": `select table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable ||
			' default=' || coalesce(column_default, '')
			from information_schema.columns where table_schema in ('iam', 'app')`,
		"indexes":    `select schemaname || '.' || indexname || ': ' || indexdef from pg_indexes where schemaname in ('iam', 'app')`,
		"policies":   `select schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd || ' ' || roles::text || ' ' || coalesce(qual, '') || ' / ' || coalesce(with_check, '') from pg_policies where schemaname in ('iam', 'app')`,
		"triggers":   `select tgrelid::regclass::text || ' ' || pg_get_triggerdef(oid) from pg_trigger where not tgisinternal`,
		"privileges": `select c.oid::regclass::text || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity || ' forced=' || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '') from pg_class c where c.relnamespace in ('iam'::regnamespace, 'app'::regnamespace) and c.relkind in ('r', 'v', 'S')`,
		"comments": `select d.classoid::regclass::text || ' ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
			from pg_description d where d.classoid in ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_policy'::regclass)
			and pg_describe_object(d.classoid, d.objoid, d.objsubid) ~ ' (iam|app)\.'`,
	}
	out := map[string][]string{}
	for name, sql := range queries {
		rows, err := db.su.Query(context.Background(), `select x from (`+sql+`) s(x) order by x`)
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
	s := server(t)
	current, err := buildScript(".")
	if err != nil {
		t.Fatal(err)
	}
	db := newDatabase(t, "upgrade_serial", "schema.sql")
	closeWhenDone(t, db)
	db.exec(t, `create schema iam authorization api_owner`)
	db.exec(t, `set role api_owner`)
	db.exec(t, `create table iam.groups (
		id bigserial primary key,
		name text not null check (length(btrim(name)) between 1 and 200),
		token_name text unique,
		created_by text not null,
		created_at timestamptz not null default now())`)
	db.exec(t, `insert into iam.groups (name, created_by) values ('first', 'u1'), ('second', 'u2')`)
	db.exec(t, `reset role`)
	if got := scalar[string](t, db, `select coalesce(pg_get_serial_sequence('iam.groups', 'id'), '')`); got == "" {
		t.Fatal("the serial column has no sequence: the set-up is not what this test is about")
	}

	if out, err := applyScript(ctx, s, db.name, current); err != nil {
		t.Fatalf("applying the current build over a serial iam.groups.id: %v\n%s", err, out)
	}
	if got := scalar[string](t, db, `select string_agg(id || ' ' || name, ', ' order by id) from iam.groups`); got != "1 first, 2 second" {
		t.Errorf("groups after the upgrade: %s, want 1 first, 2 second", got)
	}
	if got := scalar[int64](t, db, `select count(*) from pg_class where relkind = 'S' and relnamespace = 'iam'::regnamespace`); got != 0 {
		t.Errorf("schema iam still holds %d sequence(s)", got)
	}
	if next := createGroup(t, db, alice, "after the upgrade"); next < 1<<32 || next >= 1<<53 {
		t.Errorf("a group created after the upgrade has id %d, want a random one in [2^32, 2^53)", next)
	}
	fresh := newDatabase(t, "upgrade_serial_fresh", "schema.sql")
	closeWhenDone(t, fresh)
	if out, err := applyScript(ctx, s, fresh.name, current); err != nil {
		t.Fatalf("applying the current build to a fresh database: %v\n%s", err, out)
	}
	if diff := cmp.Diff(catalogObjects(t, fresh), catalogObjects(t, db)); diff != "" {
		t.Errorf("the upgraded database's objects differ from a fresh install's (-fresh +upgraded):\n%s", diff)
	}
}

// closeWhenDone closes the databases' connections when the test ends: the
// shared cluster allows 50 connections, and each database of a test keeps
// two open until the package's tests end otherwise.
func closeWhenDone(t *testing.T, dbs ...*database) {
	t.Cleanup(func() {
		for _, d := range dbs {
			_ = d.su.Close(context.Background())
			_ = d.api.Close(context.Background())
		}
	})
}
