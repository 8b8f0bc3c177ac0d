package policies_test

// The owner rules of todos.iam and chats.iam, against a real PostgreSQL:
// the build of this directory applied with psql over roles.sql and
// schema.sql, and every request made as PostgREST 12 makes it (login as
// authenticator, one transaction per request, READ ONLY for GET, role and
// JWT claims set with set_config). Each case is checked from both sides:
// what the caller gets, and what the superuser then finds in the table.
// Every chat message is posted into a chat room (a group): alice and bob
// each have a room of their own, so these cases see only the owner rules.
// groups_test.go covers what groups add.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/stdlib"
)

// A user from a federated provider (LDAP) keeps Keycloak's "f:<provider>:<name>" id.
var federatedAlice = KeycloakUser("alice", "f:ldap:alice")

// ownedTable is one table of schema.sql protected by `owner can read,
// create, write, delete`.
type ownedTable struct {
	name       string // qualified table name
	noun       string // what a row is, for test names
	path       string // the PostgREST path
	text       string // its text column
	index      string // the owner index the build creates
	groupIndex string // the group index the build creates
	groupFK    string // the foreign key of the group column to iam.groups
	onDelete   string // its ON DELETE action
	// groupIndexWhere is the group index's predicate: rows in no group are
	// left out of it when the group is optional.
	groupIndexWhere string
	inRoom          bool      // every row is in a group (group column required)
	seed            [3]string // texts of alice's two rows and bob's one
	transfer        bool      // owner can transfer: the transfer policy too
}

var ownedTables = []ownedTable{
	{name: "app.todos", noun: "todo", path: "/todos", text: "title", index: "todos_owner_id_id_iam_idx",
		groupIndex: "todos_group_id_id_iam_idx", groupFK: "todos_group_id_iam_fk", onDelete: "SET NULL",
		groupIndexWhere: " WHERE (group_id IS NOT NULL)", transfer: true,
		seed: [3]string{"buy milk", "walk the dog", "bob: call mum"}},
	{name: "app.chats", noun: "chat message", path: "/chats", text: "body", index: "chats_owner_id_id_iam_idx",
		groupIndex: "chats_group_id_id_iam_idx", groupFK: "chats_group_id_iam_fk", onDelete: "CASCADE",
		inRoom: true, seed: [3]string{"hi bob", "lunch at noon?", "bob: sure"}},
}

// exampleRooms are alice's and bob's chat rooms in each database the
// owner matrix runs on: groups each of them created through the API (POST
// /rpc/create_group), with no other member.
var exampleRooms struct {
	mu    sync.Mutex
	rooms map[string][2]int64 // by database name
}

func rooms(t *testing.T, db *Database) (aliceRoom, bobRoom int64) {
	t.Helper()
	exampleRooms.mu.Lock()
	defer exampleRooms.mu.Unlock()
	r, ok := exampleRooms.rooms[db.Name]
	if !ok {
		r = [2]int64{CreateGroup(t, db, Alice, "alice's room"), CreateGroup(t, db, Bob, "bob's room")}
		if exampleRooms.rooms == nil {
			exampleRooms.rooms = map[string][2]int64{}
		}
		exampleRooms.rooms[db.Name] = r
	}
	return r[0], r[1]
}

// matrix is one case's view of one table, freshly seeded as superuser:
// ids 1 and 2 are alice's, id 3 is bob's; chat messages are in their
// author's room.
type matrix struct {
	ownedTable
	t         *testing.T
	db        *Database
	aliceRoom any // alice's room for chats, NULL for todos
	bobRoom   any
	seeded    []Row
	before    DBState // the whole database after seeding
	// anonymous is a request without a token: the anonymous role, or in
	// single-role mode (single) the one role without a user id.
	anonymous Person
	single    bool
}

func newMatrix(t *testing.T, db *Database, table ownedTable) *matrix {
	return newMatrixAs(t, db, table, Anonymous, false)
}

func newMatrixAs(t *testing.T, db *Database, table ownedTable, anon Person, single bool) *matrix {
	m := &matrix{ownedTable: table, t: t, db: db, anonymous: anon, single: single}
	if table.inRoom {
		m.aliceRoom, m.bobRoom = rooms(t, db)
	}
	db.Exec(t, m.expand("truncate {table} restart identity cascade"))
	db.Exec(t, m.expand("insert into {table} ({text}, owner_id, group_id) values ($1, $4, $6), ($2, $4, $6), ($3, $5, $7)"),
		table.seed[0], table.seed[1], table.seed[2], AliceID, BobID, m.aliceRoom, m.bobRoom)
	m.seeded = []Row{
		{ID: 1, Text: table.seed[0], Owner: "alice"},
		{ID: 2, Text: table.seed[1], Owner: "alice"},
		{ID: 3, Text: table.seed[2], Owner: "bob"},
	}
	m.before = Snapshot(t, db)
	return m
}

// expand fills {table}, {text} and {cols} (id, text, owner) into SQL, and
// for tables whose rows are in a room, {room} (", group_id") and
// {alice's room} (", <its id>") into inserts; both are empty for todos.
func (m *matrix) expand(sql string) string {
	room, aliceRoom := "", ""
	if m.inRoom {
		room, aliceRoom = ", group_id", fmt.Sprintf(", %d", m.aliceRoom)
	}
	return strings.NewReplacer(
		"{table}", m.name,
		"{text}", m.text,
		"{cols}", "id, "+m.text+", owner_id::text",
		"{room}", room,
		"{alice's room}", aliceRoom,
	).Replace(sql)
}

// as makes requests to this table for who.
func (m *matrix) as(who Person) Requester {
	return Requester{T: m.t, DB: m.db, Who: who, Path: m.path, Expand: m.expand}
}

// wantTable checks the whole table as the superuser sees it.
func (m *matrix) wantTable(want ...Row) {
	m.t.Helper()
	rows, err := m.db.SU.Query(m.t.Context(), m.expand("select {cols} from {table} order by id"))
	NoError(m.t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
	NoError(m.t, err)
	WantRows(m.t, "the table as the superuser sees it", Names(got), want)
}

// unchanged checks that the table still holds exactly the seeded rows,
// and that nothing else in the database changed either.
func (m *matrix) unchanged() {
	m.t.Helper()
	m.wantTable(m.seeded...)
	WantUnchanged(m.t, m.db, m.before)
}

var ownerCases = []struct {
	name string // %s is the table's noun
	test func(t *testing.T, m *matrix)
}{
	// Alice, on her own rows.
	{"alice creates a %s and gets it back, owned by her (return=representation)", func(t *testing.T, m *matrix) {
		got, err := m.as(Alice).Query("POST", "insert into {table} ({text}{room}) values ($1{alice's room}) returning {cols}", "fresh")
		NoError(t, err)
		created := Row{ID: 4, Text: "fresh", Owner: "alice"}
		WantRows(t, "returned", got, []Row{created})
		m.wantTable(append(m.seeded, created)...)
	}},
	{"alice creates a %s without asking for it back, owned by her (return=minimal)", func(t *testing.T, m *matrix) {
		n, err := m.as(Alice).Exec("POST", "insert into {table} ({text}{room}) values ($1{alice's room})", "quiet")
		NoError(t, err)
		if n != 1 {
			t.Errorf("inserted %d rows, want 1", n)
		}
		m.wantTable(append(m.seeded, Row{ID: 4, Text: "quiet", Owner: "alice"})...)
	}},
	{"alice lists her %ss and sees exactly her own", func(t *testing.T, m *matrix) {
		got, err := m.as(Alice).Query("GET", "select {cols} from {table} order by id")
		NoError(t, err)
		WantRows(t, "alice's list", got, m.seeded[:2])
	}},
	{"alice reads her %s by id", func(t *testing.T, m *matrix) {
		got, err := m.as(Alice).Query("GET", "select {cols} from {table} where id = $1", 2)
		NoError(t, err)
		WantRows(t, "alice's read", got, m.seeded[1:2])
	}},
	{"alice updates her %s", func(t *testing.T, m *matrix) {
		n, err := m.as(Alice).Exec("PATCH", "update {table} set {text} = $1 where id = $2", "edited", 1)
		NoError(t, err)
		if n != 1 {
			t.Errorf("updated %d rows, want 1", n)
		}
		m.wantTable(Row{ID: 1, Text: "edited", Owner: "alice"}, m.seeded[1], m.seeded[2])
	}},
	{"alice deletes her %s", func(t *testing.T, m *matrix) {
		n, err := m.as(Alice).Exec("DELETE", "delete from {table} where id = $1", 1)
		NoError(t, err)
		if n != 1 {
			t.Errorf("deleted %d rows, want 1", n)
		}
		m.wantTable(m.seeded[1:]...)
	}},

	// Bob, on alice's rows.
	{"bob lists %ss and sees none of alice's", func(t *testing.T, m *matrix) {
		got, err := m.as(Bob).Query("GET", "select {cols} from {table} order by id")
		NoError(t, err)
		WantRows(t, "bob's list", got, m.seeded[2:])
	}},
	{"bob cannot read alice's %s by id", func(t *testing.T, m *matrix) {
		got, err := m.as(Bob).Query("GET", "select {cols} from {table} where id = $1", 1)
		NoError(t, err)
		WantRows(t, "bob's read of alice's row", got, nil)
	}},
	{"bob cannot update alice's %s", func(t *testing.T, m *matrix) {
		n, err := m.as(Bob).Exec("PATCH", "update {table} set {text} = $1 where id = $2", "hacked", 1)
		NoError(t, err)
		if n != 0 {
			t.Errorf("updated %d rows, want 0", n)
		}
		m.unchanged()
	}},
	{"bob cannot delete alice's %s", func(t *testing.T, m *matrix) {
		n, err := m.as(Bob).Exec("DELETE", "delete from {table} where id = $1", 1)
		NoError(t, err)
		if n != 0 {
			t.Errorf("deleted %d rows, want 0", n)
		}
		m.unchanged()
	}},
	{"bob's unfiltered update and delete of %ss touch only his own", func(t *testing.T, m *matrix) {
		n, err := m.as(Bob).Exec("PATCH", "update {table} set {text} = {text} || ' (seen)'")
		NoError(t, err)
		if n != 1 {
			t.Errorf("updated %d rows, want 1 (bob's)", n)
		}
		m.wantTable(m.seeded[0], m.seeded[1], Row{ID: 3, Text: m.seed[2] + " (seen)", Owner: "bob"})
		n, err = m.as(Bob).Exec("DELETE", "delete from {table}")
		NoError(t, err)
		if n != 1 {
			t.Errorf("deleted %d rows, want 1 (bob's)", n)
		}
		m.wantTable(m.seeded[:2]...)
	}},

	// Forged and changed owners.
	{"alice cannot create a %s owned by bob", func(t *testing.T, m *matrix) {
		_, err := m.as(Alice).Exec("POST", "insert into {table} ({text}, owner_id{room}) values ($1, $2{alice's room})", "forged", BobID)
		WantSQLError(t, err, "42501", "owner_id")
		m.unchanged()
	}},
	{"alice cannot hand her %s over to bob", func(t *testing.T, m *matrix) {
		_, err := m.as(Alice).Exec("PATCH", "update {table} set owner_id = $1 where id = $2", BobID, 1)
		WantSQLError(t, err, "42501", "owner")
		m.unchanged()
	}},

	// Anonymous requests: no privilege at all (PostgREST answers 401). In
	// single-role mode they run as the one role: they see no row, reach
	// none, and create none (no user id).
	{"an anonymous visitor cannot list %ss", func(t *testing.T, m *matrix) {
		got, err := m.as(m.anonymous).Query("GET", "select {cols} from {table} order by id")
		if m.single {
			NoError(t, err)
		} else {
			WantSQLError(t, err, "42501", "permission denied")
		}
		WantRows(t, "anonymous list", got, nil)
	}},
	{"an anonymous visitor cannot create, change or delete %ss", func(t *testing.T, m *matrix) {
		for _, w := range []struct{ method, sql string }{
			{"POST", "insert into {table} ({text}, owner_id{room}) values ('anon', '" + AliceID + "'{alice's room})"},
			{"PATCH", "update {table} set {text} = 'anon'"},
			{"DELETE", "delete from {table}"},
		} {
			t.Run(w.method, func(t *testing.T) {
				n, err := m.as(m.anonymous).Exec(w.method, w.sql)
				switch {
				case !m.single:
					WantSQLError(t, err, "42501", "permission denied")
				case w.method == "POST":
					WantSQLError(t, err, "28000", "without a user id")
				default:
					NoError(t, err)
					if n != 0 {
						t.Errorf("%d rows, want 0", n)
					}
				}
				m.unchanged()
			})
		}
	}},

	// Tokens that do not name a user the way the identity block says.
	{"a token without sub lists no %ss (never someone else's)", func(t *testing.T, m *matrix) {
		got, err := m.as(NoSub).Query("GET", "select {cols} from {table} order by id")
		NoError(t, err)
		WantRows(t, "list without sub", got, nil)
	}},
	{"a token without sub cannot create a %s", func(t *testing.T, m *matrix) {
		_, err := m.as(NoSub).Exec("POST", "insert into {table} ({text}{room}) values ('nobody'{alice's room})")
		WantSQLError(t, err, "28000", "without a user id")
		m.unchanged()
	}},
	{"a token without sub changes and deletes no %ss", func(t *testing.T, m *matrix) {
		n, err := m.as(NoSub).Exec("PATCH", "update {table} set {text} = 'nobody'")
		NoError(t, err)
		if n != 0 {
			t.Errorf("updated %d rows, want 0", n)
		}
		n, err = m.as(NoSub).Exec("DELETE", "delete from {table}")
		NoError(t, err)
		if n != 0 {
			t.Errorf("deleted %d rows, want 0", n)
		}
		m.unchanged()
	}},
	{"a sub that is not a uuid (f:ldap:alice) is refused when listing %ss", func(t *testing.T, m *matrix) {
		got, err := m.as(federatedAlice).Query("GET", "select {cols} from {table} order by id")
		WantSQLError(t, err, "28000", "not a uuid")
		WantRows(t, "list with a federated sub", got, nil)
	}},
	{"a sub that is not a uuid (f:ldap:alice) is refused when creating a %s", func(t *testing.T, m *matrix) {
		_, err := m.as(federatedAlice).Exec("POST", "insert into {table} ({text}{room}) values ('federated'{alice's room})")
		WantSQLError(t, err, "28000", "not a uuid")
		m.unchanged()
	}},

	// GET really is READ ONLY, and reading needs no writes.
	{"a GET that tries to insert a %s fails with 25006 (the request is READ ONLY)", func(t *testing.T, m *matrix) {
		_, err := m.as(Alice).Exec("GET", "insert into {table} ({text}{room}) values ('sneaky'{alice's room})")
		WantSQLError(t, err, "25006", "read-only transaction")
		m.unchanged()
	}},
	{"a GET list of %ss succeeds in a READ ONLY transaction", func(t *testing.T, m *matrix) {
		var readOnly string
		var got []Row
		err := m.as(Alice).Do("GET", func(tx pgx.Tx) error {
			if err := tx.QueryRow(t.Context(), "show transaction_read_only").Scan(&readOnly); err != nil {
				return err
			}
			rows, err := tx.Query(t.Context(), m.expand("select {cols} from {table} order by id"))
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
			return err
		})
		NoError(t, err)
		if readOnly != "on" {
			t.Errorf("transaction_read_only = %q inside a GET, want on", readOnly)
		}
		WantRows(t, "alice's list", Names(got), m.seeded[:2])
	}},
}

// TestOwnerMatrix runs every case on every owned table.
func TestOwnerMatrix(t *testing.T) {
	runOwnerMatrix(t, ExampleDB(t), Anonymous, false)
}

// runOwnerMatrix runs every owner case on every owned table of db, the
// anonymous requests as anon (single: in single-role mode).
func runOwnerMatrix(t *testing.T, db *Database, anon Person, single bool) {
	for _, table := range ownedTables {
		t.Run(table.name, func(t *testing.T) {
			for _, c := range ownerCases {
				t.Run(fmt.Sprintf(c.name, table.noun), func(t *testing.T) {
					c.test(t, newMatrixAs(t, db, table, anon, single))
				})
			}
		})
	}
}

// TestBuildAppliesCleanlyTwice: the script from the build of this directory
// runs with psql over roles.sql and schema.sql, runs again without error,
// and leaves each table protected exactly once.
func TestBuildAppliesCleanlyTwice(t *testing.T) {
	db := ExampleDB(t) // fails unless both psql runs succeeded
	script, printed := ExampleBuild(t)

	if want := "-- Generated by iamc from chats.iam, iam.iam, notes.iam, stores.iam, todos.iam.\n"; !strings.HasPrefix(script, want) {
		t.Errorf("script header = %q, want it to name its sources: %q", strings.SplitN(script, "\n", 2)[0], want)
	}
	for i, out := range printed {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "ERROR") || strings.Contains(line, "WARNING") || strings.Contains(line, "NOTICE") {
				t.Errorf("psql run %d printed %q", i+1, line)
			}
		}
	}
	if got := Scalar[string](t, db, "select string_agg(version::text, ',') from iam.runtime"); got != strconv.Itoa(stdlib.Version) {
		t.Errorf("iam.runtime versions = %q, want a single row, version %d", got, stdlib.Version)
	}

	type protection struct {
		RLS, Forced bool
		Policies    []string
		Triggers    []string
		OwnerIndex  string // definition of the owner index
		GroupIndex  string // definition of the group index
		GroupFK     string // definition of the group column's foreign key
		Indexes     []string
		ForeignKeys []string
		WebUser     []string
		WebAnon     []string
	}
	for _, table := range ownedTables {
		t.Run(table.name+" is protected exactly once", func(t *testing.T) {
			var got protection
			err := db.SU.QueryRow(t.Context(), `
				select c.relrowsecurity, c.relforcerowsecurity,
				  array(select policyname::text from pg_policies p
				        where p.schemaname = n.nspname and p.tablename = c.relname order by 1),
				  array(select tgname::text from pg_trigger where tgrelid = c.oid and not tgisinternal order by 1),
				  coalesce(pg_get_indexdef(to_regclass('app.' || $2)), ''),
				  coalesce(pg_get_indexdef(to_regclass('app.' || $3)), ''),
				  coalesce((select pg_get_constraintdef(k.oid) from pg_constraint k
				            where k.conrelid = c.oid and k.conname = $4 and k.contype = 'f'), ''),
				  array(select ic.relname::text from pg_index i join pg_class ic on ic.oid = i.indexrelid where i.indrelid = c.oid order by 1),
				  array(select k.conname::text from pg_constraint k where k.conrelid = c.oid and k.contype = 'f' order by 1),
				  array(select privilege_type::text from information_schema.role_table_grants g
				        where g.grantee = 'web_user' and g.table_schema = n.nspname and g.table_name = c.relname order by 1),
				  array(select privilege_type::text from information_schema.role_table_grants g
				        where g.grantee = 'web_anon' and g.table_schema = n.nspname and g.table_name = c.relname order by 1)
				from pg_class c join pg_namespace n on n.oid = c.relnamespace
				where c.oid = $1::regclass`, table.name, table.index, table.groupIndex, table.groupFK).
				Scan(&got.RLS, &got.Forced, &got.Policies, &got.Triggers, &got.OwnerIndex, &got.GroupIndex, &got.GroupFK, &got.Indexes, &got.ForeignKeys, &got.WebUser, &got.WebAnon)
			NoError(t, err)
			policies := []string{
				"iam: authenticated can delete", "iam: authenticated can insert",
				"iam: authenticated can select", "iam: authenticated can update",
			}
			if table.transfer { // owner can transfer: a policy of its own
				policies = []string{
					"iam: authenticated can delete", "iam: authenticated can insert",
					"iam: authenticated can select", "iam: authenticated can transfer", "iam: authenticated can update",
				}
			}
			want := protection{
				RLS: true, Forced: true,
				Policies:    policies,
				Triggers:    []string{"iam_guard_row"},
				OwnerIndex:  fmt.Sprintf("CREATE INDEX %s ON %s USING btree (owner_id, id)", table.index, table.name),
				GroupIndex:  fmt.Sprintf("CREATE INDEX %s ON %s USING btree (group_id, id)%s", table.groupIndex, table.name, table.groupIndexWhere),
				GroupFK:     "FOREIGN KEY (group_id) REFERENCES iam.groups(id) ON DELETE " + table.onDelete,
				Indexes:     []string{table.groupIndex, table.index, strings.TrimPrefix(table.name, "app.") + "_pkey"},
				ForeignKeys: []string{table.groupFK},
				WebUser:     []string{"DELETE", "INSERT", "SELECT", "UPDATE"},
				WebAnon:     []string{},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("protection of %s (-want +got):\n%s", table.name, diff)
			}
		})
	}
}

// TestBuildIsAllOrNothing: when a resource's table is missing the script
// fails, and leaves nothing behind — not even the parts that ran before the
// failure.
func TestBuildIsAllOrNothing(t *testing.T) {
	script, err := BuildScript(Dir)
	NoError(t, err)
	for _, v := range []struct {
		name, drop, keep string
	}{
		// app.chats comes first in the script: the failure is early, but after the iam runtime.
		{name: "a database with app.todos but no app.chats", drop: "app.chats", keep: "app.todos"},
		// app.todos comes last: app.chats was fully protected before the failure.
		{name: "a database with app.chats but no app.todos", drop: "app.todos", keep: "app.chats"},
	} {
		t.Run(v.name+" is left untouched", func(t *testing.T) {
			dbName := "without_" + strings.TrimPrefix(v.drop, "app.")
			db := NewDatabase(t, dbName, "schema.sql")
			db.Exec(t, "drop table "+v.drop)

			out, err := ApplyScript(t.Context(), db.Server, dbName, script)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("psql: err = %v, want a non-zero exit\n%s", err, out)
			}
			if want := fmt.Sprintf("relation %q does not exist", v.drop); !strings.Contains(string(out), want) {
				t.Errorf("psql output does not say %s:\n%s", want, out)
			}

			if Scalar[bool](t, db, "select exists (select from pg_namespace where nspname = 'iam')") {
				t.Error("schema iam exists after the failed build")
			}
			if n := Scalar[int](t, db, "select count(*) from pg_policies where schemaname || '.' || tablename = $1", v.keep); n != 0 {
				t.Errorf("%s has %d policies after the failed build", v.keep, n)
			}
			if Scalar[bool](t, db, "select relrowsecurity or relforcerowsecurity from pg_class where oid = $1::regclass", v.keep) {
				t.Errorf("RLS is enabled on %s after the failed build", v.keep)
			}
			if n := Scalar[int](t, db, "select count(*) from pg_trigger where tgrelid = $1::regclass and not tgisinternal", v.keep); n != 0 {
				t.Errorf("%s has %d triggers after the failed build", v.keep, n)
			}
			if Scalar[bool](t, db, "select has_table_privilege('web_user', $1, 'select')", v.keep) {
				t.Errorf("web_user can select from %s after the failed build", v.keep)
			}
		})
	}
}

// TestTextIdentity: with `identity { type text }` users from a federated
// provider, whose sub is not a uuid, own rows like anyone else.
func TestTextIdentity(t *testing.T) {
	db := NewDatabase(t, "notes")
	db.Exec(t, `
		create schema app authorization api_owner;
		set role api_owner;
		create table app.notes (
		    id bigint generated always as identity primary key,
		    body text not null,
		    owner_id text not null
		);
		reset role;`)

	dir := t.TempDir()
	policy := `# Users come from LDAP through Keycloak: their sub is "f:ldap:<name>".
identity {
  claim 'sub'
  type text
}
roles {
  authenticated web_user
  anonymous web_anon
  owner api_owner
}
resource app.notes {
  owner column owner_id
  owner can read, create, write, delete
}
`
	NoError(t, os.WriteFile(filepath.Join(dir, "notes.iam"), []byte(policy), 0o644))
	script, err := BuildScript(dir)
	NoError(t, err)
	if !strings.Contains(script, "iam.user_id_text('sub')") {
		t.Fatalf("the build does not compare owners as text:\n%s", script)
	}
	_, err = ApplyScript(t.Context(), db.Server, "notes", script)
	NoError(t, err)

	ldapAlice := KeycloakUser("alice", "f:ldap:alice")
	ldapBob := KeycloakUser("bob", "f:ldap:bob")
	as := func(who Person) Requester { return Requester{T: t, DB: db, Who: who, Path: "/notes"} }
	const cols = "id, body, owner_id"
	note := Row{ID: 1, Text: "from ldap", Owner: "f:ldap:alice"}

	t.Run("f:ldap:alice creates a note, owned by her", func(t *testing.T) {
		got, err := as(ldapAlice).Query("POST", "insert into app.notes (body) values ($1) returning "+cols, "from ldap")
		NoError(t, err)
		WantRows(t, "returned", got, []Row{note})
	})
	t.Run("f:ldap:alice lists and reads her note", func(t *testing.T) {
		got, err := as(ldapAlice).Query("GET", "select "+cols+" from app.notes order by id")
		NoError(t, err)
		WantRows(t, "alice's list", got, []Row{note})
		got, err = as(ldapAlice).Query("GET", "select "+cols+" from app.notes where id = $1", 1)
		NoError(t, err)
		WantRows(t, "alice's read", got, []Row{note})
	})
	t.Run("f:ldap:bob cannot see alice's note", func(t *testing.T) {
		got, err := as(ldapBob).Query("GET", "select "+cols+" from app.notes order by id")
		NoError(t, err)
		WantRows(t, "bob's list", got, nil)
		got, err = as(ldapBob).Query("GET", "select "+cols+" from app.notes where id = $1", 1)
		NoError(t, err)
		WantRows(t, "bob's read", got, nil)
	})
	t.Run("f:ldap:bob cannot create a note owned by alice", func(t *testing.T) {
		before := Snapshot(t, db)
		_, err := as(ldapBob).Exec("POST", "insert into app.notes (body, owner_id) values ('forged', 'f:ldap:alice')")
		WantSQLError(t, err, "42501", "owner_id")
		WantUnchanged(t, db, before)
	})
}

// TestOwnerQueriesUseTheOwnerIndex: with 200,000 todos of 2,000 owners, the
// queries PostgREST sends for a user find their rows through the owner
// index — OR-ed with the group index and the primary key (a BitmapOr),
// since todos.iam also lets group members and those a todo is shared with
// read — with the user id, the user's groups and shared ids each computed
// once (three InitPlans), never per row. A deliberately bad policy
// that calls a function per row shows the check can fail.
func TestOwnerQueriesUseTheOwnerIndex(t *testing.T) {
	db := NewDatabase(t, "plans", "schema.sql")
	script, err := BuildScript(Dir)
	NoError(t, err)
	_, err = ApplyScript(t.Context(), db.Server, "plans", script)
	NoError(t, err)

	// Owner k (0..1999) is 00000000-0000-4000-8000-<k as 12 digits>; each owns
	// 100 todos. The owners are explicit, so the load skips the guard trigger
	// (replica mode) to save seconds.
	db.Exec(t, `
		set session_replication_role = replica;
		insert into app.todos (title, done, owner_id)
		select 'todo ' || g, g % 3 = 0,
		       format('00000000-0000-4000-8000-%s', lpad((g % 2000)::text, 12, '0'))::uuid
		from generate_series(1, 200000) g;
		reset session_replication_role;
		analyze app.todos;`)
	owner1 := KeycloakUser("owner1", "00000000-0000-4000-8000-000000000001")

	// The bad variant: the same rows, an owner index of the same name, and a
	// select policy that calls a volatile PL/pgSQL function for every row.
	db.Exec(t, `
		create schema app_bad;
		create table app_bad.todos (like app.todos);
		alter table app_bad.todos add primary key (id);
		create index todos_owner_id_id_iam_idx on app_bad.todos (owner_id, id);
		create index todos_group_id_id_iam_idx on app_bad.todos (group_id, id);
		insert into app_bad.todos select * from app.todos;
		analyze app_bad.todos;
		create function app_bad.is_mine(owner uuid) returns boolean
		    language plpgsql volatile
		as $$ begin return owner = iam.user_id_uuid('sub'); end $$;
		alter table app_bad.todos enable row level security;
		alter table app_bad.todos force row level security;
		create policy mine on app_bad.todos for select to web_user using (app_bad.is_mine(owner_id));
		grant usage on schema app_bad to web_user;
		grant select on app_bad.todos to web_user;`)

	var count int64
	err = Requester{T: t, DB: db, Who: owner1, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&count)
	})
	NoError(t, err)
	if count != 100 {
		t.Fatalf("owner1 counts %d todos, want 100 of 200000", count)
	}

	// The policy's three arms: owner_id = <user id>, group_id = any(<groups>),
	// id = any(<shared ids>).
	ownerAndGroup := TodosArms
	queries := []struct {
		name    string
		sql     string
		args    []any
		indexes []string // the indexes the plan must read
	}{
		{"the list (order by id desc limit 50)", "select * from %s order by id desc limit 50", nil, ownerAndGroup},
		{"the count", "select count(*) from %s", nil, ownerAndGroup},
		{"a read by id", "select * from %s where id = $1", []any{int64(2001)}, []string{"todos_pkey"}},
	}
	for _, q := range queries {
		t.Run(q.name+" finds owner1's todos through the indexes, the user id and groups computed once", func(t *testing.T) {
			plan := explainAs(t, db, owner1, fmt.Sprintf(q.sql, "app.todos"), q.args...)
			if problems := PlanProblems(plan, TodosInitPlans, q.indexes...); len(problems) > 0 {
				t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
			}
			if len(q.indexes) > 1 && !slices.Contains(plan.Nodes, "BitmapOr") {
				t.Errorf("plan %+v: want a BitmapOr of %v", plan, q.indexes)
			}
		})
	}
	for _, q := range queries[:2] {
		t.Run(q.name+" under a per-row function policy is reported as not scaling", func(t *testing.T) {
			plan := explainAs(t, db, owner1, fmt.Sprintf(q.sql, "app_bad.todos"), q.args...)
			problems := PlanProblems(plan, TodosInitPlans, q.indexes...)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "is_mine(owner_id)") }) ||
				!slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "todos_owner_id_id_iam_idx is not used") }) {
				t.Errorf("plan %+v: problems %q, want the unused owner index and the per-row is_mine call", plan, problems)
			}
		})
	}
}

// explainAs returns the shape of EXPLAIN (FORMAT JSON) for sql, run as who
// in a GET request.
func explainAs(t *testing.T, db *Database, who Person, sql string, args ...any) PlanShape {
	t.Helper()
	var doc []byte
	err := Requester{T: t, DB: db, Who: who, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "explain (format json) "+sql, args...).Scan(&doc)
	})
	NoError(t, err)
	plan, err := WalkPlan(doc)
	NoError(t, err)
	t.Logf("plan of %s: %+v", sql, plan)
	return plan
}

// TestOwnerQueriesWorkUnderParallelPlans: when a user owns many rows the
// planner would run the count in parallel (PostgreSQL defaults, no tuning:
// it does for the same query with RLS off). The caller's context is
// remembered in settings, which a parallel plan may not write, so the
// helpers the policies call are PARALLEL UNSAFE and the count runs in one
// process (SPEC §7, "The caller's context"); it is right, and a bad sub is
// still refused with 28000.
func TestOwnerQueriesWorkUnderParallelPlans(t *testing.T) {
	db := NewDatabase(t, "parallel", "schema.sql")
	script, err := BuildScript(Dir)
	NoError(t, err)
	_, err = ApplyScript(t.Context(), db.Server, "parallel", script)
	NoError(t, err)
	// 400,000 todos, half alice's, half bob's (explicit owners: the guard
	// trigger is skipped to load fast).
	db.Exec(t, `
		set session_replication_role = replica;
		insert into app.todos (title, owner_id)
		select 'todo ' || g, case when g % 2 = 0 then '`+AliceID+`'::uuid else '`+BobID+`'::uuid end
		from generate_series(1, 400000) g;
		reset session_replication_role;
		analyze app.todos;`)

	count := func(who Person) (int64, error) {
		var n int64
		err := Requester{T: t, DB: db, Who: who, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&n)
		})
		return n, err
	}

	// Without RLS the planner goes parallel here, so the serial plan under
	// RLS is the helpers' doing, not the data's.
	var unprotected []byte
	NoError(t, db.SU.QueryRow(t.Context(), `explain (format json) select count(*) from app.todos where owner_id = $1`, AliceID).Scan(&unprotected))
	free, err := WalkPlan(unprotected)
	NoError(t, err)
	if !slices.Contains(free.Nodes, "Gather") {
		t.Fatalf("the planner chose no parallel plan even without RLS, so this test proves nothing: %+v", free)
	}
	plan := explainAs(t, db, Alice, "select count(*) from app.todos")
	if slices.Contains(plan.Nodes, "Gather") || slices.Contains(plan.Nodes, "Gather Merge") {
		t.Fatalf("a parallel plan under the policies, whose helpers may write the caller's context: %+v", plan)
	}
	t.Run("alice counts her 200,000 todos", func(t *testing.T) {
		n, err := count(Alice)
		NoError(t, err)
		if n != 200000 {
			t.Errorf("alice counts %d todos, want 200000", n)
		}
	})
	t.Run("a sub that is not a uuid is still refused with 28000", func(t *testing.T) {
		_, err := count(federatedAlice)
		WantSQLError(t, err, "28000", "not a uuid")
	})
}
