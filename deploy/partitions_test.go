package deploy

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// partitionedChats makes app.chats a table partitioned by month of
// created_at, one of its partitions partitioned again (by half month), and
// a default partition, all the owner role's.
const partitionedChats = `
drop table app.chats;
set role api_owner;
create table app.chats (
    id bigint generated always as identity,
    body text not null default '',
    owner_id uuid not null,
    group_id bigint,
    created_at timestamptz not null default now(),
    primary key (id, created_at)
) partition by range (created_at);
create table app.chats_2025_01 partition of app.chats for values from ('2025-01-01') to ('2025-02-01');
create table app.chats_2025_02 partition of app.chats for values from ('2025-02-01') to ('2025-03-01') partition by range (created_at);
create table app.chats_2025_02a partition of app.chats_2025_02 for values from ('2025-02-01') to ('2025-02-15');
create table app.chats_2025_02b partition of app.chats_2025_02 for values from ('2025-02-15') to ('2025-03-01');
create table app.chats_default partition of app.chats default;
reset role;`

// partitionState is each partition of app.chats: its row-level security,
// privileges and owner, one line each.
func partitionState(e *env) string {
	return e.query(`select string_agg(format('%s %s %s %s %s', c.relname, c.relrowsecurity, c.relforcerowsecurity,
	        coalesce(c.relacl::text, '-'), pg_get_userbyid(c.relowner)), E'\n' order by c.relname)
	    from pg_partition_tree('app.chats') t join pg_class c on c.oid = t.relid where t.level > 0`)
}

// Plan names every partition apply locks down, and the event trigger a
// superuser's apply installs; afterwards new partitions need no apply, and
// partitions made or dropped are not drift. With the trigger disabled, a
// partition made the way pg_partman makes one (the parent's grants copied)
// and a partition whose row-level security was turned off are changes of
// the plan, which apply repairs.
func TestPartitionsPlanAndApply(t *testing.T) {
	e := newEnv(t, allFiles)
	e.exec(partitionedChats)

	first := text(t, e.plan())
	for _, want := range []string{
		"  + create schema iam_ddl\n",
		"  + create function iam_ddl.lock_partitions()\n",
		"  + create event trigger iam_lock_partitions\n",
		"  + create procedure iam.lock_partitions(regclass)\n",
		"  ~ replace partition app.chats_2025_01 of app.chats: row level security disabled, not forced -> enabled, forced\n",
		"  ~ replace partition app.chats_2025_02a of app.chats_2025_02: row level security disabled, not forced -> enabled, forced\n",
		"  ~ replace partition app.chats_default of app.chats: row level security disabled, not forced -> enabled, forced\n",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("the first plan does not say %q:\n%s", want, first)
		}
	}
	if strings.Contains(first, "Warnings:") {
		t.Errorf("a superuser's plan warns:\n%s", first)
	}
	e.apply(Options{})
	wantLocked := `chats_2025_01 t t - api_owner
chats_2025_02 t t - api_owner
chats_2025_02a t t - api_owner
chats_2025_02b t t - api_owner
chats_default t t - api_owner`
	if got := partitionState(e); got != wantLocked {
		t.Errorf("after apply:\n%s\nwant:\n%s", got, wantLocked)
	}
	if p := e.plan(); p.HasChanges() {
		t.Fatalf("plan after apply:\n%s", text(t, p))
	}

	// New partitions by hand, as the owner role and as a superuser, granted
	// to the runtime roles; and one dropped (retention): nothing for apply.
	e.exec(`set role api_owner;
create table app.chats_2025_03 partition of app.chats for values from ('2025-03-01') to ('2025-04-01');
grant select, insert, update, delete on app.chats_2025_03 to web_user;
reset role;
create table app.chats_2025_04 (like app.chats including defaults);
grant select on app.chats_2025_04 to web_anon;
alter table app.chats attach partition app.chats_2025_04 for values from ('2025-04-01') to ('2025-05-01');
drop table app.chats_2025_01;`)
	if p := e.plan(); p.HasChanges() || len(p.Drift) > 0 {
		t.Errorf("plan after partitions came and went with the event trigger:\n%s", text(t, p))
	}

	// Without the trigger: a partition as pg_partman makes it (the parent's
	// grants copied) and one whose row-level security was turned off.
	e.exec(`alter event trigger iam_lock_partitions disable;
set role api_owner;
create table app.chats_2025_05 partition of app.chats for values from ('2025-05-01') to ('2025-06-01');
grant select, insert, update, delete on app.chats_2025_05 to web_user;
grant select on app.chats_2025_05 to reporting;
alter table app.chats_2025_03 disable row level security;
reset role;`)
	p := e.plan()
	golden(t, "plan-partitions.txt", text(t, p))
	e.apply(Options{})
	// (The owner's own privileges: arwdDxt, and m for MAINTAIN since 17.)
	if got := partitionState(e); !strings.Contains(got, "chats_2025_05 t t {api_owner=arwdDxt") || strings.Contains(got, "web_user") ||
		strings.Contains(got, "reporting") || !strings.Contains(got, "chats_2025_03 t t") {
		t.Errorf("after apply:\n%s", got)
	}
	if got := e.query(`select evtenabled::text from pg_event_trigger where evtname = 'iam_lock_partitions'`); got != "A" {
		t.Errorf("the event trigger is %q after apply, want A (always)", got)
	}
	if p := e.plan(); p.HasChanges() {
		t.Errorf("plan after the repair:\n%s", text(t, p))
	}

	// A partition a superuser made and owns (as pg_partman leaves them
	// without inherit_privileges): a superuser's apply gives it to the owner
	// role.
	e.exec(`alter event trigger iam_lock_partitions disable;
create table app.chats_2025_06 partition of app.chats for values from ('2025-06-01') to ('2025-07-01');`)
	want := "  ~ replace partition app.chats_2025_06 of app.chats: owner postgres -> api_owner; row level security disabled, not forced -> enabled, forced\n"
	if got := text(t, e.plan()); !strings.Contains(got, want) {
		t.Errorf("the plan does not say %q:\n%s", want, got)
	}
}

// Applied by the owner role (no superuser), the build locks the partitions
// down but cannot install the event trigger: the plan warns.
func TestPartitionsAppliedByOwnerRole(t *testing.T) {
	e := newEnv(t, allFiles)
	e.apply(Options{}) // a superuser's first apply: the runtime roles' settings
	e.exec(partitionedChats + `
create role iamc_deployer login;
grant api_owner to iamc_deployer;
grant create on database ` + e.db + ` to api_owner;`)
	t.Cleanup(func() {
		_, _ = e.conn.Exec(context.Background(), `drop owned by iamc_deployer; drop role iamc_deployer`)
	})
	conn := e.connectAs("iamc_deployer")
	p, err := PlanChanges(t.Context(), conn, e.input(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := text(t, p)
	if strings.Contains(got, "event trigger") && !strings.Contains(got, "Warnings:") {
		t.Errorf("the owner role's plan creates the event trigger:\n%s", got)
	}
	const warning = "  ! new partitions of app.chats are not locked down when they are created: there is no event trigger iam_lock_partitions (creating one needs a superuser)"
	if !strings.Contains(got, warning) || !strings.Contains(got, "~ replace partition app.chats_2025_01 of app.chats: row level security") {
		t.Errorf("plan as the owner role:\n%s", got)
	}
	if _, err := Apply(t.Context(), e.connectAs("iamc_deployer"), e.input(), Options{}); err != nil {
		t.Fatal(err)
	}
	if got := partitionState(e); strings.Contains(got, " f ") {
		t.Errorf("after the owner role's apply:\n%s", got)
	}

	// A partition the owner role does not own: it cannot lock it down, nor
	// change the table (its trigger and defaults reach every partition).
	e.exec(`create table app.chats_2025_06 partition of app.chats for values from ('2025-06-01') to ('2025-07-01');`)
	_, err = PlanChanges(t.Context(), e.connectAs("iamc_deployer"), e.input(), Options{})
	if err == nil || !strings.Contains(err.Error(), "partition app.chats_2025_06 of app.chats is owned by postgres, not by api_owner") {
		t.Errorf("plan with a partition of postgres's: got %v", err)
	}
}

// --concurrent-indexes on a partitioned table: each partition's index
// built concurrently and attached (PostgreSQL refuses CREATE INDEX
// CONCURRENTLY on a partitioned table), the table's valid at the end; a
// build left half-done (the index on the table alone, one partition's
// attached) is resumed.
func TestPartitionsConcurrentIndexes(t *testing.T) {
	e := newEnv(t, allFiles)
	e.exec(partitionedChats + `
insert into app.chats (owner_id, created_at)
select gen_random_uuid(), timestamptz '2025-01-01' + i * interval '1 hour' from generate_series(1, 2000) i;
create index chats_owner_id_iam_idx on only app.chats (owner_id);
create index chats_2025_01_own on app.chats_2025_01 (owner_id);
alter index app.chats_owner_id_iam_idx attach partition app.chats_2025_01_own;`)
	r := e.apply(Options{ConcurrentIndexes: true})
	if got := strings.Join(r.Concurrent, ", "); !strings.HasPrefix(got, "app.chats_owner_id_iam_idx, app.chats_group_id_iam_idx, ") {
		t.Errorf("built concurrently: %s, want the indexes of app.chats first", got)
	}
	for _, ix := range []string{"app.chats_owner_id_iam_idx", "app.chats_group_id_iam_idx"} {
		got := e.query(`select format('%s valid=%s, %s partitions attached', $1::text, i.indisvalid,
		        (select count(*) from pg_partition_tree($1::text::regclass) t where t.level > 0))
		    from pg_index i where i.indexrelid = $1::text::regclass`, ix)
		if want := ix + " valid=t, 5 partitions attached"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
	if got := e.query(`select i.indexrelid::regclass::text from pg_inherits x join pg_index i on i.indexrelid = x.inhrelid
	    where x.inhparent = 'app.chats_owner_id_iam_idx'::regclass and i.indrelid = 'app.chats_2025_01'::regclass`); got != "app.chats_2025_01_own" {
		t.Errorf("the index attached before was replaced by %s", got)
	}
	if p := e.plan(); p.HasChanges() {
		t.Errorf("plan after the concurrent apply:\n%s", text(t, p))
	}
}

// connectAs opens a connection as another login role.
func (e *env) connectAs(user string) *pgx.Conn {
	e.t.Helper()
	conn, err := pgx.Connect(e.t.Context(), e.s.URL(e.db, user))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
