package policies_test

// Test helpers: one PostgreSQL cluster per test binary, databases built from
// the files in this directory, and requests made the way PostgREST makes them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
// The cluster: started on first use, stopped by TestMain.
// ---------------------------------------------------------------------------

// cluster is the shared cluster, with policies/roles.sql loaded exactly as
// written. Roles belong to the cluster, so every database shares them.
var cluster = pgtest.Shared{Setup: func(ctx context.Context, s *pgtest.Server) error {
	_, err := s.Psql(ctx, "postgres", "-f", abs("roles.sql"))
	return err
}}

// The connections tests keep open, and the scripts written for psql: both
// go when the last test is done.
var (
	conns      []*pgx.Conn
	scripts    string
	scriptsErr error
	scriptsDir sync.Once
)

// TestMain closes the connections, stops the shared cluster after the last
// test (printing the tail of its log when something failed) and removes the
// scripts.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range conns {
		_ = c.Close(context.Background())
	}
	code = cluster.Stop(code)
	if scripts != "" {
		_ = os.RemoveAll(scripts)
	}
	os.Exit(code)
}

func Server(t testing.TB) *pgtest.Server {
	t.Helper()
	return cluster.Server(t)
}

func abs(name string) string {
	p, err := filepath.Abs(name)
	if err != nil {
		panic(err)
	}
	return p
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

// exampleWith is a copy of the example's .iam files in a temporary
// directory, with iamText as its iam.iam (the settings), to build.
func exampleWith(t *testing.T, iamText string) string {
	t.Helper()
	dir := t.TempDir()
	paths, err := filepath.Glob("*.iam")
	NoError(t, err)
	for _, p := range paths {
		text := iamText
		if p != "iam.iam" {
			b, err := os.ReadFile(p)
			NoError(t, err)
			text = string(b)
		}
		NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(text), 0o644))
	}
	return dir
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

func CreateDatabase(s *pgtest.Server, name string, setupFiles ...string) (*Database, error) {
	ctx := context.Background()
	if err := s.CreateDatabase(ctx, name); err != nil {
		return nil, err
	}
	for _, f := range setupFiles {
		if _, err := s.Psql(ctx, name, "-f", abs(f)); err != nil {
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

// The example database: policies/schema.sql plus the build of this
// directory, applied twice with psql. Set up once, shared by the tests.
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

func exampleDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	example.once.Do(func() {
		if example.db, example.err = CreateDatabase(s, "example", "schema.sql"); example.err != nil {
			return
		}
		if example.script, example.err = BuildScript("."); example.err != nil {
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
// Plans: the shape of an EXPLAIN (FORMAT JSON) plan, without timings.
// ---------------------------------------------------------------------------

// PlanShape is what matters in a plan of a policy-filtered query.
type PlanShape struct {
	Nodes     []string // node types, depth first
	Indexes   []string // indexes read by Index Scan, Index Only Scan, Bitmap Index Scan
	SeqScans  []string // relations read by Seq Scan (every row of the table)
	InitPlans int      // subplans run once per statement
	SubPlans  int      // subplans run per row
	Filters   []string // every Filter expression
}

type planNode struct {
	NodeType           string     `json:"Node Type"`
	ParentRelationship string     `json:"Parent Relationship"`
	RelationName       string     `json:"Relation Name"`
	IndexName          string     `json:"Index Name"`
	Filter             string     `json:"Filter"`
	Plans              []planNode `json:"Plans"`
}

// WalkPlan reads the output of EXPLAIN (FORMAT JSON).
func WalkPlan(explain []byte) (PlanShape, error) {
	var doc []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(explain, &doc); err != nil {
		return PlanShape{}, fmt.Errorf("reading EXPLAIN (FORMAT JSON): %w", err)
	}
	if len(doc) != 1 {
		return PlanShape{}, fmt.Errorf("EXPLAIN returned %d plans, want 1", len(doc))
	}
	var shape PlanShape
	var walk func(n planNode)
	walk = func(n planNode) {
		shape.Nodes = append(shape.Nodes, n.NodeType)
		switch n.ParentRelationship {
		case "InitPlan":
			shape.InitPlans++
		case "SubPlan":
			shape.SubPlans++
		}
		switch n.NodeType {
		case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
			shape.Indexes = append(shape.Indexes, n.IndexName)
		case "Seq Scan":
			shape.SeqScans = append(shape.SeqScans, n.RelationName)
		}
		if n.Filter != "" {
			shape.Filters = append(shape.Filters, n.Filter)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return shape, nil
}

// functionCall spots a function call in a plan expression ("f(x)", "s.f(x)").
// "ANY ($1)" is an operator on an InitPlan's result, not a call: the space
// keeps it out.
var functionCall = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_.]*\(`)

// PlanProblems says why a plan of a policy-filtered query would not scale:
// one of the indexes the policy's arms need is unused (an owner-only policy
// needs the owner index; an owner-or-group policy a BitmapOr of the owner
// and group indexes), a table read row by row (Seq Scan), the caller's id
// and groups not computed once each in initPlans InitPlans, a SubPlan or a
// function called per row.
func PlanProblems(p PlanShape, initPlans int, indexes ...string) []string {
	var problems []string
	for _, index := range indexes {
		if !slices.Contains(p.Indexes, index) {
			problems = append(problems, fmt.Sprintf("the index %s is not used (indexes used: %v)", index, p.Indexes))
		}
	}
	for _, rel := range p.SeqScans {
		problems = append(problems, "a Seq Scan reads every row of "+rel)
	}
	if p.InitPlans != initPlans {
		problems = append(problems, fmt.Sprintf("want exactly %d InitPlans computing the caller's id (and groups) once, got %d", initPlans, p.InitPlans))
	}
	if p.SubPlans != 0 {
		problems = append(problems, fmt.Sprintf("%d SubPlans run per row", p.SubPlans))
	}
	for _, f := range p.Filters {
		if functionCall.MatchString(f) {
			problems = append(problems, "a function is called per row in Filter: "+f)
		}
	}
	return problems
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
