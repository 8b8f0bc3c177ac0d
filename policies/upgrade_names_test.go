package policies_test

// The names upgrade_test.go is written in, over the shared helpers of
// internal/exampletest. That file belongs to the runtime-migrations work,
// which is changing it as the helpers move; once both have landed it can
// say Database, Person, Requester, NewDatabase, ... itself, and this file
// goes.

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgtest"
)

type database struct {
	*Database
	name    string
	su, api *pgx.Conn
}

func (d *database) exec(t testing.TB, sql string, args ...any) { d.Exec(t, sql, args...) }

type person struct {
	Person
	name   string
	claims map[string]any
}

func keycloakUser(username, sub string) person {
	p := KeycloakUser(username, sub)
	return person{Person: p, name: p.Name, claims: p.Claims}
}

var (
	alice = person{Person: Alice, name: Alice.Name, claims: Alice.Claims}
	bob   = person{Person: Bob, name: Bob.Name, claims: Bob.Claims}
	bobID = BobID
)

type requester struct {
	t    *testing.T
	db   *database
	who  person
	path string
}

func (r requester) shared() Requester {
	return Requester{T: r.t, DB: r.db.Database, Who: r.who.Person, Path: r.path}
}

func (r requester) do(method string, fn func(pgx.Tx) error) error {
	return r.shared().Do(method, fn)
}

func (r requester) exec(method, sql string, args ...any) (int64, error) {
	return r.shared().Exec(method, sql, args...)
}

func server(t testing.TB) *pgtest.Server { return Server(t) }

func buildScript(dir string) (string, error) { return BuildScript(dir) }

func applyScript(ctx context.Context, s *pgtest.Server, db, script string) ([]byte, error) {
	return ApplyScript(ctx, s, db, script)
}

func newDatabase(t testing.TB, name string, setupFiles ...string) *database {
	d := NewDatabase(t, name, setupFiles...)
	return &database{Database: d, name: d.Name, su: d.SU, api: d.API}
}

func scalar[T any](t testing.TB, d *database, sql string, args ...any) T {
	t.Helper()
	return Scalar[T](t, d.Database, sql, args...)
}

func createGroup(t *testing.T, db *database, who person, name string) int64 {
	t.Helper()
	return CreateGroup(t, db.Database, who.Person, name)
}

func addMember(t *testing.T, db *database, who person, group int64, userID, role string) {
	t.Helper()
	AddMember(t, db.Database, who.Person, group, userID, role)
}

func wantSQLError(t *testing.T, err error, code, msg string) {
	t.Helper()
	WantSQLError(t, err, code, msg)
}
