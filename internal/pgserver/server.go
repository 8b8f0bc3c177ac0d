// Package pgserver runs throwaway PostgreSQL servers: for tests (through
// internal/pgtest), the demo and `iamc bench --ephemeral`.
//
// Each Server is a fresh cluster (initdb) in a temporary directory, listening
// on a random 127.0.0.1 TCP port and on a unix socket in its own temporary
// directory, tuned for speed rather than durability. When the test process
// runs as root, the server binaries are run as the unprivileged user
// "postgres" (or "nobody"), because initdb and postgres refuse to run as root.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// InstallHint tells how to get PostgreSQL server binaries.
const InstallHint = "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; " +
	"run `make test` (it runs scripts/ensure-postgres.sh, which installs or downloads them), " +
	"or install them (Debian/Ubuntu: apt-get install postgresql) and/or set PG_BIN to their directory"

// cacheBinGlob is where scripts/ensure-postgres.sh extracts Debian packages,
// relative to the repository root.
const cacheBinGlob = ".cache/postgresql/usr/lib/postgresql/*/bin"

// BinDir locates the PostgreSQL server binaries (initdb, pg_ctl, postgres).
// It tries, in order: $PG_BIN; `pg_config --bindir`; the highest
// /usr/lib/postgresql/*/bin; the repo-local .cache/postgresql extraction made
// by scripts/ensure-postgres.sh; initdb on $PATH.
func BinDir() (string, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if !hasServerBinaries(dir) {
			return "", fmt.Errorf("pgserver: PG_BIN=%q does not contain initdb, pg_ctl and postgres; %s", dir, InstallHint)
		}
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	if dir := highestVersionDir("/usr/lib/postgresql/*/bin"); dir != "" {
		return dir, nil
	}
	if root := repoRoot(); root != "" {
		if dir := highestVersionDir(filepath.Join(root, cacheBinGlob)); dir != "" {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", errors.New("pgserver: " + InstallHint)
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if !isExecutable(filepath.Join(dir, name)) {
			return false
		}
	}
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// highestVersionDir expands a glob of the form .../postgresql/*/bin and
// returns the match with the highest version that holds server binaries.
func highestVersionDir(pattern string) string {
	matches, _ := filepath.Glob(pattern)
	sort.Slice(matches, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(matches[i])), filepath.Base(filepath.Dir(matches[j])))
	})
	for i := len(matches) - 1; i >= 0; i-- {
		if hasServerBinaries(matches[i]) {
			return matches[i]
		}
	}
	return ""
}

// versionLess compares dotted numeric versions ("9.6" < "15").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errx := strconv.Atoi(as[i])
		y, erry := strconv.Atoi(bs[i])
		if errx != nil || erry != nil {
			if as[i] != bs[i] {
				return as[i] < bs[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Server is a running throwaway PostgreSQL server. The superuser is
// "postgres"; authentication is trust.
type Server struct {
	BinDir    string // directory of initdb, pg_ctl, postgres
	DataDir   string // cluster data directory (removed by Stop)
	SocketDir string // unix socket directory (removed by Stop)
	Port      int    // TCP port on 127.0.0.1, also the unix socket's port

	baseDir string              // temp dir holding DataDir and SocketDir
	logPath string              // server log (inside DataDir)
	cred    *syscall.Credential // non-nil when running as root
	env     []string            // environment for PostgreSQL programs

	mu      sync.Mutex
	stopped bool
	stopErr error
}

// Start creates a fresh cluster in a temporary directory and starts a server
// on a random free port. Call Stop to shut it down and remove its files.
func Start(ctx context.Context) (*Server, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{BinDir: binDir, env: programEnv(binDir)}
	if os.Geteuid() == 0 {
		if s.cred, err = unprivilegedCredential(); err != nil {
			return nil, err
		}
	}
	if err := s.makeDirs(); err != nil {
		s.removeDirs()
		return nil, err
	}
	if out, err := s.run(ctx, "initdb", "-D", s.DataDir, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "-N"); err != nil {
		s.removeDirs()
		return nil, fmt.Errorf("pgserver: initdb: %w\n%s", err, out)
	}
	conf := fmt.Sprintf(`
# added by pgtest
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
# a test package may keep two connections to each of its many databases
max_connections = 120
`, strings.ReplaceAll(s.SocketDir, "'", "''"))
	if err := appendFile(filepath.Join(s.DataDir, "postgresql.conf"), conf); err != nil {
		s.removeDirs()
		return nil, fmt.Errorf("pgserver: writing postgresql.conf: %w", err)
	}

	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			s.removeDirs()
			return nil, err
		}
		out, err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.DataDir,
			"-l", s.logPath, "-o", "-p "+strconv.Itoa(port))
		if err == nil {
			s.Port = port
			return s, nil
		}
		startErr = fmt.Errorf("pgserver: pg_ctl start (port %d, attempt %d): %w\n%s\nserver log:\n%s",
			port, attempt+1, err, out, s.LogTail())
		// Make sure nothing half-started keeps running before retrying.
		_, _ = s.run(context.Background(), "pg_ctl", "stop", "-D", s.DataDir, "-m", "immediate", "-w")
		if ctx.Err() != nil {
			break
		}
	}
	s.removeDirs()
	return nil, startErr
}

// makeDirs creates <tmp>/iamc-pg-*/{data,sock}, owned by the user that runs
// the server; the base dir is 0755 so that user can traverse it.
func (s *Server) makeDirs() error {
	base, err := os.MkdirTemp("", "iamc-pg-")
	if err != nil {
		return fmt.Errorf("pgserver: creating temp dir: %w", err)
	}
	s.baseDir = base
	if err := os.Chmod(base, 0o755); err != nil {
		return fmt.Errorf("pgserver: chmod %s: %w", base, err)
	}
	s.DataDir = filepath.Join(base, "data")
	s.SocketDir = filepath.Join(base, "sock")
	s.logPath = filepath.Join(s.DataDir, "server.log")
	for _, dir := range []string{s.DataDir, s.SocketDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if s.cred != nil {
			if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return fmt.Errorf("pgserver: %w", err)
			}
		}
	}
	return nil
}

func (s *Server) removeDirs() {
	if s.baseDir != "" {
		_ = os.RemoveAll(s.baseDir)
	}
}

// run runs a program from BinDir, as the unprivileged user if we are root.
func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return s.runEnv(ctx, filepath.Join(s.BinDir, name), s.env, args...)
}

// runEnv runs the program at path with env, as run does.
func (s *Server) runEnv(ctx context.Context, path string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Dir = s.baseDir // must be accessible to the unprivileged user
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	// Don't let a lingering postgres child (which inherits stdout/stderr
	// pipes) block Wait forever.
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// unprivilegedCredential picks "postgres" if present in /etc/passwd, else "nobody".
func unprivilegedCredential() (*syscall.Credential, error) {
	name := "nobody"
	if passwd, err := os.ReadFile("/etc/passwd"); err == nil && bytes.Contains(append([]byte("\n"), passwd...), []byte("\npostgres:")) {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root and cannot find user %q to run PostgreSQL as: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgserver: user %q: bad uid %q", name, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgserver: user %q: bad gid %q", name, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// programEnv returns the environment for PostgreSQL programs. Binaries
// extracted from .deb files into a prefix (…/usr/lib/postgresql/N/bin) need
// the prefix's library dirs (libpq etc.) on LD_LIBRARY_PATH.
func programEnv(binDir string) []string {
	env := os.Environ()
	const marker = "/usr/lib/postgresql/"
	i := strings.LastIndex(binDir, marker)
	if i <= 0 {
		return env // system install
	}
	prefix := binDir[:i]
	var libs []string
	for _, pattern := range []string{"/usr/lib/*-linux-gnu", "/lib/*-linux-gnu"} {
		m, _ := filepath.Glob(prefix + pattern)
		libs = append(libs, m...)
	}
	if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
		libs = append(libs, old)
	}
	return append(env, "LD_LIBRARY_PATH="+strings.Join(libs, ":"))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Stop shuts the server down (immediate mode) and removes its directories.
// It is safe to call more than once; later calls return the first result.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := s.run(ctx, "pg_ctl", "stop", "-D", s.DataDir, "-m", "immediate", "-w"); err != nil {
		s.stopErr = fmt.Errorf("pgserver: pg_ctl stop: %w\n%s", err, out)
	}
	if err := os.RemoveAll(s.baseDir); err != nil && s.stopErr == nil {
		s.stopErr = fmt.Errorf("pgserver: removing %s: %w", s.baseDir, err)
	}
	return s.stopErr
}

// URL is a TCP connection URL for db as user (usable by pgx, psql, PostgREST).
func (s *Server) URL(db, user string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(user),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SocketURL is a connection URL for db as user via the unix socket.
func (s *Server) SocketURL(db, user string) string {
	q := func(v string) string { return strings.ReplaceAll(url.QueryEscape(v), "%2F", "/") }
	return fmt.Sprintf("postgres:///%s?host=%s&port=%d&user=%s", url.PathEscape(db), q(s.SocketDir), s.Port, q(user))
}

// CreateDatabase creates database name (as superuser postgres).
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if err := s.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgserver: create database %q: %w", name, err)
	}
	return nil
}

// Exec runs a (multi-statement) SQL script in db as superuser postgres using
// the simple query protocol. A server error is returned wrapped (errors.As
// finds the *pgconn.PgError); its text includes severity, message, SQLSTATE
// and, when present, detail, hint and context.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgconn.Connect(ctx, s.URL(db, "postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: connect to %q: %w", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			extra := ""
			if pgErr.Detail != "" {
				extra += "\nDETAIL: " + pgErr.Detail
			}
			if pgErr.Hint != "" {
				extra += "\nHINT: " + pgErr.Hint
			}
			if pgErr.Where != "" {
				extra += "\nCONTEXT: " + pgErr.Where
			}
			return fmt.Errorf("pgserver: exec in %q: %w%s", db, err, extra)
		}
		return fmt.Errorf("pgserver: exec in %q: %w", db, err)
	}
	return nil
}

// Psql runs psql -X -v ON_ERROR_STOP=1 against db as postgres over TCP, with
// extra args appended, and returns its combined output.
func (s *Server) Psql(ctx context.Context, db string, args ...string) ([]byte, error) {
	psql, err := findPsql(s.BinDir)
	if err != nil {
		return nil, err
	}
	base := []string{"-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", db}
	cmd := exec.CommandContext(ctx, psql, append(base, args...)...)
	cmd.Env = append(programEnv(filepath.Dir(psql)), "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("pgserver: psql %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// findPsql prefers psql next to the server binaries, then $PATH, then the
// repo-local .cache extraction.
func findPsql(binDir string) (string, error) {
	if p := filepath.Join(binDir, "psql"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("psql"); err == nil {
		return p, nil
	}
	if root := repoRoot(); root != "" {
		m, _ := filepath.Glob(filepath.Join(root, cacheBinGlob, "psql"))
		if len(m) > 0 {
			return m[len(m)-1], nil
		}
	}
	return "", errors.New("pgserver: psql not found (install postgresql-client, or run `make test`)")
}

// LogTail returns the last ~50 lines of the server log.
func (s *Server) LogTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 50 {
		lines = lines[len(lines)-50:]
	}
	return strings.Join(lines, "\n")
}
