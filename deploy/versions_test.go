package deploy

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// TestMaintainPrivilege: PostgreSQL 17 added the MAINTAIN privilege on
// tables (VACUUM, ANALYZE, CLUSTER, REINDEX, LOCK TABLE). Granted to a
// runtime role outside iamc, it is drift that apply reverts (iamc's
// "revoke all" covers it), and what it allowed (a request rebuilding the
// table's indexes, under an exclusive lock) stops. Before 17 the privilege
// does not exist: the GRANT fails.
func TestMaintainPrivilege(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{})
	ctx := t.Context()
	version := pgtest.MustVersionNum(t, e.s)

	_, err := e.conn.Exec(ctx, "grant maintain on app.todos to web_user")
	if version < 170000 {
		if state := pgrest.SQLState(err); state != "42601" || !strings.Contains(err.Error(), "maintain") {
			t.Fatalf("PostgreSQL %d: grant maintain: err = %v (SQLSTATE %q), want unrecognized privilege type (42601)", version, err, state)
		}
		if p := e.plan(); p.HasChanges() || len(p.Drift) != 0 {
			t.Errorf("plan after a refused grant:\n%s", text(t, p))
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}

	// A request with a JWT, as PostgREST runs it (POST: read-write).
	login, err := pgx.Connect(ctx, e.s.URL(e.db, "authenticator"))
	if err != nil {
		t.Fatal(err)
	}
	defer login.Close(context.Background())
	reindex := func() error {
		return pgrest.Do(ctx, login, pgrest.Request{Method: "POST", Path: "/rpc/x", Role: "web_user"}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "reindex table app.todos")
			return err
		})
	}
	if err := reindex(); err != nil {
		t.Fatalf("with MAINTAIN, web_user could not reindex app.todos: %v", err)
	}

	p := e.plan()
	var found bool
	for _, c := range p.Changes {
		if c.Object.Kind+" "+c.Object.Name == "grant on table app.todos to web_user" {
			found = true
			if c.Drift != Changed || !c.Reverts {
				t.Errorf("grant of MAINTAIN: drift %q reverts %v, want %q and reverted", c.Drift, c.Reverts, Changed)
			}
		} else {
			t.Errorf("unexpected change %s %s %s", c.Action, c.Object.Kind, c.Object.Name)
		}
	}
	if !found {
		t.Errorf("the MAINTAIN grant is not reported as drift:\n%s", text(t, p))
	}

	if r := e.apply(Options{}); !r.Applied {
		t.Fatal("apply did not revert the MAINTAIN grant")
	}
	if got := e.query(`select has_table_privilege('web_user', 'app.todos', 'MAINTAIN')::text`); got != "false" {
		t.Error("web_user still has MAINTAIN on app.todos")
	}
	if err := reindex(); pgrest.SQLState(err) != "42501" {
		t.Errorf("after apply, web_user reindexing app.todos: err = %v, want permission denied (42501)", err)
	}
}
