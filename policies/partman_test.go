package policies_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/deploy"
	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/lint"
)

// partmanChats makes app.chats a table partitioned by created_at with no
// partition yet, for pg_partman to manage: it creates a partition a month
// and a default one.
const partmanChats = `
drop table app.chats;
set role api_owner;
create table app.chats (
    id bigint generated always as identity,
    body text not null,
    owner_id uuid not null,
    group_id bigint null,
    created_at timestamptz not null default now(),
    primary key (id, created_at)
) partition by range (created_at);
reset role;
create schema partman;
create extension pg_partman schema partman;
select partman.create_parent(p_parent_table => 'app.chats', p_control => 'created_at', p_type => 'native',
                             p_interval => 'monthly', p_premake => 1);`

// needPartman skips the test, saying why, when the server has no
// pg_partman to create.
func needPartman(t *testing.T) {
	t.Helper()
	s := Server(t)
	conn, err := pgx.Connect(t.Context(), s.URL("postgres", "postgres"))
	NoError(t, err)
	defer conn.Close(context.Background())
	var available bool
	var share string
	NoError(t, conn.QueryRow(t.Context(), `select exists (select from pg_available_extensions where name = 'pg_partman'),
	    coalesce((select setting from pg_config where name = 'SHAREDIR'), '?')`).Scan(&available, &share))
	if !available {
		t.Skipf("pg_partman is not installed for this PostgreSQL (no %s/extension/pg_partman.control): "+
			"scripts/ensure-partman.sh installs Debian's postgresql-<major>-partman (make test runs it)", share)
	}
}

// newestPartition is the partition of app.chats pg_partman made last (the
// latest month).
func newestPartition(t *testing.T, db *Database) (string, time.Time) {
	t.Helper()
	var name string
	var start time.Time
	NoError(t, db.SU.QueryRow(t.Context(), `select c.oid::regclass::text,
	        (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz as start
	    from pg_partition_tree('app.chats') p join pg_class c on c.oid = p.relid
	    where p.level = 1 and c.relname <> 'chats_default'
	    order by start desc limit 1`).Scan(&name, &start))
	return name, start
}

// runMaintenance makes pg_partman premake months ahead, copying the
// parent's privileges to the new partitions (inherit_privileges) whether
// or not data has come (infinite_time_partitions), as its
// background worker or a cron job would, as a superuser.
func runMaintenance(t *testing.T, db *Database, premake int) {
	t.Helper()
	db.Exec(t, fmt.Sprintf(`update partman.part_config set premake = %d, inherit_privileges = true, infinite_time_partitions = true where parent_table = 'app.chats'`, premake))
	db.Exec(t, `select partman.run_maintenance('app.chats')`)
}

// TestPartmanNewPartitions: pg_partman manages app.chats. Partitions it
// makes after a superuser applied the build (copying the parent's grants
// to the runtime roles) are locked down as they are made, and every rule of
// chats.iam holds from both sides for a chat in one. With the event trigger
// disabled, the next partition pg_partman makes is open (the trap: the
// parent's grants, no row-level security of its own): iamc check, iamc lint
// and plan name it, and apply repairs it.
func TestPartmanNewPartitions(t *testing.T) {
	needPartman(t)
	db := NewDatabase(t, "partman", "schema.sql")
	CloseWhenDone(t, db)
	db.Exec(t, partmanChats)
	out, err := compiler.Compile(Dir)
	NoError(t, err)
	if printed, err := ApplyScript(t.Context(), db.Server, db.Name, out.Script()); err != nil {
		t.Fatalf("%v\n%s", err, printed)
	}
	lockedDown(t, db, "app.chats")
	room := CreateGroup(t, db, Alice, "room")
	AddMember(t, db, Alice, room, UserID(Bob), "member")
	AddMember(t, db, Alice, room, UserID(carol), "admin")

	before, _ := newestPartition(t, db)
	runMaintenance(t, db, 3)
	made, start := newestPartition(t, db)
	if made == before {
		t.Fatalf("pg_partman made no partition after %s", before)
	}
	lockedDown(t, db, "app.chats")
	chatsBothSides(t, db, room, made, start.Add(36*time.Hour))

	// Without the event trigger.
	db.Exec(t, "alter event trigger iam_lock_partitions disable")
	runMaintenance(t, db, 5)
	open, start := newestPartition(t, db)
	at := start.Add(36 * time.Hour)
	db.Exec(t, "insert into app.chats (body, owner_id, group_id, created_at) values ('secret', $1::uuid, $2, $3)", AliceID, room, at)
	var seen int64
	err = Requester{T: t, DB: db, Who: dave, Path: "/" + strings.TrimPrefix(open, "app.")}.Do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select count(*) from "+open).Scan(&seen)
	})
	if err != nil || seen != 1 {
		t.Fatalf("the trap: dave reads %d rows of %s directly (err %v); want the secret chat, as the parent's grants and no row security give it", seen, open, err)
	}

	// iamc check.
	tx, err := db.SU.BeginTx(t.Context(), pgx.TxOptions{AccessMode: pgx.ReadOnly})
	NoError(t, err)
	findings, err := catalog.CheckCatalog(t.Context(), tx, out.Model, catalog.CatalogOptions{Dir: Dir})
	_ = tx.Rollback(context.Background())
	NoError(t, err)
	want := fmt.Sprintf("error: partition %s of app.chats has row-level security off and web_user can select, insert, update and delete", open)
	found := false
	for _, f := range findings {
		found = found || strings.Contains(f.String(), want)
	}
	if !found {
		t.Errorf("iamc check does not say %q:\n%v", want, findings)
	}

	// iamc lint.
	rep, err := lint.Run(t.Context(), db.SU, lint.DefaultConfig())
	NoError(t, err)
	found = false
	for _, f := range rep.Findings {
		found = found || f.Rule == "IAM009" && f.Object == open && f.Level == lint.Error
	}
	if !found {
		t.Errorf("iamc lint: no IAM009 error on %s:\n%v", open, rep.Findings)
	}

	// Plan, then apply.
	in := deploy.Input{Output: out, Label: "policies", IamcVersion: "test"}
	conn, err := pgx.Connect(t.Context(), db.Server.URL(db.Name, "postgres"))
	NoError(t, err)
	defer conn.Close(context.Background())
	plan, err := deploy.PlanChanges(t.Context(), conn, in, deploy.Options{})
	NoError(t, err)
	var text strings.Builder
	NoError(t, plan.WriteText(&text))
	for _, line := range []string{
		fmt.Sprintf("~ replace partition %s of app.chats: row level security disabled, not forced -> enabled, forced", open),
		fmt.Sprintf("- drop grant select, insert, update, delete on table %s to web_user", open),
		"~ replace event trigger iam_lock_partitions: enabled disabled -> always",
	} {
		if !strings.Contains(text.String(), line) {
			t.Errorf("the plan does not say %q:\n%s", line, text.String())
		}
	}
	if _, err := deploy.Apply(t.Context(), conn, in, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	lockedDown(t, db, "app.chats")
	_, err = Requester{T: t, DB: db, Who: dave, Path: "/" + strings.TrimPrefix(open, "app.")}.Exec("GET", "select count(*) from "+open)
	if pgrest.SQLState(err) != "42501" {
		t.Errorf("after apply, dave reads %s directly: %v", open, err)
	}
	chatsBothSides(t, db, room, open, at.Add(time.Hour))
}
