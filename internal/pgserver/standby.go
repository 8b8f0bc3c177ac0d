package pgserver

// Hot standbys: a streaming replica of a running Server, made as operators
// make one (pg_basebackup -R -X stream), read-only, replaying the
// primary's WAL.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartStandby makes a streaming replica of s with pg_basebackup (-R: it
// follows s; -X stream: WAL streamed during the copy) and starts it as a
// hot standby on a random port. The returned Server is stopped with Stop,
// like any other.
func (s *Server) StartStandby(ctx context.Context) (*Server, error) {
	r := &Server{BinDir: s.BinDir, env: s.env, cred: s.cred}
	if err := r.makeDirs(); err != nil {
		r.removeDirs()
		return nil, err
	}
	basebackup, err := s.baseBackupBinary(ctx)
	if err != nil {
		r.removeDirs()
		return nil, err
	}
	if out, err := r.runEnv(ctx, basebackup, programEnv(filepath.Dir(basebackup)), "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres",
		"-D", r.DataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		r.removeDirs()
		return nil, fmt.Errorf("pgserver: pg_basebackup of the server on port %d: %w\n%s", s.Port, err, out)
	}
	// The copy carries the primary's settings: give the standby its own
	// socket dir (the last setting wins) and make it a hot standby.
	conf := fmt.Sprintf(`
# added by pgtest for the standby
unix_socket_directories = '%s'
hot_standby = on
hot_standby_feedback = on
`, strings.ReplaceAll(r.SocketDir, "'", "''"))
	if err := appendFile(filepath.Join(r.DataDir, "postgresql.conf"), conf); err != nil {
		r.removeDirs()
		return nil, fmt.Errorf("pgserver: writing the standby's postgresql.conf: %w", err)
	}
	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			r.removeDirs()
			return nil, err
		}
		// -w returns once the standby accepts read-only connections.
		out, err := r.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", r.DataDir,
			"-l", r.logPath, "-o", "-p "+strconv.Itoa(port))
		if err == nil {
			r.Port = port
			return r, nil
		}
		startErr = fmt.Errorf("pgserver: starting the standby (port %d, attempt %d): %w\n%s\nstandby log:\n%s",
			port, attempt+1, err, out, r.LogTail())
		_, _ = r.run(context.Background(), "pg_ctl", "stop", "-D", r.DataDir, "-m", "immediate", "-w")
		if ctx.Err() != nil {
			break
		}
	}
	r.removeDirs()
	return nil, startErr
}

// ErrNoBaseBackup: no pg_basebackup here can copy the server. The
// @embedded-postgres packages `make test-matrix` uses for majors the system
// lacks ship only initdb, pg_ctl and postgres, and a pg_basebackup copies
// servers of its own major or older ones, never newer ones.
var ErrNoBaseBackup = errors.New("pgserver: no pg_basebackup of this server's major version or newer")

// baseBackupBinary finds a pg_basebackup able to copy s: the one beside its
// server binaries, else the system's (/usr/lib/postgresql/N/bin) of the same
// major or a newer one.
func (s *Server) baseBackupBinary(ctx context.Context) (string, error) {
	if p := filepath.Join(s.BinDir, "pg_basebackup"); isExecutable(p) {
		return p, nil
	}
	num, err := s.VersionNum(ctx)
	if err != nil {
		return "", err
	}
	major := num / 10000
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for _, dir := range dirs {
		n, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		if p := filepath.Join(dir, "pg_basebackup"); err == nil && n >= major && isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (server %d, binaries in %s)", ErrNoBaseBackup, major, s.BinDir)
}

// CatchUp waits until the standby s has replayed everything the primary
// had written when CatchUp was called (the primary's WAL insert LSN).
func (s *Server) CatchUp(ctx context.Context, primary *Server) error {
	p, err := pgx.Connect(ctx, primary.URL("postgres", "postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: connect to the primary: %w", err)
	}
	defer p.Close(context.Background())
	var target string
	// The insert position, not pg_current_wal_lsn(): pgtest servers run with
	// synchronous_commit = off, so the latest commits may still be in WAL
	// buffers (the WAL writer sends them on within wal_writer_delay).
	if err := p.QueryRow(ctx, "select pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		return fmt.Errorf("pgserver: reading the primary's WAL position: %w", err)
	}
	sb, err := pgx.Connect(ctx, s.URL("postgres", "postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: connect to the standby: %w", err)
	}
	defer sb.Close(context.Background())
	for {
		var replayed string
		var done bool
		err := sb.QueryRow(ctx, "select coalesce(pg_last_wal_replay_lsn()::text, ''), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
			target).Scan(&replayed, &done)
		if err != nil {
			return fmt.Errorf("pgserver: reading the standby's replay position: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgserver: the standby replayed up to %s, not %s: %w\nstandby log:\n%s", replayed, target, ctx.Err(), s.LogTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
