package lint_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/lint"
)

// databases numbers the cases' databases.
var databases struct {
	sync.Mutex
	next int
}

// The tests share exampletest's cluster, with the roles of the example
// deployment (policies/roles.sql); every case gets its own database.
func TestMain(m *testing.M) { os.Exit(exampletest.Main(m)) }

func server(t testing.TB) *pgtest.Server {
	t.Helper()
	return exampletest.Server(t)
}

// newDB creates a fresh database and runs setup in it as the superuser.
func newDB(t *testing.T, setup string) string {
	t.Helper()
	s := server(t)
	databases.Lock()
	databases.next++
	name := fmt.Sprintf("lint_%d", databases.next)
	databases.Unlock()
	if err := s.CreateDatabase(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	exec(t, name, setup)
	return name
}

func exec(t *testing.T, db, sql string) {
	t.Helper()
	if err := server(t).Exec(t.Context(), db, sql); err != nil {
		t.Fatalf("%v\nSQL:\n%s", err, sql)
	}
}

// run lints db, connected as user.
func run(t *testing.T, db, user string, cfg lint.Config) *lint.Report {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), server(t).URL(db, user))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rep, err := lint.Run(t.Context(), conn, cfg)
	if err != nil {
		t.Fatalf("lint.Run: %v", err)
	}
	return rep
}

func find(rep *lint.Report, rule, object string) *lint.Finding {
	for i, f := range rep.Findings {
		if f.Rule == rule && f.Object == object {
			return &rep.Findings[i]
		}
	}
	return nil
}

func dump(rep *lint.Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		b.WriteString("  " + f.String() + "\n")
	}
	if b.Len() == 0 {
		return "  (no findings)\n"
	}
	return b.String()
}

// An application schema like the example's: owned by api_owner, usable by
// both runtime roles.
const appSchema = `
create schema app authorization api_owner;
grant usage on schema app to web_user, web_anon;
`

// Each rule fires on what setup creates, with the level and message
// wanted, and stops firing once fix is applied.
func TestRules(t *testing.T) {
	cases := []struct {
		name    string
		setup   string
		fix     string
		rule    string
		object  string
		level   lint.Level
		message string // a part of the message
		hint    string // a part of the remediation
	}{
		{
			name: "definer without search_path",
			setup: appSchema + `
create function app.whoami() returns text language sql security definer as 'select current_user::text';
revoke execute on function app.whoami() from public;`,
			fix:    `alter function app.whoami() set search_path = pg_catalog, pg_temp;`,
			rule:   "IAM001",
			object: "app.whoami()",
			level:  lint.Error, message: "SECURITY DEFINER function runs as postgres",
			hint: "alter function app.whoami() set search_path = pg_catalog, pg_temp;",
		},
		{
			name: "definer procedure without search_path",
			setup: appSchema + `
create procedure app.cleanup(days int) language sql security definer as 'select 1';`,
			fix:    `alter procedure app.cleanup(int) set search_path to pg_catalog;`,
			rule:   "IAM001",
			object: "app.cleanup(integer)",
			level:  lint.Error, message: "SECURITY DEFINER procedure",
			hint: "alter procedure app.cleanup(integer) set search_path",
		},
		{
			name: "definer executable by public (the default)",
			setup: appSchema + `
create function app.delete_everything(id uuid) returns boolean
    language sql security definer set search_path = pg_catalog, pg_temp as 'select true';`,
			fix:    `revoke execute on function app.delete_everything(uuid) from public;`,
			rule:   "IAM002",
			object: "app.delete_everything(uuid)",
			level:  lint.Error, message: "executable by PUBLIC: every role, anonymous included, runs it as postgres",
			hint: "revoke execute on function app.delete_everything(uuid) from public;",
		},
		{
			name: "definer executable by public, granted back explicitly",
			setup: appSchema + `
create function app.f() returns int language sql security definer set search_path = '' as 'select 1';
revoke execute on function app.f() from public;
grant execute on function app.f() to public;`,
			fix:    `revoke execute on function app.f() from public; grant execute on function app.f() to web_user;`,
			rule:   "IAM002",
			object: "app.f()",
			level:  lint.Error,
		},
		{
			name: "RLS not forced, owner not a superuser, policies exist",
			setup: appSchema + `
create table app.notes (id int, owner_id uuid);
alter table app.notes owner to api_owner;
alter table app.notes enable row level security;
create policy mine on app.notes for select to web_user using (owner_id = (select current_setting('app.uid')::uuid));`,
			fix:    `alter table app.notes force row level security;`,
			rule:   "IAM003",
			object: "app.notes",
			level:  lint.Warning, message: "the owner api_owner, and its views and SECURITY DEFINER functions, skip the table's 1 policy",
			hint: "alter table app.notes force row level security;",
		},
		{
			name: "RLS not forced, a runtime role can become the owner",
			setup: appSchema + `
create role lint_owner_member;
grant lint_owner_member to web_user;
create table app.secrets (id int);
alter table app.secrets owner to lint_owner_member;
alter table app.secrets enable row level security;`,
			fix:    `revoke lint_owner_member from web_user;`,
			rule:   "IAM003",
			object: "app.secrets",
			level:  lint.Error, message: "web_user can become its owner lint_owner_member",
			hint: "revoke lint_owner_member from web_user;",
		},
		{
			name: "RLS not forced, a runtime role owns the table",
			setup: appSchema + `
create role lint_owner_anon;
grant lint_owner_anon to web_anon;
create table app.owned (id int);
alter table app.owned owner to lint_owner_anon;
alter table app.owned enable row level security;`,
			fix:    `alter table app.owned force row level security;`,
			rule:   "IAM003",
			object: "app.owned",
			level:  lint.Error, message: "web_anon can become its owner lint_owner_anon",
		},
		{
			name: "policy calls a volatile PL/pgSQL function per row",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid);
alter table app.todos enable row level security;
create function app.me() returns uuid language plpgsql as $$ begin return current_setting('app.uid')::uuid; end $$;
create policy x on app.todos for select to web_user using (owner_id = app.me());`,
			fix: `drop policy x on app.todos;
create policy x on app.todos for select to web_user using (owner_id = (select app.me()));`,
			rule:   "IAM004",
			object: `app.todos policy "x"`,
			level:  lint.Warning, message: "calls app.me() (plpgsql, volatile) for every row",
			hint: "wrap it as (select app.me()) or make it an indexable comparison",
		},
		{
			name: "policy passes a column to a PL/pgSQL function",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid);
alter table app.todos enable row level security;
create function app.is_mine(uuid) returns boolean language plpgsql stable
    as $$ begin return $1 = current_setting('app.uid')::uuid; end $$;
create policy "mine, all of them" on app.todos for all to web_user
    using (id > 0 and (select app.is_mine(owner_id)))
    with check (app.is_mine(owner_id));`,
			fix: `create or replace function app.is_mine(uuid) returns boolean language sql stable
    as $$ select $1 = current_setting('app.uid')::uuid $$;`,
			rule:   "IAM004",
			object: `app.todos policy "mine, all of them"`,
			level:  lint.Warning, message: "calls app.is_mine(uuid) (plpgsql, stable) for every row",
			hint: "it takes a column of the row",
		},
		{
			name: "policy calls a non-inlinable SQL function (SET search_path, SECURITY DEFINER) per row",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid);
alter table app.todos enable row level security;
create function app.uid() returns uuid language sql stable security definer set search_path = pg_catalog
    as $$ select current_setting('app.uid')::uuid $$;
create policy own on app.todos for delete to web_user using (owner_id = app.uid() or owner_id is null);`,
			fix:    `alter policy own on app.todos using (owner_id = (select app.uid()) or owner_id is null);`,
			rule:   "IAM004",
			object: `app.todos policy "own"`,
			level:  lint.Warning, message: "calls app.uid() (sql, stable, security definer, SET search_path) for every row",
		},
		{
			name: "policy calls a volatile built-in per row",
			setup: appSchema + `
create table app.sample (id int);
alter table app.sample enable row level security;
create policy half on app.sample for select to web_anon using (random() < 0.5);`,
			fix:    `alter policy half on app.sample using ((select random()) < 0.5);`,
			rule:   "IAM004",
			object: `app.sample policy "half"`,
			level:  lint.Warning, message: "calls random() (internal, volatile) for every row",
		},
		{
			name: "update policy using (true) for a role that can update",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid);
alter table app.todos enable row level security;
alter table app.todos force row level security;
grant select, update on app.todos to web_user;
create policy "anyone edits" on app.todos for update to web_user using (true);`,
			fix:    `revoke update on app.todos from web_user;`,
			rule:   "IAM005",
			object: `app.todos policy "anyone edits"`,
			level:  lint.Error, message: "web_user may update any row: the policy is using (true) and web_user holds the update privilege",
			hint: "revoke update on table app.todos from web_user;",
		},
		{
			name: "policy for PUBLIC, all commands, true",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid);
alter table app.todos enable row level security;
grant select, insert, update, delete on app.todos to web_user;
create policy open on app.todos using (true) with check (true);`,
			fix: `drop policy open on app.todos;
create policy open on app.todos for select using (true);`,
			rule:   "IAM005",
			object: `app.todos policy "open"`,
			level:  lint.Error, message: "web_user may insert, update and delete any row: the policy is using (true) with check (true)",
		},
		{
			name: "insert policy with check (true), insert granted through PUBLIC",
			setup: appSchema + `
create table app.guestbook (id int, author uuid);
alter table app.guestbook enable row level security;
grant insert on app.guestbook to public;
create policy sign on app.guestbook for insert to web_user with check (true);`,
			fix:    `alter policy sign on app.guestbook with check (author = (select current_setting('app.uid')::uuid));`,
			rule:   "IAM005",
			object: `app.guestbook policy "sign"`,
			level:  lint.Error, message: "web_user may insert any row: the policy is with check (true)",
		},
		{
			name: "anonymous can read a table with RLS",
			setup: appSchema + `
create table app.posts (id int);
alter table app.posts enable row level security;
alter table app.posts force row level security;
grant select on app.posts to web_anon;`,
			fix:    `revoke select on app.posts from web_anon;`,
			rule:   "IAM006",
			object: "app.posts",
			level:  lint.Info, message: "web_anon can read this table; row-level security decides which rows",
			hint: "revoke select on table app.posts from web_anon;",
		},
		{
			name: "anonymous can read a table without RLS, through PUBLIC",
			setup: appSchema + `
create table app.prices (id int);
grant select on app.prices to public;`,
			fix:    `revoke select on app.prices from public;`,
			rule:   "IAM006",
			object: "app.prices",
			level:  lint.Warning, message: "web_anon can read every row of this table (granted to PUBLIC): row-level security is off",
			hint: "revoke select on table app.prices from public, web_anon;",
		},
		{
			name: "anonymous can read a view (owner's rights) through one column",
			setup: appSchema + `
create table app.users (id int, email text);
create view app.user_ids as select id from app.users;
grant select (id) on app.user_ids to web_anon;`,
			fix:    `revoke select (id) on app.user_ids from web_anon;`,
			rule:   "IAM006",
			object: "app.user_ids",
			level:  lint.Warning, message: "web_anon can read this view, which reads its tables as its owner",
		},
		{
			name: "definer helper outside the exposed schemas executable by the authenticated role",
			setup: `
create schema private;
create function private.group_exists(gid bigint) returns boolean
    language sql stable security definer set search_path = pg_catalog, pg_temp as 'select gid > 0';
revoke execute on function private.group_exists(bigint) from public;
grant usage on schema private to web_user;
grant execute on function private.group_exists(bigint) to web_user;`,
			fix:    `revoke execute on function private.group_exists(bigint) from web_user;`,
			rule:   "IAM008",
			object: "private.group_exists(bigint)",
			level:  lint.Warning, message: "SECURITY DEFINER function outside the exposed schemas is executable by web_user: any RPC can call it with any arguments, with postgres's rights",
			hint: "revoke execute on function private.group_exists(bigint) from web_user;",
		},
		{
			name: "definer helper executable through a role both runtime roles belong to, reviewed and marked",
			setup: `
create schema private;
create role iamc_lint_callers;
grant iamc_lint_callers to web_user, web_anon;
create procedure private.touch() language sql security definer set search_path = '' as 'select 1';
revoke execute on procedure private.touch() from public;
grant execute on procedure private.touch() to iamc_lint_callers;`,
			fix:    `comment on procedure private.touch() is '[runtime-callable] touches nothing of anyone''s';`,
			rule:   "IAM008",
			object: "private.touch()",
			level:  lint.Warning, message: "SECURITY DEFINER procedure outside the exposed schemas is executable by web_anon and web_user",
			hint: "revoke execute on procedure private.touch() from iamc_lint_callers;",
		},
		{
			name: "table without RLS the authenticated role can write",
			setup: appSchema + `
create table app.orders (id int, owner_id uuid);
grant select, insert, update, delete on app.orders to web_user;`,
			fix: `alter table app.orders enable row level security;
alter table app.orders force row level security;`,
			rule:   "IAM007",
			object: "app.orders",
			level:  lint.Error, message: "row-level security is disabled and web_user can select, insert, update and delete",
			hint: "alter table app.orders enable row level security;",
		},
		{
			name: "table without RLS, granted to PUBLIC, quoted names",
			setup: `
create schema "Weird Schema";
create table "Weird Schema"."to-dos" (id int);
grant update (id) on "Weird Schema"."to-dos" to public;`,
			fix:    `revoke update (id) on "Weird Schema"."to-dos" from public;`,
			rule:   "IAM007",
			object: `"Weird Schema"."to-dos"`,
			level:  lint.Error, message: "web_user can update; web_anon can update; PUBLIC can update",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t, c.setup)
			cfg := lint.DefaultConfig()

			rep := run(t, db, "postgres", cfg)
			f := find(rep, c.rule, c.object)
			if f == nil {
				t.Fatalf("%s did not fire on %s; findings:\n%s", c.rule, c.object, dump(rep))
			}
			if f.Level != c.level {
				t.Errorf("level = %s, want %s: %s", f.Level, c.level, f)
			}
			if !strings.Contains(f.Message, c.message) {
				t.Errorf("message %q does not contain %q", f.Message, c.message)
			}
			if !strings.Contains(f.Remediation, c.hint) {
				t.Errorf("remediation %q does not contain %q", f.Remediation, c.hint)
			}

			// The remediation is what fixes it.
			exec(t, db, c.fix)
			rep = run(t, db, "postgres", cfg)
			if f := find(rep, c.rule, c.object); f != nil {
				t.Errorf("%s still fires after the fix:\n  %s", c.rule, f)
			}
		})
	}
}

// What the rules deliberately leave alone.
func TestRulesQuiet(t *testing.T) {
	cases := []struct {
		name   string
		setup  string
		rule   string
		object string
	}{
		{
			name: "select policy using (true) on a table the role can also write (iamc's authenticated can read)",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid);
alter table app.todos enable row level security;
alter table app.todos force row level security;
grant select, update on app.todos to web_user;
create policy "everyone reads" on app.todos for select to web_user using (true);
create policy "owner writes" on app.todos for update to web_user using (owner_id = (select current_setting('app.uid')::uuid));`,
			rule: "IAM005", object: `app.todos policy "everyone reads"`,
		},
		{
			name: "update policy using (true) for a role without the update privilege",
			setup: appSchema + `
create table app.todos (id int);
alter table app.todos enable row level security;
grant select on app.todos to web_user;
create policy u on app.todos for update to web_user using (true);`,
			rule: "IAM005", object: `app.todos policy "u"`,
		},
		{
			name: "restrictive policy with true",
			setup: appSchema + `
create table app.todos (id int);
alter table app.todos enable row level security;
grant select, update on app.todos to web_user;
create policy r on app.todos as restrictive for update to web_user using (true);`,
			rule: "IAM005", object: `app.todos policy "r"`,
		},
		{
			name: "stable inlinable SQL function, and built-ins, per row",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid, title text);
alter table app.todos enable row level security;
create function app.uid() returns uuid language sql stable as $$ select current_setting('app.uid')::uuid $$;
create policy p on app.todos for select to web_user
    using (owner_id = app.uid() and lower(title) <> '' and current_setting('app.x', true) is null);`,
			rule: "IAM004", object: `app.todos policy "p"`,
		},
		{
			name: "volatile function in an uncorrelated sub-select with FROM",
			setup: appSchema + `
create table app.todos (id int, owner_id uuid);
create table app.members (user_id uuid);
alter table app.todos enable row level security;
create function app.me() returns uuid language plpgsql as $$ begin return null; end $$;
create policy p on app.todos for select to web_user
    using (owner_id in (select m.user_id from app.members m where m.user_id = app.me()));`,
			rule: "IAM004", object: `app.todos policy "p"`,
		},
		{
			name: "RLS not forced on a superuser's table with policies",
			setup: appSchema + `
create table app.todos (id int);
alter table app.todos enable row level security;
create policy p on app.todos for select to web_user using (true);`,
			rule: "IAM003", object: "app.todos",
		},
		{
			name: "RLS enabled without policies, owner not a runtime role",
			setup: appSchema + `
create table app.locked (id int);
alter table app.locked owner to api_owner;
alter table app.locked enable row level security;`,
			rule: "IAM003", object: "app.locked",
		},
		{
			name: "table without RLS and without grants to the runtime roles",
			setup: appSchema + `
create table app.internal (id int);
grant select on app.internal to api_owner;`,
			rule: "IAM007", object: "app.internal",
		},
		{
			name:  "definer function of an extension (dblink_connect_u has no search_path)",
			setup: appSchema + `create extension dblink schema app;`,
			rule:  "IAM001", object: "app.dblink_connect_u(text)",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t, c.setup)
			rep := run(t, db, "postgres", lint.DefaultConfig())
			t.Logf("findings:\n%s", dump(rep))
			if f := find(rep, c.rule, c.object); f != nil {
				t.Errorf("%s fired: %s", c.rule, f)
			}
		})
	}
}

// --schemas limits the exposure rules to the schemas PostgREST serves.
func TestExposedSchemas(t *testing.T) {
	db := newDB(t, appSchema+`
create schema private;
create table private.audit (id int);
grant select on private.audit to web_user, web_anon;`)
	cfg := lint.DefaultConfig()
	rep := run(t, db, "postgres", cfg)
	for _, rule := range []string{"IAM006", "IAM007"} {
		if find(rep, rule, "private.audit") == nil {
			t.Errorf("with every schema exposed, %s did not fire on private.audit:\n%s", rule, dump(rep))
		}
	}
	cfg.Schemas = []string{"app"}
	rep = run(t, db, "postgres", cfg)
	if len(rep.Findings) != 0 {
		t.Errorf("with --schemas app, want no findings, got:\n%s", dump(rep))
	}

	cfg.Schemas = []string{"app", "nope"}
	conn, err := pgx.Connect(t.Context(), server(t).URL(db, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	_, err = lint.Run(t.Context(), conn, cfg)
	var ce *lint.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "schema nope does not exist") {
		t.Errorf("unknown schema: err = %v, want a ConfigError naming it", err)
	}
}

// IAM008 looks outside the served schemas: an RPC of schema app executable
// by web_user is the API, the same function in schema private is a helper
// any RPC can reach. Without --schemas every schema is checked. A definer
// PUBLIC may execute is IAM002's, reported once.
func TestDefinerHelpersOutsideTheAPI(t *testing.T) {
	db := newDB(t, appSchema+`
create schema private;
grant usage on schema private to web_user;
create function app.rpc(gid bigint) returns boolean
    language sql stable security definer set search_path = pg_catalog, pg_temp as 'select gid > 0';
create function private.helper(gid bigint) returns boolean
    language sql stable security definer set search_path = pg_catalog, pg_temp as 'select gid > 0';
create function private.everyones(gid bigint) returns boolean
    language sql stable security definer set search_path = pg_catalog, pg_temp as 'select gid > 0';
revoke execute on function app.rpc(bigint), private.helper(bigint) from public;
grant execute on function app.rpc(bigint), private.helper(bigint) to web_user;`)
	cfg := lint.DefaultConfig()
	rep := run(t, db, "postgres", cfg)
	for _, fn := range []string{"app.rpc(bigint)", "private.helper(bigint)"} {
		if find(rep, "IAM008", fn) == nil {
			t.Errorf("without --schemas, IAM008 did not fire on %s:\n%s", fn, dump(rep))
		}
	}
	cfg.Schemas = []string{"app"}
	rep = run(t, db, "postgres", cfg)
	if find(rep, "IAM008", "private.helper(bigint)") == nil {
		t.Errorf("with --schemas app, IAM008 did not fire on private.helper(bigint):\n%s", dump(rep))
	}
	if f := find(rep, "IAM008", "app.rpc(bigint)"); f != nil {
		t.Errorf("with --schemas app, IAM008 fired on the served RPC: %s", f)
	}
	if find(rep, "IAM002", "private.everyones(bigint)") == nil {
		t.Errorf("IAM002 did not fire on private.everyones(bigint):\n%s", dump(rep))
	}
	if f := find(rep, "IAM008", "private.everyones(bigint)"); f != nil {
		t.Errorf("IAM008 repeats IAM002: %s", f)
	}
}

// Other runtime role names, and roles that do not exist.
func TestRoleNames(t *testing.T) {
	db := newDB(t, `
create role lint_anon nologin;
create schema api;
create table api.t (id int);
grant usage on schema api to lint_anon;
grant select on api.t to lint_anon;`)
	cfg := lint.Config{Authenticated: "lint_no_such_user", Anonymous: "lint_anon"}
	rep := run(t, db, "postgres", cfg)
	if f := find(rep, "IAM007", "api.t"); f == nil || !strings.Contains(f.Message, "lint_anon can select") {
		t.Errorf("IAM007 for lint_anon: got %v\n%s", f, dump(rep))
	}
	if f := find(rep, "IAM006", "api.t"); f == nil {
		t.Errorf("IAM006 for lint_anon did not fire:\n%s", dump(rep))
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "lint_no_such_user does not exist") {
		t.Errorf("notes = %q, want one about lint_no_such_user", rep.Notes)
	}
}
