package lint_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/lint"
)

// The example of policies/ (roles.sql, schema.sql and the build of the .iam
// files, applied with psql as the build's header says) lints clean: no
// error and no warning (SPEC §6 and §7 promise forced RLS, policies that call
// the runtime once per statement, definer functions with a pinned
// search_path and revoked from PUBLIC). It is linted by the superuser and by
// authenticator, PostgREST's login role: the lint needs no privilege. Then
// the lint must notice when any of those promises is broken by hand.
func TestGeneratedExample(t *testing.T) {
	s := server(t)
	db := newDB(t, "")
	if _, err := s.Psql(t.Context(), db, "-f", exampletest.File("schema.sql")); err != nil {
		t.Fatal(err)
	}
	script := build(t, exampletest.Dir)
	path := filepath.Join(t.TempDir(), "iam.sql")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Psql(t.Context(), db, "-f", path); err != nil {
		t.Fatal(err)
	}

	for _, user := range []string{"postgres", "authenticator"} {
		for _, schemas := range [][]string{nil, {"app"}} {
			cfg := lint.DefaultConfig()
			cfg.Schemas = schemas
			rep := run(t, db, user, cfg)
			t.Logf("as %s, schemas %v:\n%s", user, schemas, dump(rep))
			for _, f := range rep.Findings {
				if f.Level != lint.Info {
					t.Errorf("as %s, schemas %v: %s on the generated SQL: %s", user, schemas, f.Level, f)
				}
			}
			if len(rep.Notes) > 0 {
				t.Errorf("notes: %q", rep.Notes)
			}
		}
	}
	if t.Failed() {
		return
	}

	// Break each promise by hand (in a transaction rolled back afterwards)
	// and see the lint notice.
	regressions := []struct {
		name, sql, rule, object string
	}{
		{"RLS no longer forced", `alter table app.todos no force row level security`,
			"IAM003", "app.todos"},
		{"a definer helper executable by PUBLIC", `grant execute on function iam.compute_group_ids(text) to public`,
			"IAM002", "iam.compute_group_ids(text)"},
		{"a definer helper without its search_path", `alter function iam.compute_caller_id() reset search_path`,
			"IAM001", "iam.compute_caller_id()"},
		{"the caller's id computed per row", `alter policy "iam: authenticated can update" on app.chats
			using (owner_id = iam.user_id_uuid('sub')) with check (owner_id = (select iam.user_id_uuid('sub')))`,
			"IAM004", `app.chats policy "iam: authenticated can update"`},
		{"the group ids computed per row", `alter policy "iam: authenticated can select" on app.todos
			using (group_id = any (iam.group_ids('member')))`,
			"IAM004", `app.todos policy "iam: authenticated can select"`},
		{"every signed-in user may delete every row", `alter policy "iam: authenticated can delete" on app.todos using (true)`,
			"IAM005", `app.todos policy "iam: authenticated can delete"`},
		{"anonymous reads todos", `grant select on app.todos to web_anon`,
			"IAM006", "app.todos"},
		{"RLS off", `alter table app.chats disable row level security`,
			"IAM007", "app.chats"},
		{"the group existence oracle executable again", `grant execute on function iam.group_exists(bigint) to web_user`,
			"IAM008", "iam.group_exists(bigint)"},
		{"a vetted helper's marker dropped", `comment on function iam.group_role(bigint) is 'the caller''s role'`,
			"IAM008", "iam.group_role(bigint)"},
	}
	for _, r := range regressions {
		t.Run(r.name, func(t *testing.T) {
			conn, err := pgx.Connect(t.Context(), s.URL(db, "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			tx, err := conn.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(context.Background()) }()
			if _, err := tx.Exec(t.Context(), r.sql); err != nil {
				t.Fatalf("%s: %v", r.sql, err)
			}
			rep, err := lint.Run(t.Context(), txBeginner{tx}, lint.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			if f := find(rep, r.rule, r.object); f == nil {
				t.Errorf("%s did not fire on %s:\n%s", r.rule, r.object, dump(rep))
			} else {
				t.Log(f)
			}
		})
	}
}

// txBeginner lints inside an open transaction (a savepoint), so the test
// sees its own uncommitted changes.
type txBeginner struct{ tx pgx.Tx }

func (b txBeginner) BeginTx(ctx context.Context, _ pgx.TxOptions) (pgx.Tx, error) {
	return b.tx.Begin(ctx)
}

// build compiles a policy directory in-process, as `iamc build DIR`.
func build(t *testing.T, dir string) string {
	t.Helper()
	out, err := compiler.Compile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return out.Script()
}
