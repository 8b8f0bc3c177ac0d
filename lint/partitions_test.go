package lint_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/lint"
)

// A partitioned table with row-level security, as a DBA would make it by
// hand: policies on the parent, app.events_a and app.events_b its
// partitions.
const partitionedSchema = appSchema + `
create table app.events (id bigint, owner_id uuid, at date not null) partition by range (at);
create table app.events_a partition of app.events for values from ('2025-01-01') to ('2025-02-01');
create table app.events_b partition of app.events for values from ('2025-02-01') to ('2025-03-01');
alter table app.events enable row level security;
alter table app.events force row level security;
grant select on app.events to web_user;
create policy mine on app.events for select to web_user using (owner_id = (select current_setting('app.uid')::uuid));
alter table app.events_b enable row level security;
alter table app.events_b force row level security;
`

// IAM009 fires on each way a partition is reachable past its parent's
// policies, at its level, and stops once the remediation is run.
func TestPartitionOpen(t *testing.T) {
	cases := []struct {
		name, setup, fix, object string
		level                    lint.Level
		message, hint            string
	}{
		{
			name:   "granted, row-level security off (pg_partman's inherit_privileges)",
			setup:  partitionedSchema + `grant select, insert on app.events_a to web_user;`,
			fix:    `alter table app.events_a enable row level security; alter table app.events_a force row level security; revoke all on table app.events_a from web_user;`,
			object: "app.events_a", level: lint.Error,
			message: "partition of app.events, whose row-level security does not apply to direct queries: row-level security is disabled and web_user can select and insert: every row in it, whoever asks",
			hint:    "alter table app.events_a enable row level security; alter table app.events_a force row level security; revoke all on table app.events_a from web_user;",
		},
		{
			name:   "row-level security off, nobody granted yet",
			setup:  partitionedSchema,
			fix:    `alter table app.events_a enable row level security;`,
			object: "app.events_a", level: lint.Warning,
			message: "row-level security is disabled, so the first privilege granted on it (pg_partman's inherit_privileges, default privileges, a GRANT) opens every row in it",
			hint:    "alter table app.events_a enable row level security;",
		},
		{
			name:   "granted to PUBLIC, policies of its own",
			setup:  partitionedSchema + `grant select on app.events_b to public; create policy open on app.events_b for select using (true);`,
			fix:    `revoke all on table app.events_b from public;`,
			object: "app.events_b", level: lint.Error,
			message: "web_user can select; web_anon can select; PUBLIC can select, and its own 1 policy decide which rows",
			hint:    "revoke all on table app.events_b from web_user, web_anon, public;",
		},
		{
			name:   "granted, row-level security on, no policy",
			setup:  partitionedSchema + `grant select on app.events_b to web_anon;`,
			fix:    `revoke all on table app.events_b from web_anon;`,
			object: "app.events_b", level: lint.Info,
			message: "web_anon can select (it has no policy: no row)",
			hint:    "revoke all on table app.events_b from web_anon;",
		},
		{
			name: "a partition of a partition",
			setup: partitionedSchema + `
create table app.events_c partition of app.events for values from ('2025-03-01') to ('2025-04-01') partition by range (at);
create table app.events_c1 partition of app.events_c for values from ('2025-03-01') to ('2025-03-15');
grant delete on app.events_c1 to web_user;`,
			fix:    `alter table app.events_c1 enable row level security; revoke all on table app.events_c1 from web_user;`,
			object: "app.events_c1", level: lint.Error,
			message: "partition of app.events, whose row-level security does not apply to direct queries: row-level security is disabled and web_user can delete",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t, c.setup)
			cfg := lint.DefaultConfig()
			rep := run(t, db, "postgres", cfg)
			f := find(rep, "IAM009", c.object)
			if f == nil {
				t.Fatalf("IAM009 did not fire on %s; findings:\n%s", c.object, dump(rep))
			}
			if f.Level != c.level {
				t.Errorf("level = %s, want %s: %s", f.Level, c.level, f)
			}
			if !strings.Contains(f.Message, c.message) {
				t.Errorf("message %q does not contain %q", f.Message, c.message)
			}
			if !strings.Contains(f.Remediation, c.hint) {
				t.Errorf("remediation %q does not contain %q", f.Remediation, c.hint)
			}
			if g := find(rep, "IAM007", c.object); g != nil {
				t.Errorf("IAM007 reports the partition too: %s", g)
			}
			exec(t, db, c.fix)
			if f := find(run(t, db, "postgres", cfg), "IAM009", c.object); f != nil {
				t.Errorf("IAM009 still fires after the fix:\n  %s", f)
			}
		})
	}

	t.Run("quiet", func(t *testing.T) {
		t.Parallel()
		db := newDB(t, partitionedSchema+`
alter table app.events_a enable row level security;
-- outside the exposed schemas: PostgREST cannot reach it
create schema hidden;
create table hidden.events_h partition of app.events for values from ('2026-01-01') to ('2026-02-01');
grant select on hidden.events_h to web_user;
-- a partition of a table without row-level security is IAM007's
create table app.logs (at date) partition by range (at);
create table app.logs_a partition of app.logs for values from ('2025-01-01') to ('2025-02-01');`)
		cfg := lint.DefaultConfig()
		cfg.Schemas = []string{"app"}
		rep := run(t, db, "postgres", cfg)
		for _, f := range rep.Findings {
			if f.Rule == "IAM009" {
				t.Errorf("unexpected: %s", f)
			}
		}
	})
}

// The example with partitioned chats and todos, built and applied by a
// superuser, lints clean; a partition made by hand afterwards is locked
// down by the build's event trigger; with the trigger disabled, a
// pg_partman-style partition (the parent's grants copied) is an error.
func TestPartitionedExample(t *testing.T) {
	s := server(t)
	db := newDB(t, "")
	for _, f := range []string{"schema.sql", "testdata/partitioned.sql"} {
		if _, err := s.Psql(t.Context(), db, "-f", exampletest.File(f)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "iam.sql")
	if err := os.WriteFile(path, []byte(build(t, exampletest.Dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Psql(t.Context(), db, "-f", path); err != nil {
		t.Fatal(err)
	}
	clean := func(when string) {
		t.Helper()
		rep := run(t, db, "authenticator", lint.DefaultConfig())
		for _, f := range rep.Findings {
			if f.Level != lint.Info {
				t.Errorf("%s: %s", when, f)
			}
		}
	}
	clean("after the build")
	exec(t, db, `set role api_owner;
create table app.todos_p9 partition of app.todos for values from (9000000) to (10000000);
grant select, insert, update, delete on app.todos_p9 to web_user;`)
	clean("after a partition made and granted by hand")

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
	if _, err := tx.Exec(t.Context(), `alter event trigger iam_lock_partitions disable;
create table app.todos_p8 partition of app.todos for values from (8000000) to (9000000);
grant select, insert, update, delete on app.todos_p8 to web_user;`); err != nil {
		t.Fatal(err)
	}
	rep, err := lint.Run(t.Context(), txBeginner{tx}, lint.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if f := find(rep, "IAM009", "app.todos_p8"); f == nil || f.Level != lint.Error {
		t.Errorf("IAM009 error on app.todos_p8: got %v\n%s", f, dump(rep))
	}
}
