package lint_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/lint"
)

// TestViewsAcrossVersions: what IAM006 says about a view readable by the
// anonymous role matches what a request without a JWT reads through it, on
// every PostgreSQL version. A view reads its tables as its owner (here the
// table owner, so row-level security is skipped) unless it is
// security_invoker, which PostgreSQL 15 added: there the table's policies
// apply to the caller. PostgreSQL 14 refuses the option.
func TestViewsAcrossVersions(t *testing.T) {
	version := pgtest.MustVersionNum(t, server(t))
	db := newDB(t, appSchema+`
set role api_owner;
create table app.notes (id int primary key, public bool not null);
insert into app.notes values (1, true), (2, false);
alter table app.notes enable row level security;
create policy anon_public on app.notes for select to web_anon using (public);
create view app.notes_owner as select id from app.notes;
reset role;
grant select on app.notes, app.notes_owner to web_anon;`)

	invoker := `set role api_owner;
create view app.notes_invoker with (security_invoker = true) as select id from app.notes;
reset role;
grant select on app.notes_invoker to web_anon;`
	err := server(t).Exec(t.Context(), db, invoker)
	if version < 150000 {
		if state := pgrest.SQLState(err); state != "22023" || !strings.Contains(err.Error(), "security_invoker") {
			t.Fatalf("PostgreSQL %d: creating a security_invoker view: err = %v (SQLSTATE %q), want unrecognized parameter (22023)", version, err, state)
		}
	} else if err != nil {
		t.Fatal(err)
	}

	// What a request without a JWT reads: PostgREST logs in as
	// authenticator and switches to web_anon.
	conn, err := pgx.Connect(t.Context(), server(t).URL(db, "authenticator"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	read := func(rel string) []int {
		t.Helper()
		var ids []int
		err := pgrest.Do(t.Context(), conn, pgrest.Request{Method: "GET", Path: "/" + rel, Role: "web_anon"}, func(tx pgx.Tx) error {
			rows, err := tx.Query(t.Context(), "select id from "+rel+" order by id")
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
			return err
		})
		if err != nil {
			t.Fatalf("GET %s as web_anon: %v", rel, err)
		}
		return ids
	}
	type want struct {
		ids     []int
		level   lint.Level
		message string
	}
	wants := map[string]want{
		"app.notes": {[]int{1}, lint.Info, "web_anon can read this table; row-level security decides which rows"},
	}
	if version >= 150000 {
		wants["app.notes_owner"] = want{[]int{1, 2}, lint.Warning, "web_anon can read this view, which reads its tables as its owner (not security_invoker)"}
		wants["app.notes_invoker"] = want{[]int{1}, lint.Info, "web_anon can read this security_invoker view; the row-level security of its tables decides which rows"}
	} else {
		wants["app.notes_owner"] = want{[]int{1, 2}, lint.Warning, "web_anon can read this view, which reads its tables as its owner (security_invoker views need PostgreSQL 15)"}
	}

	rep := run(t, db, "postgres", lint.DefaultConfig())
	for rel, w := range wants {
		if diff := cmp.Diff(w.ids, read(rel)); diff != "" {
			t.Errorf("GET %s as web_anon, ids (-want +got):\n%s", rel, diff)
		}
		f := find(rep, "IAM006", rel)
		if f == nil {
			t.Errorf("IAM006 did not fire on %s:\n%s", rel, dump(rep))
			continue
		}
		if f.Level != w.level || f.Message != w.message {
			t.Errorf("IAM006 on %s = %s %q, want %s %q", rel, f.Level, f.Message, w.level, w.message)
		}
	}
}
