// Package exampletest is the example deployment (policies/) for the tests
// of the packages that exercise it on a real PostgreSQL: the example's tests
// in policies/ and the runtime's in stdlib/, which import it with a dot, and
// the other packages that need its cluster. It holds one PostgreSQL cluster
// per test binary with the example's roles, databases built from the
// example, the people who call it, requests made the way PostgREST makes
// them, the group API, the crews of the group tests, snapshots of a whole
// database and the shape of plans.
//
// It imports testing: only tests may import it (cmd/iamc's test checks that
// the binary does not link it).
package exampletest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iamc/iamc/compiler"
	_ "github.com/iamc/iamc/internal/goldenfile" // so `go test ./... -update` works
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// ---------------------------------------------------------------------------
// The cluster: started on first use, stopped by Main.
// ---------------------------------------------------------------------------

// cluster is the shared cluster of a test binary, with policies/roles.sql
// loaded exactly as written, then the setup Main was given. Roles belong to
// the cluster, so every database shares them.
var cluster = pgtest.Shared{Setup: func(ctx context.Context, s *pgtest.Server) error {
	if err := Roles(ctx, s); err != nil {
		return err
	}
	for _, sql := range setup {
		if err := s.Exec(ctx, "postgres", sql); err != nil {
			return err
		}
	}
	return nil
}}

// setup is what Main was given to run once the roles are loaded.
var setup []string

// The connections tests keep open, and the scripts written for psql: both
// go when the last test is done.
var (
	conns      []*pgx.Conn
	scripts    string
	scriptsErr error
	scriptsDir sync.Once
)

// Main runs the tests of a package that uses the shared cluster, then
// closes the connections, stops the cluster (printing the tail of its log
// when something failed) and removes the scripts; it returns the exit code.
// setupSQL is SQL the cluster runs once after roles.sql (more roles, say). A
// package's TestMain is: os.Exit(exampletest.Main(m)).
func Main(m *testing.M, setupSQL ...string) int {
	setup = setupSQL
	code := m.Run()
	for _, c := range conns {
		_ = c.Close(context.Background())
	}
	code = cluster.Stop(code)
	if scripts != "" {
		_ = os.RemoveAll(scripts)
	}
	return code
}

// Roles loads policies/roles.sql into s as written: the roles of the
// example deployment, for a server of a test's own (a primary with a
// standby, say).
func Roles(ctx context.Context, s *pgtest.Server) error {
	_, err := s.Psql(ctx, "postgres", "-f", File("roles.sql"))
	return err
}

// Server is the shared cluster, started on first use.
func Server(t testing.TB) *pgtest.Server {
	t.Helper()
	return cluster.Server(t)
}

// Dir is the example deployment, policies/ at the root of the module
// (roles.sql, schema.sql, the .iam files, postgrest.conf and the Keycloak
// realm), relative to the directory the tests run in, their package's: "."
// in policies/ itself, so that a build of it names its sources as
// `iamc build policies/` run there does.
var Dir = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for root := wd; ; root = filepath.Dir(root) {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			dir, err := filepath.Rel(wd, filepath.Join(root, "policies"))
			if err != nil {
				panic(err)
			}
			return dir
		}
		if filepath.Dir(root) == root {
			panic("exampletest: no go.mod above " + wd)
		}
	}
}()

// File is the absolute path of a file of the example, name relative to Dir
// (or absolute already).
func File(name string) string {
	if !filepath.IsAbs(name) {
		name = filepath.Join(Dir, name)
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		panic(err)
	}
	return abs
}

// ---------------------------------------------------------------------------
// Building and applying.
// ---------------------------------------------------------------------------

// BuildScript compiles the .iam files of dir in-process, as `iamc build dir`.
func BuildScript(dir string) (string, error) {
	out, err := compiler.Compile(dir)
	if err != nil {
		return "", err
	}
	return out.Script(), nil
}

// ApplyScript writes script to a file and runs it with psql -f as the
// superuser, exactly as the header of every build says to apply it.
func ApplyScript(ctx context.Context, s *pgtest.Server, db, script string) ([]byte, error) {
	scriptsDir.Do(func() { scripts, scriptsErr = os.MkdirTemp("", "iamc-policies-") })
	if scriptsErr != nil {
		return nil, scriptsErr
	}
	f, err := os.CreateTemp(scripts, db+"-*.sql")
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return s.Psql(ctx, db, "-f", f.Name())
}

// Database is one database of the cluster, with a superuser connection (for
// setting up and for checking afterwards what really happened) and a
// connection as authenticator, the login role PostgREST uses.
type Database struct {
	Name   string
	Server *pgtest.Server
	SU     *pgx.Conn // postgres: bypasses RLS
	API    *pgx.Conn // authenticator/mypass: switches to web_user or web_anon per request
}

// NewDatabase creates a database and runs each setup file in it with psql -f.
func NewDatabase(t testing.TB, name string, setupFiles ...string) *Database {
	t.Helper()
	d, err := CreateDatabase(Server(t), name, setupFiles...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// CreateDatabase is NewDatabase outside a test (for a database set up once
// and shared): it creates a database and runs each setup file in it.
func CreateDatabase(s *pgtest.Server, name string, setupFiles ...string) (*Database, error) {
	ctx := context.Background()
	if err := s.CreateDatabase(ctx, name); err != nil {
		return nil, err
	}
	for _, f := range setupFiles {
		if _, err := s.Psql(ctx, name, "-f", File(f)); err != nil {
			return nil, err
		}
	}
	su, err := pgx.Connect(ctx, s.URL(name, "postgres"))
	if err != nil {
		return nil, err
	}
	conns = append(conns, su)
	u, err := url.Parse(s.URL(name, "authenticator"))
	if err != nil {
		return nil, err
	}
	u.User = url.UserPassword("authenticator", "mypass")
	api, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, err
	}
	conns = append(conns, api)
	return &Database{Name: name, Server: s, SU: su, API: api}, nil
}

// Exec runs SQL as the superuser.
func (d *Database) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := d.SU.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("as superuser: %s: %v", sql, err)
	}
}

// CloseWhenDone closes the databases' connections when the test ends; a
// database of a test otherwise keeps its two open until the package's tests
// end, and the shared cluster has a limit.
func CloseWhenDone(t *testing.T, dbs ...*Database) {
	t.Cleanup(func() {
		for _, d := range dbs {
			_ = d.SU.Close(context.Background())
			_ = d.API.Close(context.Background())
		}
	})
}

// Scalar runs a one-value query as the superuser.
func Scalar[T any](t testing.TB, d *Database, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := d.SU.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("as superuser: %s: %v", sql, err)
	}
	return v
}

// The example database: policies/schema.sql plus the build of policies/,
// applied twice with psql. Set up once, shared by the tests.
var example struct {
	once    sync.Once
	db      *Database
	script  string
	applies [2]struct {
		out []byte
		err error
	}
	err error
}

// ExampleDB is the example database, made on first use.
func ExampleDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	example.once.Do(func() {
		if example.db, example.err = CreateDatabase(s, "example", "schema.sql"); example.err != nil {
			return
		}
		if example.script, example.err = BuildScript(Dir); example.err != nil {
			return
		}
		for i := range example.applies {
			a := &example.applies[i]
			a.out, a.err = ApplyScript(context.Background(), s, "example", example.script)
		}
	})
	if example.err != nil {
		t.Fatalf("setting up the example database: %v", example.err)
	}
	for i, a := range example.applies {
		if a.err != nil {
			t.Fatalf("applying the build of policies/ (run %d of 2): %v", i+1, a.err)
		}
	}
	return example.db
}

// ExampleBuild is what ExampleDB applied: the build of policies/, and what
// psql printed applying it, the first time and the second.
func ExampleBuild(t *testing.T) (script string, printed [2][]byte) {
	t.Helper()
	ExampleDB(t)
	for i, a := range example.applies {
		printed[i] = a.out
	}
	return example.script, printed
}

// ---------------------------------------------------------------------------
// Callers and requests.
// ---------------------------------------------------------------------------

// Person is who a request comes from: the role PostgREST switches to and the
// claims of the verified JWT.
type Person struct {
	Name   string
	Role   string
	Claims map[string]any
}

// KeycloakUser is a signed-in user as Keycloak issues the access token, with
// the role claim PostgREST reads (from a Keycloak mapper).
func KeycloakUser(username, sub string) Person {
	now := time.Now().Unix()
	claims := map[string]any{
		"exp":                now + 300,
		"iat":                now,
		"jti":                "5e1f0c2a-8d3b-4f6e-9a71-0c4b2d8e6f10",
		"iss":                "http://keycloak.local:8080/realms/iamc",
		"aud":                "account",
		"typ":                "Bearer",
		"azp":                "iamc-app",
		"scope":              "openid profile email",
		"preferred_username": username,
		"email":              username + "@example.com",
		"email_verified":     true,
		"realm_access":       map[string]any{"roles": []string{"default-roles-iamc", "offline_access", "uma_authorization"}},
		"role":               "web_user",
	}
	if sub != "" {
		claims["sub"] = sub
	}
	return Person{Name: username, Role: "web_user", Claims: claims}
}

// The cast most tests call as: alice and bob, the anonymous caller, and a
// signed-in caller without a user id.
const (
	AliceID = "a11ce000-0000-4000-8000-000000000001"
	BobID   = "b0b00000-0000-4000-8000-000000000002"
)

var (
	Alice = KeycloakUser("alice", AliceID)
	Bob   = KeycloakUser("bob", BobID)
	// No JWT: PostgREST runs the request as the anonymous role.
	Anonymous = Person{Name: "anonymous", Role: "web_anon", Claims: map[string]any{"role": "web_anon"}}
	// A valid token that carries no sub (a misconfigured client scope).
	NoSub = KeycloakUser("nosub", "")
)

// userNames shows owners by name in row diffs.
var userNames = map[string]string{AliceID: "alice", BobID: "bob"}

// UserID is who's user id (the sub claim).
func UserID(who Person) string {
	sub, _ := who.Claims["sub"].(string)
	return sub
}

// WithGroups is who with a groups claim, as Keycloak's Group Membership
// mapper puts it in the token.
func WithGroups(who Person, claim any) Person {
	claims := make(map[string]any, len(who.Claims)+1)
	for k, v := range who.Claims {
		claims[k] = v
	}
	claims["groups"] = claim
	who.Claims = claims
	return who
}

// Requester makes requests for one person on one API path.
type Requester struct {
	T      *testing.T
	DB     *Database
	Who    Person
	Path   string
	Expand func(string) string // fills {table}, {cols}, ... in SQL; may be nil
}

// Do runs fn in the transaction PostgREST opens for method: READ ONLY for
// GET and HEAD, role and claims set with set_config.
func (r Requester) Do(method string, fn func(pgx.Tx) error) error {
	r.T.Helper()
	req := pgrest.Request{Method: method, Path: r.Path, Role: r.Who.Role, Claims: r.Who.Claims}
	return pgrest.Do(r.T.Context(), r.DB.API, req, fn)
}

func (r Requester) sql(s string) string {
	if r.Expand != nil {
		return r.Expand(s)
	}
	return s
}

// Query runs a statement that returns rows of (id, text, owner).
func (r Requester) Query(method, sql string, args ...any) ([]Row, error) {
	r.T.Helper()
	var got []Row
	err := r.Do(method, func(tx pgx.Tx) error {
		rows, err := tx.Query(r.T.Context(), r.sql(sql), args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
		return err
	})
	if err != nil {
		return nil, err
	}
	return Names(got), nil
}

// Exec runs a statement and returns how many rows it affected.
func (r Requester) Exec(method, sql string, args ...any) (int64, error) {
	r.T.Helper()
	var n int64
	err := r.Do(method, func(tx pgx.Tx) error {
		tag, err := tx.Exec(r.T.Context(), r.sql(sql), args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// Row is a row as the tests compare it: the owner is shown by name.
type Row struct {
	ID    int64
	Text  string
	Owner string
}

func Names(rows []Row) []Row {
	for i := range rows {
		if n, ok := userNames[rows[i].Owner]; ok {
			rows[i].Owner = n
		}
	}
	return rows
}

// ---------------------------------------------------------------------------
// Assertions.
// ---------------------------------------------------------------------------

func WantRows(t *testing.T, what string, got, want []Row) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func NoError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// WantSQLError asserts err is a database error with the SQLSTATE code whose
// message contains msg.
func WantSQLError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("got error %v, want SQLSTATE %s (%q)", err, code, msg)
	}
	if pgErr.Code != code || !strings.Contains(pgErr.Message, msg) {
		t.Fatalf("got SQLSTATE %s %q, want SQLSTATE %s with a message containing %q", pgErr.Code, pgErr.Message, code, msg)
	}
}

// ---------------------------------------------------------------------------
// The group API, called as PostgREST calls it (POST /rpc/<function>).
// ---------------------------------------------------------------------------

// RPC calls a function of the group API as who (POST /rpc/fn) with named
// arguments, as PostgREST does; args are name, value pairs.
func RPC(t *testing.T, db *Database, who Person, fn string, args ...any) error {
	t.Helper()
	var named []string
	var values []any
	for i := 0; i+1 < len(args); i += 2 {
		values = append(values, args[i+1])
		named = append(named, fmt.Sprintf("%s => $%d", args[i], len(values)))
	}
	sql := fmt.Sprintf("select app.%s(%s)", fn, strings.Join(named, ", "))
	_, err := Requester{T: t, DB: db, Who: who, Path: "/rpc/" + fn}.Exec("POST", sql, values...)
	return err
}

// CreateGroup is POST /rpc/create_group {"name"} as who: the new group's id.
func CreateGroup(t *testing.T, db *Database, who Person, name string) int64 {
	t.Helper()
	var id int64
	err := Requester{T: t, DB: db, Who: who, Path: "/rpc/create_group"}.Do("POST", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select app.create_group(name => $1)", name).Scan(&id)
	})
	if err != nil {
		t.Fatalf("%s: POST /rpc/create_group {%q}: %v", who.Name, name, err)
	}
	return id
}

// AddMember is POST /rpc/add_group_member as who; it must succeed. An
// empty role is left out of the request (the API's default: member).
func AddMember(t *testing.T, db *Database, who Person, group int64, userID, role string) {
	t.Helper()
	args := []any{"group_id", group, "user_id", userID}
	if role != "" {
		args = append(args, "role", role)
	}
	if err := RPC(t, db, who, "add_group_member", args...); err != nil {
		t.Fatalf("%s: POST /rpc/add_group_member {%d, %s, %s}: %v", who.Name, group, userID, role, err)
	}
}
