package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPgBouncer: clients connect through pgbouncer; with a pool of one
// server connection, two clients' transactions run on the same backend
// (they are pooled), and a named prepared statement is not needed.
func TestPgBouncer(t *testing.T) {
	if _, err := PgBouncerBinary(); err != nil {
		t.Skipf("%v", err) // before starting PostgreSQL for nothing
	}
	s := New(t)
	b := NewPgBouncer(t, s, PgBouncerOptions{PoolSize: 1})
	ctx := context.Background()
	pids := make([]int32, 2)
	for i := range pids {
		conn, err := pgx.Connect(ctx, b.URL("postgres", "postgres")+"&default_query_exec_mode=exec")
		if err != nil {
			t.Fatalf("connect through pgbouncer: %v", err)
		}
		defer conn.Close(ctx)
		var one int
		if err := conn.QueryRow(ctx, "select pg_backend_pid(), $1::int", 1).Scan(&pids[i], &one); err != nil {
			t.Fatalf("query through pgbouncer: %v", err)
		}
		if one != 1 {
			t.Fatalf("got %d, want 1", one)
		}
	}
	direct, err := pgx.Connect(ctx, s.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	var own int32
	if err := direct.QueryRow(ctx, "select pg_backend_pid()").Scan(&own); err != nil {
		t.Fatal(err)
	}
	if pids[0] != pids[1] || pids[0] == own {
		t.Errorf("backend pids through pgbouncer %v (direct %d): want the same pooled backend twice", pids, own)
	}
}
