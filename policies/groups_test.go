package policies_test

// The group rules of todos.iam and chats.iam (SPEC §11), against a real
// PostgreSQL, every request made as PostgREST 12 makes it (pgrest.Do: one
// transaction per request, READ ONLY for GET). Memberships are set up
// through the group API as the users themselves (POST /rpc/create_group,
// /rpc/add_group_member), never by writing iam.group_members, except where
// a test is about token groups (token_name is set by a DBA) or loads a
// large table for the planner. Every refused write is checked from both
// sides: the error or the row count the caller gets, and what the superuser
// then finds (nothing changed).

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ---------------------------------------------------------------------------
// The database, and a crew: the people around one group.
// ---------------------------------------------------------------------------

// The groups database: policies/schema.sql plus the build of this
// directory, shared by the tests of this file. Each test makes its own
// crew (fresh users, fresh groups), so no test sees another's memberships.
var groupsExample struct {
	once sync.Once
	db   *database
	err  error
}

func groupsDB(t *testing.T) *database {
	t.Helper()
	s := server(t)
	groupsExample.once.Do(func() {
		var script string
		if groupsExample.db, groupsExample.err = createDatabase(s, "groups", "schema.sql"); groupsExample.err != nil {
			return
		}
		if script, groupsExample.err = buildScript("."); groupsExample.err != nil {
			return
		}
		_, groupsExample.err = applyScript(t.Context(), s, "groups", script)
	})
	if groupsExample.err != nil {
		t.Fatalf("setting up the groups database: %v", groupsExample.err)
	}
	return groupsExample.db
}

// crew is the cast of one test, with ids no other crew uses:
//
//	team          olivia (owner, created it), adam (admin), mia (member), alice (member)
//	side          alice (owner, created it), olivia, adam, mia (members)
//	alice's room  alice alone (owner): chat messages only she can see
//	otto's club   otto alone (owner)
type crew struct {
	t      *testing.T
	db     *database
	alice  person // owns the rows under test; a plain member of team
	olivia person // team's owner
	adam   person // team's admin
	mia    person // team's plain member
	otto   person // an outsider: in none of alice's groups
	carol  person // in no group (the token group tests give her a claim)

	aliceID, oliviaID, adamID, miaID, ottoID, carolID string

	team, side, room, club int64
	names                  map[string]string // user id or group id (as text) -> name
}

var crews struct {
	mu sync.Mutex
	n  int
}

func newCrew(t *testing.T, db *database) *crew {
	t.Helper()
	crews.mu.Lock()
	crews.n++
	n := crews.n
	crews.mu.Unlock()
	uid := func(k int) string { return fmt.Sprintf("%08d-0000-4000-8000-%012d", n, k) }
	c := &crew{t: t, db: db, names: map[string]string{}}
	c.aliceID, c.oliviaID, c.adamID, c.miaID, c.ottoID, c.carolID = uid(1), uid(2), uid(3), uid(4), uid(5), uid(6)
	for _, p := range []struct {
		p        *person
		name, id string
	}{
		{&c.alice, "alice", c.aliceID}, {&c.olivia, "olivia", c.oliviaID}, {&c.adam, "adam", c.adamID},
		{&c.mia, "mia", c.miaID}, {&c.otto, "otto", c.ottoID}, {&c.carol, "carol", c.carolID},
	} {
		*p.p = keycloakUser(p.name, p.id)
		c.names[p.id] = p.name
	}

	c.team = createGroup(t, db, c.olivia, "team")
	addMember(t, db, c.olivia, c.team, c.adamID, "admin")
	addMember(t, db, c.olivia, c.team, c.miaID, "member")
	addMember(t, db, c.adam, c.team, c.aliceID, "") // an admin adds a member; the role defaults to member
	c.side = createGroup(t, db, c.alice, "side")
	for _, uid := range []string{c.oliviaID, c.adamID, c.miaID} {
		addMember(t, db, c.alice, c.side, uid, "member")
	}
	c.room = createGroup(t, db, c.alice, "alice's room")
	c.club = createGroup(t, db, c.otto, "otto's club")
	for gid, name := range map[int64]string{c.team: "team", c.side: "side", c.room: "alice's room", c.club: "otto's club"} {
		c.names[strconv.FormatInt(gid, 10)] = name
	}
	return c
}

// in is the crew, for use in the (sub)test t.
func (c *crew) in(t *testing.T) *crew {
	cp := *c
	cp.t = t
	return &cp
}

// id is who's user id (the sub claim).
func id(who person) string {
	sub, _ := who.claims["sub"].(string)
	return sub
}

// name shows a user id or group id by name.
func (c *crew) name(id string) string {
	if n, ok := c.names[id]; ok {
		return n
	}
	return id
}

// as makes requests for who on path.
func (c *crew) as(who person, path string) requester {
	return requester{t: c.t, db: c.db, who: who, path: path}
}

// membership is one row of iam.group_members, by name.
type membership struct {
	Group, User, Role string
}

// memberships is iam.group_members and iam.groups as the superuser sees
// them: every membership of every group, and every group with its token
// name, so a refused request can be shown to have changed nothing.
func (c *crew) memberships() []string {
	c.t.Helper()
	rows, err := c.db.su.Query(c.t.Context(), `
		select format('group %s %s (token %s, by %s): %s is %s', g.id, g.name, coalesce(g.token_name, '-'), g.created_by,
		              coalesce(m.user_id, '-'), coalesce(m.role, '-'))
		from iam.groups g left join iam.group_members m on m.group_id = g.id
		order by g.id, m.user_id`)
	noError(c.t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	noError(c.t, err)
	return got
}

// groupMembers is iam.group_members of one group as the superuser sees it.
func (c *crew) groupMembers(gid int64) []membership {
	c.t.Helper()
	rows, err := c.db.su.Query(c.t.Context(),
		"select group_id::text, user_id, role from iam.group_members where group_id = $1 order by user_id", gid)
	noError(c.t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[membership])
	noError(c.t, err)
	for i := range got {
		got[i].Group, got[i].User = c.name(got[i].Group), c.name(got[i].User)
	}
	return got
}

// ---------------------------------------------------------------------------
// The tables, seeded as the superuser.
// ---------------------------------------------------------------------------

type groupTable struct {
	name     string // qualified table name
	path     string // PostgREST path
	text     string // its text column
	required bool   // group column required: every row is in a group
}

var (
	todos       = groupTable{name: "app.todos", path: "/todos", text: "title"}
	chats       = groupTable{name: "app.chats", path: "/chats", text: "body", required: true}
	groupTables = []groupTable{todos, chats}
)

// grow is a row as these tests compare it: owner and group by name.
type grow struct {
	ID    int64
	Text  string
	Owner string
	Group string // "" for none
}

func (c *crew) expand(tbl groupTable, sql string) string {
	return strings.NewReplacer(
		"{table}", tbl.name,
		"{text}", tbl.text,
		"{team}", strconv.FormatInt(c.team, 10),
		"{side}", strconv.FormatInt(c.side, 10),
		"{room}", strconv.FormatInt(c.room, 10),
		"{club}", strconv.FormatInt(c.club, 10),
	).Replace(sql)
}

// seed empties tbl and fills it as the superuser:
//
//	1  alice's own        alice  no group (todos) / alice's room (chats)
//	2  alice's, in team   alice  team          <- the row under test
//	3  mia's, in team     mia    team
//	4  otto's, in club    otto   otto's club
func (c *crew) seed(tbl groupTable) []grow {
	c.t.Helper()
	var own any // a todo of alice's own is in no group; a chat message in her room
	if tbl.required {
		own = c.room
	}
	c.db.exec(c.t, c.expand(tbl, "truncate {table} restart identity"))
	c.db.exec(c.t, c.expand(tbl, `insert into {table} ({text}, owner_id, group_id) values
		('alice''s own', $1, $5), ('alice''s, in team', $1, $3), ('mia''s, in team', $2, $3), ('otto''s, in club', $4, $6)`),
		c.aliceID, c.miaID, c.team, c.ottoID, own, c.club)
	return c.rows(tbl)
}

// rows is tbl as the superuser sees it.
func (c *crew) rows(tbl groupTable) []grow {
	c.t.Helper()
	rows, err := c.db.su.Query(c.t.Context(), c.expand(tbl,
		"select id, {text}, owner_id::text, coalesce(group_id::text, '') from {table} order by id"))
	noError(c.t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[grow])
	noError(c.t, err)
	for i := range got {
		got[i].Owner, got[i].Group = c.name(got[i].Owner), c.name(got[i].Group)
	}
	return got
}

// wantRowsOf checks tbl as the superuser sees it.
func (c *crew) wantRowsOf(t *testing.T, tbl groupTable, want []grow) {
	t.Helper()
	if diff := cmp.Diff(want, c.rows(tbl), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s as the superuser sees it (-want +got):\n%s", tbl.name, diff)
	}
}

// ids runs a statement returning ids as who, in the transaction of method.
func (c *crew) ids(who person, tbl groupTable, method, sql string, args ...any) ([]int64, error) {
	c.t.Helper()
	var got []int64
	err := c.as(who, tbl.path).do(method, func(tx pgx.Tx) error {
		rows, err := tx.Query(c.t.Context(), c.expand(tbl, sql), args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return got, err
}

// affected runs a write as who and returns the number of rows it touched.
func (c *crew) affected(who person, tbl groupTable, method, sql string, args ...any) (int64, error) {
	c.t.Helper()
	var n int64
	err := c.as(who, tbl.path).do(method, func(tx pgx.Tx) error {
		tag, err := tx.Exec(c.t.Context(), c.expand(tbl, sql), args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// ---------------------------------------------------------------------------
// Outcomes.
// ---------------------------------------------------------------------------

// outcome is what one request is expected to get: the rows it sees (a
// read), the number of rows it changes (a write), or an error.
type outcome struct {
	read bool    // a read: ids is what it sees
	ids  []int64 // a read: the ids seen
	n    int64   // a write: rows affected
	code string  // SQLSTATE when refused
	msg  string  // a fragment of the error message
}

func sees(ids ...int64) outcome      { return outcome{read: true, ids: ids} }
func affects(n int64) outcome        { return outcome{n: n} }
func fails(code, msg string) outcome { return outcome{code: code, msg: msg} }

func (o outcome) String() string {
	switch {
	case o.code != "":
		return fmt.Sprintf("SQLSTATE %s %q", o.code, o.msg)
	case o.read:
		return fmt.Sprintf("sees %v", o.ids)
	default:
		return fmt.Sprintf("%d rows", o.n)
	}
}

// changes says whether a write with this outcome changes the table.
func (o outcome) changes() bool { return o.code == "" && o.n > 0 }

// wantError checks err against a refusal (or no error for a success).
func wantError(t *testing.T, err error, want outcome) bool {
	t.Helper()
	if want.code == "" {
		if err != nil {
			t.Errorf("got error %v, want %s", err, want)
			return false
		}
		return true
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		t.Errorf("succeeded, want %s", want)
	case !errors.As(err, &pgErr):
		t.Errorf("got error %v, want %s", err, want)
	case pgErr.Code != want.code || !strings.Contains(pgErr.Message, want.msg):
		t.Errorf("got SQLSTATE %s %q, want %s", pgErr.Code, pgErr.Message, want)
	}
	return false
}

// Refusals, by what SPEC §9 and §11 say the runtime answers.
var (
	denied         = fails("42501", "permission denied")                     // anonymous: no privilege at all (HTTP 401)
	notInGroup     = fails("42501", "you cannot put rows of")                // the row guard: no create role in the group
	onlyOwnerMoves = fails("42501", "only the owner of a row")               // the row guard: a member moves a row
	ownerFixed     = fails("42501", "cannot be changed")                     // the row guard: owner_id is fixed
	needsGroup     = fails("23502", "belongs to a group")                    // a required group column left empty
	noSuchGroup    = fails("42501", "you cannot put rows of")                // SPEC §11: a group that does not exist looks like one you are not in
	lastOwner      = fails("23514", "must keep at least one owner")          // group API
	adminsOnly     = fails("42501", "only owners and admins of group")       // group API
	ownersOnly     = fails("42501", "only owners of group")                  // group API
	noOwnerRemoval = fails("42501", "admins cannot remove owners")           // group API
	noRowSeen      = affects(0)                                              // RLS hides the row: the write reaches nothing
	oneRow         = affects(1)                                              // the write reaches the row
	noCaller       = fails("28000", "groups need a signed-in user")          // group API without a user id
	notMember      = fails("PT404", "is not a member of group")              // group API: the user named is not in the group (HTTP 404)
	notInIt        = fails("PT404", "you are not a member of group")         // group API: the caller is not in the group, or it does not exist (HTTP 404)
	badArgument    = func(msg string) outcome { return fails("22023", msg) } // group API
)

// ---------------------------------------------------------------------------
// The matrix.
// ---------------------------------------------------------------------------

// The six roles of the matrix, in the order of its columns.
var matrixRoles = [6]string{"row owner", "group owner", "group admin", "group member", "outsider", "anonymous"}

func (c *crew) byRole() [6]person {
	return [6]person{c.alice, c.olivia, c.adam, c.mia, c.otto, anonymous}
}

// groupOp is one request of the matrix on row 2 (alice's, in team).
type groupOp struct {
	name  string
	read  bool
	sql   func(c *crew, actor person) string
	after func(c *crew, seed []grow, actor person) []grow // the table when the write succeeds
}

func constSQL(sql string) func(*crew, person) string {
	return func(*crew, person) string { return sql }
}

// withRow2 returns seed with row 2 changed by f.
func withRow2(seed []grow, f func(*grow)) []grow {
	out := slices.Clone(seed)
	for i := range out {
		if out[i].ID == 2 {
			f(&out[i])
		}
	}
	return out
}

var groupOps = []groupOp{
	{name: "list", read: true, sql: constSQL("select id from {table} order by id")},
	{name: "read one", read: true, sql: constSQL("select id from {table} where id = 2")},
	{name: "insert", sql: constSQL("insert into {table} ({text}) values ('new')"),
		after: func(c *crew, seed []grow, actor person) []grow {
			return append(slices.Clone(seed), grow{ID: 5, Text: "new", Owner: actor.name})
		}},
	{name: "insert into a group", sql: constSQL("insert into {table} ({text}, group_id) values ('new', {team})"),
		after: func(c *crew, seed []grow, actor person) []grow {
			return append(slices.Clone(seed), grow{ID: 5, Text: "new", Owner: actor.name, Group: "team"})
		}},
	{name: "update", sql: constSQL("update {table} set {text} = 'edited' where id = 2"),
		after: func(c *crew, seed []grow, _ person) []grow {
			return withRow2(seed, func(r *grow) { r.Text = "edited" })
		}},
	{name: "move to another group", sql: constSQL("update {table} set group_id = {side} where id = 2"),
		after: func(c *crew, seed []grow, _ person) []grow {
			return withRow2(seed, func(r *grow) { r.Group = "side" })
		}},
	{name: "take out of its group", sql: constSQL("update {table} set group_id = null where id = 2"),
		after: func(c *crew, seed []grow, _ person) []grow {
			return withRow2(seed, func(r *grow) { r.Group = "" })
		}},
	{name: "change owner", // alice gives her row to olivia; anyone else takes it
		sql: func(c *crew, actor person) string {
			to := id(actor)
			if to == c.aliceID || to == "" {
				to = c.oliviaID
			}
			return fmt.Sprintf("update {table} set owner_id = '%s' where id = 2", to)
		},
		after: func(c *crew, seed []grow, actor person) []grow {
			return withRow2(seed, func(r *grow) { r.Owner = actor.name })
		}},
	{name: "delete", sql: constSQL("delete from {table} where id = 2"),
		after: func(c *crew, seed []grow, _ person) []grow {
			return slices.DeleteFunc(slices.Clone(seed), func(r grow) bool { return r.ID == 2 })
		}},
}

// groupMatrix: for each table and request, the outcome for each role, in
// the order of matrixRoles. Row 2 is alice's, in team; see crew and seed.
//
// todos.iam: owner can read, create, write, delete; group member can read,
// create, write; group admin can delete. chats.iam: the group is required;
// owner can read, create, write, delete; group member can read, create;
// group admin can delete. Only the owner moves a row (SPEC §11 "Moving
// rows"); owner_id never changes; anonymous has no privilege.
var groupMatrix = map[string]map[string][6]outcome{
	"app.todos": {
		//                        row owner       group owner     group admin     group member    outsider        anonymous
		"list":                  {sees(1, 2, 3), sees(2, 3), sees(2, 3), sees(2, 3), sees(4), denied},
		"read one":              {sees(2), sees(2), sees(2), sees(2), sees(), denied},
		"insert":                {oneRow, oneRow, oneRow, oneRow, oneRow, denied},
		"insert into a group":   {oneRow, oneRow, oneRow, oneRow, notInGroup, denied},
		"update":                {oneRow, oneRow, oneRow, oneRow, noRowSeen, denied},
		"move to another group": {oneRow, onlyOwnerMoves, onlyOwnerMoves, onlyOwnerMoves, noRowSeen, denied},
		"take out of its group": {oneRow, onlyOwnerMoves, onlyOwnerMoves, onlyOwnerMoves, noRowSeen, denied},
		"change owner":          {ownerFixed, ownerFixed, ownerFixed, ownerFixed, noRowSeen, denied},
		"delete":                {oneRow, oneRow, oneRow, noRowSeen, noRowSeen, denied},
	},
	"app.chats": {
		//                        row owner       group owner     group admin     group member    outsider        anonymous
		"list":                  {sees(1, 2, 3), sees(2, 3), sees(2, 3), sees(2, 3), sees(4), denied},
		"read one":              {sees(2), sees(2), sees(2), sees(2), sees(), denied},
		"insert":                {needsGroup, needsGroup, needsGroup, needsGroup, needsGroup, denied},
		"insert into a group":   {oneRow, oneRow, oneRow, oneRow, notInGroup, denied},
		"update":                {oneRow, noRowSeen, noRowSeen, noRowSeen, noRowSeen, denied},
		"move to another group": {oneRow, noRowSeen, noRowSeen, noRowSeen, noRowSeen, denied},
		"take out of its group": {needsGroup, noRowSeen, noRowSeen, noRowSeen, noRowSeen, denied},
		"change owner":          {ownerFixed, noRowSeen, noRowSeen, noRowSeen, noRowSeen, denied},
		"delete":                {oneRow, oneRow, oneRow, noRowSeen, noRowSeen, denied},
	},
}

// TestGroupMatrix runs every request of groupOps as every role on both
// tables. A read runs in a READ ONLY transaction and must see exactly the
// expected rows. A write runs twice, as PostgREST's return=representation
// (with RETURNING, so the select policy applies too) and return=minimal,
// on a freshly seeded table each time; both must give the same outcome
// (SPEC §8.9), and the superuser then finds the table changed exactly as
// the write says, or not at all when it was refused or reached nothing.
func TestGroupMatrix(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	cells := 0
	for _, tbl := range groupTables {
		t.Run(tbl.name, func(t *testing.T) {
			for _, op := range groupOps {
				wants, ok := groupMatrix[tbl.name][op.name]
				if !ok {
					t.Fatalf("no row %q in the matrix of %s", op.name, tbl.name)
				}
				for i, actor := range c.byRole() {
					want := wants[i]
					cells++
					t.Run(fmt.Sprintf("%s (%s) %s: %s", matrixRoles[i], actor.name, op.name, want), func(t *testing.T) {
						c := c.in(t)
						sql := op.sql(c, actor)
						if op.read {
							seed := c.seed(tbl)
							before := snapshot(t, db)
							got, err := c.ids(actor, tbl, "GET", sql)
							if wantError(t, err, want) {
								if diff := cmp.Diff(want.ids, got, cmpopts.EquateEmpty()); diff != "" {
									t.Errorf("ids seen (-want +got):\n%s", diff)
								}
							}
							c.wantRowsOf(t, tbl, seed)
							wantUnchanged(t, db, before)
							return
						}
						for _, prefer := range []string{"return=representation", "return=minimal"} {
							seed := c.seed(tbl)
							before := snapshot(t, db)
							stmt := sql
							if prefer == "return=representation" {
								stmt += " returning id"
							}
							method := map[bool]string{true: "POST", false: "PATCH"}[strings.HasPrefix(stmt, "insert")]
							if strings.HasPrefix(stmt, "delete") {
								method = "DELETE"
							}
							n, err := c.affected(actor, tbl, method, stmt)
							if wantError(t, err, want) && n != want.n {
								t.Errorf("%s: %d rows affected, want %d", prefer, n, want.n)
							}
							expected := seed
							if want.changes() {
								expected = op.after(c, seed, actor)
							} else {
								wantUnchanged(t, db, before)
							}
							c.wantRowsOf(t, tbl, expected)
						}
					})
				}
			}
		})
	}
	if want := len(groupTables) * len(groupOps) * len(matrixRoles); cells != want {
		t.Errorf("ran %d cells, want %d", cells, want)
	}
	t.Logf("group matrix: %d cells (%d tables x %d requests x %d roles)", cells, len(groupTables), len(groupOps), len(matrixRoles))
}

// ---------------------------------------------------------------------------
// Attacks on memberships.
// ---------------------------------------------------------------------------

// TestMembershipAttacks: every way to get into a group, or to take a group
// from its owners, without the right to (SPEC §8.7, §11 "The group API").
// Each is refused with the SQLSTATE and message the SPEC names, and
// iam.groups and iam.group_members are exactly as before.
func TestMembershipAttacks(t *testing.T) {
	db := groupsDB(t)
	type args = []any
	attacks := []struct {
		name string
		who  func(c *crew) person
		fn   string
		args func(c *crew) args
		want outcome
	}{
		{"an outsider adds himself to someone's group",
			func(c *crew) person { return c.otto }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, notInIt},
		{"an outsider adds himself to someone's group as owner",
			func(c *crew) person { return c.otto }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID, "role", "owner"} }, notInIt},
		{"a plain member adds someone else",
			func(c *crew) person { return c.mia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, adminsOnly},
		{"a plain member promotes herself to admin",
			func(c *crew) person { return c.mia }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID, "role", "admin"} }, adminsOnly},
		{"a plain member removes another member",
			func(c *crew) person { return c.mia }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.aliceID} }, adminsOnly},
		{"an outsider removes a member",
			func(c *crew) person { return c.otto }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID} }, notInIt},
		{"an admin removes the owner",
			func(c *crew) person { return c.adam }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.oliviaID} }, noOwnerRemoval},
		{"an admin demotes the owner",
			func(c *crew) person { return c.adam }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.oliviaID, "role", "member"} }, ownersOnly},
		{"an admin adds an owner",
			func(c *crew) person { return c.adam }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID, "role", "owner"} }, ownersOnly},
		{"an admin promotes himself to owner",
			func(c *crew) person { return c.adam }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.adamID, "role", "owner"} }, ownersOnly},
		{"an admin promotes a member to owner",
			func(c *crew) person { return c.adam }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID, "role", "owner"} }, ownersOnly},
		{"an admin deletes the group",
			func(c *crew) person { return c.adam }, "delete_group",
			func(c *crew) args { return args{"group_id", c.team} }, ownersOnly},
		{"a plain member deletes the group",
			func(c *crew) person { return c.mia }, "delete_group",
			func(c *crew) args { return args{"group_id", c.team} }, ownersOnly},
		{"an outsider deletes the group",
			func(c *crew) person { return c.otto }, "delete_group",
			func(c *crew) args { return args{"group_id", c.team} }, notInIt},
		{"the last owner leaves",
			func(c *crew) person { return c.olivia }, "leave_group",
			func(c *crew) args { return args{"group_id", c.team} }, lastOwner},
		{"the last owner demotes herself",
			func(c *crew) person { return c.olivia }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.oliviaID, "role", "admin"} }, lastOwner},
		{"the last owner removes herself",
			func(c *crew) person { return c.olivia }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.oliviaID} }, lastOwner},
		{"an anonymous visitor creates a group",
			func(c *crew) person { return anonymous }, "create_group",
			func(c *crew) args { return args{"name", "anon"} }, denied},
		{"an anonymous visitor adds someone to a group",
			func(c *crew) person { return anonymous }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, denied},
		{"a token without sub creates a group",
			func(c *crew) person { return noSub }, "create_group",
			func(c *crew) args { return args{"name", "nobody's"} }, noCaller},
		{"a token without sub adds someone to a group",
			func(c *crew) person { return noSub }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, noCaller},
		// Mistakes, with the errors SPEC §11 names.
		{"the owner adds a member twice",
			func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID} }, fails("23505", "is already a member of group")},
		{"the owner adds a user id that is not a uuid",
			func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", "f:ldap:otto"} }, badArgument("is not a uuid")},
		{"the owner adds a member with an unknown role",
			func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID, "role", "superuser"} }, badArgument("unknown group role")},
		{"the owner removes someone who is not a member",
			func(c *crew) person { return c.olivia }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, notMember},
		{"an outsider leaves a group he is not in",
			func(c *crew) person { return c.otto }, "leave_group",
			func(c *crew) args { return args{"group_id", c.team} }, notInIt},
		{"a group with a blank name",
			func(c *crew) person { return c.otto }, "create_group",
			func(c *crew) args { return args{"name", "  "} }, badArgument("a group needs a name")},
	}
	for _, a := range attacks {
		t.Run(fmt.Sprintf("%s: %s", a.name, a.want), func(t *testing.T) {
			c := newCrew(t, db)
			before := snapshot(t, db)
			err := rpc(t, db, a.who(c), a.fn, a.args(c)...)
			wantError(t, err, a.want)
			wantUnchanged(t, db, before)
		})
	}
}

// TestGroupAPI: what the group API allows does what SPEC §11 says, and the
// rules attacked above are about the right people.
func TestGroupAPI(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db).in(t)
	m := func(user, role string) membership { return membership{Group: "team", User: user, Role: role} }
	wantMembers := func(t *testing.T, want ...membership) {
		t.Helper()
		if diff := cmp.Diff(want, c.in(t).groupMembers(c.team), cmpopts.SortSlices(func(a, b membership) bool { return a.User < b.User })); diff != "" {
			t.Errorf("team's members (-want +got):\n%s", diff)
		}
	}
	wantMembers(t, m("adam", "admin"), m("alice", "member"), m("mia", "member"), m("olivia", "owner"))

	steps := []struct {
		name string
		who  person
		fn   string
		args []any
		want []membership
	}{
		{"an admin adds a member", c.adam, "add_group_member", []any{"group_id", c.team, "user_id", c.ottoID},
			[]membership{m("adam", "admin"), m("alice", "member"), m("mia", "member"), m("olivia", "owner"), m("otto", "member")}},
		{"an admin removes a member", c.adam, "remove_group_member", []any{"group_id", c.team, "user_id", c.ottoID},
			[]membership{m("adam", "admin"), m("alice", "member"), m("mia", "member"), m("olivia", "owner")}},
		{"the owner makes mia an owner", c.olivia, "set_group_member_role", []any{"group_id", c.team, "user_id", c.miaID, "role", "owner"},
			[]membership{m("adam", "admin"), m("alice", "member"), m("mia", "owner"), m("olivia", "owner")}},
		{"an owner who is not the last one leaves", c.olivia, "leave_group", []any{"group_id", c.team},
			[]membership{m("adam", "admin"), m("alice", "member"), m("mia", "owner")}},
		{"a member leaves", c.alice, "leave_group", []any{"group_id", c.team},
			[]membership{m("adam", "admin"), m("mia", "owner")}},
		{"an owner demotes an admin", c.mia, "set_group_member_role", []any{"group_id", c.team, "user_id", c.adamID, "role", "member"},
			[]membership{m("adam", "member"), m("mia", "owner")}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			noError(t, rpc(t, db, s.who, s.fn, s.args...))
			wantMembers(t, s.want...)
		})
	}
}

// ---------------------------------------------------------------------------
// Attacks on rows.
// ---------------------------------------------------------------------------

// TestGroupRowAttacks: putting rows into groups, or taking them, without
// the right to (SPEC §8.7, §11 "Moving rows"). Each is refused, or reaches
// no row, and the table is exactly as seeded afterwards.
func TestGroupRowAttacks(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	const missing = "9000000000000000001" // no such group
	attacks := []struct {
		name   string
		tbl    groupTable
		who    func(c *crew) person
		method string
		sql    string
		want   outcome
	}{
		{"an outsider shares alice's private todo into his own group", todos,
			func(c *crew) person { return c.otto }, "PATCH", "update {table} set group_id = {club} where id = 1", noRowSeen},
		{"a member of team shares alice's private todo into team", todos,
			func(c *crew) person { return c.mia }, "PATCH", "update {table} set group_id = {team} where id = 1", noRowSeen},
		{"an outsider moves a todo of team into his own group", todos,
			func(c *crew) person { return c.otto }, "PATCH", "update {table} set group_id = {club} where id = 2", noRowSeen},
		{"an outsider lists the todos of a group he is not in", todos,
			func(c *crew) person { return c.otto }, "GET", "select id from {table} where group_id = {team}", sees()},
		{"an outsider reads the chat of a room he is not in", chats,
			func(c *crew) person { return c.otto }, "GET", "select id from {table} where group_id = {team}", sees()},
		{"alice moves her own todo into a group she is not in", todos,
			func(c *crew) person { return c.alice }, "PATCH", "update {table} set group_id = {club} where id = 1", notInGroup},
		{"alice moves her own chat message into a room she is not in", chats,
			func(c *crew) person { return c.alice }, "PATCH", "update {table} set group_id = {club} where id = 1", notInGroup},
		{"alice creates a todo in a group she is not in", todos,
			func(c *crew) person { return c.alice }, "POST", "insert into {table} ({text}, group_id) values ('spam', {club})", notInGroup},
		{"alice posts a chat message into a room she is not in", chats,
			func(c *crew) person { return c.alice }, "POST", "insert into {table} ({text}, group_id) values ('spam', {club})", notInGroup},
		{"a member moves someone else's todo to another group (both hers)", todos,
			func(c *crew) person { return c.mia }, "PATCH", "update {table} set group_id = {side} where id = 2", onlyOwnerMoves},
		{"a member moves every todo she can write to another group: one is not hers, so none moves", todos,
			func(c *crew) person { return c.mia }, "PATCH", "update {table} set group_id = {side}", onlyOwnerMoves},
		{"an admin takes someone else's todo out of the group", todos,
			func(c *crew) person { return c.adam }, "PATCH", "update {table} set group_id = null where id = 2", onlyOwnerMoves},
		{"a member plants a todo in team in alice's name", todos,
			func(c *crew) person { return c.mia }, "POST", "insert into {table} ({text}, group_id, owner_id) values ('from alice', {team}, '{alice}')",
			fails("42501", "owner_id must be the caller's own user id")},
		{"a member posts a chat message in alice's name", chats,
			func(c *crew) person { return c.mia }, "POST", "insert into {table} ({text}, group_id, owner_id) values ('from alice', {team}, '{alice}')",
			fails("42501", "owner_id must be the caller's own user id")},
		{"an outsider deletes every todo of a group", todos,
			func(c *crew) person { return c.otto }, "DELETE", "delete from {table} where group_id = {team}", noRowSeen},
		{"a group owner edits someone else's chat message", chats,
			func(c *crew) person { return c.olivia }, "PATCH", "update {table} set {text} = 'censored' where id = 2", noRowSeen},
		// SPEC §11: a group that does not exist is refused like a group one is
		// not in (42501), so that the answer does not tell which ids exist.
		{"alice creates a todo in a group that does not exist", todos,
			func(c *crew) person { return c.alice }, "POST", "insert into {table} ({text}, group_id) values ('lost', " + missing + ")", noSuchGroup},
		{"alice posts a chat message into a room that does not exist", chats,
			func(c *crew) person { return c.alice }, "POST", "insert into {table} ({text}, group_id) values ('lost', " + missing + ")", noSuchGroup},
		{"alice moves her todo into a group that does not exist", todos,
			func(c *crew) person { return c.alice }, "PATCH", "update {table} set group_id = " + missing + " where id = 1", noSuchGroup},
	}
	for _, a := range attacks {
		t.Run(fmt.Sprintf("%s %s: %s", a.tbl.name, a.name, a.want), func(t *testing.T) {
			c := c.in(t)
			seed := c.seed(a.tbl)
			before := snapshot(t, db)
			sql := strings.ReplaceAll(a.sql, "{alice}", c.aliceID)
			if a.method == "GET" {
				got, err := c.ids(a.who(c), a.tbl, a.method, sql)
				if wantError(t, err, a.want) && len(got) != 0 {
					t.Errorf("saw rows %v, want none", got)
				}
			} else {
				n, err := c.affected(a.who(c), a.tbl, a.method, sql)
				if wantError(t, err, a.want) && n != a.want.n {
					t.Errorf("%d rows affected, want %d", n, a.want.n)
				}
			}
			c.wantRowsOf(t, a.tbl, seed)
			wantUnchanged(t, db, before)
		})
	}
	t.Run("the foreign key refuses a group that does not exist even to a backend job (superuser)", func(t *testing.T) {
		c := c.in(t)
		seed := c.seed(todos)
		before := snapshot(t, db)
		_, err := db.su.Exec(t.Context(), "insert into app.todos (title, owner_id, group_id) values ('lost', $1, "+missing+")", c.aliceID)
		wantError(t, err, fails("23503", "violates foreign key constraint"))
		c.wantRowsOf(t, todos, seed)
		wantUnchanged(t, db, before)
	})
	t.Run("a member's update that repeats the row's owner and group (a PUT) is an ordinary update", func(t *testing.T) {
		c := c.in(t)
		seed := c.seed(todos)
		n, err := c.affected(c.mia, todos, "PATCH", "update {table} set {text} = 'edited', owner_id = $1, group_id = {team} where id = 2", c.aliceID)
		noError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
		c.wantRowsOf(t, todos, withRow2(seed, func(r *grow) { r.Text = "edited" }))
	})
	t.Run("the owner moves her own row between groups she is in, and out of the group", func(t *testing.T) {
		c := c.in(t)
		seed := c.seed(todos)
		n, err := c.affected(c.mia, todos, "PATCH", "update {table} set group_id = {side} where id = 3")
		noError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
		n, err = c.affected(c.alice, todos, "PATCH", "update {table} set group_id = null where id = 2")
		noError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
		want := withRow2(seed, func(r *grow) { r.Group = "" })
		want[2].Group = "side"
		c.wantRowsOf(t, todos, want)
	})
}

// ---------------------------------------------------------------------------
// Revocation, token groups, deleting a group, the views.
// ---------------------------------------------------------------------------

// TestRevocationIsImmediate: SPEC §8.8. The request after a removal (a new
// transaction, as every PostgREST request is) no longer sees the group's
// rows; a demotion takes the admin's rights at once too.
func TestRevocationIsImmediate(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db).in(t)
	c.seed(todos)
	c.seed(chats)

	visible := func(who person, tbl groupTable) []int64 {
		t.Helper()
		got, err := c.ids(who, tbl, "GET", "select id from {table} order by id")
		noError(t, err)
		return got
	}
	for _, tbl := range groupTables {
		if got := visible(c.mia, tbl); !slices.Equal(got, []int64{2, 3}) {
			t.Fatalf("before the removal, mia sees %s %v, want [2 3]", tbl.name, got)
		}
	}

	noError(t, rpc(t, db, c.olivia, "remove_group_member", "group_id", c.team, "user_id", c.miaID))

	for _, tbl := range groupTables {
		t.Run("mia's next request does not see team's "+tbl.name, func(t *testing.T) {
			c := c.in(t)
			if got := visible(c.mia, tbl); !slices.Equal(got, []int64{3}) {
				t.Errorf("mia sees %s %v, want only her own row [3]", tbl.name, got)
			}
		})
	}
	t.Run("mia can no longer change alice's todo in team", func(t *testing.T) {
		c := c.in(t)
		before := snapshot(t, db)
		n, err := c.affected(c.mia, todos, "PATCH", "update {table} set {text} = 'too late' where id = 2")
		noError(t, err)
		if n != 0 {
			t.Errorf("%d rows affected, want 0", n)
		}
		wantUnchanged(t, db, before)
	})
	t.Run("mia can no longer post into team", func(t *testing.T) {
		c := c.in(t)
		before := snapshot(t, db)
		_, err := c.affected(c.mia, chats, "POST", "insert into {table} ({text}, group_id) values ('still here?', {team})")
		wantError(t, err, notInGroup)
		wantUnchanged(t, db, before)
	})
	t.Run("mia no longer sees team or its members", func(t *testing.T) {
		c := c.in(t)
		if got := c.myGroups(c.mia); slices.ContainsFunc(got, func(g myGroup) bool { return g.Name == "team" }) {
			t.Errorf("GET /groups as mia lists team: %v", got)
		}
		if got := c.groupMembersAs(c.mia, c.team); len(got) != 0 {
			t.Errorf("GET /group_members?group_id=eq.team as mia = %v, want []", got)
		}
	})
	t.Run("an admin demoted to member can no longer delete the group's rows", func(t *testing.T) {
		c := c.in(t)
		noError(t, rpc(t, db, c.olivia, "set_group_member_role", "group_id", c.team, "user_id", c.adamID, "role", "member"))
		for _, tbl := range groupTables {
			before := snapshot(t, db)
			n, err := c.affected(c.adam, tbl, "DELETE", "delete from {table} where id = 2")
			noError(t, err)
			if n != 0 {
				t.Errorf("adam deleted %d rows of %s, want 0", n, tbl.name)
			}
			wantUnchanged(t, db, before)
		}
	})
	for _, tbl := range groupTables {
		if got := c.rows(tbl); len(got) != 4 {
			t.Errorf("%s holds %v after the refused requests, want the 4 seeded rows", tbl.name, got)
		}
	}
}

// withGroups is who with a groups claim, as Keycloak's Group Membership
// mapper puts it in the token.
func withGroups(who person, claim any) person {
	claims := make(map[string]any, len(who.claims)+1)
	for k, v := range who.claims {
		claims[k] = v
	}
	claims["groups"] = claim
	who.claims = claims
	return who
}

// TestMayEnterGroupAgreesWithGroupIDs: the row guard's fast path,
// iam.may_enter_group (primary-key probes for one group), must give the
// answer of gid = any(iam.group_ids(role)) for every caller, group and
// role, token groups included. (A wrong no would only be slow, since
// iam.check_group_entry explains it again; a wrong yes would be caught by
// the insert policy, with a vaguer error. Neither is acceptable.)
func TestMayEnterGroupAgreesWithGroupIDs(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db).in(t)
	path := fmt.Sprintf("/team-a-%d", c.team)
	db.exec(t, "update iam.groups set token_name = $1 where id = $2", path, c.team)
	callers := []person{c.alice, c.olivia, c.adam, c.mia, c.otto, c.carol,
		withGroups(c.carol, []string{path}), withGroups(c.otto, []string{"/nobody", path})}
	groups := []int64{c.team, c.side, c.room, c.club, -1}
	var checked, yes int
	for _, who := range callers {
		for _, role := range []string{"member", "admin", "owner"} {
			err := requester{t: t, db: db, who: who, path: "/chats"}.do("GET", func(tx pgx.Tx) error {
				rows, err := tx.Query(t.Context(), `
					select g, iam.may_enter_group(g, $2, false), g = any (iam.group_ids($2))
					from unnest($1::bigint[]) g`, groups, role)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var gid int64
					var fast, full bool
					if err := rows.Scan(&gid, &fast, &full); err != nil {
						return err
					}
					checked++
					if full {
						yes++
					}
					if fast != full {
						t.Errorf("%s, group %d, role %s: may_enter_group = %v, group_ids says %v", who.name, gid, role, fast, full)
					}
				}
				return rows.Err()
			})
			noError(t, err)
		}
	}
	// Both answers occur, so agreement is not vacuous.
	if yes == 0 || yes == checked {
		t.Fatalf("%d of %d cases were yes: the cast does not exercise both answers", yes, checked)
	}
}

// TestTokenGroups: SPEC §11 "The groups block": a group whose token_name is
// in the token's groups claim counts the bearer as a member (groups.iam:
// token claim 'groups' as member), without a membership row, and only for
// rows: the token does not let her manage the group.
func TestTokenGroups(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db).in(t)
	path := fmt.Sprintf("/team-a-%d", c.team) // unique per crew: token_name is unique
	db.exec(t, "update iam.groups set token_name = $1 where id = $2", path, c.team)
	c.seed(todos)
	c.seed(chats)
	carolInTeamA := withGroups(c.carol, []string{"/other", path})

	for _, tbl := range groupTables {
		t.Run("carol with the claim sees team's "+tbl.name, func(t *testing.T) {
			c := c.in(t)
			got, err := c.ids(carolInTeamA, tbl, "GET", "select id from {table} order by id")
			noError(t, err)
			if !slices.Equal(got, []int64{2, 3}) {
				t.Errorf("carol sees %v, want team's rows [2 3]", got)
			}
		})
	}
	t.Run("carol with the claim posts into team's chat room", func(t *testing.T) {
		c := c.in(t)
		n, err := c.affected(carolInTeamA, chats, "POST", "insert into {table} ({text}, group_id) values ('hi, carol here', {team}) returning id")
		noError(t, err)
		if n != 1 {
			t.Errorf("%d rows inserted, want 1", n)
		}
		rows := c.rows(chats)
		if last := rows[len(rows)-1]; last.Owner != "carol" || last.Group != "team" {
			t.Errorf("carol's message is %+v, want it owned by carol, in team", last)
		}
		c.seed(chats)
	})
	t.Run("carol with the claim is listed in GET /groups as a member of team", func(t *testing.T) {
		c := c.in(t)
		want := []myGroup{{Name: "team", MyRole: "member"}}
		if diff := cmp.Diff(want, c.myGroups(carolInTeamA)); diff != "" {
			t.Errorf("GET /groups (-want +got):\n%s", diff)
		}
	})
	for _, v := range []struct {
		name string
		who  person
	}{
		{"carol without the claim", c.carol},
		{"carol with a claim naming other groups", withGroups(c.carol, []string{"/team-b", path + "/sub"})},
		{"carol with a claim that is not a list", withGroups(c.carol, path)},
	} {
		t.Run(v.name+" sees nothing and cannot post", func(t *testing.T) {
			c := c.in(t)
			for _, tbl := range groupTables {
				got, err := c.ids(v.who, tbl, "GET", "select id from {table} order by id")
				noError(t, err)
				if len(got) != 0 {
					t.Errorf("sees %s %v, want none", tbl.name, got)
				}
			}
			seed := c.rows(chats)
			before := snapshot(t, db)
			_, err := c.affected(v.who, chats, "POST", "insert into {table} ({text}, group_id) values ('let me in', {team})")
			wantError(t, err, notInGroup)
			c.wantRowsOf(t, chats, seed)
			wantUnchanged(t, db, before)
		})
	}
	manage := []struct {
		name string
		fn   string
		args []any
		want outcome
	}{
		{"add herself as a member", "add_group_member", []any{"group_id", c.team, "user_id", c.carolID}, adminsOnly},
		{"add someone else", "add_group_member", []any{"group_id", c.team, "user_id", c.ottoID}, adminsOnly},
		{"remove a member", "remove_group_member", []any{"group_id", c.team, "user_id", c.miaID}, adminsOnly},
		{"change a role", "set_group_member_role", []any{"group_id", c.team, "user_id", c.miaID, "role", "admin"}, adminsOnly},
		{"delete the group", "delete_group", []any{"group_id", c.team}, ownersOnly},
		// She sees the group (it is no secret to her), but has no membership to leave: 409.
		{"leave the group (she has no membership row)", "leave_group", []any{"group_id", c.team}, fails("PT409", "through your token's groups")},
	}
	for _, m := range manage {
		t.Run("carol with the claim cannot "+m.name, func(t *testing.T) {
			before := snapshot(t, db)
			wantError(t, rpc(t, db, carolInTeamA, m.fn, m.args...), m.want)
			wantUnchanged(t, db, before)
		})
	}
}

// TestDeleteGroup: SPEC §11. Only owners delete a group; its memberships go
// with it, the chat messages in it (group column required: on delete
// cascade) are deleted, and its todos go back to their owners only.
func TestDeleteGroup(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db).in(t)
	todoSeed := c.seed(todos)
	chatSeed := c.seed(chats)
	// One more chat message of alice's, in side: deleting team must not touch it.
	_, err := c.affected(c.alice, chats, "POST", "insert into {table} ({text}, group_id) values ('in side', {side})")
	noError(t, err)
	chatSeed = append(chatSeed, grow{ID: 5, Text: "in side", Owner: "alice", Group: "side"})
	c.wantRowsOf(t, chats, chatSeed)

	for _, who := range []person{c.adam, c.mia, c.otto, c.alice} {
		t.Run(who.name+" cannot delete team", func(t *testing.T) {
			c := c.in(t)
			before := snapshot(t, db)
			want := ownersOnly
			if who.name == "otto" { // not in team: as if it did not exist
				want = notInIt
			}
			wantError(t, rpc(t, db, who, "delete_group", "group_id", c.team), want)
			wantUnchanged(t, db, before)
			c.wantRowsOf(t, todos, todoSeed)
			c.wantRowsOf(t, chats, chatSeed)
		})
	}

	noError(t, rpc(t, db, c.olivia, "delete_group", "group_id", c.team))

	t.Run("the group and its memberships are gone", func(t *testing.T) {
		c := c.in(t)
		if n := scalar[int](t, db, "select count(*) from iam.groups where id = $1", c.team); n != 0 {
			t.Errorf("iam.groups still holds team")
		}
		if got := c.groupMembers(c.team); len(got) != 0 {
			t.Errorf("iam.group_members still holds %v", got)
		}
		for _, who := range []person{c.olivia, c.adam, c.mia, c.alice} {
			if got := c.myGroups(who); slices.ContainsFunc(got, func(g myGroup) bool { return g.Name == "team" }) {
				t.Errorf("GET /groups as %s still lists team: %v", who.name, got)
			}
		}
	})
	t.Run("its chat messages are deleted with it, other rooms' are not", func(t *testing.T) {
		c := c.in(t)
		c.wantRowsOf(t, chats, []grow{chatSeed[0], chatSeed[3], chatSeed[4]})
	})
	t.Run("its todos are back to their owners only", func(t *testing.T) {
		c := c.in(t)
		want := slices.Clone(todoSeed)
		want[1].Group, want[2].Group = "", ""
		c.wantRowsOf(t, todos, want)
		for _, v := range []struct {
			who  person
			want []int64
		}{{c.alice, []int64{1, 2}}, {c.mia, []int64{3}}, {c.olivia, nil}, {c.adam, nil}, {c.otto, []int64{4}}} {
			got, err := c.ids(v.who, todos, "GET", "select id from {table} order by id")
			noError(t, err)
			if diff := cmp.Diff(v.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s's todos (-want +got):\n%s", v.who.name, diff)
			}
		}
	})
	t.Run("the owners still change their todos", func(t *testing.T) {
		c := c.in(t)
		n, err := c.affected(c.mia, todos, "PATCH", "update {table} set {text} = 'mine again' where id = 3")
		noError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
	})
}

// myGroup is a row of GET /groups, without the id and timestamp.
type myGroup struct {
	Name, MyRole string
}

// myGroups is GET /groups?order=name as who.
func (c *crew) myGroups(who person) []myGroup {
	c.t.Helper()
	var got []myGroup
	err := c.as(who, "/groups").do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(c.t.Context(), "select name, my_role from app.groups order by name")
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[myGroup])
		return err
	})
	noError(c.t, err)
	return got
}

// groupMembersAs is GET /group_members (?group_id=eq.gid unless gid is 0) as who.
func (c *crew) groupMembersAs(who person, gid int64) []membership {
	c.t.Helper()
	var got []membership
	err := c.as(who, "/group_members").do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(c.t.Context(),
			"select group_id::text, user_id, role from app.group_members where $1::bigint = 0 or group_id = $1::bigint order by group_id, user_id", gid)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[membership])
		return err
	})
	noError(c.t, err)
	for i := range got {
		got[i].Group, got[i].User = c.name(got[i].Group), c.name(got[i].User)
	}
	return got
}

// TestGroupViews: GET /groups lists the caller's groups with their role,
// GET /group_members the members of those groups; nothing of anyone
// else's, and asking for a group one is not in returns [] (no error, which
// would tell outsiders which group ids exist).
func TestGroupViews(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db).in(t)
	g := func(name, role string) myGroup { return myGroup{Name: name, MyRole: role} }
	for _, v := range []struct {
		who  person
		want []myGroup
	}{
		{c.alice, []myGroup{g("alice's room", "owner"), g("side", "owner"), g("team", "member")}},
		{c.olivia, []myGroup{g("side", "member"), g("team", "owner")}},
		{c.adam, []myGroup{g("side", "member"), g("team", "admin")}},
		{c.mia, []myGroup{g("side", "member"), g("team", "member")}},
		{c.otto, []myGroup{g("otto's club", "owner")}},
		{c.carol, nil},
	} {
		t.Run("GET /groups as "+v.who.name, func(t *testing.T) {
			c := c.in(t)
			if diff := cmp.Diff(v.want, c.myGroups(v.who), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	m := func(group, user, role string) membership { return membership{Group: group, User: user, Role: role} }
	byName := cmpopts.SortSlices(func(a, b membership) bool { return a.Group+a.User < b.Group+b.User })
	team := []membership{m("team", "adam", "admin"), m("team", "alice", "member"), m("team", "mia", "member"), m("team", "olivia", "owner")}
	side := []membership{m("side", "adam", "member"), m("side", "alice", "owner"), m("side", "mia", "member"), m("side", "olivia", "member")}
	for _, v := range []struct {
		name string
		who  person
		gid  int64
		want []membership
	}{
		{"mia sees the members of team and side", c.mia, 0, append(slices.Clone(team), side...)},
		{"alice sees the members of team, side and her room", c.alice, 0, append(append(slices.Clone(team), side...), m("alice's room", "alice", "owner"))},
		{"otto sees only his club", c.otto, 0, []membership{m("otto's club", "otto", "owner")}},
		{"mia asks for team's members", c.mia, c.team, team},
		{"otto asks for team's members: [] (no error)", c.otto, c.team, nil},
		{"mia asks for otto's club's members: [] (no error)", c.mia, c.club, nil},
		{"otto asks for a group that does not exist: [] as well", c.otto, 9000000000000000001, nil},
	} {
		t.Run("GET /group_members: "+v.name, func(t *testing.T) {
			c := c.in(t)
			if diff := cmp.Diff(v.want, c.groupMembersAs(v.who, v.gid), byName, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("GET /groups?id=eq.<team> as otto: [] (no error)", func(t *testing.T) {
		c := c.in(t)
		var n int
		err := c.as(c.otto, "/groups").do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "select count(*) from app.groups where id = $1", c.team).Scan(&n)
		})
		noError(t, err)
		if n != 0 {
			t.Errorf("otto sees %d rows of team, want 0", n)
		}
	})
	for _, path := range []string{"/groups", "/group_members"} {
		t.Run("GET "+path+" without a JWT: 42501 (PostgREST 401)", func(t *testing.T) {
			c := c.in(t)
			err := c.as(anonymous, path).do("GET", func(tx pgx.Tx) error {
				_, err := tx.Exec(t.Context(), "select * from app"+strings.ReplaceAll(path, "/", "."))
				return err
			})
			wantError(t, err, denied)
		})
	}
}

// ---------------------------------------------------------------------------
// Plans.
// ---------------------------------------------------------------------------

// TestGroupQueriesUseTheOwnerAndGroupIndexes: with 300,000 todos of 2,000
// users, 300 groups of about 10 members and 10% of the todos in a group,
// the list and the count of a user in several groups read the owner and
// group indexes (a BitmapOr), never every row, with the user id and the
// user's groups computed once each (two InitPlans).
func TestGroupQueriesUseTheOwnerAndGroupIndexes(t *testing.T) {
	db := newDatabase(t, "groupplans", "schema.sql")
	script, err := buildScript(".")
	noError(t, err)
	_, err = applyScript(t.Context(), db.server, "groupplans", script)
	noError(t, err)

	// User k (0..1999) is 00000000-0000-4000-8000-<k as 12 digits>. Group g
	// (1..300) has 10 members: users (g + 200 j) % 2000 for j = 0..9, the
	// first its owner; user 1 is also in groups 50, 100 and 150, so in 5
	// groups. Todo i is user (i % 2000)'s; every 10th is in group
	// (i / 10) % 300 + 1. This is a load of 3,000 memberships for the
	// planner, not a test of the API: it writes the tables directly, and
	// skips the guard trigger (replica mode) to load fast.
	db.exec(t, planLoad)
	user1 := keycloakUser("user1", "00000000-0000-4000-8000-000000000001")
	groups := scalar[[]int64](t, db, "select array_agg(group_id order by group_id) from iam.group_members where user_id = $1", id(user1))
	if len(groups) < 3 {
		t.Fatalf("user1 is in groups %v, want several", groups)
	}
	want := scalar[int64](t, db, "select count(*) from app.todos where owner_id = $1 or group_id = any($2)", id(user1), groups)

	var count int64
	err = requester{t: t, db: db, who: user1, path: "/todos"}.do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&count)
	})
	noError(t, err)
	if count != want {
		t.Fatalf("user1 counts %d todos, want %d (own, and of groups %v)", count, want, groups)
	}
	t.Logf("user1 is in groups %v and sees %d of 300000 todos", groups, count)

	ownerAndGroup := []string{"todos_owner_id_id_iam_idx", "todos_group_id_id_iam_idx"}
	const list = "select * from app.todos order by id desc limit 50"
	const countAll = "select count(*) from app.todos"

	t.Run("the count (default settings) is a BitmapOr of the owner and group indexes, the user id and groups computed once", func(t *testing.T) {
		plan, text := explainWith(t, db, user1, "", countAll)
		t.Logf("EXPLAIN ANALYZE %s:\n%s", countAll, text)
		if problems := planProblems(plan, 2, ownerAndGroup...); len(problems) > 0 {
			t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
		}
		if !contains(plan.Nodes, "BitmapOr") {
			t.Errorf("plan %+v: no BitmapOr", plan)
		}
	})
	t.Run("the list (default settings) is a BitmapOr of the owner and group indexes plus a top-N sort, not a walk of the primary key", func(t *testing.T) {
		// The planner cannot see the InitPlans' values; the generated
		// `and group_id is not null` keeps its estimate near a typical
		// caller's rows (SPEC §11), so it reads the two indexes.
		plan, text := explainWith(t, db, user1, "", list)
		t.Logf("EXPLAIN ANALYZE %s (default settings):\n%s", list, text)
		if problems := planProblems(plan, 2, ownerAndGroup...); len(problems) > 0 {
			t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
		}
		if !contains(plan.Nodes, "BitmapOr") {
			t.Errorf("plan %+v: no BitmapOr", plan)
		}
		if contains(plan.Indexes, "todos_pkey") {
			t.Errorf("plan %+v walks the primary key", plan)
		}
	})
}

// explainWith returns the shape of EXPLAIN (FORMAT JSON) for sql, and the
// text of EXPLAIN (ANALYZE, BUFFERS), run as who in a GET request (READ
// ONLY) after setting (e.g. "set local random_page_cost = 1.1"; "" for
// none).
func explainWith(t *testing.T, db *database, who person, setting, sql string) (planShape, string) {
	t.Helper()
	var doc []byte
	var text []string
	err := requester{t: t, db: db, who: who, path: "/todos"}.do("GET", func(tx pgx.Tx) error {
		if setting != "" {
			if _, err := tx.Exec(t.Context(), setting); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(t.Context(), "explain (format json) "+sql).Scan(&doc); err != nil {
			return err
		}
		rows, err := tx.Query(t.Context(), "explain (analyze, buffers) "+sql)
		if err != nil {
			return err
		}
		text, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	noError(t, err)
	plan, err := walkPlan(doc)
	noError(t, err)
	return plan, strings.Join(text, "\n")
}

// planLoad is the data of the plan checks (groups_test.go, and on a
// standby, standby_test.go): 300 groups of 10 in 3,000 memberships,
// 300,000 todos of 2,000 users, every 10th in a group; user 1 is in 5
// groups. It writes the tables directly, skipping the row guard (replica
// mode), to load fast.
const planLoad = `
		create function pg_temp.uid(k int) returns text language sql immutable
		    as $$ select format('00000000-0000-4000-8000-%s', lpad(k::text, 12, '0')) $$;
		insert into iam.groups (id, name, created_by)
		select g, 'group ' || g, pg_temp.uid(g % 2000) from generate_series(1, 300) g;
		insert into iam.group_members (group_id, user_id, role, added_by)
		select g, pg_temp.uid((g + 200 * j) % 2000), case j when 0 then 'owner' else 'member' end, pg_temp.uid(g % 2000)
		from generate_series(1, 300) g, generate_series(0, 9) j;
		insert into iam.group_members (group_id, user_id, role)
		select g, pg_temp.uid(1), 'member' from unnest(array[50, 100, 150]) g
		on conflict do nothing;
		set session_replication_role = replica;
		insert into app.todos (title, done, owner_id, group_id)
		select 'todo ' || i, i % 3 = 0, pg_temp.uid(i % 2000)::uuid,
		       case when i % 10 = 0 then (i / 10) % 300 + 1 end
		from generate_series(1, 300000) i;
		reset session_replication_role;
		analyze app.todos;
		analyze iam.groups;
		analyze iam.group_members;`
