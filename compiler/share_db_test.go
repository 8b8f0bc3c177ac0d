package compiler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// TestSharesReshareDatabase applies golden/shares-reshare (text identity;
// the owner and the admins of a document's team share it; those it is
// shared with share it on, within what they hold) to a real PostgreSQL and
// makes every request as PostgREST would: who may share, re-share and
// unshare what, from both sides.
func TestSharesReshareDatabase(t *testing.T) {
	ctx := context.Background()
	s := pgtest.New(t)
	roles, err := os.ReadFile(filepath.Join("..", "policies", "roles.sql"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Compile(filepath.Join("..", "golden", "shares-reshare", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{string(roles), `
create schema app authorization api_owner;
create schema api authorization api_owner;
create table app.docs (id bigint generated always as identity primary key, title text not null,
    owner_id text not null, team_id bigint);
alter table app.docs owner to api_owner;`, out.Script()} {
		if err := s.Exec(ctx, "postgres", sql); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres", "authenticator"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	su, err := pgx.Connect(ctx, s.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)

	// call runs sql as user (a POST), returning the first column of its
	// first row as text, or the error.
	call := func(user, sql string, args ...any) (string, error) {
		var got string
		req := pgrest.Request{Method: "POST", Path: "/rpc", Role: "web_user", Claims: map[string]any{"sub": user, "role": "web_user"}}
		err := pgrest.Do(ctx, conn, req, func(tx pgx.Tx) error {
			if !strings.HasPrefix(sql, "insert") {
				sql = "select coalesce((" + sql + ")::text, '')"
			}
			return tx.QueryRow(ctx, sql, args...).Scan(&got)
		})
		return got, err
	}
	must := func(user, sql string, args ...any) string {
		t.Helper()
		got, err := call(user, sql, args...)
		if err != nil {
			t.Fatalf("%s: %s: %v", user, sql, err)
		}
		return got
	}
	refused := func(user, code, msg, sql string, args ...any) {
		t.Helper()
		var before string
		if err := su.QueryRow(ctx, "select coalesce(string_agg(format('%s %s %s %s %s', row_id, user_id, group_id, can_write, shared_by), ', ' order by 1), '') from iam.app_docs_shares").Scan(&before); err != nil {
			t.Fatal(err)
		}
		_, err := call(user, sql, args...)
		if got := pgrest.SQLState(err); got != code || !strings.Contains(fmt.Sprint(err), msg) {
			t.Errorf("%s: %s: got %v, want SQLSTATE %s %q", user, sql, err, code, msg)
		}
		var after string
		if err := su.QueryRow(ctx, "select coalesce(string_agg(format('%s %s %s %s %s', row_id, user_id, group_id, can_write, shared_by), ', ' order by 1), '') from iam.app_docs_shares").Scan(&after); err != nil {
			t.Fatal(err)
		}
		if before != after {
			t.Errorf("%s: a refused %s changed the shares:\n%s\n%s", user, sql, before, after)
		}
	}
	sees := func(user string) []string {
		t.Helper()
		var got []string
		req := pgrest.Request{Method: "GET", Path: "/docs", Role: "web_user", Claims: map[string]any{"sub": user, "role": "web_user"}}
		err := pgrest.Do(ctx, conn, req, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "select title from app.docs order by id")
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	team := must("olivia", "api.create_group('team')")
	must("olivia", "api.add_group_member("+team+", 'adam', 'admin')")
	must("olivia", "api.add_group_member("+team+", 'mia', 'member')")
	must("olivia", "api.add_group_member("+team+", 'alice', 'member')")
	doc := must("alice", "insert into app.docs (title, team_id) values ('plan', "+team+") returning id::text")
	share := func(by, with, perms string) string {
		return fmt.Sprintf("api.docs_share(id => %s, user_id => '%s', permissions => '%s')", doc, with, perms)
	}

	// The admins of the doc's team share it (they hold write); members do not.
	must("adam", share("adam", "erin", "{read,write}"))
	refused("mia", "42501", "you cannot share the row of app.docs", share("mia", "mia2", "{read}"))
	// erin, who got write, shares on: read to frank, write to gina.
	must("erin", share("erin", "frank", "{read}"))
	must("erin", share("erin", "gina", "{read,write}"))
	// frank, who got read, cannot share write on; read he can.
	refused("frank", "42501", "you cannot share write on the row of app.docs", share("frank", "hank", "{write}"))
	must("frank", share("frank", "hank", "{read}"))
	// Shares grant read and write only (shared can read, write, share).
	refused("adam", "22023", "a share of app.docs cannot grant delete", share("adam", "ivan", "{read,delete}"))
	for _, who := range []string{"erin", "frank", "gina", "hank"} {
		if got := sees(who); !cmp.Equal(got, []string{"plan"}) {
			t.Errorf("%s sees %v, want the shared doc", who, got)
		}
	}
	if got := sees("ivan"); len(got) != 0 {
		t.Errorf("ivan sees %v", got)
	}

	// Unsharing: a re-sharer removes only the shares they made.
	refused("frank", "PT404", "has no share of yours with user gina", fmt.Sprintf("api.docs_unshare(id => %s, user_id => 'gina')", doc))
	must("erin", fmt.Sprintf("api.docs_unshare(id => %s, user_id => 'frank')", doc))
	// The team's admin manages every share, whoever made it.
	must("adam", fmt.Sprintf("api.docs_unshare(id => %s, user_id => 'hank')", doc))
	if got := sees("frank"); len(got) != 0 {
		t.Errorf("frank still sees %v after his share went", got)
	}
	if got := sees("hank"); len(got) != 0 {
		t.Errorf("hank still sees %v after his share went", got)
	}
	// A member of the team reads the doc but cannot see its shares.
	refused("mia", "42501", "you cannot see the shares of the row of app.docs", fmt.Sprintf("(select count(*) from api.docs_shares(id => %s))", doc))
	if got := must("erin", fmt.Sprintf("(select string_agg(user_id || ':' || array_to_string(permissions, '+'), ' ' order by user_id) from api.docs_shares(id => %s))", doc)); got != "erin:read+write gina:read+write" {
		t.Errorf("the shares erin lists: %q", got)
	}
	// erin is in no group: sharing with the team is refused as with any
	// group one is not in; adam, a member, shares with it.
	refused("erin", "PT404", "you are not a member of group", fmt.Sprintf("api.docs_share(id => %s, group_id => %s)", doc, team))
	must("adam", fmt.Sprintf("api.docs_share(id => %s, group_id => %s)", doc, team))
	// A user id of a text identity is any text of 1 to 1000 characters.
	refused("alice", "22023", "user_id must be 1 to 1000 characters", share("alice", "", "{read}"))
}

// inlineShareDB applies policy (one .iam file) and ddl to a fresh
// PostgreSQL and returns a connection as PostgREST's authenticator and one
// as the superuser.
func inlineShareDB(t *testing.T, policy, ddl string) (conn, su *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	s := pgtest.New(t)
	roles, err := os.ReadFile(filepath.Join("..", "policies", "roles.sql"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.iam"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Compile(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{string(roles), ddl, out.Script()} {
		if err := s.Exec(ctx, "postgres", sql); err != nil {
			t.Fatal(err)
		}
	}
	if conn, err = pgx.Connect(ctx, s.URL("postgres", "authenticator")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if su, err = pgx.Connect(ctx, s.URL("postgres", "postgres")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(ctx) })
	return conn, su
}

// inlineExec runs sql as the user of claims (as PostgREST would for
// method), returning the rows it affected.
func inlineExec(conn *pgx.Conn, claims map[string]any, method, sql string) (int64, error) {
	var n int64
	req := pgrest.Request{Method: method, Path: "/notes", Role: "web_user", Claims: claims}
	err := pgrest.Do(context.Background(), conn, req, func(tx pgx.Tx) error {
		tag, err := tx.Exec(context.Background(), sql)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// TestSharesWriteListDatabase: a share's write follows the shared rule's
// column list (`shared can write (title)`, SPEC §5 column rules): bob, with
// a write share, changes the title and nothing else; the owner, whose
// write has no list, changes anything.
func TestSharesWriteListDatabase(t *testing.T) {
	ctx := context.Background()
	conn, su := inlineShareDB(t, `identity {
  claim 'sub'
  type text
}
groups {
  api schema api
}
resource app.notes {
  owner column owner_id
  share by id with users
  owner can read, create, write, delete, share
  shared can read, write (title)
}
`, `
create schema app authorization api_owner;
create schema api authorization api_owner;
create table app.notes (id bigint generated always as identity primary key, title text not null,
    body text not null default '', owner_id text not null);
alter table app.notes owner to api_owner;`)
	exec := func(user, method, sql string) (int64, error) {
		return inlineExec(conn, map[string]any{"sub": user, "role": "web_user"}, method, sql)
	}
	if _, err := exec("alice", "POST", "insert into app.notes (title) values ('plan')"); err != nil {
		t.Fatal(err)
	}
	if _, err := exec("alice", "POST", "select api.notes_share(id => 1, user_id => 'bob', permissions => '{read,write}')"); err != nil {
		t.Fatal(err)
	}
	if _, err := exec("alice", "POST", "select api.notes_share(id => 1, user_id => 'carol', permissions => '{read}')"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, sql string
		n         int64
		code      string
	}{
		{"bob", "update app.notes set title = 'plan b' where id = 1", 1, ""},
		{"bob", "update app.notes set body = 'mine' where id = 1", 0, "42501"},
		{"bob", "update app.notes set title = 'plan c', body = 'mine' where id = 1", 0, "42501"},
		{"carol", "update app.notes set title = 'plan c' where id = 1", 0, ""},
		{"alice", "update app.notes set body = 'hers' where id = 1", 1, ""},
	} {
		n, err := exec(c.user, "PATCH", c.sql)
		if got := pgrest.SQLState(err); got != c.code || n != c.n {
			t.Errorf("%s: %s: %d rows, error %v; want %d rows, SQLSTATE %q", c.user, c.sql, n, err, c.n, c.code)
		}
	}
	var title, body string
	if err := su.QueryRow(ctx, "select title, body from app.notes where id = 1").Scan(&title, &body); err != nil {
		t.Fatal(err)
	}
	if title != "plan b" || body != "hers" {
		t.Errorf("the note is %q, %q; want \"plan b\", \"hers\"", title, body)
	}
}

// TestSharesTenantDatabase: with a tenant column the shared arm holds only
// within the caller's tenant (SPEC §21 choices): a share made to bob shows
// him the note while his token names the note's organisation, and nothing
// (no read, no write) while it names another.
func TestSharesTenantDatabase(t *testing.T) {
	ctx := context.Background()
	conn, su := inlineShareDB(t, `identity {
  claim 'sub'
  type text
}
groups {
  api schema api
}
resource app.notes {
  owner column owner_id
  tenant column org_id from claim 'org_id'
  share by id with users
  owner can read, create, write, delete, share
  shared can read, write
}
`, `
create schema app authorization api_owner;
create schema api authorization api_owner;
create table app.notes (id bigint generated always as identity primary key, title text not null,
    owner_id text not null, org_id text not null);
alter table app.notes owner to api_owner;`)
	exec := func(user, org, method, sql string) (int64, error) {
		return inlineExec(conn, map[string]any{"sub": user, "role": "web_user", "org_id": org}, method, sql)
	}
	if _, err := exec("alice", "acme", "POST", "insert into app.notes (title, org_id) values ('plan', 'acme')"); err != nil {
		t.Fatal(err)
	}
	if _, err := exec("alice", "acme", "POST", "select api.notes_share(id => 1, user_id => 'bob', permissions => '{read,write}')"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		org, method, sql string
		n                int64
	}{
		{"acme", "GET", "select from app.notes", 1},
		{"acme", "PATCH", "update app.notes set title = 'plan b' where id = 1", 1},
		{"globex", "GET", "select from app.notes", 0},
		{"globex", "PATCH", "update app.notes set title = 'plan c' where id = 1", 0},
	} {
		n, err := exec("bob", c.org, c.method, c.sql)
		if err != nil || n != c.n {
			t.Errorf("bob in %s: %s: %d rows, error %v; want %d rows", c.org, c.sql, n, err, c.n)
		}
	}
	var title string
	if err := su.QueryRow(ctx, "select title from app.notes where id = 1").Scan(&title); err != nil {
		t.Fatal(err)
	}
	if title != "plan b" {
		t.Errorf("the note's title is %q, want \"plan b\"", title)
	}
}
