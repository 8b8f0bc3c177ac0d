package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/lang"
)

// The example: policies/ (roles.sql, schema.sql and the .iam files).
const exampleDir = "../policies"

// catalogServer starts a cluster with the example's roles and two template
// databases: "unbuilt" (policies/schema.sql) and "example" (the same with
// the SQL of iamc build applied).
func catalogServer(t *testing.T) *pgtest.Server {
	t.Helper()
	ctx := context.Background()
	s := pgtest.New(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(exampleDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := s.Exec(ctx, "postgres", read("roles.sql")); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"unbuilt", "example"} {
		if err := s.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		if err := s.Exec(ctx, db, read("schema.sql")); err != nil {
			t.Fatal(err)
		}
	}
	out := compile(t, exampleDir)
	script := filepath.Join(t.TempDir(), "iam.sql")
	if err := os.WriteFile(script, []byte(out.Script()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Psql(ctx, "example", "-q", "-f", script); err != nil {
		t.Fatal(err)
	}
	return s
}

func compile(t *testing.T, dir string) *compiler.Output {
	t.Helper()
	out, err := compiler.Compile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newDatabase creates a database (from template, or empty), runs setup in
// it as postgres, and connects to it.
func newDatabase(t *testing.T, s *pgtest.Server, name, template, setup string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	create := "create database " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		create += " template " + pgx.Identifier{template}.Sanitize()
	}
	if err := s.Exec(ctx, "postgres", create); err != nil {
		t.Fatal(err)
	}
	if setup != "" {
		if err := s.Exec(ctx, name, setup); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, s.URL(name, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// check runs CheckCatalog in a read-only transaction, as iamc check does,
// and returns each finding as printed.
func check(t *testing.T, conn *pgx.Conn, m *lang.Model, opts catalog.CatalogOptions) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	findings, err := catalog.CheckCatalog(ctx, tx, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.String())
	}
	return got
}

// The positions of the example's declarations, as findings print them.
const (
	exRoles      = "../policies/iam.iam:11:1"
	exTodos      = "../policies/todos.iam:4:1"
	exTodosOwner = "../policies/todos.iam:5:16"
	exTodosGroup = "../policies/todos.iam:6:16"
	exChats      = "../policies/chats.iam:5:1"
	exChatsOwner = "../policies/chats.iam:6:16"
	exChatsGroup = "../policies/chats.iam:7:16"
	exChatsPage  = "../policies/chats.iam:8:11"
)

// beforeBuild is every finding for the example database before iamc build
// is applied: what the build adds (row-level security, indexes, foreign
// keys), nothing else.
var beforeBuild = []string{
	exChats + ": warning: row-level security is off on app.chats: every role with a privilege on it sees and changes every row\n" +
		"  hint: iamc build enables and forces it (expected before the first build); if it was built, something turned it off since",
	exChatsOwner + ": warning: no index of app.chats leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index chats_owner_id_id_iam_idx on app.chats (owner_id, id);",
	exChatsGroup + ": warning: no index of app.chats leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index chats_group_id_id_iam_idx on app.chats (group_id, id);",
	exChatsGroup + ": warning: column app.chats.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them\n" +
		"  hint: iamc build adds it (expected before the first build): chats_group_id_iam_fk, on delete cascade",
	"../policies/notes.iam:8:1: warning: row-level security is off on app.notes: every role with a privilege on it sees and changes every row\n" +
		"  hint: iamc build enables and forces it (expected before the first build); if it was built, something turned it off since",
	"../policies/notes.iam:9:17: warning: no index of app.notes leads with org_id, id: the policies read every row of the caller's tenant for some rules (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index notes_org_id_id_iam_idx on app.notes (org_id, id);",
	"../policies/notes.iam:10:16: warning: no index of app.notes leads with org_id, owner_id, id: the policies compare it with the caller's id within the caller's tenant (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index notes_org_id_owner_id_id_iam_idx on app.notes (org_id, owner_id, id);",
	"../policies/notes.iam:11:16: warning: no index of app.notes leads with org_id, group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows within the caller's tenant (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index notes_org_id_group_id_id_iam_idx on app.notes (org_id, group_id, id) where group_id is not null;",
	"../policies/notes.iam:11:16: warning: column app.notes.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them\n" +
		"  hint: iamc build adds it (expected before the first build): notes_group_id_iam_fk, on delete set null",
	"../policies/stores.iam:7:1: warning: row-level security is off on app.stores: every role with a privilege on it sees and changes every row\n" +
		"  hint: iamc build enables and forces it (expected before the first build); if it was built, something turned it off since",
	"../policies/stores.iam:8:16: warning: no index of app.stores leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index stores_owner_id_id_iam_idx on app.stores (owner_id, id);",
	"../policies/stores.iam:9:16: warning: no index of app.stores leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index stores_group_id_id_iam_idx on app.stores (group_id, id) where group_id is not null;",
	"../policies/stores.iam:9:16: warning: column app.stores.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them\n" +
		"  hint: iamc build adds it (expected before the first build): stores_group_id_iam_fk, on delete set null",
	"../policies/stores.iam:20:1: warning: row-level security is off on app.products: every role with a privilege on it sees and changes every row\n" +
		"  hint: iamc build enables and forces it (expected before the first build); if it was built, something turned it off since",
	"../policies/stores.iam:21:3: warning: no index of app.products leads with store_id, id: the policies look rows up by their parent (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index products_store_id_id_iam_idx on app.products (store_id, id);",
	exTodos + ": warning: row-level security is off on app.todos: every role with a privilege on it sees and changes every row\n" +
		"  hint: iamc build enables and forces it (expected before the first build); if it was built, something turned it off since",
	exTodosOwner + ": warning: no index of app.todos leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index todos_owner_id_id_iam_idx on app.todos (owner_id, id);",
	exTodosGroup + ": warning: no index of app.todos leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table\n" +
		"  hint: iamc build creates it (expected before the first build): create index todos_group_id_id_iam_idx on app.todos (group_id, id) where group_id is not null;",
	exTodosGroup + ": warning: column app.todos.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them\n" +
		"  hint: iamc build adds it (expected before the first build): todos_group_id_iam_fk, on delete set null",
}

// TestCheckCatalog: each check fires on a database broken in its way and
// is silent on the example after iamc build; the example before the build
// has only the warnings the build fixes.
func TestCheckCatalog(t *testing.T) {
	s := catalogServer(t)
	example := compile(t, exampleDir).Model
	viewHint := "protect the underlying table; views should be security_invoker"
	if pgtest.MustVersionNum(t, s) < 150000 {
		viewHint = "protect the underlying table; views read it as their owner (security_invoker views need PostgreSQL 15)"
	}

	tests := []struct {
		name     string
		template string // "example", "unbuilt" or "" (empty database; the roles exist)
		setup    string // SQL run as postgres
		iam      string // the .iam file p/a.iam; "" for policies/
		opts     catalog.CatalogOptions
		want     []string
	}{
		{
			name:     "example after build",
			template: "example",
		},
		{
			name:     "example before build",
			template: "unbuilt",
			want:     beforeBuild,
		},
		{
			name:     "example after build, runtime roles named explicitly",
			template: "example",
			opts:     catalog.CatalogOptions{Authenticator: "authenticator", Schemas: []string{"app"}},
		},
		{
			name: "roles do not exist",
			iam:  "roles { authenticated r1_user  anonymous r1_anon  owner r1_owner }",
			opts: catalog.CatalogOptions{Authenticator: "r1_login"},
			want: []string{
				"p/a.iam:1:1: error: role r1_user does not exist\n  hint: create role r1_user nologin; (or name an existing role in the roles block)",
				"p/a.iam:1:1: error: role r1_anon does not exist\n  hint: create role r1_anon nologin; (or name an existing role in the roles block)",
				"p/a.iam:1:1: error: role r1_owner does not exist\n  hint: create role r1_owner nologin; (or name an existing role in the roles block)",
				"p/a.iam:1:1: error: role r1_login does not exist: PostgREST logs in as it (--authenticator)\n" +
					"  hint: create role r1_login login noinherit password '...'; grant r1_user, r1_anon to r1_login; (or name PostgREST's login role with --authenticator)",
			},
		},
		{
			name: "default roles: reported at the directory",
			iam:  "# no roles block",
			opts: catalog.CatalogOptions{Authenticator: "r1b_login"},
			want: []string{
				"p: error: role r1b_login does not exist: PostgREST logs in as it (--authenticator)\n" +
					"  hint: create role r1b_login login noinherit password '...'; grant web_user, web_anon to r1b_login; (or name PostgREST's login role with --authenticator)",
			},
		},
		{
			name: "no authenticator: its checks are skipped",
			iam:  "# no roles block",
		},
		{
			name: "authenticator cannot become a runtime role",
			setup: `create role r2_user nologin; create role r2_anon nologin; create role r2_login login noinherit;
grant r2_anon to r2_login;`,
			iam:  "roles {\n  authenticated r2_user\n  anonymous r2_anon\n  owner api_owner\n}",
			opts: catalog.CatalogOptions{Authenticator: "r2_login"},
			want: []string{
				"p/a.iam:1:1: error: r2_login cannot become r2_user: PostgREST logs in as r2_login and switches to r2_user for every request with a JWT\n" +
					"  hint: grant r2_user to r2_login;",
			},
		},
		{
			name: "runtime roles that skip row-level security",
			setup: `create role r3_user nologin bypassrls; create role r3_anon nologin superuser; create role r3_login login noinherit bypassrls;
grant r3_user, r3_anon to r3_login;`,
			iam:  "roles { authenticated r3_user  anonymous r3_anon  owner api_owner }",
			opts: catalog.CatalogOptions{Authenticator: "r3_login"},
			want: []string{
				"p/a.iam:1:1: error: the authenticated role r3_user has BYPASSRLS: every request with a JWT skips row-level security\n" +
					"  hint: alter role r3_user nobypassrls;",
				"p/a.iam:1:1: error: the anonymous role r3_anon is a superuser: every request without a JWT skips row-level security and every privilege check\n" +
					"  hint: alter role r3_anon nosuperuser;",
				"p/a.iam:1:1: warning: the login role r3_login has BYPASSRLS: whatever runs as it rather than as a runtime role skips row-level security\n" +
					"  hint: alter role r3_login nobypassrls;",
			},
		},
		{
			name:  "superuser authenticator",
			setup: `create role r4_login login noinherit superuser bypassrls;`,
			opts:  catalog.CatalogOptions{Authenticator: "r4_login"},
			iam:   "# default roles",
			want: []string{
				"p: warning: the login role r4_login is a superuser: it can become any role, so a token whose role claim names any role runs as that role\n" +
					"  hint: alter role r4_login nosuperuser nobypassrls; (it only needs to be a member of the runtime roles)",
			},
		},
		{
			name: "runtime roles that can become the owner role",
			setup: `create role r5_owner noinherit; create role r5_user nologin; create role r5_anon nologin; create role r5_login login noinherit;
grant r5_user, r5_anon to r5_login; grant r5_owner to r5_user; grant r5_owner to r5_login;`,
			iam:  "roles { authenticated r5_user  anonymous r5_anon  owner r5_owner }",
			opts: catalog.CatalogOptions{Authenticator: "r5_login"},
			want: []string{
				"p/a.iam:1:1: warning: the authenticated role r5_user can become the owner role r5_owner: requests get every privilege on the resources' tables and the power to turn row-level security off\n" +
					"  hint: revoke r5_owner from r5_user; (or from the role through which it is a member)",
				"p/a.iam:1:1: warning: r5_login can become the owner role r5_owner: a token whose role claim is r5_owner makes PostgREST run the request as the owner of every resource's table\n" +
					"  hint: revoke r5_owner from r5_login; (or from the role through which it is a member)",
			},
		},
		{
			name:  "a runtime role is the owner role",
			setup: `create role r6_user nologin; create role r6_anon nologin; grant r6_user, r6_anon to authenticator;`,
			iam:   "roles { authenticated r6_user  anonymous r6_anon  owner r6_anon }",
			opts:  catalog.CatalogOptions{Authenticator: "authenticator"},
			want: []string{
				"p/a.iam:1:1: warning: the owner role r6_anon is also the anonymous role: requests run as the owner of every resource's table, with every privilege on it and the power to turn row-level security off\n" +
					"  hint: declare an owner role no request runs as (roles { owner api_owner }) and make it own the tables",
				"p/a.iam:1:1: warning: authenticator can become the owner role r6_anon: a token whose role claim is r6_anon makes PostgREST run the request as the owner of every resource's table\n" +
					"  hint: revoke r6_anon from authenticator; (or from the role through which it is a member)",
			},
		},
		{
			name: "groups API schema missing",
			iam:  "\ngroups { api schema nope }",
			want: []string{
				"p/a.iam:2:1: error: the groups API schema nope does not exist: iamc build creates the group functions and views there, and PostgREST must serve it\n" +
					"  hint: create schema nope authorization api_owner;",
			},
		},
		{
			name:  "groups API schema the owner role cannot create in",
			setup: `create schema api7; grant usage on schema api7 to api_owner;`,
			iam:   "groups { api schema api7 }",
			want: []string{
				"p/a.iam:1:1: error: the owner role api_owner cannot create in the groups API schema api7: applying iamc build would fail there\n" +
					"  hint: grant create on schema api7 to api_owner;",
			},
		},
		{
			name: "tables and owner columns",
			setup: `create schema app authorization api_owner;
set role api_owner;
create table app.ok (id bigint primary key, owner_id uuid not null);
create index on app.ok (owner_id);
create table app.nocol (id bigint primary key);
create table app.wrongtype (id bigint primary key, owner_id text not null);
create view app.view as select 1 as id;
alter table app.ok enable row level security;
alter table app.nocol enable row level security;
alter table app.wrongtype enable row level security;
reset role;
create table app."foreign" (id bigint primary key);
alter table app."foreign" enable row level security;`,
			iam: `resource app.ok { owner column owner_id  owner can read }
resource app.missing {}
resource app.foreign {}
resource app.view {}
resource app.nocol { owner column owner_id  owner can read }
resource app.wrongtype { owner column owner_id  owner can read }`,
			want: []string{
				"p/a.iam:2:1: error: table app.missing does not exist\n  hint: create the table before applying policies, or fix the resource name",
				"p/a.iam:3:1: error: table app.foreign is owned by postgres, not by the owner role api_owner\n  hint: alter table app.\"foreign\" owner to api_owner;",
				"p/a.iam:4:1: error: app.view is not a table (relkind v): row-level security applies to tables only\n  hint: " + viewHint,
				"p/a.iam:5:35: error: column owner_id does not exist in app.nocol\n  hint: alter table app.nocol add column owner_id uuid;",
				"p/a.iam:6:39: error: column app.wrongtype.owner_id is text, but the identity type is uuid\n  hint: change the column to uuid, or declare `identity { type ... }` to match",
			},
		},
		{
			name: "text identity",
			setup: `create schema app authorization api_owner;
set role api_owner;
create table app.t (id bigint primary key, owner_id varchar(64) not null);
create index on app.t (owner_id);
alter table app.t enable row level security;`,
			iam: "identity { type text }\nresource app.t { owner column owner_id  owner can read }",
		},
		{
			name: "group columns",
			setup: `create schema app authorization api_owner;
set role api_owner;
create table app.int_group (id bigint primary key, owner_id uuid not null, group_id integer);
create table app.no_group (id bigint primary key, owner_id uuid not null);
alter table app.int_group enable row level security;
alter table app.no_group enable row level security;`,
			iam: `groups { api schema app }
resource app.int_group {
  owner column owner_id
  group column group_id
}
resource app.no_group {
  owner column owner_id
  group column team_id
}`,
			want: []string{
				"p/a.iam:4:16: error: column app.int_group.group_id is integer, but group ids (iam.groups.id) are bigint\n  hint: alter the column to bigint",
				"p/a.iam:8:16: error: column team_id does not exist in app.no_group\n  hint: alter table app.no_group add column team_id bigint;",
			},
		},
		{
			name: "tenant and claim columns of the wrong type, a tenant-led index missing",
			setup: `create schema app authorization api_owner;
set role api_owner;
create table app.int_tenant (id bigint primary key, org_id integer not null, owner_id uuid not null);
create table app.uuid_keeper (id bigint primary key, keeper uuid not null);
create table app.untenanted (id bigint primary key, org_id varchar(40) not null, owner_id uuid not null);
create index on app.untenanted (owner_id);
create index on app.untenanted (org_id);
alter table app.int_tenant enable row level security;
alter table app.uuid_keeper enable row level security;
alter table app.untenanted enable row level security;`,
			iam: `resource app.int_tenant {
  tenant column org_id from claim 'org_id'
  owner column owner_id
  owner can read
}
resource app.uuid_keeper {
  keeper = claim 'user_type' can read
}
resource app.untenanted {
  tenant column org_id from claim 'org_id'
  owner column owner_id
  owner can read
  role 'org-admin' can read
}`,
			want: []string{
				"p/a.iam:2:17: error: column app.int_tenant.org_id is integer, but it is compared with the claim org_id of the token, a string\n  hint: alter the column to text (a tenant claim is a string)",
				"p/a.iam:3:16: warning: no index of app.int_tenant leads with org_id, owner_id: the policies compare it with the caller's id within the caller's tenant, so without one every request reads the whole table\n" +
					"  hint: iamc build creates it (expected before the first build): create index int_tenant_org_id_owner_id_iam_idx on app.int_tenant (org_id, owner_id);",
				"p/a.iam:7:3: error: column app.uuid_keeper.keeper is uuid, but it is compared with a claim of the token, a string\n  hint: alter the column to text",
				"p/a.iam:11:16: warning: no index of app.untenanted leads with org_id, owner_id: the policies compare it with the caller's id within the caller's tenant, so without one every request reads the whole table\n" +
					"  hint: iamc build creates it (expected before the first build): create index untenanted_org_id_owner_id_iam_idx on app.untenanted (org_id, owner_id);",
			},
		},
		{
			name: "share keys: missing, not an integer, not unique",
			setup: `create schema app authorization api_owner;
set role api_owner;
create table app.ok (id bigint primary key, owner_id uuid not null);
create table app.nokey (id bigint primary key, owner_id uuid not null);
create table app.textkey (code text primary key, owner_id uuid not null);
create table app.notunique (id bigint primary key, n integer, owner_id uuid not null);
create index on app.ok (owner_id);
create index on app.nokey (owner_id);
create index on app.textkey (owner_id);
create index on app.notunique (owner_id);
alter table app.ok enable row level security;
alter table app.nokey enable row level security;
alter table app.textkey enable row level security;
alter table app.notunique enable row level security;`,
			iam: `groups { api schema app }
resource app.ok { owner column owner_id  share by id with users  owner can read, share  shared can read }
resource app.nokey { owner column owner_id  share by key with users  owner can read, share  shared can read }
resource app.textkey { owner column owner_id  share by code with users  owner can read, share  shared can read }
resource app.notunique { owner column owner_id  share by n with users  owner can read, share  shared can read }`,
			want: []string{
				"p/a.iam:3:54: error: column key does not exist in app.nokey\n  hint: alter table app.nokey add column key bigint;",
				"p/a.iam:4:56: error: column app.textkey.code is text, but shares point at rows by it (iam.app_textkey_shares.row_id is bigint)\n  hint: share by an integer key (an identity or serial primary key)",
				"p/a.iam:5:58: error: share key n of app.notunique is not a unique, not-null column on its own: a share names one row by it, and the share table's foreign key refers to it\n" +
					"  hint: share by the primary key, or: alter table app.notunique alter column n set not null, add unique (n);",
			},
		},
		{
			name:     "row-level security off, no primary key",
			template: "example",
			setup: `alter table app.todos disable row level security;
alter table app.chats drop constraint chats_pkey;`,
			want: []string{
				exChats + ": warning: table app.chats has no primary key: PostgREST needs one for PUT, upserts (Prefer: resolution=...) and the Location header of POST; PATCH and DELETE by filter still work\n" +
					"  hint: alter table app.chats add primary key (<key columns>);",
				exChatsPage + ": error: page key id of app.chats is not a unique, not-null column on its own: pages ordered by it would repeat or skip rows\n" +
					"  hint: page by the primary key, or: alter table app.chats alter column id set not null, add unique (id);",
				exTodos + ": warning: row-level security is off on app.todos: every role with a privilege on it sees and changes every row\n" +
					"  hint: iamc build enables and forces it (expected before the first build); if it was built, something turned it off since",
			},
		},
		{
			name:     "indexes",
			template: "example",
			setup: `drop index app.todos_owner_id_id_iam_idx;
drop index app.todos_group_id_id_iam_idx;
create index todos_done_group on app.todos (group_id) where done;
create index todos_title_owner on app.todos (title, owner_id);
drop index app.chats_group_id_id_iam_idx;
create index chats_group_partial on app.chats (group_id) where group_id is not null;
drop index app.chats_owner_id_id_iam_idx;
create index chats_owner_created on app.chats (owner_id, created_at desc);`,
			want: []string{
				// (owner_id, created_at desc) and a partial (group_id) lead
				// with the column, but the page function walks (column, id).
				exChatsOwner + ": warning: no index of app.chats leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table\n" +
					"  hint: iamc build creates it (expected before the first build): create index chats_owner_id_id_iam_idx on app.chats (owner_id, id);",
				exChatsGroup + ": warning: no index of app.chats leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table\n" +
					"  hint: iamc build creates it (expected before the first build): create index chats_group_id_id_iam_idx on app.chats (group_id, id);",
				exTodosOwner + ": warning: no index of app.todos leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table\n" +
					"  hint: iamc build creates it (expected before the first build): create index todos_owner_id_id_iam_idx on app.todos (owner_id, id);",
				exTodosGroup + ": warning: no index of app.todos leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table\n" +
					"  hint: iamc build creates it (expected before the first build): create index todos_group_id_id_iam_idx on app.todos (group_id, id) where group_id is not null;",
			},
		},
		{
			name:     "foreign keys",
			template: "example",
			setup: `alter table app.chats drop constraint chats_group_id_iam_fk;
alter table app.chats add constraint chats_room foreign key (group_id) references iam.groups (id);
alter table app.todos drop constraint todos_group_id_iam_fk;`,
			want: []string{
				exChatsGroup + ": warning: the foreign key chats_room of app.chats.group_id is on delete no action: delete_group fails while the group has rows, where iamc expects that a deleted group's rows are deleted with it\n" +
					"  hint: alter table app.chats drop constraint chats_room; then iamc build adds chats_group_id_iam_fk (on delete cascade)",
				exTodosGroup + ": warning: column app.todos.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them\n" +
					"  hint: iamc build adds it (expected before the first build): todos_group_id_iam_fk, on delete set null",
			},
		},
		{
			name:     "a second foreign key with iamc's action is enough",
			template: "example",
			setup:    `alter table app.todos add constraint todos_team foreign key (group_id) references iam.groups (id) on delete restrict;`,
		},
		{
			name:     "triggers and policies iamc did not write",
			template: "example",
			setup: `create function app.touch() returns trigger language plpgsql as $$begin return new; end$$;
create trigger zz_touch before update on app.todos for each row execute function app.touch();
create policy "everyone reads" on app.todos for select to web_user using (true);
create policy "iam: mine" on app.todos for select to web_user using (true);
create policy only_recent on app.chats as restrictive for select to web_user using (created_at > now() - interval '1 day');`,
			want: []string{
				exChats + ": warning: table app.chats has restrictive policy \"only_recent\", which iamc did not write: it takes away access the rules give\n" +
					"  hint: say what it allows as rules in the .iam file, then drop policy only_recent on app.chats;",
				exTodos + ": warning: table app.todos has trigger zz_touch, which iamc did not write: a BEFORE ROW trigger firing after iam_guard_row (triggers fire in name order) can change the owner or group column the guard checked\n" +
					"  hint: make sure it cannot change the owner or group of a row, or drop it: drop trigger zz_touch on app.todos;",
				exTodos + ": warning: table app.todos has policy \"everyone reads\", which iamc did not write: PostgreSQL ORs permissive policies, so it can let requests see or change rows the rules do not allow\n" +
					"  hint: say what it allows as rules in the .iam file, then drop policy \"everyone reads\" on app.todos;",
				exTodos + ": warning: table app.todos has policy \"iam: mine\", which iamc did not write: PostgreSQL ORs permissive policies, so it can let requests see or change rows the rules do not allow\n" +
					"  hint: say what it allows as rules in the .iam file, then drop policy \"iam: mine\" on app.todos;",
			},
		},
		{
			name:     "tables of exposed schemas without a resource",
			template: "example",
			setup: `create table app.memos (id bigint primary key);
create table app.audit (id bigint primary key);
alter table app.audit enable row level security;
create table app.events (id bigint, at date not null) partition by range (at);
create table app.events_2026 partition of app.events for values from ('2026-01-01') to ('2027-01-01');
create schema other;
create table other.hidden (id bigint primary key);`,
			want: []string{
				"../policies: warning: table app.audit in exposed schema app has no resource in the .iam files: its policies are not iamc's, and nothing checks them\n" +
					"  hint: declare it in a .iam file (`resource app.audit { }` denies everything until rules are added) and apply iamc build, or move it out of the schemas PostgREST serves",
				"../policies: warning: table app.events in exposed schema app has row-level security off and no resource in the .iam files: every role with a privilege on it sees and changes every row\n" +
					"  hint: declare it in a .iam file (`resource app.events { }` denies everything until rules are added) and apply iamc build, or move it out of the schemas PostgREST serves",
				"../policies: warning: table app.memos in exposed schema app has row-level security off and no resource in the .iam files: every role with a privilege on it sees and changes every row\n" +
					"  hint: declare it in a .iam file (`resource app.memos { }` denies everything until rules are added) and apply iamc build, or move it out of the schemas PostgREST serves",
			},
		},
		{
			name:     "a parent column that is not a foreign key to the parent",
			template: "example",
			setup:    `alter table app.products drop constraint products_store_id_fkey;`,
			want: []string{
				"../policies/stores.iam:21:3: error: column store_id of app.products is not a foreign key to app.stores.id: the parent rules follow it to one parent row\n" +
					"  hint: alter table app.products add foreign key (store_id) references app.stores (id) on delete cascade;",
			},
		},
		{
			name:     "a column a rule lists that the table does not have",
			template: "example",
			setup:    `alter table app.products rename column stock to in_stock;`,
			want: []string{
				"../policies/stores.iam:28:34: error: column stock does not exist in app.products\n" +
					"  hint: name a column of app.products: id, store_id, name, price, in_stock, created_at",
			},
		},
		{
			name:     "--schemas",
			template: "example",
			setup:    `create schema other; create table other.hidden (id bigint primary key); create table app.memos (id bigint primary key);`,
			opts:     catalog.CatalogOptions{Schemas: []string{"other"}},
			want: []string{
				"../policies: warning: table other.hidden in exposed schema other has row-level security off and no resource in the .iam files: every role with a privilege on it sees and changes every row\n" +
					"  hint: declare it in a .iam file (`resource other.hidden { }` denies everything until rules are added) and apply iamc build, or move it out of the schemas PostgREST serves",
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := newDatabase(t, s, fmt.Sprintf("case%d", i), tt.template, tt.setup)
			m, opts := example, tt.opts
			opts.Dir = exampleDir
			if tt.iam != "" {
				f, err := lang.ParseFile("p/a.iam", []byte(tt.iam))
				if err != nil {
					t.Fatal(err)
				}
				if m, err = lang.Check([]*lang.File{f}); err != nil {
					t.Fatal(err)
				}
				opts.Dir = "p"
			}
			got := check(t, conn, m, opts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("a schema in --schemas that does not exist", func(t *testing.T) {
		conn := newDatabase(t, s, "missing_schema", "example", "")
		_, err := catalog.CheckCatalog(context.Background(), conn, example,
			catalog.CatalogOptions{Dir: exampleDir, Schemas: []string{"app", "nope", "gone"}})
		var schemaErr *catalog.SchemaError
		if !errors.As(err, &schemaErr) || err.Error() != "schema nope, gone (--schemas) does not exist" {
			t.Errorf("err = %v, want a SchemaError naming nope and gone", err)
		}
	})
}
