package e2e

// Test helpers: the database (policies/ built and applied), a PostgREST
// subprocess serving it, and HTTP requests to it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/exampletest"
	_ "github.com/iamc/iamc/internal/goldenfile" // so `go test ./... -update` works
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// skipMessage is what the suite says when it cannot run.
const skipMessage = "postgrest not on PATH: the end-to-end suite needs a PostgREST 12 binary (see README, 'End-to-end tests')"

// postgrestBinary finds postgrest on PATH, or skips the test.
func postgrestBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("postgrest")
	if err != nil {
		t.Skip(skipMessage)
	}
	// The JWT error codes asserted here (PGRST301 for every JWT problem)
	// are PostgREST 12's; later versions split them.
	version, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	t.Logf("using %s: %s", bin, strings.TrimSpace(string(version)))
	return bin
}

// TestMain: the tests share exampletest's cluster (the example's roles),
// each with databases of its own; only a standby needs a primary of its own.
func TestMain(m *testing.M) { os.Exit(exampletest.Main(m)) }

// policiesDir is the example deployment: roles.sql, schema.sql and the .iam files.
const policiesDir = "../policies"

// ---------------------------------------------------------------------------
// The database.
// ---------------------------------------------------------------------------

// buildPolicies compiles the .iam files of policies/ in-process, as
// `iamc build policies/` does, and writes the script to a file for psql.
func buildPolicies(t *testing.T) string {
	t.Helper()
	out, err := compiler.Compile(policiesDir)
	if err != nil {
		t.Fatalf("compiling %s: %v", policiesDir, err)
	}
	path := filepath.Join(t.TempDir(), "policies.sql")
	if err := os.WriteFile(path, []byte(out.Script()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// psqlFile runs a SQL file in db as the superuser with psql -f.
func psqlFile(t *testing.T, s *pgtest.Server, db, path string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Psql(t.Context(), db, "-f", abs); err != nil {
		t.Fatalf("applying %s to %s: %v", path, db, err)
	}
}

// newDatabase creates database name with policies/schema.sql and the build
// of policies/ applied, and returns a superuser connection to it (RLS does
// not apply to it: it sees what really is in the tables).
func newDatabase(t *testing.T, s *pgtest.Server, name, script string) *pgx.Conn {
	t.Helper()
	if err := s.CreateDatabase(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	psqlFile(t, s, name, filepath.Join(policiesDir, "schema.sql"))
	psqlFile(t, s, name, script)
	su, err := pgx.Connect(t.Context(), s.URL(name, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(context.Background()) })
	return su
}

// row is a row of app.todos or app.chats: id, its text column, owner_id.
type row struct {
	ID    int64
	Text  string
	Owner string
}

// tableRows reads the whole table as the superuser, ordered by id.
// emulate makes req through internal/pgrest, as PostgREST would, and
// decodes what the JSON function fn (which echoes the request's settings)
// answers there, to compare with what it answered through PostgREST.
func emulate(t *testing.T, conn *pgx.Conn, req pgrest.Request, fn string, into any) {
	t.Helper()
	err := pgrest.Do(t.Context(), conn, req, func(tx pgx.Tx) error {
		var text string
		if err := tx.QueryRow(t.Context(), "select "+fn+"()::text").Scan(&text); err != nil {
			return err
		}
		return json.Unmarshal([]byte(text), into)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func tableRows(t *testing.T, su *pgx.Conn, tbl table) []row {
	t.Helper()
	rows, err := su.Query(t.Context(), fmt.Sprintf("select id, %s, owner_id::text from %s order by id", tbl.text, tbl.name))
	if err != nil {
		t.Fatalf("as superuser: %v", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatalf("as superuser: %v", err)
	}
	return got
}

// ---------------------------------------------------------------------------
// PostgREST.
// ---------------------------------------------------------------------------

// jwtConfig is what a test fills in or overrides in the shipped
// configuration.
type jwtConfig struct {
	secret string // the contents of the jwt-secret file: a shared secret or a JWKS
	// roleClaimKey overrides jwt-role-claim-key (PGRST_JWT_ROLE_CLAIM_KEY)
	// for the documented alternative; "" runs the shipped setting.
	roleClaimKey string
}

// shippedConfig is the PostgREST configuration shipped with the example.
// The suite runs it as shipped: it fills the file's $(VAR)s and overrides
// through PGRST_* variables only where to listen and how much to log.
const shippedConfig = "../policies/postgrest.conf"

// syncBuffer collects a subprocess's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPostgREST runs bin serving schema app of db, logging in as
// authenticator, and waits until it is ready. It is stopped in t.Cleanup;
// when the test failed, its output is logged first.
func startPostgREST(t *testing.T, bin string, s *pgtest.Server, db string, jwt jwtConfig) *client {
	t.Helper()
	return startPostgRESTAt(t, bin, s.URL(db, "authenticator"), jwt)
}

// startPostgRESTAt is startPostgREST for any database URL (a standby, a
// pooler), with extra PGRST_* settings as NAME=value.
func startPostgRESTAt(t *testing.T, bin, rawURL string, jwt jwtConfig, settings ...string) *client {
	t.Helper()
	dbURI, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	// pgtest trusts every connection; the password is the one of roles.sql all the same.
	dbURI.User = url.UserPassword("authenticator", "mypass")
	secretPath := filepath.Join(t.TempDir(), "jwt-secret")
	if err := os.WriteFile(secretPath, []byte(jwt.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	confPath, err := filepath.Abs(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	// freePort's port can be taken by another process before PostgREST
	// binds it (parallel tests start several servers): try again on fresh
	// ports when that is why PostgREST exited.
	for attempt := 1; ; attempt++ {
		port, adminPort := freePort(t), freePort(t)
		env := []string{
			// The $(VAR)s of the shipped file.
			"IAMC_DB_URI=" + dbURI.String(),
			"IAMC_JWT_SECRET_FILE=" + secretPath,
			// Environment variables override the file.
			"PGRST_SERVER_HOST=127.0.0.1",
			"PGRST_SERVER_PORT=" + strconv.Itoa(port),
			"PGRST_ADMIN_SERVER_PORT=" + strconv.Itoa(adminPort),
			"PGRST_DB_POOL=4",
			"PGRST_LOG_LEVEL=info",
		}
		if jwt.roleClaimKey != "" {
			env = append(env, "PGRST_JWT_ROLE_CLAIM_KEY="+jwt.roleClaimKey)
		}
		env = append(env, settings...)
		// Nothing of the caller's environment may change the configuration.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PGRST_") && !strings.HasPrefix(kv, "IAMC_") {
				env = append(env, kv)
			}
		}
		c, output := launchPostgREST(t, bin, confPath, env, port, adminPort)
		if c != nil {
			return c
		}
		if attempt < 3 && strings.Contains(output, "Address in use") {
			t.Logf("postgrest could not bind port %d or %d (taken meanwhile); trying other ports", port, adminPort)
			continue
		}
		t.Fatalf("postgrest exited before it was ready; its output:\n%s", output)
	}
}

// launchPostgREST starts PostgREST and waits until it is ready: the client,
// or nil and its output when it exited first.
func launchPostgREST(t *testing.T, bin, confPath string, env []string, port, adminPort int) (*client, string) {
	t.Helper()
	var output syncBuffer
	cmd := exec.Command(bin, confPath)
	cmd.Env = env
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting postgrest: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("postgrest output:\n%s", output.String())
		}
	})

	// /ready on the admin port answers 200 once PostgREST has connected and
	// loaded its schema cache.
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return nil, fmt.Sprintf("(%v)\n%s", err, output.String())
		default:
		}
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgrest was not ready after 30s (last: %v); its output:\n%s", statusOrErr(resp, err), output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &client{base: fmt.Sprintf("http://127.0.0.1:%d", port), http: &http.Client{Timeout: 10 * time.Second}}, ""
}

func statusOrErr(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ---------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------

// client makes requests to a running PostgREST.
type client struct {
	base string
	http *http.Client
}

// request is one HTTP request to the API.
type request struct {
	method string
	path   string // with the query string, e.g. /todos?id=eq.1
	token  string // sent as Authorization: Bearer; "" for an anonymous request
	prefer string // Prefer header; "" for none
	body   any    // JSON-encoded when not nil
}

// response is what PostgREST answered.
type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}

func (c *client) do(t *testing.T, req request) response {
	t.Helper()
	var body io.Reader
	if req.body != nil {
		j, err := json.Marshal(req.body)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr, err := http.NewRequestWithContext(t.Context(), req.method, c.base+req.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.prefer != "" {
		hr.Header.Set("Prefer", req.prefer)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", req.method, req.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the response: %v", req.method, req.path, err)
	}
	return response{status: resp.StatusCode, body: b, header: resp.Header}
}

// apiError is PostgREST's JSON error body.
type apiError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Details *string `json:"details"`
	Hint    *string `json:"hint"`
}

// wantStatus fails the test unless the response has the status.
func wantStatus(t *testing.T, resp response, status int) {
	t.Helper()
	if resp.status != status {
		t.Fatalf("got %s, want status %d", resp, status)
	}
}

// wantError checks status and the code of PostgREST's error body, and
// that its message contains msg.
func wantError(t *testing.T, resp response, status int, code, msg string) apiError {
	t.Helper()
	wantStatus(t, resp, status)
	var e apiError
	if err := json.Unmarshal(resp.body, &e); err != nil {
		t.Fatalf("got %s, want a JSON error body: %v", resp, err)
	}
	if e.Code != code || !strings.Contains(e.Message, msg) {
		t.Fatalf("got %s, want code %q and a message containing %q", resp, code, msg)
	}
	return e
}

// decodeRows decodes a JSON array of rows of tbl.
func decodeRows(t *testing.T, resp response, tbl table) []row {
	t.Helper()
	var got []map[string]any
	if err := json.Unmarshal(resp.body, &got); err != nil {
		t.Fatalf("got %s, want a JSON array of rows: %v", resp, err)
	}
	rows := make([]row, 0, len(got))
	for _, m := range got {
		id, _ := m["id"].(float64)
		text, _ := m[tbl.text].(string)
		owner, _ := m["owner_id"].(string)
		rows = append(rows, row{ID: int64(id), Text: text, Owner: owner})
	}
	return rows
}

// wantRows decodes a JSON array of rows of tbl and compares it with want.
func wantRows(t *testing.T, resp response, tbl table, want []row) {
	t.Helper()
	if rows := decodeRows(t, resp, tbl); !slices.Equal(rows, want) {
		t.Fatalf("got rows %v, want %v (response %s)", rows, want, resp)
	}
}

// wantTable checks the whole table as the superuser sees it.
func wantTable(t *testing.T, su *pgx.Conn, tbl table, want []row) {
	t.Helper()
	if got := tableRows(t, su, tbl); !slices.Equal(got, want) {
		t.Fatalf("%s holds %v, want %v", tbl.name, got, want)
	}
}
