package policies_test

// Row shares of todos.iam (share by id with users, groups; owner can share;
// shared can read, write, delete; SPEC §21), against a real PostgreSQL,
// every request made as PostgREST 12 makes it (pgrest.Do). Shares are made
// through the share API as the users themselves (POST /rpc/todos_share),
// except where a test seeds a table for the planner. Every refused write is
// checked from both sides: the error or row count the caller gets, and the
// whole database as the superuser sees it afterwards (unchanged).

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// The shares database: policies/schema.sql plus the build of this
// directory, shared by the tests of this file; each test makes its own
// cast (fresh users and groups) and seeds the todos it needs.
var sharesExample struct {
	once sync.Once
	db   *Database
	err  error
}

func sharesDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	sharesExample.once.Do(func() {
		var script string
		if sharesExample.db, sharesExample.err = CreateDatabase(s, "shares", "schema.sql"); sharesExample.err != nil {
			return
		}
		if script, sharesExample.err = BuildScript(Dir); sharesExample.err != nil {
			return
		}
		_, sharesExample.err = ApplyScript(t.Context(), s, "shares", script)
	})
	if sharesExample.err != nil {
		t.Fatalf("setting up the shares database: %v", sharesExample.err)
	}
	return sharesExample.db
}

// cast is the people of one share test, with ids no other cast uses:
//
//	alice  owns todos 1 (shared) and 2; owner of the group friends
//	bob    todo 1 is shared with him: read
//	carol  todo 1 is shared with her: read and write
//	dave   a member of friends, with which todo 1 is shared: read
//	otto   a stranger: owns todo 3 and the group otto's, sees nothing of alice's
//	erin   nobody yet: whom todo 1 gets shared with
type cast struct {
	t                               *testing.T
	db                              *Database
	alice, bob, carol, dave, otto   Person
	erin                            Person
	friends, ottos                  int64
	names                           map[string]string // user or group id (text) -> name
	aliceID, bobID, carolID, daveID string
	ottoID, erinID                  string
	todo1, todo2, todo3             int64
}

var casts struct {
	mu sync.Mutex
	n  int
}

func newCast(t *testing.T, db *Database) *cast {
	t.Helper()
	casts.mu.Lock()
	casts.n++
	n := casts.n
	casts.mu.Unlock()
	uid := func(k int) string { return fmt.Sprintf("5a%06d-0000-4000-8000-%012d", n, k) }
	c := &cast{t: t, db: db, names: map[string]string{}}
	for i, p := range []struct {
		p    *Person
		id   *string
		name string
	}{
		{&c.alice, &c.aliceID, "alice"}, {&c.bob, &c.bobID, "bob"}, {&c.carol, &c.carolID, "carol"},
		{&c.dave, &c.daveID, "dave"}, {&c.otto, &c.ottoID, "otto"}, {&c.erin, &c.erinID, "erin"},
	} {
		*p.id = uid(i + 1)
		*p.p = KeycloakUser(p.name, *p.id)
		c.names[*p.id] = p.name
	}
	c.friends = CreateGroup(t, db, c.alice, "friends")
	AddMember(t, db, c.alice, c.friends, c.daveID, "member")
	c.ottos = CreateGroup(t, db, c.otto, "otto's")
	c.names[strconv.FormatInt(c.friends, 10)] = "friends"
	c.names[strconv.FormatInt(c.ottos, 10)] = "otto's"
	return c
}

func (c *cast) in(t *testing.T) *cast {
	cp := *c
	cp.t = t
	return &cp
}

// seed puts in alice's todos 1 and 2 and otto's 3 (as the superuser), and
// shares todo 1 through the API as alice: bob read, carol read and write,
// friends read.
func (c *cast) seed() {
	c.t.Helper()
	var ids []int64
	err := c.db.SU.QueryRow(c.t.Context(), `
		with r as (insert into app.todos (title, owner_id) values ('alice''s, shared', $1), ('alice''s other', $1), ('otto''s', $2) returning id)
		select array_agg(id order by id) from r`, c.aliceID, c.ottoID).Scan(&ids)
	NoError(c.t, err)
	c.todo1, c.todo2, c.todo3 = ids[0], ids[1], ids[2]
	c.share(c.alice, c.todo1, "user_id", c.bobID, "read")
	c.share(c.alice, c.todo1, "user_id", c.carolID, "read", "write")
	c.share(c.alice, c.todo1, "group_id", c.friends, "read")
}

// share is POST /rpc/todos_share as who; it must succeed.
func (c *cast) share(who Person, todo int64, kind string, recipient any, perms ...string) {
	c.t.Helper()
	if err := RPC(c.t, c.db, who, "todos_share", "id", todo, kind, recipient, "permissions", perms); err != nil {
		c.t.Fatalf("%s: POST /rpc/todos_share {%d, %s %v, %v}: %v", who.Name, todo, kind, recipient, perms, err)
	}
}

// name shows a user or group id by name.
func (c *cast) name(id string) string {
	if n, ok := c.names[id]; ok {
		return n
	}
	return id
}

// todoRow is a todo as these tests compare it.
type todoRow struct {
	ID    int64
	Title string
	Owner string
}

// shareRow is a share as the superuser sees it, by name.
type shareRow struct {
	Todo      int64
	Recipient string // a user's or a group's name
	Perms     string // read, read+write, ...
	By        string
}

// state is this cast's todos and their shares as the superuser sees them.
func (c *cast) state() ([]todoRow, []shareRow) {
	c.t.Helper()
	rows, err := c.db.SU.Query(c.t.Context(), "select id, title, owner_id::text from app.todos where id = any($1) order by id",
		[]int64{c.todo1, c.todo2, c.todo3})
	NoError(c.t, err)
	todos, err := pgx.CollectRows(rows, pgx.RowToStructByPos[todoRow])
	NoError(c.t, err)
	for i := range todos {
		todos[i].Owner = c.name(todos[i].Owner)
	}
	rows, err = c.db.SU.Query(c.t.Context(), `
		select s.row_id, coalesce(s.user_id::text, s.group_id::text),
		       concat_ws('+', 'read', case when s.can_write then 'write' end, case when s.can_delete then 'delete' end),
		       s.shared_by::text
		from iam.app_todos_shares s
		where s.row_id = any($1)
		order by 1, 2`, []int64{c.todo1, c.todo2, c.todo3})
	NoError(c.t, err)
	shares, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shareRow])
	NoError(c.t, err)
	for i := range shares {
		shares[i].Recipient, shares[i].By = c.name(shares[i].Recipient), c.name(shares[i].By)
	}
	return todos, shares
}

// ids runs a read as who (GET, READ ONLY) and returns the ids it sees.
func (c *cast) ids(who Person, path, sql string, args ...any) ([]int64, error) {
	c.t.Helper()
	var got []int64
	err := Requester{T: c.t, DB: c.db, Who: who, Path: path}.Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(c.t.Context(), c.expand(sql), args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return got, err
}

// affected runs a write as who and returns the rows it touched.
func (c *cast) affected(who Person, method, path, sql string, args ...any) (int64, error) {
	c.t.Helper()
	var n int64
	err := Requester{T: c.t, DB: c.db, Who: who, Path: path}.Do(method, func(tx pgx.Tx) error {
		tag, err := tx.Exec(c.t.Context(), c.expand(sql), args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

func (c *cast) expand(sql string) string {
	return strings.NewReplacer(
		"{1}", strconv.FormatInt(c.todo1, 10), "{2}", strconv.FormatInt(c.todo2, 10), "{3}", strconv.FormatInt(c.todo3, 10),
		"{friends}", strconv.FormatInt(c.friends, 10), "{ottos}", strconv.FormatInt(c.ottos, 10),
		"{erin}", c.erinID, "{bob}", c.bobID, "{carol}", c.carolID, "{alice}", c.aliceID,
	).Replace(sql)
}

// Refusals of the share API (SPEC §21, errors).
var (
	cannotShare   = Fails("42501", "you cannot share the row of app.todos")
	cannotUnshare = Fails("42501", "you cannot unshare the row of app.todos")
	cannotList    = Fails("42501", "you cannot see the shares of the row of app.todos")
	noSuchTodo    = Fails("PT404", "app.todos has no row with id")
)

// shareOp is one request of the share matrix, on todo 1.
type shareOp struct {
	name   string
	read   bool
	method string
	path   string
	sql    string
	// after is the cast's todos and shares when the write succeeds.
	after func(c *cast, todos []todoRow, shares []shareRow, actor Person) ([]todoRow, []shareRow)
}

var shareOps = []shareOp{
	{name: "list", read: true, path: "/todos", sql: "select id from app.todos where id in ({1}, {2}, {3}) order by id"},
	{name: "read", read: true, path: "/todos", sql: "select id from app.todos where id = {1}"},
	{name: "update", method: "PATCH", path: "/todos", sql: "update app.todos set title = 'edited' where id = {1}",
		after: func(c *cast, todos []todoRow, shares []shareRow, _ Person) ([]todoRow, []shareRow) {
			todos = slices.Clone(todos)
			for i := range todos {
				if todos[i].ID == c.todo1 {
					todos[i].Title = "edited"
				}
			}
			return todos, shares
		}},
	{name: "delete", method: "DELETE", path: "/todos", sql: "delete from app.todos where id = {1}",
		after: func(c *cast, todos []todoRow, shares []shareRow, _ Person) ([]todoRow, []shareRow) {
			// The shares go with the row (the foreign key's cascade).
			return slices.DeleteFunc(slices.Clone(todos), func(r todoRow) bool { return r.ID == c.todo1 }), slices.DeleteFunc(slices.Clone(shares), func(s shareRow) bool { return s.Todo == c.todo1 })
		}},
	{name: "share", method: "POST", path: "/rpc/todos_share", sql: "select app.todos_share(id => {1}, user_id => '{erin}', permissions => '{read}')",
		after: func(c *cast, todos []todoRow, shares []shareRow, actor Person) ([]todoRow, []shareRow) {
			shares = append(slices.Clone(shares), shareRow{Todo: c.todo1, Recipient: "erin", Perms: "read", By: actor.Name})
			slices.SortFunc(shares, func(a, b shareRow) int {
				return strings.Compare(fmt.Sprint(a.Todo, c.rawID(a.Recipient)), fmt.Sprint(b.Todo, c.rawID(b.Recipient)))
			})
			return todos, shares
		}},
	{name: "unshare", method: "POST", path: "/rpc/todos_unshare", sql: "select app.todos_unshare(id => {1}, group_id => {friends})",
		after: func(c *cast, todos []todoRow, shares []shareRow, _ Person) ([]todoRow, []shareRow) {
			return todos, slices.DeleteFunc(slices.Clone(shares), func(s shareRow) bool { return s.Recipient == "friends" })
		}},
}

// rawID is a name's id (the order the superuser's listing sorts by).
func (c *cast) rawID(name string) string {
	for id, n := range c.names {
		if n == name {
			return id
		}
	}
	return name
}

// The five people of the matrix, in the order of its columns.
var shareRoles = [5]string{"owner", "user share read", "user share read+write", "group share read", "stranger"}

func (c *cast) byShareRole() [5]Person { return [5]Person{c.alice, c.bob, c.carol, c.dave, c.otto} }

// shareMatrix: for each request on todo 1, the Outcome for each Person, in
// the order of shareRoles. todos.iam: owner can read, create, write,
// delete, share; shared can read, write, delete (each share its subset).
var shareMatrix = map[string][5]Outcome{
	//           owner            bob (read)      carol (rw)      dave (friends)  otto (stranger)
	"list":    {Sees(1, 2), Sees(1), Sees(1), Sees(1), Sees(3)},
	"read":    {Sees(1), Sees(1), Sees(1), Sees(1), Sees()},
	"update":  {OneRow, NoRowSeen, OneRow, NoRowSeen, NoRowSeen},
	"delete":  {OneRow, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen},
	"share":   {Affects(1), cannotShare, cannotShare, cannotShare, noSuchTodo},
	"unshare": {Affects(1), cannotUnshare, cannotUnshare, cannotUnshare, noSuchTodo},
}

// TestShareMatrix runs every request of shareOps as every Person of the
// matrix, on a freshly seeded todo 1 each time. A read runs READ ONLY and
// sees exactly the expected rows (ids 1, 2, 3 stand for the seeded todos);
// a write runs as PostgREST's return=representation and return=minimal
// (the API calls once: an RPC has no such choice) and the superuser then
// finds the todos and the shares changed exactly as the write says, or
// the whole database unchanged when it was refused or reached nothing.
func TestShareMatrix(t *testing.T) {
	db := sharesDB(t)
	c := newCast(t, db)
	cells := 0
	for _, op := range shareOps {
		wants, ok := shareMatrix[op.name]
		if !ok {
			t.Fatalf("no row %q in the share matrix", op.name)
		}
		for i, actor := range c.byShareRole() {
			want := wants[i]
			cells++
			t.Run(fmt.Sprintf("%s (%s) %s: %s", shareRoles[i], actor.Name, op.name, want), func(t *testing.T) {
				c := c.in(t)
				if op.read {
					c.seed()
					todos, shares := c.state()
					before := Snapshot(t, db)
					got, err := c.ids(actor, op.path, op.sql)
					if WantError(t, err, want) {
						wantIDs := make([]int64, len(want.IDs))
						for k, n := range want.IDs {
							wantIDs[k] = []int64{c.todo1, c.todo2, c.todo3}[n-1]
						}
						if diff := cmp.Diff(wantIDs, got, cmpopts.EquateEmpty()); diff != "" {
							t.Errorf("ids seen (-want +got):\n%s", diff)
						}
					}
					WantUnchanged(t, db, before)
					c.wantState(todos, shares)
					return
				}
				prefers := []string{"return=representation", "return=minimal"}
				if strings.HasPrefix(op.path, "/rpc/") {
					prefers = prefers[:1]
				}
				for _, prefer := range prefers {
					c.seed()
					todos, shares := c.state()
					before := Snapshot(t, db)
					stmt := op.sql
					if prefer == "return=representation" && !strings.HasPrefix(op.path, "/rpc/") {
						stmt += " returning id"
					}
					n, err := c.affected(actor, op.method, op.path, stmt)
					if WantError(t, err, want) && n != want.N {
						t.Errorf("%s: %d rows affected, want %d", prefer, n, want.N)
					}
					if want.Changes() {
						todos, shares = op.after(c, todos, shares, actor)
					} else {
						WantUnchanged(t, db, before)
					}
					c.wantState(todos, shares)
				}
			})
		}
	}
	if want := len(shareOps) * len(shareRoles); cells != want {
		t.Errorf("ran %d cells, want %d", cells, want)
	}
	t.Logf("share matrix: %d cells (%d people x %d requests)", cells, len(shareRoles), len(shareOps))
}

// wantState checks the cast's todos and shares as the superuser sees them.
func (c *cast) wantState(todos []todoRow, shares []shareRow) {
	c.t.Helper()
	gotTodos, gotShares := c.state()
	if diff := cmp.Diff(todos, gotTodos, cmpopts.EquateEmpty()); diff != "" {
		c.t.Errorf("todos as the superuser sees them (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(shares, gotShares, cmpopts.EquateEmpty()); diff != "" {
		c.t.Errorf("shares as the superuser sees them (-want +got):\n%s", diff)
	}
}

// shareCall is one call of the share API as who.
type shareCall struct {
	name string
	who  func(c *cast) Person
	fn   string
	args func(c *cast) []any
	want Outcome
}

// run calls the API and checks both sides: the answer, and (for a refusal)
// the database unchanged.
func (sc shareCall) run(t *testing.T, c *cast) {
	t.Helper()
	before := Snapshot(t, c.db)
	err := RPC(t, c.db, sc.who(c), sc.fn, sc.args(c)...)
	WantError(t, err, sc.want)
	if sc.want.Code != "" {
		WantUnchanged(t, c.db, before)
	}
}

// TestShareAttacks: every way to get more from a share than the owner
// gave, to share what one may not, or to learn through the share API that
// an unseen todo exists. Each is refused with a clear error (SQLSTATE,
// message) and the database is exactly as before.
func TestShareAttacks(t *testing.T) {
	db := sharesDB(t)
	who := func(p func(c *cast) Person) func(c *cast) Person { return p }
	alice := who(func(c *cast) Person { return c.alice })
	bob := who(func(c *cast) Person { return c.bob })
	carol := who(func(c *cast) Person { return c.carol })
	otto := who(func(c *cast) Person { return c.otto })
	calls := []shareCall{
		{"a read share made write: bob shares todo 1 with himself, write", bob, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "user_id", c.bobID, "permissions", []string{"read", "write"}}
			},
			Fails("22023", "you cannot share a row with yourself")},
		{"a read share made write through an accomplice: bob shares todo 1 with erin, write", bob, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "user_id", c.erinID, "permissions", []string{"write"}}
			}, cannotShare},
		{"re-share a todo one only received: carol (read and write) shares it on", carol, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.erinID, "permissions", []string{"read"}} }, cannotShare},
		{"re-share with a group: carol shares todo 1 with friends", carol, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "group_id", c.friends, "permissions", []string{"read"}}
			}, cannotShare},
		{"share someone else's todo: otto shares alice's todo 1", otto, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.erinID, "permissions", []string{"read"}} }, noSuchTodo},
		{"share someone else's todo one can read: bob shares alice's todo 1 with otto", bob, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.ottoID, "permissions", []string{"read"}} }, cannotShare},
		{"unshare someone else's share: bob removes carol's share", bob, "todos_unshare",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.carolID} }, cannotUnshare},
		{"unshare a group share as a member of the group: dave", who(func(c *cast) Person { return c.dave }), "todos_unshare",
			func(c *cast) []any { return []any{"id", c.todo1, "group_id", c.friends} }, cannotUnshare},
		{"list the shares of a todo one only received", bob, "todos_shares",
			func(c *cast) []any { return []any{"id", c.todo1} }, cannotList},
		{"share with a group one is not in: alice shares with otto's group", alice, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "group_id", c.ottos, "permissions", []string{"read"}} },
			Fails("PT404", "you are not a member of group")},
		{"share with a group that does not exist (the same answer)", alice, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "group_id", int64(1), "permissions", []string{"read"}}
			},
			Fails("PT404", "you are not a member of group 1")},
		{"share twice with the same user", alice, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "user_id", c.bobID, "permissions", []string{"read", "write"}}
			},
			Fails("23505", "is already shared with user")},
		{"share twice with the same group", alice, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "group_id", c.friends, "permissions", []string{"read"}}
			},
			Fails("23505", "is already shared with group")},
		{"a bad permission name", alice, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "user_id", c.erinID, "permissions", []string{"read", "admin"}}
			},
			Fails("22023", "unknown permission 'admin'")},
		{"a permission that is no permission of a share", alice, "todos_share",
			func(c *cast) []any {
				return []any{"id", c.todo1, "user_id", c.erinID, "permissions", []string{"create"}}
			},
			Fails("22023", "unknown permission 'create'")},
		{"a null permission", alice, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.erinID, "permissions", []*string{nil}} },
			Fails("22023", "unknown permission null")},
		{"no permissions", alice, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.erinID, "permissions", nil} },
			Fails("22023", "permissions is required")},
		{"both a user and a group", alice, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.erinID, "group_id", c.friends} },
			Fails("22023", "name one recipient: user_id or group_id")},
		{"neither a user nor a group", alice, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1} }, Fails("22023", "name one recipient")},
		{"a user id that is not a uuid", alice, "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", "bob"} }, Fails("22023", "user_id 'bob' is not a uuid")},
		{"no id", alice, "todos_share",
			func(c *cast) []any { return []any{"id", nil, "user_id", c.erinID} }, Fails("22023", "id is required")},
		{"anonymous", who(func(c *cast) Person { return Anonymous }), "todos_share",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.erinID} }, Fails("42501", "permission denied")},
		{"unshare a user the todo is not shared with", alice, "todos_unshare",
			func(c *cast) []any { return []any{"id", c.todo1, "user_id", c.erinID} }, Fails("PT404", "is not shared with user")},
	}
	for _, sc := range calls {
		t.Run(sc.name, func(t *testing.T) {
			c := newCast(t, db).in(t)
			c.seed()
			sc.run(t, c)
		})
	}

	t.Run("the share table cannot be written around the API", func(t *testing.T) {
		c := newCast(t, db).in(t)
		c.seed()
		for _, a := range []struct {
			name, sql string
			want      Outcome
		}{
			{"bob makes his read share write", "update iam.app_todos_shares set can_write = true where row_id = {1}", Fails("42501", "permission denied for table app_todos_shares")},
			{"bob inserts a write share for himself", "insert into iam.app_todos_shares (row_id, user_id, can_write, shared_by) values ({1}, '{bob}', true, '{bob}')",
				Fails("42501", "new row violates row-level security policy")},
			{"bob inserts a share for erin in alice's name", "insert into iam.app_todos_shares (row_id, user_id, shared_by) values ({1}, '{erin}', '{alice}')",
				Fails("42501", "new row violates row-level security policy")},
			{"bob inserts a share for erin in his name", "insert into iam.app_todos_shares (row_id, user_id, shared_by) values ({1}, '{erin}', '{bob}')",
				Fails("42501", "new row violates row-level security policy")},
			{"bob deletes carol's share", "delete from iam.app_todos_shares where user_id = '{carol}'", Affects(0)},
		} {
			t.Run(a.name, func(t *testing.T) {
				before := Snapshot(t, db)
				n, err := c.affected(c.bob, "POST", "/rpc/f", a.sql)
				if WantError(t, err, a.want) && n != a.want.N {
					t.Errorf("%d rows, want %d", n, a.want.N)
				}
				WantUnchanged(t, db, before)
			})
		}
		t.Run("bob reads only his own share", func(t *testing.T) {
			var got []string
			err := Requester{T: t, DB: db, Who: c.bob, Path: "/rpc/f"}.Do("GET", func(tx pgx.Tx) error {
				rows, err := tx.Query(t.Context(), "select user_id::text from iam.app_todos_shares where user_id is not null order by 1")
				if err != nil {
					return err
				}
				got, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			NoError(t, err)
			if diff := cmp.Diff([]string{c.bobID}, got); diff != "" {
				t.Errorf("the shares bob reads (-want +got):\n%s", diff)
			}
		})
	})
}

// TestShareNeverGrantsMoreThanTheSharerHolds: an owner may share write
// only while she may write the todo herself: a todo of hers in a group she
// was removed from (SPEC §11: she reads and deletes it, no longer edits
// it) she may still share to read, not to write.
func TestShareNeverGrantsMoreThanTheSharerHolds(t *testing.T) {
	db := sharesDB(t)
	c := newCast(t, db).in(t)
	team := CreateGroup(t, db, c.otto, "otto's team")
	AddMember(t, db, c.otto, team, c.aliceID, "member")
	var todo int64
	err := Requester{T: t, DB: db, Who: c.alice, Path: "/todos"}.Do("POST", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "insert into app.todos (title, group_id) values ('alice''s, in otto''s team', $1) returning id", team).Scan(&todo)
	})
	NoError(t, err)
	NoError(t, RPC(t, db, c.otto, "remove_group_member", "group_id", team, "user_id", c.aliceID))

	shareCall{"write", func(c *cast) Person { return c.alice }, "todos_share",
		func(c *cast) []any {
			return []any{"id", todo, "user_id", c.erinID, "permissions", []string{"read", "write"}}
		},
		Fails("42501", "you cannot share write on the row of app.todos with id")}.run(t, c)
	shareCall{"delete, which she holds", func(c *cast) Person { return c.alice }, "todos_share",
		func(c *cast) []any {
			return []any{"id", todo, "user_id", c.erinID, "permissions", []string{"read", "delete"}}
		}, Affects(0)}.run(t, c)
	n, err := c.affected(c.erin, "PATCH", "/todos", "update app.todos set title = 'erin' where id = $1", todo)
	NoError(t, err)
	if n != 0 {
		t.Errorf("erin edited the todo through a share without write: %d rows", n)
	}
	n, err = c.affected(c.erin, "DELETE", "/todos", "delete from app.todos where id = $1", todo)
	NoError(t, err)
	if n != 1 {
		t.Errorf("erin deleted %d rows through a share with delete, want 1", n)
	}
}

// TestUnshareIsImmediate: the request after an unshare (and the next
// statement of a request already running) no longer sees the todo, and
// can no longer change it; the same when a member leaves the group a todo
// is shared with, or the todo is deleted. A user may remove a share made
// to them.
func TestUnshareIsImmediate(t *testing.T) {
	db := sharesDB(t)
	c := newCast(t, db).in(t)
	c.seed()
	visible := func(who Person) []int64 {
		t.Helper()
		got, err := c.ids(who, "/todos", "select id from app.todos where id = {1}")
		NoError(t, err)
		return got
	}
	for _, p := range []Person{c.bob, c.carol, c.dave} {
		if got := visible(p); len(got) != 1 {
			t.Fatalf("before: %s sees %v", p.Name, got)
		}
	}

	// carol is in the middle of a request when alice unshares.
	ctx := t.Context()
	tx, err := apiConnShares(t, db).Begin(ctx)
	NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, "select set_config('role', 'web_user', true), set_config('request.jwt.claims', $1, true)", fmt.Sprintf(`{"sub": %q, "role": "web_user"}`, c.carolID))
	NoError(t, err)
	var n int
	NoError(t, tx.QueryRow(ctx, c.expand("select count(*) from app.todos where id = {1}")).Scan(&n))
	if n != 1 {
		t.Fatalf("carol's first statement sees %d rows", n)
	}
	NoError(t, RPC(t, db, c.alice, "todos_unshare", "id", c.todo1, "user_id", c.carolID))
	NoError(t, tx.QueryRow(ctx, c.expand("select count(*) from app.todos where id = {1}")).Scan(&n))
	if n != 0 {
		t.Errorf("the next statement of carol's request still sees the todo after the unshare")
	}
	tag, err := tx.Exec(ctx, c.expand("update app.todos set title = 'too late' where id = {1}"))
	NoError(t, err)
	if tag.RowsAffected() != 0 {
		t.Errorf("carol's request still changed the todo after the unshare")
	}
	NoError(t, tx.Rollback(ctx))
	if got := visible(c.carol); len(got) != 0 {
		t.Errorf("carol's next request sees %v after the unshare", got)
	}

	// dave leaves friends: the group's share is no longer his.
	NoError(t, RPC(t, db, c.dave, "leave_group", "group_id", c.friends))
	if got := visible(c.dave); len(got) != 0 {
		t.Errorf("dave sees %v after leaving friends", got)
	}
	// bob removes the share made to him.
	NoError(t, RPC(t, db, c.bob, "todos_unshare", "id", c.todo1, "user_id", c.bobID))
	if got := visible(c.bob); len(got) != 0 {
		t.Errorf("bob sees %v after removing his share", got)
	}
	_, shares := c.state()
	if diff := cmp.Diff([]shareRow{{Todo: c.todo1, Recipient: "friends", Perms: "read", By: "alice"}}, shares); diff != "" {
		t.Errorf("shares left (-want +got):\n%s", diff)
	}
	// Deleting the group deletes its shares; deleting the todo its shares.
	NoError(t, RPC(t, db, c.alice, "delete_group", "group_id", c.friends))
	c.share(c.alice, c.todo1, "user_id", c.erinID, "read")
	if _, shares := c.state(); len(shares) != 1 || shares[0].Recipient != "erin" {
		t.Errorf("shares after the group went: %v, want erin's only", shares)
	}
	n64, err := c.affected(c.alice, "DELETE", "/todos", "delete from app.todos where id = {1}")
	NoError(t, err)
	if n64 != 1 {
		t.Fatalf("alice deleted %d todos", n64)
	}
	if _, shares := c.state(); len(shares) != 0 {
		t.Errorf("shares of a deleted todo: %v", shares)
	}
}

// TestShareList: GET /rpc/todos_shares?id= lists a todo's shares to its
// owner, oldest first, with what each grants.
func TestShareList(t *testing.T) {
	db := sharesDB(t)
	c := newCast(t, db).in(t)
	c.seed()
	type listed struct {
		User, Group string
		Perms       []string
		By          string
	}
	var got []listed
	err := Requester{T: t, DB: db, Who: c.alice, Path: "/rpc/todos_shares"}.Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), "select coalesce(user_id, ''), coalesce(group_id::text, ''), permissions, shared_by from app.todos_shares(id => $1)", c.todo1)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[listed])
		return err
	})
	NoError(t, err)
	for i := range got {
		got[i].User, got[i].Group, got[i].By = c.name(got[i].User), c.name(got[i].Group), c.name(got[i].By)
	}
	want := []listed{
		{User: "bob", Perms: []string{"read"}, By: "alice"},
		{User: "carol", Perms: []string{"read", "write"}, By: "alice"},
		{Group: "friends", Perms: []string{"read"}, By: "alice"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /rpc/todos_shares as alice (-want +got):\n%s", diff)
	}
}

// TestShareErrorsAreNoOracle: a todo one cannot read and a todo that does
// not exist get the same answer from every function of the share API,
// whatever else the request says: the answers tell nothing about which
// ids exist.
func TestShareErrorsAreNoOracle(t *testing.T) {
	db := sharesDB(t)
	c := newCast(t, db).in(t)
	c.seed()
	missing := Scalar[int64](t, db, "select coalesce(max(id), 0) + 1000000 from app.todos")
	calls := []struct {
		fn   string
		args func(id int64) []any
	}{
		{"todos_share", func(id int64) []any { return []any{"id", id, "user_id", c.erinID, "permissions", []string{"read"}} }},
		{"todos_share", func(id int64) []any {
			return []any{"id", id, "user_id", c.erinID, "permissions", []string{"read", "write", "delete"}}
		}},
		{"todos_share", func(id int64) []any { return []any{"id", id, "group_id", c.ottos, "permissions", []string{"read"}} }},
		{"todos_unshare", func(id int64) []any { return []any{"id", id, "user_id", c.bobID} }},
		{"todos_unshare", func(id int64) []any { return []any{"id", id, "group_id", c.friends} }},
		{"todos_shares", func(id int64) []any { return []any{"id", id} }},
	}
	digits := regexp.MustCompile(`\d+`)
	for _, call := range calls {
		t.Run(fmt.Sprintf("%s %v", call.fn, call.args(0)[2:]), func(t *testing.T) {
			answer := func(id int64) string {
				before := Snapshot(t, db)
				var err error
				if call.fn == "todos_shares" {
					_, err = c.ids(c.otto, "/rpc/todos_shares", "select 1::bigint from app.todos_shares(id => $1)", id)
				} else {
					err = RPC(t, db, c.otto, call.fn, call.args(id)...)
				}
				WantUnchanged(t, db, before)
				WantError(t, err, noSuchTodo)
				return digits.ReplaceAllString(fmt.Sprintf("%#v", err), "N")
			}
			unseen, none := answer(c.todo1), answer(missing)
			if unseen != none {
				t.Errorf("alice's todo and a missing one get different answers:\n%s\n%s", unseen, none)
			}
		})
	}
}

// TestShareHintOnlyNarrows: the page function names its shared rows in a
// transaction-local setting so that the policies' shared arm reads the
// caller's shares among them only (SPEC §21). Set by hand to other rows, it
// shows nothing more (the answer is the caller's shares among the hint:
// the shares decide, the hint narrows); and the page function clears it, so
// the next statement of the request sees every shared row again.
func TestShareHintOnlyNarrows(t *testing.T) {
	db := sharesDB(t)
	c := newCast(t, db).in(t)
	c.seed()
	var seen []int64
	err := Requester{T: t, DB: db, Who: c.bob, Path: "/rpc/f"}.Do("GET", func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), "select pg_catalog.set_config('iam.app_todos_shared_hint', $1, true)", fmt.Sprintf("{%d,%d,%d}", c.todo1, c.todo2, c.todo3)); err != nil {
			return err
		}
		rows, err := tx.Query(t.Context(), c.expand("select id from app.todos where id in ({1}, {2}, {3}) order by id"))
		if err != nil {
			return err
		}
		seen, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	NoError(t, err)
	if !slices.Equal(seen, []int64{c.todo1}) {
		t.Errorf("with a hint naming todos 1, 2 and 3, bob sees %v, want only todo 1 (shared with him)", seen)
	}
	err = Requester{T: t, DB: db, Who: c.bob, Path: "/rpc/todos_page"}.Do("GET", func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), "select * from app.todos_page()"); err != nil {
			return err
		}
		var hint string
		if err := tx.QueryRow(t.Context(), "select coalesce(current_setting('iam.app_todos_shared_hint', true), '')").Scan(&hint); err != nil {
			return err
		}
		if hint != "" {
			t.Errorf("after todos_page the hint is %q, want it cleared", hint)
		}
		var n int
		if err := tx.QueryRow(t.Context(), c.expand("select count(*) from app.todos where id = {1}")).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("after todos_page, the next statement sees %d of bob's shared todo, want 1", n)
		}
		return nil
	})
	NoError(t, err)
}

// apiConnShares is a new connection as authenticator, PostgREST's login
// role, for a request held open while others run.
func apiConnShares(t *testing.T, db *Database) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), db.API.Config().ConnString())
	NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestShareAuditTrail: every share made and removed is an entry of
// iam.audit_log (share.grant, share.revoke), in the transaction of the
// change, whatever removed it (the API, the group's or the row's
// deletion); a refused share leaves none. A group's owners and admins see
// the entries of shares with their group in GET /group_audit.
func TestShareAuditTrail(t *testing.T) {
	db := sharesDB(t)
	c := newCast(t, db).in(t)
	c.seed()
	err := RPC(t, db, c.bob, "todos_share", "id", c.todo1, "user_id", c.erinID, "permissions", []string{"read"})
	WantError(t, err, cannotShare)
	NoError(t, RPC(t, db, c.alice, "todos_unshare", "id", c.todo1, "user_id", c.carolID))
	NoError(t, RPC(t, db, c.alice, "delete_group", "group_id", c.friends))
	n, err := c.affected(c.alice, "DELETE", "/todos", "delete from app.todos where id = {1}")
	NoError(t, err)
	if n != 1 {
		t.Fatalf("alice deleted %d todos", n)
	}

	type entry struct{ Actor, Action, Group, Subject, Old, New string }
	rows, err := db.SU.Query(t.Context(), `select coalesce(actor, '-'), action, coalesce(group_id::text, '-'), coalesce(subject, '-'),
	        coalesce(old_value::text, '-'), coalesce(new_value::text, '-')
	    from iam.audit_log where object = $1 order by id`, fmt.Sprint("app.todos ", c.todo1))
	NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[entry])
	NoError(t, err)
	name := func(s string) string {
		for id, n := range c.names {
			s = strings.ReplaceAll(s, id, n)
		}
		return s
	}
	for i := range got {
		e := &got[i]
		e.Actor, e.Group, e.Subject, e.Old, e.New = name(e.Actor), name(e.Group), name(e.Subject), name(e.Old), name(e.New)
	}
	want := []entry{
		{"alice", "share.grant", "-", "bob", "-", `{"shared_by": "alice", "permissions": ["read"]}`},
		{"alice", "share.grant", "-", "carol", "-", `{"shared_by": "alice", "permissions": ["read", "write"]}`},
		{"alice", "share.grant", "friends", "-", "-", `{"shared_by": "alice", "permissions": ["read"]}`},
		{"alice", "share.revoke", "-", "carol", `{"shared_by": "alice", "permissions": ["read", "write"]}`, "-"},
		{"alice", "share.revoke", "friends", "-", `{"shared_by": "alice", "permissions": ["read"]}`, "-"}, // with the group
		{"alice", "share.revoke", "-", "bob", `{"shared_by": "alice", "permissions": ["read"]}`, "-"},     // with the todo
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("iam.audit_log of todo 1 (-want +got):\n%s", diff)
	}

	// A group's owner sees the shares with the group; its members do not.
	c2 := newCast(t, db).in(t)
	c2.seed()
	audit := func(who Person) string {
		var s string
		NoError(t, Requester{T: t, DB: db, Who: who, Path: "/group_audit"}.Do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), `select coalesce(string_agg(action || ' ' || object, ', ' order by at, action), '') from app.group_audit where group_id = $1 and action like 'share.%'`, c2.friends).Scan(&s)
		}))
		return s
	}
	if got, want := audit(c2.alice), fmt.Sprint("share.grant app.todos ", c2.todo1); got != want {
		t.Errorf("alice (owner of friends) reads %q in /group_audit, want %q", got, want)
	}
	if got := audit(c2.dave); got != "" {
		t.Errorf("dave (a member of friends) reads %q in /group_audit", got)
	}
}
