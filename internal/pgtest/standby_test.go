package pgtest

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestStandby: a standby made of a running server is in recovery, sees
// what the primary wrote once it has caught up, and refuses writes.
func TestStandby(t *testing.T) {
	ctx := context.Background()
	s := New(t)
	if err := s.Exec(ctx, "postgres", "create table t (x int); insert into t values (1)"); err != nil {
		t.Fatal(err)
	}
	r := NewStandby(t, s)
	if err := s.Exec(ctx, "postgres", "insert into t values (2)"); err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx, s); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, r.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var inRecovery bool
	var sum int
	if err := conn.QueryRow(ctx, "select pg_is_in_recovery(), (select sum(x) from t)").Scan(&inRecovery, &sum); err != nil {
		t.Fatal(err)
	}
	if !inRecovery || sum != 3 {
		t.Errorf("standby: in recovery %v, sum %d; want true, 3 (both rows replayed)", inRecovery, sum)
	}
	_, err = conn.Exec(ctx, "insert into t values (3)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Errorf("insert on the standby: %v, want SQLSTATE 25006 (read_only_sql_transaction)", err)
	}
}
