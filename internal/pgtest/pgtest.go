// Package pgtest is internal/pgserver for tests: servers, standbys and
// pgbouncers started for one test and stopped in its Cleanup. The shipped
// binaries use pgserver, so they do not link the testing package.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/iamc/iamc/internal/pgserver"
)

// The server types and functions, under the names the tests use.
type (
	Server           = pgserver.Server
	PgBouncer        = pgserver.PgBouncer
	PgBouncerOptions = pgserver.PgBouncerOptions
)

var (
	Start           = pgserver.Start
	BinDir          = pgserver.BinDir
	StartPgBouncer  = pgserver.StartPgBouncer
	PgBouncerBinary = pgserver.PgBouncerBinary
	ErrNoBaseBackup = pgserver.ErrNoBaseBackup
)

// New starts a server for a test and stops it in t.Cleanup. If the test
// failed, the tail of the server log is logged first. Missing binaries are a
// fatal error, not a skip: `make test` guarantees them.
func New(t testing.TB) *Server {
	t.Helper()
	if _, err := BinDir(); err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatalf("pgtest: starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: PostgreSQL server log (tail):\n%s", s.LogTail())
		}
		if err := s.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return s
}

// NewStandby makes and starts a hot standby of primary for a test and
// stops it in t.Cleanup (logging its log tail if the test failed).
func NewStandby(t testing.TB, primary *Server) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := primary.StartStandby(ctx)
	if errors.Is(err, ErrNoBaseBackup) {
		t.Skipf("%v: a hot standby of this server cannot be made here (install this major's client programs, e.g. Debian's postgresql-client-N)", err)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: standby log (tail):\n%s", r.LogTail())
		}
		if err := r.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return r
}

// MustVersionNum is VersionNum for tests: a failure is fatal.
func MustVersionNum(t testing.TB, s *Server) int {
	t.Helper()
	n, err := s.VersionNum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// NewPgBouncer starts pgbouncer in front of s for a test and stops it in
// t.Cleanup, logging its log if the test failed. The test is skipped, with
// the reason, only when no pgbouncer binary is found.
func NewPgBouncer(t testing.TB, s *Server, opts PgBouncerOptions) *PgBouncer {
	t.Helper()
	if _, err := PgBouncerBinary(); err != nil {
		t.Skipf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := StartPgBouncer(ctx, s, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgbouncer log:\n%s", b.Log())
		}
		if err := b.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return b
}

// Shared is one cluster for a whole test binary: the first test that asks
// starts it and runs Setup (roles, say); every test makes its own databases
// in it. The package's TestMain stops it: os.Exit(cluster.Stop(m.Run())).
type Shared struct {
	// Setup runs once, right after the server starts; a failure fails every
	// test that asks for the server.
	Setup func(ctx context.Context, s *Server) error

	once   sync.Once
	server *Server
	err    error
}

// Server is the shared cluster, started (and set up) on first use. Missing
// binaries are a fatal error, not a skip: `make test` guarantees them.
func (c *Shared) Server(t testing.TB) *Server {
	t.Helper()
	c.once.Do(func() {
		if _, err := BinDir(); err != nil {
			c.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if c.server, c.err = Start(ctx); c.err != nil || c.Setup == nil {
			return
		}
		if err := c.Setup(ctx, c.server); err != nil {
			c.err = fmt.Errorf("setting up the shared cluster: %w", err)
		}
	})
	if c.err != nil {
		t.Fatalf("pgtest: starting PostgreSQL: %v", c.err)
	}
	return c.server
}

// Stop stops the cluster if a test started it, printing the tail of its log
// when the tests failed (code is m.Run's), and returns the exit code: 1 when
// the server would not stop.
func (c *Shared) Stop(code int) int {
	if c.server == nil {
		return code
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "PostgreSQL server log (tail):\n%s\n", c.server.LogTail())
	}
	if err := c.server.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}
