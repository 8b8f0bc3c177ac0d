package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/goldenfile"
	"github.com/iamc/iamc/internal/pgtest"
)

// The tests share exampletest's cluster, with the roles of the example
// deployment (policies/roles.sql) and one more that iamc does not know;
// every test gets its own database.
func TestMain(m *testing.M) { os.Exit(exampletest.Main(m, "create role reporting nologin")) }

// schemaSQL: todos and chats (with groups), notes (a serial key: a sequence
// the authenticated role needs USAGE on).
const schemaSQL = `
create schema app authorization api_owner;
set role api_owner;
create table app.todos (
    id bigint generated always as identity primary key,
    title text not null default '',
    owner_id uuid not null,
    group_id bigint
);
create table app.chats (
    id bigint generated always as identity primary key,
    body text not null default '',
    owner_id uuid not null,
    group_id bigint
);
create table app.notes (
    id serial primary key,
    body text not null default '',
    owner_id uuid not null
);
reset role;`

// The policy files of the tests.
const (
	iamFile = `identity {
  claim 'sub'
  type uuid
}

roles {
  authenticated web_user
  anonymous web_anon
  owner api_owner
}

groups {
  api schema app
}
`
	todosFile = `resource app.todos {
  owner column owner_id
  group column group_id
  owner can read, create, write, delete
  group member can read, create, write
  group admin can delete
}
`
	chatsFile = `resource app.chats {
  owner column owner_id
  group column group_id required
  owner can read, create, write, delete
  group member can read, create
}
`
	notesFile = `resource app.notes {
  owner column owner_id
  owner can read, create, write, delete
}
`
)

func server(t testing.TB) *pgtest.Server {
	t.Helper()
	return exampletest.Server(t)
}

// env is one test's database and policy directory.
type env struct {
	t    *testing.T
	s    *pgtest.Server
	db   string
	dir  string
	conn *pgx.Conn // superuser: to look and to break things
}

// newEnv creates a database with the example's tables and a policy
// directory holding files.
func newEnv(t *testing.T, files map[string]string) *env {
	t.Helper()
	s := server(t)
	ctx := t.Context()
	db := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	// The name is the test's (the plan goldens print it): -count=2 meets
	// the database of the first run.
	if err := s.Exec(ctx, "postgres", "drop database if exists "+pgx.Identifier{db}.Sanitize()+" with (force)"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, db, schemaSQL); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.URL(db, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	e := &env{t: t, s: s, db: db, dir: filepath.Join(t.TempDir(), "policies"), conn: conn}
	e.files(files)
	return e
}

// files replaces the policy files.
func (e *env) files(files map[string]string) {
	e.t.Helper()
	_ = os.RemoveAll(e.dir)
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(text), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) input() Input {
	e.t.Helper()
	out, err := compiler.Compile(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	return Input{Output: out, Label: "policies", IamcVersion: "test"}
}

// connect opens a new connection (plan and apply get their own, as the
// command line does).
func (e *env) connect() *pgx.Conn {
	e.t.Helper()
	conn, err := pgx.Connect(e.t.Context(), e.s.URL(e.db, "postgres"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (e *env) plan() *Plan {
	e.t.Helper()
	p, err := e.tryPlan(Options{})
	if err != nil {
		e.t.Fatalf("plan: %v", err)
	}
	return p
}

func (e *env) tryPlan(opts Options) (*Plan, error) {
	return PlanChanges(e.t.Context(), e.connect(), e.input(), opts)
}

func (e *env) apply(opts Options) *Result {
	e.t.Helper()
	r, err := Apply(e.t.Context(), e.connect(), e.input(), opts)
	if err != nil {
		e.t.Fatalf("apply: %v", err)
	}
	return r
}

func (e *env) exec(sql string) {
	e.t.Helper()
	if _, err := e.conn.Exec(e.t.Context(), sql); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) query(sql string, args ...any) string {
	e.t.Helper()
	var out string
	if err := e.conn.QueryRow(e.t.Context(), sql, args...).Scan(&out); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func text(t *testing.T, p *Plan) string {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func resultText(t *testing.T, r *Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got)
}

var allFiles = map[string]string{"iam.iam": iamFile, "todos.iam": todosFile, "chats.iam": chatsFile, "notes.iam": notesFile}

func without(files map[string]string, names ...string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	for _, n := range names {
		delete(out, n)
	}
	return out
}

func with(files map[string]string, name, text string) map[string]string {
	out := without(files)
	out[name] = text
	return out
}
