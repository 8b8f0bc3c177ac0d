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

func server(t testing.TB) *pgtest.Server {
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

// buildScript compiles the .iam files of dir in-process, as `iamc build dir`.
func buildScript(dir string) (string, error) {
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
	noError(t, err)
	for _, p := range paths {
		text := iamText
		if p != "iam.iam" {
			b, err := os.ReadFile(p)
			noError(t, err)
			text = string(b)
		}
		noError(t, os.WriteFile(filepath.Join(dir, p), []byte(text), 0o644))
	}
	return dir
}

// applyScript writes script to a file and runs it with psql -f as the
// superuser, exactly as the header of every build says to apply it.
func applyScript(ctx context.Context, s *pgtest.Server, db, script string) ([]byte, error) {
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

// database is one database of the cluster, with a superuser connection (for
// setting up and for checking afterwards what really happened) and a
// connection as authenticator, the login role PostgREST uses.
type database struct {
	name   string
	server *pgtest.Server
	su     *pgx.Conn // postgres: bypasses RLS
	api    *pgx.Conn // authenticator/mypass: switches to web_user or web_anon per request
}

// newDatabase creates a database and runs each setup file in it with psql -f.
func newDatabase(t testing.TB, name string, setupFiles ...string) *database {
	t.Helper()
	d, err := createDatabase(server(t), name, setupFiles...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func createDatabase(s *pgtest.Server, name string, setupFiles ...string) (*database, error) {
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
	return &database{name: name, server: s, su: su, api: api}, nil
}

// exec runs SQL as the superuser.
func (d *database) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := d.su.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("as superuser: %s: %v", sql, err)
	}
}

// scalar runs a one-value query as the superuser.
func scalar[T any](t testing.TB, d *database, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := d.su.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("as superuser: %s: %v", sql, err)
	}
	return v
}

// The example database: policies/schema.sql plus the build of this
// directory, applied twice with psql. Set up once, shared by the tests.
var example struct {
	once    sync.Once
	db      *database
	script  string
	applies [2]struct {
		out []byte
		err error
	}
	err error
}

func exampleDB(t *testing.T) *database {
	t.Helper()
	s := server(t)
	example.once.Do(func() {
		if example.db, example.err = createDatabase(s, "example", "schema.sql"); example.err != nil {
			return
		}
		if example.script, example.err = buildScript("."); example.err != nil {
			return
		}
		for i := range example.applies {
			a := &example.applies[i]
			a.out, a.err = applyScript(context.Background(), s, "example", example.script)
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

// person is who a request comes from: the role PostgREST switches to and the
// claims of the verified JWT.
type person struct {
	name   string
	role   string
	claims map[string]any
}

// keycloakUser is a signed-in user as Keycloak issues the access token, with
// the role claim PostgREST reads (from a Keycloak mapper).
func keycloakUser(username, sub string) person {
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
	return person{name: username, role: "web_user", claims: claims}
}

// requester makes requests for one person on one API path.
type requester struct {
	t      *testing.T
	db     *database
	who    person
	path   string
	expand func(string) string // fills {table}, {cols}, ... in SQL; may be nil
}

// do runs fn in the transaction PostgREST opens for method: READ ONLY for
// GET and HEAD, role and claims set with set_config.
func (r requester) do(method string, fn func(pgx.Tx) error) error {
	r.t.Helper()
	req := pgrest.Request{Method: method, Path: r.path, Role: r.who.role, Claims: r.who.claims}
	return pgrest.Do(r.t.Context(), r.db.api, req, fn)
}

func (r requester) sql(s string) string {
	if r.expand != nil {
		return r.expand(s)
	}
	return s
}

// query runs a statement that returns rows of (id, text, owner).
func (r requester) query(method, sql string, args ...any) ([]row, error) {
	r.t.Helper()
	var got []row
	err := r.do(method, func(tx pgx.Tx) error {
		rows, err := tx.Query(r.t.Context(), r.sql(sql), args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		return err
	})
	if err != nil {
		return nil, err
	}
	return names(got), nil
}

// exec runs a statement and returns how many rows it affected.
func (r requester) exec(method, sql string, args ...any) (int64, error) {
	r.t.Helper()
	var n int64
	err := r.do(method, func(tx pgx.Tx) error {
		tag, err := tx.Exec(r.t.Context(), r.sql(sql), args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// row is a row as the tests compare it: the owner is shown by name.
type row struct {
	ID    int64
	Text  string
	Owner string
}

func names(rows []row) []row {
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

func wantRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func noError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantSQLError asserts err is a database error with the SQLSTATE code whose
// message contains msg.
func wantSQLError(t *testing.T, err error, code, msg string) {
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

// planShape is what matters in a plan of a policy-filtered query.
type planShape struct {
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

// walkPlan reads the output of EXPLAIN (FORMAT JSON).
func walkPlan(explain []byte) (planShape, error) {
	var doc []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(explain, &doc); err != nil {
		return planShape{}, fmt.Errorf("reading EXPLAIN (FORMAT JSON): %w", err)
	}
	if len(doc) != 1 {
		return planShape{}, fmt.Errorf("EXPLAIN returned %d plans, want 1", len(doc))
	}
	var shape planShape
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

// planProblems says why a plan of a policy-filtered query would not scale:
// one of the indexes the policy's arms need is unused (an owner-only policy
// needs the owner index; an owner-or-group policy a BitmapOr of the owner
// and group indexes), a table read row by row (Seq Scan), the caller's id
// and groups not computed once each in initPlans InitPlans, a SubPlan or a
// function called per row.
func planProblems(p planShape, initPlans int, indexes ...string) []string {
	var problems []string
	for _, index := range indexes {
		if !contains(p.Indexes, index) {
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// The group API, called as PostgREST calls it (POST /rpc/<function>).
// ---------------------------------------------------------------------------

// rpc calls a function of the group API as who (POST /rpc/fn) with named
// arguments, as PostgREST does; args are name, value pairs.
func rpc(t *testing.T, db *database, who person, fn string, args ...any) error {
	t.Helper()
	var named []string
	var values []any
	for i := 0; i+1 < len(args); i += 2 {
		values = append(values, args[i+1])
		named = append(named, fmt.Sprintf("%s => $%d", args[i], len(values)))
	}
	sql := fmt.Sprintf("select app.%s(%s)", fn, strings.Join(named, ", "))
	_, err := requester{t: t, db: db, who: who, path: "/rpc/" + fn}.exec("POST", sql, values...)
	return err
}

// createGroup is POST /rpc/create_group {"name"} as who: the new group's id.
func createGroup(t *testing.T, db *database, who person, name string) int64 {
	t.Helper()
	var id int64
	err := requester{t: t, db: db, who: who, path: "/rpc/create_group"}.do("POST", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select app.create_group(name => $1)", name).Scan(&id)
	})
	if err != nil {
		t.Fatalf("%s: POST /rpc/create_group {%q}: %v", who.name, name, err)
	}
	return id
}

// addMember is POST /rpc/add_group_member as who; it must succeed. An
// empty role is left out of the request (the API's default: member).
func addMember(t *testing.T, db *database, who person, group int64, userID, role string) {
	t.Helper()
	args := []any{"group_id", group, "user_id", userID}
	if role != "" {
		args = append(args, "role", role)
	}
	if err := rpc(t, db, who, "add_group_member", args...); err != nil {
		t.Fatalf("%s: POST /rpc/add_group_member {%d, %s, %s}: %v", who.name, group, userID, role, err)
	}
}
