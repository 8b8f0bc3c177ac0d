package stdlib_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// TestClaimsIsInlinedAndPathProof: iam.claims() is the one runtime
// function without a pinned search_path, so that PostgreSQL inlines it.
// It must really be inlined (no call left in the plan), and a search_path
// that puts a hostile <> and = ahead of pg_catalog must not change what it
// returns.
func TestClaimsIsInlinedAndPathProof(t *testing.T) {
	// A database of its own: the hostile schema must not reach other tests.
	db := NewDatabase(t, "claims_path", "schema.sql")
	script, err := BuildScript(Dir)
	NoError(t, err)
	if out, err := ApplyScript(t.Context(), db.Server, db.Name, script); err != nil {
		t.Fatalf("applying the build: %v\n%s", err, out)
	}
	var plan string
	err = Requester{T: t, DB: db, Who: Alice, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), `explain (verbose, format text) select iam.claims()`)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		plan = strings.Join(lines, "\n")
		return err
	})
	NoError(t, err)
	if strings.Contains(plan, "iam.claims") || !strings.Contains(plan, "current_setting") {
		t.Errorf("iam.claims() is not inlined; the plan is:\n%s", plan)
	}

	db.Exec(t, `
		create schema if not exists hostile;
		create or replace function hostile.never(text, text) returns boolean language sql as 'select false';
		do $$ begin
		    create operator hostile.<> (leftarg = text, rightarg = text, function = hostile.never);
		    create operator hostile.= (leftarg = text, rightarg = text, function = hostile.never);
		exception when duplicate_function then null;
		end $$;
		grant usage on schema hostile to web_user;
		grant execute on function hostile.never(text, text) to web_user;`)
	var sub string
	err = Requester{T: t, DB: db, Who: Alice, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `set local search_path = hostile, pg_catalog`); err != nil {
			return err
		}
		return tx.QueryRow(t.Context(), `select iam.claims() ->> 'sub'`).Scan(&sub)
	})
	NoError(t, err)
	if sub != AliceID {
		t.Errorf("with search_path = hostile, pg_catalog: iam.claims() ->> 'sub' = %q, want %q", sub, AliceID)
	}
	// The hostile operator is really there and really used by unqualified SQL.
	var hostile bool
	err = Requester{T: t, DB: db, Who: Alice, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `set local search_path = hostile, pg_catalog`); err != nil {
			return err
		}
		return tx.QueryRow(t.Context(), `select 'a'::text <> 'b'::text`).Scan(&hostile)
	})
	NoError(t, err)
	if hostile {
		t.Error("the hostile <> was not picked up by unqualified SQL: the check above proves nothing")
	}
}
