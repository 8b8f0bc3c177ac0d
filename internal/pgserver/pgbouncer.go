package pgserver

// pgbouncer in front of a Server, in transaction pooling mode, the way
// PostgREST deployments commonly run it.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PgBouncerHint tells how to get a pgbouncer binary.
const PgBouncerHint = "pgbouncer not found; run `make test` (it runs scripts/ensure-pgbouncer.sh, " +
	"which installs or downloads it), or install it (Debian/Ubuntu: apt-get install pgbouncer) " +
	"and/or set PGBOUNCER to the binary"

// pgbouncerCache is where scripts/ensure-pgbouncer.sh extracts the Debian
// package, relative to the repository root.
const pgbouncerCache = ".cache/pgbouncer/usr/sbin/pgbouncer"

// PgBouncerBinary locates pgbouncer: $PGBOUNCER; pgbouncer on $PATH;
// /usr/sbin/pgbouncer (Debian's package, not on a user's PATH); the
// repo-local .cache/pgbouncer extraction made by scripts/ensure-pgbouncer.sh.
func PgBouncerBinary() (string, error) {
	if p := os.Getenv("PGBOUNCER"); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("pgserver: PGBOUNCER=%q is not an executable file; %s", p, PgBouncerHint)
		}
		return p, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if p := "/usr/sbin/pgbouncer"; isExecutable(p) {
		return p, nil
	}
	if root := repoRoot(); root != "" {
		if p := filepath.Join(root, pgbouncerCache); isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New("pgserver: " + PgBouncerHint)
}

// PgBouncerOptions configures a PgBouncer.
type PgBouncerOptions struct {
	// PoolSize is default_pool_size: server connections per (database,
	// user) pair. Clients beyond it wait for a server connection to be free
	// at the end of another client's transaction. 0 means 2.
	PoolSize int
	// Users may connect (auth_type trust still needs them in auth_file);
	// the server authenticates pgbouncer by trust as well. Nil means
	// postgres and authenticator.
	Users []string
}

// PgBouncer is a running pgbouncer in transaction pooling mode in front of
// a Server: any database name is passed through to the server.
type PgBouncer struct {
	Port int // TCP port on 127.0.0.1

	dir     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited

	mu      sync.Mutex
	stopped bool
}

// StartPgBouncer starts pgbouncer on a random port in front of s, as the
// unprivileged user when running as root (pgbouncer refuses root). Call
// Stop to shut it down and remove its files.
func StartPgBouncer(ctx context.Context, s *Server, opts PgBouncerOptions) (*PgBouncer, error) {
	bin, err := PgBouncerBinary()
	if err != nil {
		return nil, err
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 2
	}
	if opts.Users == nil {
		opts.Users = []string{"postgres", "authenticator"}
	}
	dir, err := os.MkdirTemp("", "iamc-pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgserver: creating pgbouncer dir: %w", err)
	}
	b := &PgBouncer{dir: dir, logPath: filepath.Join(dir, "pgbouncer.log")}
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			b.removeDir()
			return nil, fmt.Errorf("pgserver: chown %s: %w", dir, err)
		}
	}
	var userlist strings.Builder
	for _, u := range opts.Users {
		fmt.Fprintf(&userlist, "%q \"\"\n", u)
	}
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(userlist.String()), 0o644); err != nil {
		b.removeDir()
		return nil, fmt.Errorf("pgserver: writing pgbouncer userlist: %w", err)
	}

	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			b.removeDir()
			return nil, err
		}
		if startErr = b.start(ctx, bin, s, opts, port); startErr == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	b.removeDir()
	return nil, startErr
}

// config is pgbouncer.ini. server_reset_query is not run in transaction
// mode (server_reset_query_always = 0, the default): whatever a client
// leaves in a server connection's session is seen by the next client, as
// in production; the tests rely on that to prove nothing depends on
// session state.
func (b *PgBouncer) config(s *Server, opts PgBouncerOptions, port int) string {
	return fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
server_reset_query_always = 0
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
admin_users = postgres
log_connections = 1
log_disconnections = 1
`, s.Port, port, filepath.Join(b.dir, "userlist.txt"), opts.PoolSize, b.logPath, filepath.Join(b.dir, "pgbouncer.pid"))
}

func (b *PgBouncer) start(ctx context.Context, bin string, s *Server, opts PgBouncerOptions, port int) error {
	ini := filepath.Join(b.dir, "pgbouncer.ini")
	if err := os.WriteFile(ini, []byte(b.config(s, opts, port)), 0o644); err != nil {
		return fmt.Errorf("pgserver: writing %s: %w", ini, err)
	}
	cmd := exec.Command(bin, ini) // foreground; Stop signals it
	cmd.Env = pgbouncerEnv(bin)
	cmd.Dir = b.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgserver: starting %s: %w", bin, err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("pgserver: pgbouncer exited at start (port %d): %v\n%s\nlog:\n%s", port, waitErr, out.String(), b.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			b.Port, b.cmd, b.done = port, cmd, done
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("pgserver: pgbouncer did not listen on %s: %v\nlog:\n%s", addr, ctx.Err(), b.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgbouncerEnv adds the library dirs of a .deb extraction
// (<prefix>/usr/sbin/pgbouncer) to LD_LIBRARY_PATH: libc-ares etc. may
// only be there.
func pgbouncerEnv(bin string) []string {
	env := os.Environ()
	const marker = "/usr/sbin/pgbouncer"
	if !strings.HasSuffix(bin, marker) || bin == marker {
		return env
	}
	prefix := strings.TrimSuffix(bin, marker)
	var libs []string
	for _, pattern := range []string{"/usr/lib/*-linux-gnu", "/lib/*-linux-gnu"} {
		m, _ := filepath.Glob(prefix + pattern)
		libs = append(libs, m...)
	}
	if len(libs) == 0 {
		return env
	}
	if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
		libs = append(libs, old)
	}
	return append(env, "LD_LIBRARY_PATH="+strings.Join(libs, ":"))
}

// URL is a connection URL for db as user through pgbouncer. pgbouncer 1.18
// cannot keep protocol-level prepared statements across transactions in
// transaction mode: clients must not prepare named statements (pgx:
// default_query_exec_mode=exec or simple_protocol; PostgREST:
// db-prepared-statements = false). The mode is left to the caller.
func (b *PgBouncer) URL(db, user string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(user),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Log returns pgbouncer's log.
func (b *PgBouncer) Log() string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(no pgbouncer log: %v)", err)
	}
	return string(data)
}

// Stop shuts pgbouncer down (SIGINT: safe shutdown, then kill after 10s)
// and removes its files. Safe to call more than once.
func (b *PgBouncer) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return nil
	}
	b.stopped = true
	var err error
	if b.cmd != nil {
		_ = b.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
			err = errors.New("pgserver: pgbouncer did not stop on SIGINT within 10s; killed")
		}
	}
	b.removeDir()
	return err
}

func (b *PgBouncer) removeDir() { _ = os.RemoveAll(b.dir) }
