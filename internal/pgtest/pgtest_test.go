package pgtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestServer(t *testing.T) {
	ctx := context.Background()
	s := New(t)

	if s.Port == 0 || s.DataDir == "" || s.SocketDir == "" {
		t.Fatalf("incomplete server: %+v", s)
	}
	if os.Geteuid() == 0 {
		// initdb/postgres refuse root; the cluster must belong to another user.
		fi, err := os.Stat(s.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid == 0 {
			t.Fatalf("data dir owned by root (running as root should use an unprivileged user)")
		}
	}
	if err := s.Exec(ctx, "postgres", "select 1; create table t (x int); insert into t values (42)"); err != nil {
		t.Fatalf("Exec: %v", err)
	}

	out, err := s.Psql(ctx, "postgres", "-tA", "-c", "select 40 + 2, (select x from t)")
	if err != nil {
		t.Fatalf("Psql: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "42|42" {
		t.Fatalf("psql output = %q, want %q", got, "42|42")
	}

	// Errors carry SQLSTATE and are unwrappable to *pgconn.PgError.
	err = s.Exec(ctx, "postgres", "select * from no_such_table")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" || !strings.Contains(err.Error(), "42P01") {
		t.Fatalf("Exec error = %v, want undefined_table (42P01)", err)
	}
	if _, err := s.Psql(ctx, "postgres", "-c", "select * from no_such_table"); err == nil {
		t.Fatal("Psql: expected error with ON_ERROR_STOP")
	}

	if err := s.CreateDatabase(ctx, "app-db"); err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	// Both URL forms reach the new database via pgx.
	for _, url := range []string{s.URL("app-db", "postgres"), s.SocketURL("app-db", "postgres")} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect %s: %v", url, err)
		}
		var db string
		if err := conn.QueryRow(ctx, "select current_database()").Scan(&db); err != nil {
			t.Fatalf("query via %s: %v", url, err)
		}
		conn.Close(ctx)
		if db != "app-db" {
			t.Fatalf("current_database via %s = %q", url, db)
		}
	}
	if tail := s.LogTail(); !strings.Contains(tail, "ready to accept connections") {
		t.Errorf("LogTail lacks startup line:\n%s", tail)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(s.DataDir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still exists after Stop (err=%v)", s.DataDir, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestParallelServers(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			if err := s.Exec(context.Background(), "postgres", "select 1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
