package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The shape of the data set. Only the row count (and the seed) vary.
const (
	NumUsers        = 10000  // users, with uuid ids (Keycloak's sub)
	NumGroups       = 2000   // ordinary groups (as many as the user in the most groups is in)
	MembersPerGroup = 10     // random picks per group (duplicates dropped, so ~10)
	ManyGroups      = 50     // the groups of the user in many groups
	Many500Groups   = 500    // the groups of the user in 500 groups: every NumGroups/500-th
	Many2000Groups  = 2000   // the groups of the user in 2,000 groups: all of them
	BigRows         = 100000 // rows of the big group (at most ROWS/10)
	GroupShare      = 0.10   // share of the other todos put into an ordinary group
	NumTenants      = 100    // organisations of app.notes (notes.iam's tenant): user n is in org-<n % 100>
	SharesOfUser    = 10000  // todos shared with the user with shares (at most ROWS/2)
	RowShareEvery   = 50     // every 50th todo is shared with one random other user
	ProductsOfStore = 100    // products per store on average: ROWS/100 stores (at least 10)
	StoreInGroup    = 0.9    // share of the stores with a staff group (a random ordinary group)

	bigUserN      = 1        // user 1: owner of the big group
	manyUserN     = 2        // user 2: a member of ManyGroups groups
	bigMembersEnd = 11       // users 3..11: the other members of the big group (its chats are theirs too)
	many500UserN  = 12       // user 12: a member of Many500Groups groups
	many2000UserN = 13       // user 13: a member of every ordinary group
	randomStartN  = 14       // users 14..NumUsers: the random members of the ordinary groups
	sharesUserN   = NumUsers // the last user (in random groups, like the others) receives SharesOfUser shares

	datasetVersion = 6 // bump when the generator changes: marks old data sets stale

	// FloorRole is the role the floor queries run as: BYPASSRLS, not a
	// superuser, no login. The benchmark connects with the --db (superuser)
	// URL and switches to it per transaction, exactly as PostgREST switches
	// to web_user, so both sides pay the same per-request work.
	FloorRole = "bench_floor"
)

// Size is the size of a data set: Rows todos; chats, notes, products (with
// a store per ProductsOfStore) and the insert floors' copy tables hold
// OtherRows rows (at most Rows), so that a run at 100M todos need not build
// (and store) 100M of each of them too.
type Size struct {
	Rows      int
	OtherRows int // 0: Rows
}

// Other is the row count of chats, notes, products and the copy tables:
// OtherRows, at most Rows, Rows when unset.
func (s Size) Other() int {
	if s.OtherRows <= 0 {
		return s.Rows
	}
	return min(s.Rows, s.OtherRows)
}

// String names the size as the log and the errors do: "1000000 rows" or
// "100000000 rows (1000000 of the other tables)".
func (s Size) String() string {
	if s.Other() == s.Rows {
		return fmt.Sprintf("%d rows", s.Rows)
	}
	return fmt.Sprintf("%d rows (%d of the other tables)", s.Rows, s.Other())
}

// Dataset is a built data set as the driver needs it: the users, their
// groups and a sample of the todos each can see.
type Dataset struct {
	Rows     int
	Seed     int64
	TodosMax int64 // ids above these were created by a benchmark run
	ChatsMax int64
	BigGroup int64
	BigRows  int64 // todos in the big group

	OtherRows int // rows of chats, notes, products and the copy tables (Size.Other)

	Users      []*User // Users[i].N == i+1
	Big, Many  *User   // the special users
	Many500    *User   // the user in 500 groups (ClassMany500)
	Many2000   *User   // the user in 2,000 groups (ClassMany2000)
	Shares     *User   // the user with 10,000 shares (ClassShares)
	SharesOf   int64   // how many shares they have
	SharedRows []int64 // the todos shared with them (their point reads)
	Normal     []*User // every other user
	WithGroups []*User // normal users in at least one group
	Build      BuildInfo
	// The marketplace (stores.iam): every store, and a sample of the
	// products with their store.
	Stores      []*Store // Stores[i].ID == i+1
	ProductsMax int64    // ids above this were created by a benchmark run
	Products    []Product
	// OwnedStores are the stores of ordinary users (their inserts);
	// StaffedProducts the products of stores whose group has an ordinary
	// member (their staff's updates); Staff the ordinary members of a group.
	OwnedStores     []*Store
	StaffedProducts []Product
	Staff           map[int64][]*User
	storeProducts   map[int64][]int64 // store -> its products in the sample
	groupStores     map[int64][]int64 // group -> its stores
}

// Store is one store of app.stores.
type Store struct {
	ID    int64
	Owner *User
	Group int64 // the staff group; 0: none
}

// Product is one product of app.products (of the sample the data set keeps).
type Product struct {
	ID, Store int64
}

// numStores is how many stores a data set of rows products has.
func numStores(rows int) int { return max(10, rows/ProductsOfStore) }

// User is one user of the data set.
type User struct {
	N            int
	ID           string // uuid, canonical text
	Org          string // the organisation (app.notes' tenant): the org_id claim
	Claims       map[string]any
	Groups       []int64 // every group the user is in
	AdminGroups  []int64 // groups where the user is admin or owner
	Visible      []int64 // a sample of the todos the user may read and write (shared ones with write included)
	VisibleNotes []int64 // a sample of the notes the user may read
	Stores       []int64 // the stores the user owns
	// OrgAdmin is the same user with the realm role org-admin in the token
	// (who reads every note of the organisation).
	OrgAdmin *User
}

// orgOf is user n's organisation, as the data set's SQL names it.
func orgOf(n int) string { return fmt.Sprintf("org-%02d", n%NumTenants) }

// orgSQL is orgOf in SQL, for a user number column.
func orgSQL(n string) string {
	return fmt.Sprintf("'org-' || lpad((%s %% %d)::text, 2, '0')", n, NumTenants)
}

// BuildInfo says how the data set came to be.
type BuildInfo struct {
	Reused bool          `json:"reused"`
	Took   time.Duration `json:"-"`
	Secs   float64       `json:"seconds"`
	Steps  []Step        `json:"steps,omitempty"`
}

// Step is one timed step of a build.
type Step struct {
	Name string  `json:"name"`
	Secs float64 `json:"seconds"`
}

func (b BuildInfo) String() string {
	if b.Reused {
		return "reused (bench.meta matches)"
	}
	var parts []string
	for _, s := range b.Steps {
		parts = append(parts, fmt.Sprintf("%s %.1fs", s.Name, s.Secs))
	}
	return fmt.Sprintf("built in %.1fs (%s)", b.Secs, strings.Join(parts, ", "))
}

// SetupMode says when the data set is (re)built.
type SetupMode int

const (
	SetupAuto   SetupMode = iota // rebuild unless bench.meta matches
	SetupAlways                  // --setup: always rebuild
	SetupNever                   // --reuse: never rebuild; fail unless bench.meta matches
)

// bigEvery: every bigEvery-th todo (and chat) is in the big group (rows:
// the table's row count).
func bigEvery(rows int) int {
	return max(10, rows/BigRows)
}

// Prepare makes sure the database holds the data set for rows and seed,
// building it when needed, and loads what the driver needs. su must be a
// superuser connection to a database where policies/schema.sql and the
// iamc build of policies/ are applied.
func Prepare(ctx context.Context, su *pgx.Conn, rows int, seed int64, mode SetupMode, log io.Writer) (*Dataset, error) {
	return PrepareSize(ctx, su, Size{Rows: rows}, seed, mode, log)
}

// PrepareSize is Prepare for a data set whose other tables are smaller
// than app.todos (Size.OtherRows).
func PrepareSize(ctx context.Context, su *pgx.Conn, size Size, seed int64, mode SetupMode, log io.Writer) (*Dataset, error) {
	if err := checkDatabase(ctx, su); err != nil {
		return nil, err
	}
	var info BuildInfo
	matches, err := metaMatches(ctx, su, size, seed)
	if err != nil {
		return nil, err
	}
	switch {
	case mode == SetupNever && !matches:
		return nil, fmt.Errorf("--reuse: the database holds no data set of %s for --seed %d (bench.meta differs or is missing); run without --reuse to build it", size, seed)
	case mode == SetupAlways || !matches:
		if err := checkDisk(ctx, su, size, log); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "building the data set: %d todos, %d chats, %d notes, %d products of %d stores, %d users, %d groups ...\n",
			size.Rows, size.Other(), size.Other(), size.Other(), numStores(size.Other()), NumUsers, NumGroups+1)
		if info, err = build(ctx, su, size, seed, log); err != nil {
			return nil, fmt.Errorf("building the data set: %w", err)
		}
	default:
		info.Reused = true
		if err := Cleanup(ctx, su); err != nil {
			return nil, err
		}
	}
	ds, err := load(ctx, su, seed)
	if err != nil {
		return nil, fmt.Errorf("loading the data set: %w", err)
	}
	ds.Build = info
	return ds, nil
}

// checkDatabase refuses databases the benchmark must not touch: without
// the example schema and policies, or with data that is not a data set of
// ours (a build truncates app.todos, app.chats, the marketplace and the group tables).
func checkDatabase(ctx context.Context, su *pgx.Conn) error {
	var super, forced, runtime, hasMeta bool
	err := su.QueryRow(ctx, `select
  (select rolsuper from pg_roles where rolname = current_user),
  coalesce((select bool_and(relrowsecurity and relforcerowsecurity) from pg_class
            where oid in (to_regclass('app.todos'), to_regclass('app.chats'))), false)
    and to_regclass('app.todos') is not null and to_regclass('app.chats') is not null,
  to_regclass('iam.group_members') is not null and to_regclass('iam.settings') is not null,
  to_regclass('bench.meta') is not null`).Scan(&super, &forced, &runtime, &hasMeta)
	if err != nil {
		return err
	}
	switch {
	case !super:
		return errors.New("--db must connect as a superuser: the data set is loaded with session_replication_role = replica, and the floor role bypasses RLS")
	case !forced || !runtime:
		return errors.New("app.todos and app.chats must exist with the iamc policies applied: load policies/roles.sql and policies/schema.sql, then apply `iamc build policies/` with psql (make bench does all of it)")
	}
	if hasMeta {
		return nil
	}
	var busy bool
	if err := su.QueryRow(ctx, `select exists (select from app.todos) or exists (select from app.chats) or exists (select from iam.groups)`).Scan(&busy); err != nil {
		return err
	}
	if busy {
		return errors.New("app.todos, app.chats or iam.groups hold rows, and this is not a benchmark database (no bench.meta): building the data set would delete them; use an empty database (make bench starts one)")
	}
	return nil
}

func metaMatches(ctx context.Context, su *pgx.Conn, size Size, seed int64) (bool, error) {
	var ok bool
	err := su.QueryRow(ctx, `select to_regclass('bench.meta') is not null
  and to_regclass('bench.todos_copy') is not null and to_regclass('bench.chats_copy') is not null
  and to_regclass('bench.products_copy') is not null`).Scan(&ok)
	if err != nil || !ok {
		return false, err
	}
	// A bench.meta of before --other-rows has no other_rows: its other
	// tables hold rows rows.
	err = su.QueryRow(ctx, `select exists (select from bench.meta m where rows = $1 and seed = $2 and version = $3
  and coalesce((to_jsonb(m)->>'other_rows')::bigint, rows) = $4)`,
		size.Rows, seed, datasetVersion, size.Other()).Scan(&ok)
	return ok, err
}

// buildChunk is the fewest rows of a big table one statement of the build
// inserts; a bigger table is inserted in buildChunks statements (5,000,000
// rows each at 100M). Each chunk prints a progress line. (A variable, for
// the tests.)
var buildChunk = 1000000

const buildChunks = 20

// chunkRows is how many rows one statement inserts into a table of rows.
func chunkRows(rows int) int { return max(buildChunk, (rows+buildChunks-1)/buildChunks) }

// bulkTables are the tables the build fills in bulk. Their secondary
// indexes (neither unique nor backing a constraint: the (owner_id, id),
// (group_id, id) and tenant indexes `iamc build` creates for the policies
// and page functions) are dropped before the load and created again after
// it from their definitions (pg_get_indexdef), in the load's transaction:
// building an index once is faster than maintaining it row by row, and if
// the build fails the transaction's rollback restores them.
var bulkTables = []string{"app.todos", "app.chats", "app.notes", "app.products", "bench.todos_copy", "bench.chats_copy", "bench.products_copy"}

// secondaryIndexes lists the indexes of bulkTables that build drops and
// recreates: qualified name and definition.
const secondaryIndexes = `select format('%I.%I', n.nspname, c.relname), pg_get_indexdef(i.indexrelid)
from pg_index i
join pg_class c on c.oid = i.indexrelid
join pg_namespace n on n.oid = c.relnamespace
where i.indrelid in (select to_regclass(t) from unnest($1::text[]) t)
  and not i.indisunique
  and not exists (select from pg_constraint k where k.conindid = i.indexrelid)
order by 1`

// execer is a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// build creates the data set with set-based SQL, as superuser, with
// session_replication_role = replica (the row guard and foreign key
// triggers do not fire while loading), then VACUUM ANALYZE. The tables
// are emptied first; the load (users, groups, todos, shares, chats,
// notes, the copies, and the secondary indexes built after them) is one
// transaction. It prints each step to log as it starts and ends, and each
// chunk of the big tables with an estimate of the time left (a 100M-row
// build takes most of an hour).
func build(ctx context.Context, su *pgx.Conn, size Size, seed int64, log io.Writer) (info BuildInfo, err error) {
	start := time.Now()
	rows, other := size.Rows, size.Other()
	since := func(t time.Time) string { return time.Since(t).Round(time.Second).String() }
	var db execer = su
	exec := func(name, sql string) error {
		if _, err := db.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, sql)
		}
		return nil
	}
	begin := func(name string) time.Time {
		fmt.Fprintf(log, "  %s ... (build %s)\n", name, since(start))
		return time.Now()
	}
	end := func(name string, t time.Time) {
		info.Steps = append(info.Steps, Step{Name: name, Secs: time.Since(t).Seconds()})
		fmt.Fprintf(log, "  %s: done in %s (build %s)\n", name, since(t), since(start))
	}
	step := func(name string, sqls ...string) error {
		t := begin(name)
		for _, sql := range sqls {
			if err := exec(name, sql); err != nil {
				return err
			}
		}
		end(name, t)
		return nil
	}
	// chunked is a step inserting rows 1..total in chunks (chunkRows):
	// sql(lo, hi) inserts rows lo..hi. The chunks draw random() in the
	// same order as one statement would, so the data set is the same.
	chunked := func(name string, total int, sql func(lo, hi int) string) error {
		t := begin(name)
		chunk := chunkRows(total)
		for lo := 1; lo <= total; lo += chunk {
			hi := min(total, lo+chunk-1)
			if err := exec(name, sql(lo, hi)); err != nil {
				return err
			}
			if total > chunk {
				fmt.Fprintf(log, "  %s\n", progress(name, hi, total, time.Since(t)))
			}
		}
		end(name, t)
		return nil
	}
	every, everyChat := bigEvery(rows), bigEvery(other)
	stores := numStores(other)
	big := NumGroups + 1
	// A fixed clock, so that the same seed gives the same rows.
	const epoch = `timestamptz '2025-01-01 00:00:00+00'`

	err = step("schema",
		`set session_replication_role = replica`,
		`set maintenance_work_mem = '1GB'`,
		`create schema if not exists bench`,
		`drop schema if exists `+FloorSchema+` cascade`, // --http's views over the tables below
		`drop table if exists bench.meta, bench.users, bench.todos_copy, bench.chats_copy, bench.products_copy`,
		`create table bench.meta (
    singleton boolean primary key default true check (singleton),
    rows bigint not null, other_rows bigint not null, seed bigint not null, version integer not null,
    todos_max bigint not null, chats_max bigint not null,
    big_group bigint not null, big_rows bigint not null, products_max bigint not null,
    built_at timestamptz not null default now(), build_seconds double precision not null)`,
		`create table bench.users (n integer primary key, id uuid not null unique)`,
		// The floor of an insert: an unprotected copy with the same columns,
		// defaults, identity, indexes and foreign keys; no RLS, no trigger.
		`create table bench.todos_copy (like app.todos including all)`,
		`create table bench.chats_copy (like app.chats including all)`,
		`create table bench.products_copy (like app.products including all)`,
		copyForeignKeys("app.todos", "bench.todos_copy"),
		copyForeignKeys("app.chats", "bench.chats_copy"),
		copyForeignKeys("app.products", "bench.products_copy"),
		`truncate app.todos, app.chats, app.notes, app.products, app.stores, bench.todos_copy, bench.chats_copy, bench.products_copy, iam.app_todos_shares, iam.invitations, iam.group_members, iam.groups restart identity`,
		fmt.Sprintf(`select setseed(%g)`, seedFraction(seed)),
	)
	if err != nil {
		return info, err
	}
	defer func() {
		if err != nil {
			_, _ = su.Exec(context.Background(), `reset session_replication_role`)
		}
	}()
	tx, err := su.Begin(ctx)
	if err != nil {
		return info, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.Background())
		}
	}()
	db = tx
	type index struct{ name, def string }
	var indexes []index
	r, err := tx.Query(ctx, secondaryIndexes, bulkTables)
	if err == nil {
		indexes, err = pgx.CollectRows(r, func(row pgx.CollectableRow) (index, error) {
			var ix index
			return ix, row.Scan(&ix.name, &ix.def)
		})
	}
	if err != nil {
		return info, fmt.Errorf("listing the indexes of %s: %w", strings.Join(bulkTables, ", "), err)
	}
	for _, ix := range indexes {
		if err := exec("dropping the secondary indexes", "drop index "+ix.name); err != nil {
			return info, err
		}
	}
	fmt.Fprintf(log, "  dropped the %d secondary indexes of %s (built again after the load)\n", len(indexes), strings.Join(bulkTables, ", "))
	err = step("users and groups",
		fmt.Sprintf(`insert into bench.users (n, id)
select n, overlay(overlay(md5('iamc-bench/%d/' || n) placing '4' from 13 for 1) placing '8' from 17 for 1)::uuid
from generate_series(1, %d) n`, seed, NumUsers),
		fmt.Sprintf(`insert into iam.groups (id, name, created_by, created_at) overriding system value
select g, 'group ' || g, 'bench', %s from generate_series(1, %d) g
union all
select %d, 'big', (select id::text from bench.users where n = %d), %s`, epoch, NumGroups, big, bigUserN, epoch),
		`select setval(pg_get_serial_sequence('iam.groups', 'id'), (select max(id) from iam.groups))`,
		// Random members (the users after the special ones): some users
		// land in several groups, some in none.
		fmt.Sprintf(`insert into iam.group_members (group_id, user_id, role, added_by, added_at)
select p.g, u.id::text, case p.k when 1 then 'owner' when 2 then 'admin' else 'member' end, 'bench', %s
from (select g, k, %d + floor(random() * %d)::int as n
      from generate_series(1, %d) g cross join generate_series(1, %d) k) p
join bench.users u on u.n = p.n
on conflict do nothing`, epoch, randomStartN, NumUsers-randomStartN+1, NumGroups, MembersPerGroup),
		fmt.Sprintf(`insert into iam.group_members (group_id, user_id, role, added_by, added_at)
select g, (select id::text from bench.users where n = %d), case when g %% 400 = 0 then 'admin' else 'member' end, 'bench', %s
from generate_series(%d, %d, %d) g`, manyUserN, epoch, NumGroups/ManyGroups, NumGroups, NumGroups/ManyGroups),
		// The users in 500 and 2,000 groups. The group API's quota (200
		// groups per user by default, SPEC: groups block) does not apply
		// here: the memberships are loaded directly as the superuser, as
		// a DBA who raised the quota could have added them (and token
		// groups are not counted by the quota at all).
		fmt.Sprintf(`insert into iam.group_members (group_id, user_id, role, added_by, added_at)
select g, (select id::text from bench.users where n = %d), 'member', 'bench', %s
from generate_series(%d, %d, %d) g`, many500UserN, epoch, NumGroups/Many500Groups, NumGroups, NumGroups/Many500Groups),
		fmt.Sprintf(`insert into iam.group_members (group_id, user_id, role, added_by, added_at)
select g, (select id::text from bench.users where n = %d), 'member', 'bench', %s
from generate_series(1, %d) g`, many2000UserN, epoch, Many2000Groups),
		fmt.Sprintf(`insert into iam.group_members (group_id, user_id, role, added_by, added_at)
select %d, id::text, case n when %d then 'owner' else 'member' end, 'bench', %s
from bench.users where n = %d or n between 3 and %d`, big, bigUserN, epoch, bigUserN, bigMembersEnd),
	)
	if err == nil {
		// Owners uniform over all users; every bigEvery-th row in the big
		// group; of the others, GroupShare in an ordinary group.
		err = chunked("todos", rows, func(lo, hi int) string {
			return fmt.Sprintf(`insert into app.todos (title, done, owner_id, group_id, created_at)
select 'todo ' || s.i, s.r_done < 0.25, u.id,
       case when s.i %% %d = 0 then %d when s.r_group < %g then 1 + floor(s.r_gid * %d)::bigint end,
       %s + s.i * interval '1 second'
from (select i, random() as r_done, random() as r_group, random() as r_gid, 1 + floor(random() * %d)::int as owner_n
      from generate_series(%d, %d) i) s
join bench.users u on u.n = s.owner_n`, every, big, GroupShare, NumGroups, epoch, NumUsers, lo, hi)
		})
	}
	if err == nil {
		// Row shares (share by id in todos.iam): the user with shares
		// receives SharesOfUser shares of other users' todos, spread over
		// the table (every third with write, every seventh with delete);
		// and every RowShareEvery-th todo is shared with one random other
		// user but the user with shares (every third with write). Loaded as the superuser, past the
		// share API, as the memberships are (the quota of shares per
		// recipient is 10,000 in policies/todos.iam).
		shareStep := max(1, rows/(SharesOfUser+SharesOfUser/100))
		err = step("shares",
			fmt.Sprintf(`insert into iam.app_todos_shares (row_id, user_id, can_write, can_delete, shared_by, shared_at)
select t.id, u.id, t.id %% 3 = 0, t.id %% 7 = 0, t.owner_id, %s
from app.todos t, bench.users u
where u.n = %d and t.id %% %d = 0 and t.owner_id <> u.id
order by t.id
limit %d`, epoch, sharesUserN, shareStep, SharesOfUser),
			fmt.Sprintf(`insert into iam.app_todos_shares (row_id, user_id, can_write, shared_by, shared_at)
select s.i, u.id, s.i %% 3 = 0, t.owner_id, %s
from (select i, 1 + floor(random() * %d)::int as n from generate_series(%d, %d, %d) i) s
join bench.users u on u.n = s.n
join app.todos t on t.id = s.i
where t.owner_id <> u.id and u.n <> %d
on conflict do nothing`, epoch, NumUsers, RowShareEvery, rows, RowShareEvery, sharesUserN))
	}
	if err == nil {
		// Every chat is in a group (every bigEvery-th in the big one, the
		// others uniform), posted by a member of that group.
		err = chunked("chats", other, func(lo, hi int) string {
			return fmt.Sprintf(`insert into app.chats (body, owner_id, group_id, created_at)
select 'message ' || s.i, m.members[1 + floor(s.r_member * cardinality(m.members))::int], s.gid,
       %s + s.i * interval '1 second'
from (select i, case when i %% %d = 0 then %d else 1 + floor(random() * %d)::bigint end as gid, random() as r_member
      from generate_series(%d, %d) i) s
join (select group_id, array_agg(user_id::uuid order by user_id) as members from iam.group_members group by group_id) m
  on m.group_id = s.gid`, epoch, everyChat, big, NumGroups, lo, hi)
		})
	}
	if err == nil {
		// Notes of NumTenants organisations: owners uniform over all users,
		// each note in its owner's organisation; GroupShare of them in an
		// ordinary group (whose members are of every organisation: the
		// group arm finds the members of the note's own organisation).
		err = chunked("notes", other, func(lo, hi int) string {
			return fmt.Sprintf(`insert into app.notes (org_id, owner_id, group_id, body, created_at)
select %s, u.id, case when s.r_group < %g then 1 + floor(s.r_gid * %d)::bigint end, 'note ' || s.i,
       %s + s.i * interval '1 second'
from (select i, random() as r_group, random() as r_gid, 1 + floor(random() * %d)::int as owner_n
      from generate_series(%d, %d) i) s
join bench.users u on u.n = s.owner_n`, orgSQL("u.n"), GroupShare, NumGroups, epoch, NumUsers, lo, hi)
		})
	}
	if err == nil {
		// The marketplace: a store per ProductsOfStore products (other
		// rows of them, like chats and notes), owners uniform over all
		// users, StoreInGroup of them with a random ordinary group as
		// their staff (its ~10 members); each product in a store drawn
		// uniformly (about 100 per store).
		err = step("stores",
			fmt.Sprintf(`insert into app.stores (id, name, owner_id, group_id, created_at) overriding system value
select s.i, 'store ' || s.i, u.id, case when s.r_group < %g then 1 + floor(s.r_gid * %d)::bigint end,
       %s + s.i * interval '1 second'
from (select i, random() as r_group, random() as r_gid, 1 + floor(random() * %d)::int as owner_n
      from generate_series(1, %d) i) s
join bench.users u on u.n = s.owner_n`, StoreInGroup, NumGroups, epoch, NumUsers, stores),
			`select setval(pg_get_serial_sequence('app.stores', 'id'), (select max(id) from app.stores))`)
	}
	if err == nil {
		err = chunked("products", other, func(lo, hi int) string {
			return fmt.Sprintf(`insert into app.products (id, store_id, name, price, stock, created_at) overriding system value
select i, 1 + floor(random() * %d)::bigint, 'product ' || i, round((1 + random() * 99)::numeric, 2),
       floor(random() * 100)::int, %s + i * interval '1 second'
from generate_series(%d, %d) i`, stores, epoch, lo, hi)
		})
	}
	// The insert floors' copies hold the first other rows of the tables
	// (all of them unless --other-rows is smaller); their identities go on
	// from the tables' (so that Cleanup finds what runs inserted).
	if err == nil {
		err = chunked("floor copy of todos", other, func(lo, hi int) string {
			return fmt.Sprintf(`insert into bench.todos_copy overriding system value select * from app.todos where id between %d and %d`, lo, hi)
		})
	}
	if err == nil {
		err = chunked("floor copy of chats", other, func(lo, hi int) string {
			return fmt.Sprintf(`insert into bench.chats_copy overriding system value select * from app.chats where id between %d and %d`, lo, hi)
		})
	}
	if err == nil {
		err = chunked("floor copy of products", other, func(lo, hi int) string {
			return fmt.Sprintf(`insert into bench.products_copy overriding system value select * from app.products where id between %d and %d`, lo, hi)
		})
	}
	if err == nil {
		err = step("sequences",
			`select setval(pg_get_serial_sequence('app.products', 'id'), (select max(id) from app.products))`,
			`select setval(pg_get_serial_sequence('bench.todos_copy', 'id'), (select max(id) from app.todos))`,
			`select setval(pg_get_serial_sequence('bench.chats_copy', 'id'), (select max(id) from app.chats))`,
			`select setval(pg_get_serial_sequence('bench.products_copy', 'id'), (select max(id) from app.products))`,
		)
	}
	if err == nil {
		t := begin("indexes")
		for _, ix := range indexes {
			ti := time.Now()
			if err = exec("indexes", ix.def); err != nil {
				break
			}
			fmt.Fprintf(log, "  indexes: %s built in %s (build %s)\n", ix.name, since(ti), since(start))
		}
		if err == nil {
			end("indexes", t)
		}
	}
	if err != nil {
		return info, err
	}
	if err = tx.Commit(ctx); err != nil {
		return info, fmt.Errorf("committing the data set: %w", err)
	}
	db = su
	err = step("vacuum analyze",
		`reset session_replication_role`,
		`vacuum (analyze) app.todos, app.chats, app.notes, app.stores, app.products, bench.todos_copy, bench.chats_copy, bench.products_copy, iam.groups, iam.group_members, iam.app_todos_shares, bench.users`)
	if err == nil {
		err = grantFloorRole(ctx, su)
	}
	if err != nil {
		return info, err
	}
	info.Took = time.Since(start)
	info.Secs = info.Took.Seconds()
	_, err = su.Exec(ctx, fmt.Sprintf(`insert into bench.meta (rows, other_rows, seed, version, todos_max, chats_max, big_group, big_rows, products_max, build_seconds)
select %d, %d, %d, %d, (select coalesce(max(id), 0) from app.todos), (select coalesce(max(id), 0) from app.chats), %d,
       (select count(*) from app.todos where group_id = %d), (select coalesce(max(id), 0) from app.products), %g`, rows, other, seed, datasetVersion, big, big, info.Secs))
	if err != nil {
		return info, fmt.Errorf("recording bench.meta: %w", err)
	}
	fmt.Fprintf(log, "  data set built in %s\n", since(start))
	return info, nil
}

// progress is the line a chunked step prints after a chunk: done of total
// rows in took, and the time left at the same pace.
func progress(name string, done, total int, took time.Duration) string {
	s := fmt.Sprintf("%s: %s of %s rows (%s", name, thousands(done), thousands(total), took.Round(time.Second))
	if done < total && done > 0 {
		left := time.Duration(float64(took) * float64(total-done) / float64(done))
		s += fmt.Sprintf(", ~%s left", left.Round(time.Second))
	}
	return s + ")"
}

// copyForeignKeys is a DO block that gives the copy table the foreign keys
// of the original (LIKE copies everything else the floor needs).
func copyForeignKeys(from, to string) string {
	return fmt.Sprintf(`do $do$
declare
    def text;
begin
    for def in select pg_get_constraintdef(oid) from pg_constraint where conrelid = '%s'::regclass and contype = 'f' order by conname loop
        execute format('alter table %s add %%s', def);
    end loop;
end
$do$`, from, to)
}

func grantFloorRole(ctx context.Context, su *pgx.Conn) error {
	_, err := su.Exec(ctx, fmt.Sprintf(`do $do$
begin
    if not exists (select from pg_roles where rolname = '%[1]s') then
        create role %[1]s nologin bypassrls;
    end if;
end
$do$;
alter role %[1]s nologin bypassrls;
grant usage on schema app, iam, bench to %[1]s;
grant select, insert, update, delete on app.todos, app.chats, app.products, bench.todos_copy, bench.chats_copy, bench.products_copy to %[1]s;
grant select on app.notes, app.stores to %[1]s;
grant select on iam.group_members, iam.app_todos_shares to %[1]s;
-- The row guard of app.products (column rules) fires on every update, for
-- a role that bypasses RLS too, and its expressions name this helper:
-- PostgreSQL checks EXECUTE on every function of an expression before it
-- evaluates any part of it.
grant execute on function iam.bypasses_rls() to %[1]s;`, FloorRole))
	return err
}

// thousands writes n with comma separators: 10,000,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func seedFraction(seed int64) float64 {
	f := float64(seed%1000003) / 1000003
	if f < 0 {
		f = -f
	}
	return f
}

// benchTables are the tables the runs write.
const benchTables = "app.todos, app.chats, app.products, bench.todos_copy, bench.chats_copy, bench.products_copy"

// Cleanup removes what benchmark runs added (rows above the data set's
// maximum ids) and vacuums (without ANALYZE: the statistics stay those of
// the build, so every run plans with the same ones).
func Cleanup(ctx context.Context, su *pgx.Conn) error {
	_, err := su.Exec(ctx, `with
  a as (delete from app.todos where id > (select todos_max from bench.meta)),
  b as (delete from app.chats where id > (select chats_max from bench.meta)),
  c as (delete from bench.todos_copy where id > (select todos_max from bench.meta)),
  d as (delete from bench.chats_copy where id > (select chats_max from bench.meta)),
  e as (delete from app.products where id > (select products_max from bench.meta))
delete from bench.products_copy where id > (select products_max from bench.meta)`)
	if err != nil {
		return fmt.Errorf("removing the rows of earlier runs: %w", err)
	}
	if _, err := su.Exec(ctx, `vacuum `+benchTables); err != nil {
		return err
	}
	return grantFloorRole(ctx, su)
}

// HoldAutovacuum turns autovacuum off for the tables the runs write, so
// that no automatic ANALYZE changes the statistics (and the plans) in the
// middle of a measurement; Cleanup vacuums instead. The returned function
// turns it back on.
func HoldAutovacuum(ctx context.Context, su *pgx.Conn) (func() error, error) {
	var stmts []string
	for _, t := range strings.Split(benchTables, ", ") {
		stmts = append(stmts, "alter table "+t+" set (autovacuum_enabled = off)")
	}
	if _, err := su.Exec(ctx, strings.Join(stmts, "; ")); err != nil {
		return nil, err
	}
	return func() error {
		var reset []string
		for _, t := range strings.Split(benchTables, ", ") {
			reset = append(reset, "alter table "+t+" reset (autovacuum_enabled)")
		}
		_, err := su.Exec(context.Background(), strings.Join(reset, "; "))
		return err
	}, nil
}

// load reads the users, their groups and a sample of visible todos.
func load(ctx context.Context, su *pgx.Conn, seed int64) (*Dataset, error) {
	ds := &Dataset{Seed: seed}
	var rows, other int64
	if err := su.QueryRow(ctx, `select rows, coalesce((to_jsonb(m)->>'other_rows')::bigint, rows), todos_max, chats_max, big_group, big_rows, products_max from bench.meta m`).
		Scan(&rows, &other, &ds.TodosMax, &ds.ChatsMax, &ds.BigGroup, &ds.BigRows, &ds.ProductsMax); err != nil {
		return nil, err
	}
	ds.Rows, ds.OtherRows = int(rows), int(other)

	byID := map[string]*User{}
	r, err := su.Query(ctx, `select n, id::text from bench.users order by n`)
	if err != nil {
		return nil, err
	}
	for r.Next() {
		u := &User{}
		if err := r.Scan(&u.N, &u.ID); err != nil {
			return nil, err
		}
		u.Org = orgOf(u.N)
		u.Claims = keycloakClaims(u)
		admin := *u
		admin.Claims = keycloakClaims(u)
		admin.Claims["realm_access"] = map[string]any{"roles": []string{"default-roles-iamc", "offline_access", "uma_authorization", "org-admin"}}
		u.OrgAdmin = &admin
		ds.Users = append(ds.Users, u)
		byID[u.ID] = u
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if len(ds.Users) != NumUsers {
		return nil, fmt.Errorf("bench.users holds %d users, want %d", len(ds.Users), NumUsers)
	}

	r, err = su.Query(ctx, `select user_id, group_id, role from iam.group_members order by user_id, group_id`)
	if err != nil {
		return nil, err
	}
	for r.Next() {
		var uid, role string
		var g int64
		if err := r.Scan(&uid, &g, &role); err != nil {
			return nil, err
		}
		u := byID[uid]
		if u == nil {
			continue
		}
		u.Groups = append(u.Groups, g)
		if role != "member" {
			u.AdminGroups = append(u.AdminGroups, g)
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}

	// A sample of ~200,000 todos (every k-th id) gives each user a sample of
	// the rows it owns and of the rows of its groups.
	k := max(1, ds.TodosMax/200000)
	// An owner writes a row that is in a group only while a member of it
	// (SPEC §11), so an owned row counts when it is in no group or in one
	// of the owner's groups.
	type ownedRow struct {
		id    int64
		group int64 // 0: in no group
	}
	own := map[string][]ownedRow{}
	inGroup := map[int64][]int64{}
	r, err = su.Query(ctx, `select id, owner_id::text, group_id from app.todos where id <= $1 and id % $2 = 0`, ds.TodosMax, k)
	if err != nil {
		return nil, err
	}
	for r.Next() {
		var id int64
		var owner string
		var g *int64
		if err := r.Scan(&id, &owner, &g); err != nil {
			return nil, err
		}
		o := ownedRow{id: id}
		if g != nil {
			o.group = *g
			inGroup[*g] = append(inGroup[*g], id)
		}
		own[owner] = append(own[owner], o)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	// Todos shared with a user with write: theirs to read and write too.
	sharedWrite := map[string][]int64{}
	r, err = su.Query(ctx, `select s.row_id, s.user_id::text from iam.app_todos_shares s where s.can_write and s.user_id is not null and s.row_id <= $1 order by 1`, ds.TodosMax)
	if err != nil {
		return nil, err
	}
	for r.Next() {
		var id int64
		var uid string
		if err := r.Scan(&id, &uid); err != nil {
			return nil, err
		}
		sharedWrite[uid] = append(sharedWrite[uid], id)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	for _, u := range ds.Users {
		seen := map[int64]bool{}
		add := func(ids []int64) {
			for _, id := range ids {
				if !seen[id] {
					seen[id] = true
					u.Visible = append(u.Visible, id)
				}
			}
		}
		for _, o := range own[u.ID] {
			if o.group == 0 || slices.Contains(u.Groups, o.group) {
				add([]int64{o.id})
			}
		}
		for _, g := range u.Groups {
			add(inGroup[g])
		}
		add(sharedWrite[u.ID])
		sort.Slice(u.Visible, func(i, j int) bool { return u.Visible[i] < u.Visible[j] })
	}

	if err := loadNotes(ctx, su, ds); err != nil {
		return nil, err
	}

	ds.Big, ds.Many = ds.Users[bigUserN-1], ds.Users[manyUserN-1]
	ds.Many500, ds.Many2000 = ds.Users[many500UserN-1], ds.Users[many2000UserN-1]
	ds.Shares = ds.Users[sharesUserN-1]
	if err := su.QueryRow(ctx, `select count(*), coalesce(array_agg(row_id order by row_id), '{}') from iam.app_todos_shares where user_id = $1::uuid and row_id <= $2`,
		ds.Shares.ID, ds.TodosMax).Scan(&ds.SharesOf, &ds.SharedRows); err != nil {
		return nil, err
	}
	for _, u := range ds.Users {
		if u.N < randomStartN || u.N == sharesUserN {
			continue // special users, reported separately
		}
		ds.Normal = append(ds.Normal, u)
		if len(u.Groups) > 0 {
			ds.WithGroups = append(ds.WithGroups, u)
		}
	}
	if err := loadStores(ctx, su, ds, byID); err != nil {
		return nil, fmt.Errorf("loading the stores: %w", err)
	}
	return ds, nil
}

// ordinary says whether u is one of ds.Normal (not a special user).
func ordinary(u *User) bool { return u.N >= randomStartN && u.N != sharesUserN }

// loadStores reads every store and a sample of ~200,000 products (every
// k-th id), and who may write them: the store's owner, and the members of
// its staff group.
func loadStores(ctx context.Context, su *pgx.Conn, ds *Dataset, byID map[string]*User) error {
	ds.Staff = map[int64][]*User{}
	ds.storeProducts = map[int64][]int64{}
	ds.groupStores = map[int64][]int64{}
	for _, u := range ds.Normal {
		for _, g := range u.Groups {
			ds.Staff[g] = append(ds.Staff[g], u)
		}
	}
	r, err := su.Query(ctx, `select id, owner_id::text, coalesce(group_id, 0) from app.stores order by id`)
	if err != nil {
		return err
	}
	for r.Next() {
		s := &Store{}
		var owner string
		if err := r.Scan(&s.ID, &owner, &s.Group); err != nil {
			return err
		}
		if s.ID != int64(len(ds.Stores))+1 {
			return fmt.Errorf("store ids are not 1..n: store %d after %d stores", s.ID, len(ds.Stores))
		}
		if s.Owner = byID[owner]; s.Owner == nil {
			return fmt.Errorf("store %d: owner %s is not a user of the data set", s.ID, owner)
		}
		ds.Stores = append(ds.Stores, s)
		s.Owner.Stores = append(s.Owner.Stores, s.ID)
		if ordinary(s.Owner) {
			ds.OwnedStores = append(ds.OwnedStores, s)
		}
		if s.Group != 0 {
			ds.groupStores[s.Group] = append(ds.groupStores[s.Group], s.ID)
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	if len(ds.Stores) == 0 {
		return errors.New("app.stores is empty")
	}
	k := max(1, ds.ProductsMax/200000)
	r, err = su.Query(ctx, `select id, store_id from app.products where id <= $1 and id % $2 = 0 order by id`, ds.ProductsMax, k)
	if err != nil {
		return err
	}
	for r.Next() {
		var p Product
		if err := r.Scan(&p.ID, &p.Store); err != nil {
			return err
		}
		ds.Products = append(ds.Products, p)
		ds.storeProducts[p.Store] = append(ds.storeProducts[p.Store], p.ID)
		if g := ds.Stores[p.Store-1].Group; g != 0 && len(ds.Staff[g]) > 0 {
			ds.StaffedProducts = append(ds.StaffedProducts, p)
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	if len(ds.Products) == 0 || len(ds.OwnedStores) == 0 || len(ds.StaffedProducts) == 0 {
		return fmt.Errorf("%d products sampled, %d stores of ordinary users, %d products with ordinary staff: want some of each",
			len(ds.Products), len(ds.OwnedStores), len(ds.StaffedProducts))
	}
	return nil
}

// writableProducts are products (of the sample) u may write by
// construction: of the stores u owns and of the stores whose group u is in.
func (ds *Dataset) writableProducts(u *User) []int64 {
	var out []int64
	for _, s := range u.Stores {
		out = append(out, ds.storeProducts[s]...)
	}
	for _, g := range u.Groups {
		for _, s := range ds.groupStores[g] {
			if ds.Stores[s-1].Owner != u {
				out = append(out, ds.storeProducts[s]...)
			}
		}
	}
	return out
}

// keycloakClaims is the payload of a Keycloak access token for the user,
// with the role claim PostgREST reads.
func keycloakClaims(u *User) map[string]any {
	now := time.Now().Unix()
	name := fmt.Sprintf("user%05d", u.N)
	return map[string]any{
		"exp":                now + 3600,
		"iat":                now,
		"jti":                fmt.Sprintf("bench-%d", u.N),
		"iss":                "http://keycloak.local:8080/realms/iamc",
		"aud":                []string{"todo-api", "account"}, // the shipped realm's audience mapper: iam.iam's audience
		"sub":                u.ID,
		"typ":                "Bearer",
		"azp":                "iamc-app",
		"scope":              "openid profile email",
		"preferred_username": name,
		"email":              name + "@example.com",
		"email_verified":     true,
		"realm_access":       map[string]any{"roles": []string{"default-roles-iamc", "offline_access", "uma_authorization"}},
		"role":               "web_user",
		"org_id":             u.Org, // the realm's attribute mapper (notes.iam's tenant)
	}
}

// loadNotes gives each user (and their org-admin self) a sample of the
// notes they may read: of ~200,000 notes (every k-th id), those they own
// and those of their groups in their organisation; the org-admin reads
// every note of the organisation.
func loadNotes(ctx context.Context, su *pgx.Conn, ds *Dataset) error {
	var maxID int64
	if err := su.QueryRow(ctx, `select coalesce(max(id), 0) from app.notes`).Scan(&maxID); err != nil {
		return err
	}
	k := max(1, maxID/200000)
	type noteRow struct {
		id    int64
		org   string
		group int64
	}
	own := map[string][]int64{}
	inGroup := map[int64][]noteRow{}
	byOrg := map[string][]int64{}
	r, err := su.Query(ctx, `select id, org_id, owner_id::text, coalesce(group_id, 0) from app.notes where id % $1 = 0 order by id`, k)
	if err != nil {
		return err
	}
	for r.Next() {
		var n noteRow
		var owner string
		if err := r.Scan(&n.id, &n.org, &owner, &n.group); err != nil {
			return err
		}
		own[owner] = append(own[owner], n.id)
		byOrg[n.org] = append(byOrg[n.org], n.id)
		if n.group != 0 {
			inGroup[n.group] = append(inGroup[n.group], n)
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	for _, u := range ds.Users {
		seen := map[int64]bool{}
		for _, id := range own[u.ID] {
			seen[id] = true
		}
		for _, g := range u.Groups {
			for _, n := range inGroup[g] {
				if n.org == u.Org {
					seen[n.id] = true
				}
			}
		}
		for id := range seen {
			u.VisibleNotes = append(u.VisibleNotes, id)
		}
		slices.Sort(u.VisibleNotes)
		u.OrgAdmin.VisibleNotes = byOrg[u.Org]
	}
	return nil
}

// Stats summarises the data set for the report.
func (ds *Dataset) Stats() string {
	none, several := 0, 0
	for _, u := range ds.Normal {
		switch {
		case len(u.Groups) == 0:
			none++
		case len(u.Groups) > 1:
			several++
		}
	}
	grouped := 0
	for _, s := range ds.Stores {
		if s.Group != 0 {
			grouped++
		}
	}
	return fmt.Sprintf("%d todos, %d chats, %d notes of %d organisations; %d users (of the %d ordinary ones, %d in no group, %d in several); "+
		"users %d, %d and %d are in %d, %d and %d groups; user %d owns the big group (%d todos, %d members); "+
		"user %d has %d todos shared with them (and is in %d groups); %d stores (%d with a staff group), %d products",
		ds.TodosMax, ds.ChatsMax, ds.OtherRows, NumTenants, len(ds.Users), len(ds.Normal), none, several,
		ds.Many.N, ds.Many500.N, ds.Many2000.N, len(ds.Many.Groups), len(ds.Many500.Groups), len(ds.Many2000.Groups),
		ds.Big.N, ds.BigRows, bigMembersEnd-1, ds.Shares.N, ds.SharesOf, len(ds.Shares.Groups),
		len(ds.Stores), grouped, ds.ProductsMax)
}

// pick returns a random element.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }
