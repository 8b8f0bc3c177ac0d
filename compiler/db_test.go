package compiler

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// The compiler's tests on a real PostgreSQL (a new kind of subject shown
// from both sides) cannot use internal/exampletest, which imports this
// package: a server of their own with the example's roles, SQL run as the
// superuser, and requests as PostgREST makes them.

// newServer starts a server with policies/roles.sql and runs each script
// in its postgres database as the superuser, in order.
func newServer(t *testing.T, scripts ...string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	s := pgtest.New(t)
	roles, err := os.ReadFile(filepath.Join("..", "policies", "roles.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range append([]string{string(roles)}, scripts...) {
		if err := s.Exec(ctx, "postgres", sql); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres", "authenticator"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// asUser runs fn in the transaction PostgREST opens for method, as the
// signed-in user sub (role web_user).
func asUser(conn *pgx.Conn, sub, method string, fn func(pgx.Tx) error) error {
	req := pgrest.Request{Method: method, Role: "web_user", Claims: map[string]any{"sub": sub, "role": "web_user"}}
	return pgrest.Do(context.Background(), conn, req, fn)
}
