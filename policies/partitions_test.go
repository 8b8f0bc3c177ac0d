package policies_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
)

// The example with its tables partitioned (testdata/partitioned.sql: chats
// by month of created_at, todos by id), built and applied by a superuser,
// so the event trigger locks down partitions made afterwards. The cast of
// the room (a group alice owns):
//
//	alice  owns the room, writes the chats the tests read
//	bob    a member of the room
//	carol  an admin of the room
//	dave   signed in, not in the room
var (
	carol = KeycloakUser("carol", "ca201000-0000-4000-8000-0000000000c1")
	dave  = KeycloakUser("dave", "da7e0000-0000-4000-8000-0000000000d4")
)

var parts struct {
	once sync.Once
	db   *Database
	room int64
	err  error
}

// partsDB is the partitioned example, set up once; the tests add their own
// partitions (each its own range) and rows.
func partsDB(t *testing.T) *Database {
	t.Helper()
	parts.once.Do(func() {
		s := Server(t)
		var db *Database
		if db, parts.err = CreateDatabase(s, "parts", "schema.sql", "testdata/partitioned.sql"); parts.err != nil {
			return
		}
		script, err := BuildScript(Dir)
		if err != nil {
			parts.err = err
			return
		}
		for i := 0; i < 2; i++ { // the second apply changes nothing
			if out, err := ApplyScript(t.Context(), s, "parts", script); err != nil {
				parts.err = fmt.Errorf("apply %d: %v\n%s", i+1, err, out)
				return
			}
		}
		parts.db = db
	})
	if parts.err != nil {
		t.Fatalf("setting up the partitioned example: %v", parts.err)
	}
	db := parts.db
	if parts.room == 0 {
		parts.room = CreateGroup(t, db, Alice, "room")
		AddMember(t, db, Alice, parts.room, UserID(Bob), "member")
		AddMember(t, db, Alice, parts.room, UserID(carol), "admin")
	}
	return db
}

// partitionOf is the partition a row of table is stored in.
func partitionOf(t *testing.T, db *Database, table string, id int64) string {
	t.Helper()
	return Scalar[string](t, db, fmt.Sprintf("select tableoid::regclass::text from app.%s where id = $1", table), id)
}

// lockedDown lists the partitions of a table (at every level) that break
// the rule: row-level security not enabled and forced, a privilege for
// anyone but the owner, a policy, or an owner other than api_owner.
func lockedDown(t *testing.T, db *Database, table string) {
	t.Helper()
	open := Scalar[[]string](t, db, `select coalesce(array_agg(c.oid::regclass::text order by c.relname), '{}')
	    from pg_partition_tree($1::regclass) p join pg_class c on c.oid = p.relid
	    where p.level > 0 and (not c.relrowsecurity or not c.relforcerowsecurity or pg_get_userbyid(c.relowner) <> 'api_owner'
	        or exists (select from aclexplode(c.relacl) a where a.grantee <> c.relowner)
	        or exists (select from pg_policy pol where pol.polrelid = c.oid))`, table)
	if len(open) > 0 {
		t.Errorf("partitions of %s not locked down: %v", table, open)
	}
}

// chatCell is what one caller may do with a chat of alice's in the room.
type chatCell struct{ read, list, create, update, remove bool }

// chatsRules is chats.iam for the room: alice owns the chat and the room
// (bob a member, carol an admin);
// members read and post, admins also delete; strangers and anonymous
// callers nothing.
var chatsRules = []struct {
	who  Person
	want chatCell
}{
	{Alice, chatCell{read: true, list: true, create: true, update: true, remove: true}},
	{Bob, chatCell{read: true, list: true, create: true}},
	{carol, chatCell{read: true, list: true, create: true, remove: true}},
	{dave, chatCell{}},
	{Anonymous, chatCell{}},
}

// chatsBothSides checks every rule of chats.iam from both sides on a chat
// stored in partition (at time at): through app.chats each caller reads,
// lists, creates, updates and deletes exactly what the rules say, and a
// forged owner is refused; directly, the partition answers nobody
// (permission denied, whatever the grants it was made with). Every refused
// write is re-checked as the superuser: nothing changed.
func chatsBothSides(t *testing.T, db *Database, room int64, partition string, at time.Time) {
	t.Helper()
	fresh := func(t *testing.T) int64 {
		t.Helper()
		id := Scalar[int64](t, db, "insert into app.chats (body, owner_id, group_id, created_at) values ('hello', $1::uuid, $2, $3) returning id",
			AliceID, room, at)
		t.Cleanup(func() { db.Exec(t, "delete from app.chats where id = $1", id) })
		if got := partitionOf(t, db, "chats", id); got != partition {
			t.Fatalf("the chat at %s is stored in %s, want %s", at, got, partition)
		}
		return id
	}
	stored := func(t *testing.T, id int64) string {
		t.Helper()
		var body string
		if err := db.SU.QueryRow(t.Context(), "select body from app.chats where id = $1", id).Scan(&body); errors.Is(err, pgx.ErrNoRows) {
			return "(deleted)"
		} else if err != nil {
			t.Fatal(err)
		}
		return body
	}
	for _, c := range chatsRules {
		t.Run(c.who.Name, func(t *testing.T) {
			as := Requester{T: t, DB: db, Who: c.who, Path: "/chats"}
			id := fresh(t)

			var n int64
			err := as.Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select count(*) from app.chats where id = $1", id).Scan(&n)
			})
			if got := err == nil && n == 1; got != c.want.read {
				t.Errorf("read through app.chats: %v (err %v), want %v", got, err, c.want.read)
			}
			page, err := pageIDs(t, db, c.who, "/rpc/chats_page", "select id from app.chats_page(group_id => $1, before => $2, page_size => 1)", room, id+1)
			if got := err == nil && slices.Equal(page, []int64{id}); got != c.want.list {
				t.Errorf("list (chats_page of the room): %v (err %v), want %v", page, err, c.want.list)
			}

			var created int64
			var where string
			err = as.Do("POST", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "insert into app.chats (body, group_id, created_at) values ('posted', $1, $2) returning id, tableoid::regclass::text",
					room, at).Scan(&created, &where)
			})
			if got := err == nil; got != c.want.create {
				t.Errorf("create in the room: %v (err %v), want %v", got, err, c.want.create)
			}
			if err == nil {
				if where != partition {
					t.Errorf("the created chat went to %s, want %s", where, partition)
				}
				db.Exec(t, "delete from app.chats where id = $1", created)
			} else if c.who.Role == "web_user" {
				// The row guard's message names the table, not the partition.
				WantSQLError(t, err, "42501", "you cannot put rows of app.chats into group")
			}
			if c.who.Role == "web_user" {
				// A forged owner is refused, whoever it names.
				_, err = as.Exec("POST", "insert into app.chats (body, owner_id, group_id, created_at) values ('forged', $1::uuid, $2, $3)", UserID(dave), room, at)
				if c.who.Name == "dave" {
					_, err = as.Exec("POST", "insert into app.chats (body, owner_id, group_id, created_at) values ('forged', $1::uuid, $2, $3)", AliceID, room, at)
				}
				if err == nil {
					t.Errorf("a chat with someone else as its owner was created")
				}
			}
			if got := Scalar[int64](t, db, "select count(*) from app.chats where body in ('posted', 'forged') and created_at = $1", at); got != 0 && !c.want.create {
				t.Errorf("a refused create left %d chats", got)
			}
			db.Exec(t, "delete from app.chats where body in ('posted', 'forged')")

			n, err = as.Exec("PATCH", "update app.chats set body = 'edited' where id = $1", id)
			if got := err == nil && n == 1; got != c.want.update {
				t.Errorf("update: %d rows (err %v), want updated %v", n, err, c.want.update)
			}
			if !c.want.update && stored(t, id) != "hello" {
				t.Errorf("a refused update changed the chat: %q", stored(t, id))
			}

			n, err = as.Exec("DELETE", "delete from app.chats where id = $1", id)
			if got := err == nil && n == 1; got != c.want.remove {
				t.Errorf("delete: %d rows (err %v), want deleted %v", n, err, c.want.remove)
			}
			if !c.want.remove && stored(t, id) == "(deleted)" {
				t.Error("a refused delete deleted the chat")
			}

			// The partition itself, as PostgREST would serve it.
			id = fresh(t)
			before := stored(t, id)
			direct := Requester{T: t, DB: db, Who: c.who, Path: "/" + strings.TrimPrefix(partition, "app.")}
			for _, q := range []struct{ method, sql string }{
				{"GET", "select count(*) from " + partition},
				{"GET", "select * from " + partition + " where id = $1"},
				{"POST", "insert into " + partition + " (body, owner_id, group_id, created_at) values ('direct', $1::uuid, $2, $3)"},
				{"PATCH", "update " + partition + " set body = 'direct' where id = $1"},
				{"DELETE", "delete from " + partition + " where id = $1"},
			} {
				args := []any{id}
				if q.method == "POST" {
					// No id: partitions have the table's identity column
					// only since PostgreSQL 17, which refuses a given id
					// (428C9) before it checks privileges.
					args = []any{UserID(c.who), room, at}
					if c.who.Role != "web_user" {
						args[0] = AliceID
					}
				} else if strings.Count(q.sql, "$") == 0 {
					args = nil
				}
				_, err := direct.Exec(q.method, q.sql, args...)
				if pgrest.SQLState(err) != "42501" {
					t.Errorf("%s %s directly: %v, want permission denied (42501)", q.method, partition, err)
				}
			}
			if got := stored(t, id); got != before {
				t.Errorf("a direct request changed the chat: %q", got)
			}
			if got := Scalar[int64](t, db, "select count(*) from app.chats where body = 'direct'"); got != 0 {
				t.Errorf("a direct request inserted %d chats", got)
			}
		})
	}
}

// partitionStart is the lower bound of a range partition.
func partitionStart(t *testing.T, db *Database, partition string) time.Time {
	t.Helper()
	return Scalar[time.Time](t, db, `select (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz
	    from pg_class c where c.oid = $1::regclass`, partition)
}

// TestPartitionedChats: the rules of chats.iam hold from both sides for a
// chat in each partition apply found (the months and the default), and in
// each partition made after it, however made: by the owner role with the
// privileges default privileges give, by attaching a table granted to the
// runtime roles, by a superuser, and a partition partitioned again. Each
// new one is locked down by the event trigger on creation, with no apply.
func TestPartitionedChats(t *testing.T) {
	db := partsDB(t)
	lockedDown(t, db, "app.chats")
	existing := Scalar[[]string](t, db, `select array_agg(c.oid::regclass::text order by c.relname) from pg_partition_tree('app.chats') p
	    join pg_class c on c.oid = p.relid where p.level > 0`)
	for _, p := range existing {
		at := time.Date(1999, 6, 15, 12, 0, 0, 0, time.UTC) // the default partition
		if p != "app.chats_default" {
			at = partitionStart(t, db, p).Add(36 * time.Hour)
		}
		t.Run(p, func(t *testing.T) { chatsBothSides(t, db, parts.room, p, at) })
	}

	made := []struct{ name, sql string }{
		{"the owner role, default privileges granting the runtime roles", `
alter default privileges for role api_owner in schema app grant select, insert, update, delete on tables to web_user, web_anon;
set role api_owner;
create table app.chats_2031_01 partition of app.chats for values from ('2031-01-01') to ('2031-02-01');
reset role;
alter default privileges for role api_owner in schema app revoke select, insert, update, delete on tables from web_user, web_anon;`},
		{"attached, granted to the runtime roles before", `
set role api_owner;
create table app.chats_2032_01 (like app.chats including defaults including constraints);
grant select, insert, update, delete on app.chats_2032_01 to web_user, web_anon, public;
alter table app.chats attach partition app.chats_2032_01 for values from ('2032-01-01') to ('2032-02-01');
reset role;`},
		{"a superuser, then granted", `
create table app.chats_2033_01 partition of app.chats for values from ('2033-01-01') to ('2033-02-01');
grant all on app.chats_2033_01 to web_user, public;`},
		{"partitioned again", `
set role api_owner;
create table app.chats_2034 partition of app.chats for values from ('2034-01-01') to ('2035-01-01') partition by range (created_at);
create table app.chats_2034_h1 partition of app.chats_2034 for values from ('2034-01-01') to ('2034-07-01');
grant select on app.chats_2034, app.chats_2034_h1 to web_user;
reset role;`},
	}
	for _, m := range made {
		db.Exec(t, m.sql)
	}
	lockedDown(t, db, "app.chats")
	for _, p := range []struct {
		partition string
		at        time.Time
	}{
		{"app.chats_2031_01", time.Date(2031, 1, 10, 0, 0, 0, 0, time.UTC)},
		{"app.chats_2032_01", time.Date(2032, 1, 10, 0, 0, 0, 0, time.UTC)},
		{"app.chats_2033_01", time.Date(2033, 1, 10, 0, 0, 0, 0, time.UTC)},
		{"app.chats_2034_h1", time.Date(2034, 3, 10, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(p.partition, func(t *testing.T) { chatsBothSides(t, db, parts.room, p.partition, p.at) })
	}
	// The intermediate partition is a table too.
	for _, who := range []Person{Bob, Anonymous} {
		_, err := Requester{T: t, DB: db, Who: who, Path: "/chats_2034"}.Exec("GET", "select count(*) from app.chats_2034")
		if pgrest.SQLState(err) != "42501" {
			t.Errorf("%s reads app.chats_2034 directly: %v", who.Name, err)
		}
	}
}

// TestPartitionedGroupDelete: deleting a room deletes its chats in every
// partition (the foreign key of app.chats reaches them all, and runs past
// their forced row-level security as the table's owner), and sets the
// group of todos in it to null.
func TestPartitionedGroupDelete(t *testing.T) {
	db := partsDB(t)
	room := CreateGroup(t, db, Bob, "doomed")
	var ids []int64
	for _, at := range []time.Time{time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), time.Now(), time.Now().AddDate(0, -1, 0)} {
		var id int64
		err := Requester{T: t, DB: db, Who: Bob, Path: "/chats"}.Do("POST", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "insert into app.chats (body, group_id, created_at) values ('bye', $1, $2) returning id", room, at).Scan(&id)
		})
		NoError(t, err)
		ids = append(ids, id)
	}
	var todo int64
	err := Requester{T: t, DB: db, Who: Bob, Path: "/todos"}.Do("POST", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "insert into app.todos (title, group_id) values ('shared', $1) returning id", room).Scan(&todo)
	})
	NoError(t, err)
	NoError(t, RPC(t, db, Bob, "delete_group", "group_id", room))
	if n := Scalar[int64](t, db, "select count(*) from app.chats where id = any($1)", ids); n != 0 {
		t.Errorf("%d chats of the deleted room are left", n)
	}
	if g := Scalar[*int64](t, db, "select group_id from app.todos where id = $1", todo); g != nil {
		t.Errorf("the todo is still in group %d", *g)
	}
}

// TestPartitionedTodos: todos are partitioned by id, the page key. The
// rules hold through app.todos for a todo in a later partition and in one
// made after apply, which answers nobody directly; a page reads only the
// partitions it needs: the newest first, the others never (an ordered
// Append stops after a page), and a cursor prunes the partitions above it.
func TestPartitionedTodos(t *testing.T) {
	db := partsDB(t)
	db.Exec(t, `set role api_owner;
create table app.todos_p2 partition of app.todos for values from (2000000) to (3000000);
reset role;
grant select, insert, update, delete on app.todos_p2 to web_user, web_anon;`)
	lockedDown(t, db, "app.todos")
	// Alice's todos: 60 in each partition (ids set as the superuser), shared
	// with the room, and one of hers alone, the newest.
	db.Exec(t, `insert into app.todos (id, title, owner_id, group_id)
overriding system value
select base + i, 'todo ' || (base + i), $1::uuid, $2::bigint
from unnest(array[100, 1500000, 2500000]) base, generate_series(1, 60) i
union all select 2999999, 'todo alone', $1::uuid, null`, AliceID, parts.room)
	t.Cleanup(func() { db.Exec(t, "delete from app.todos where title like 'todo %'") })
	db.Exec(t, "analyze app.todos")

	for _, c := range []struct {
		who      Person
		shared   bool // todo 2500003, shared with the room
		alone    bool // todo 2999999, alice's alone
		pageSize int  // rows of a first page of 50 (todos_page)
	}{
		{Alice, true, true, 50},
		{Bob, true, false, 50},
		{carol, true, false, 50},
		{dave, false, false, 0},
	} {
		as := Requester{T: t, DB: db, Who: c.who, Path: "/todos"}
		for _, r := range []struct {
			id   int64
			want bool
		}{{2500003, c.shared}, {2999999, c.alone}} {
			var n int64
			err := as.Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select count(*) from app.todos where id = $1", r.id).Scan(&n)
			})
			if got := err == nil && n == 1; got != r.want {
				t.Errorf("%s reads todo %d: %v (err %v), want %v", c.who.Name, r.id, got, err, r.want)
			}
		}
		page, err := pageIDs(t, db, c.who, "/rpc/todos_page", "select id from app.todos_page()")
		NoError(t, err)
		table, err := pageIDs(t, db, c.who, "/todos", "select id from app.todos order by id desc limit 50")
		NoError(t, err)
		if !slices.Equal(page, table) || len(page) != c.pageSize {
			t.Errorf("%s: todos_page %v, the table's page %v, want the same %d rows", c.who.Name, page, table, c.pageSize)
		}
		_, err = Requester{T: t, DB: db, Who: c.who, Path: "/todos_p2"}.Exec("GET", "select count(*) from app.todos_p2")
		if pgrest.SQLState(err) != "42501" {
			t.Errorf("%s reads app.todos_p2 directly: %v", c.who.Name, err)
		}
	}

	// Which partitions a page of bob's reads rows from (his own walk probes
	// each partition once and finds his own rows, if any), and which the
	// cursor prunes.
	own := float64(Scalar[int64](t, db, "select count(*) from app.todos where owner_id = $1::uuid", BobID))
	for _, c := range []struct {
		name, sql string
		read      string   // the partition the room's rows are read from
		pruned    []string // partitions not scanned at all
	}{
		{"the newest page", "select * from app.todos_page()", "todos_p2", nil},
		{"the room's newest page", fmt.Sprintf("select * from app.todos_page(group_id => %d)", parts.room), "todos_p2", nil},
		{"a page below 1,000,000", "select * from app.todos_page(before => 1000000)", "todos_p0", []string{"todos_p1", "todos_p2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := explainPage(t, db, Bob, "todos", "limit", c.sql)
			t.Logf("%s: %+v", c.sql, plan)
			elsewhere := plan.RowsRead - plan.Read[c.read]
			if elsewhere > own {
				t.Errorf("%.0f rows read outside %s (bob owns %.0f): %v", elsewhere, c.read, own, plan.Read)
			}
			if plan.Read[c.read] == 0 || plan.RowsRead > 50+own {
				t.Errorf("read %.0f rows (%.0f from %s), want a page of 50 from %s and at most bob's own %.0f", plan.RowsRead, plan.Read[c.read], c.read, c.read, own)
			}
			for _, p := range c.pruned {
				if slices.Contains(plan.Relations, p) {
					t.Errorf("%s is scanned below the cursor: %v", p, plan.Relations)
				}
			}
		})
	}
}

// TestPartitionedChatsPages: chats are partitioned by time and paged by id,
// so every walk visits each partition (a Merge Append cannot know which
// holds the newest ids), but reads at most a page plus one row per
// partition: the page function's bound, partition count aside. Its pages
// are the table's.
func TestPartitionedChatsPages(t *testing.T) {
	db := partsDB(t)
	months := Scalar[[]time.Time](t, db, `select array_agg(lower_bound order by lower_bound) from (
	    select (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz as lower_bound
	    from pg_partition_tree('app.chats') p join pg_class c on c.oid = p.relid where p.level = 1 and p.isleaf) m where lower_bound is not null`)
	// 300 chats by bob in the room, spread over the months (ids do not
	// follow time: the last month's are the oldest ids).
	db.Exec(t, `insert into app.chats (body, owner_id, group_id, created_at)
select 'pg ' || i, $1::uuid, $2, ($3::timestamptz[])[1 + (cardinality($3::timestamptz[]) - 1 - i % cardinality($3::timestamptz[]))] + i * interval '1 minute'
from generate_series(1, 300) i`, BobID, parts.room, months)
	t.Cleanup(func() { db.Exec(t, "delete from app.chats where body like 'pg %'") })
	db.Exec(t, "analyze app.chats")
	partitions := float64(Scalar[int64](t, db, "select count(*) from pg_partition_tree('app.chats') p where p.isleaf"))

	for _, who := range []Person{Alice, Bob, dave} {
		for _, before := range []int64{0, Scalar[int64](t, db, "select max(id) - 100 from app.chats")} {
			cursor, filter := "null", ""
			if before != 0 {
				cursor, filter = fmt.Sprint(before), fmt.Sprintf(" and id < %d", before)
			}
			page, err := pageIDs(t, db, who, "/rpc/chats_page", fmt.Sprintf("select id from app.chats_page(group_id => %d, before => %s)", parts.room, cursor))
			NoError(t, err)
			table, err := pageIDs(t, db, who, "/chats", fmt.Sprintf("select id from app.chats where group_id = %d%s order by id desc limit 50", parts.room, filter))
			NoError(t, err)
			if !slices.Equal(page, table) {
				t.Errorf("%s, before %s: chats_page %v, the table %v", who.Name, cursor, page, table)
			}
		}
	}
	plan := explainPage(t, db, Bob, "chats", "t.group_id = chats_page.group_id", fmt.Sprintf("select * from app.chats_page(group_id => %d)", parts.room))
	t.Logf("%+v", plan)
	if limit := 50 + partitions; plan.RowsRead > limit {
		t.Errorf("a page of the room read %.0f rows, more than a page and one per partition (%.0f)", plan.RowsRead, limit)
	}
	for _, s := range plan.Scans {
		if !strings.HasPrefix(s, "Index Scan Backward ") {
			t.Errorf("scan %q is not a backward index walk", s)
		}
	}
}
