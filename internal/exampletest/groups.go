package exampletest

// The groups database and the crews of the group tests: the people around
// one group, the example's tables seeded as the superuser, and the outcomes
// SPEC §9 and §11 say the runtime answers.

import (
	"errors"
	"fmt"
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

// The groups database: policies/schema.sql plus the build of policies/,
// shared by the group tests. Each test makes its own crew (fresh users,
// fresh groups), so no test sees another's memberships.
var groupsExample struct {
	once sync.Once
	db   *Database
	err  error
}

// GroupsDB is the groups database, made on first use.
func GroupsDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	groupsExample.once.Do(func() {
		var script string
		if groupsExample.db, groupsExample.err = CreateDatabase(s, "groups", "schema.sql"); groupsExample.err != nil {
			return
		}
		if script, groupsExample.err = BuildScript(Dir); groupsExample.err != nil {
			return
		}
		_, groupsExample.err = ApplyScript(t.Context(), s, "groups", script)
	})
	if groupsExample.err != nil {
		t.Fatalf("setting up the groups database: %v", groupsExample.err)
	}
	return groupsExample.db
}

// Crew is the cast of one test, with ids no other crew uses:
//
//	team          olivia (owner, created it), adam (admin), mia (member), alice (member)
//	side          alice (owner, created it), olivia, adam, mia (members)
//	alice's room  alice alone (owner): chat messages only she can see
//	otto's club   otto alone (owner)
type Crew struct {
	T      *testing.T
	DB     *Database
	Alice  Person // owns the rows under test; a plain member of team
	Olivia Person // team's owner
	Adam   Person // team's admin
	Mia    Person // team's plain member
	Otto   Person // an outsider: in none of alice's groups
	Carol  Person // in no group (the token group tests give her a claim)

	AliceID, OliviaID, AdamID, MiaID, OttoID, CarolID string

	Team, Side, Room, Club int64
	names                  map[string]string // user id or group id (as text) -> name
}

var crews struct {
	mu sync.Mutex
	n  int
}

func NewCrew(t *testing.T, db *Database) *Crew {
	t.Helper()
	crews.mu.Lock()
	crews.n++
	n := crews.n
	crews.mu.Unlock()
	uid := func(k int) string { return fmt.Sprintf("%08d-0000-4000-8000-%012d", n, k) }
	c := &Crew{T: t, DB: db, names: map[string]string{}}
	c.AliceID, c.OliviaID, c.AdamID, c.MiaID, c.OttoID, c.CarolID = uid(1), uid(2), uid(3), uid(4), uid(5), uid(6)
	for _, p := range []struct {
		p        *Person
		name, id string
	}{
		{&c.Alice, "alice", c.AliceID}, {&c.Olivia, "olivia", c.OliviaID}, {&c.Adam, "adam", c.AdamID},
		{&c.Mia, "mia", c.MiaID}, {&c.Otto, "otto", c.OttoID}, {&c.Carol, "carol", c.CarolID},
	} {
		*p.p = KeycloakUser(p.name, p.id)
		c.names[p.id] = p.name
	}

	c.Team = CreateGroup(t, db, c.Olivia, "team")
	AddMember(t, db, c.Olivia, c.Team, c.AdamID, "admin")
	AddMember(t, db, c.Olivia, c.Team, c.MiaID, "member")
	AddMember(t, db, c.Adam, c.Team, c.AliceID, "") // an admin adds a member; the role defaults to member
	c.Side = CreateGroup(t, db, c.Alice, "side")
	for _, uid := range []string{c.OliviaID, c.AdamID, c.MiaID} {
		AddMember(t, db, c.Alice, c.Side, uid, "member")
	}
	c.Room = CreateGroup(t, db, c.Alice, "alice's room")
	c.Club = CreateGroup(t, db, c.Otto, "otto's club")
	for gid, name := range map[int64]string{c.Team: "team", c.Side: "side", c.Room: "alice's room", c.Club: "otto's club"} {
		c.names[strconv.FormatInt(gid, 10)] = name
	}
	return c
}

// In is the crew, for use in the (sub)test t.
func (c *Crew) In(t *testing.T) *Crew {
	cp := *c
	cp.T = t
	return &cp
}

// Name shows a user id or group id by name.
func (c *Crew) Name(id string) string {
	if n, ok := c.names[id]; ok {
		return n
	}
	return id
}

// As makes requests for who on path.
func (c *Crew) As(who Person, path string) Requester {
	return Requester{T: c.T, DB: c.DB, Who: who, Path: path}
}

// Membership is one row of iam.group_members, by name.
type Membership struct {
	Group, User, Role string
}

// Memberships is iam.group_members and iam.groups as the superuser sees
// them: every membership of every group, and every group with its token
// name, so a refused request can be shown to have changed nothing.
func (c *Crew) Memberships() []string {
	c.T.Helper()
	rows, err := c.DB.SU.Query(c.T.Context(), `
		select format('group %s %s (token %s, by %s): %s is %s', g.id, g.name, coalesce(g.token_name, '-'), g.created_by,
		              coalesce(m.user_id, '-'), coalesce(m.role, '-'))
		from iam.groups g left join iam.group_members m on m.group_id = g.id
		order by g.id, m.user_id`)
	NoError(c.T, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	NoError(c.T, err)
	return got
}

// GroupMembers is iam.group_members of one group as the superuser sees it.
func (c *Crew) GroupMembers(gid int64) []Membership {
	c.T.Helper()
	rows, err := c.DB.SU.Query(c.T.Context(),
		"select group_id::text, user_id, role from iam.group_members where group_id = $1 order by user_id", gid)
	NoError(c.T, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Membership])
	NoError(c.T, err)
	for i := range got {
		got[i].Group, got[i].User = c.Name(got[i].Group), c.Name(got[i].User)
	}
	return got
}

// ---------------------------------------------------------------------------
// The tables, seeded as the superuser.
// ---------------------------------------------------------------------------

type GroupTable struct {
	Name     string // qualified table name
	Path     string // PostgREST path
	Text     string // its text column
	Required bool   // group column required: every row is in a group
}

var (
	Todos       = GroupTable{Name: "app.todos", Path: "/todos", Text: "title"}
	Chats       = GroupTable{Name: "app.chats", Path: "/chats", Text: "body", Required: true}
	GroupTables = []GroupTable{Todos, Chats}
)

// GroupRow is a row as these tests compare it: owner and group by name.
type GroupRow struct {
	ID    int64
	Text  string
	Owner string
	Group string // "" for none
}

func (c *Crew) Expand(tbl GroupTable, sql string) string {
	return strings.NewReplacer(
		"{table}", tbl.Name,
		"{text}", tbl.Text,
		"{team}", strconv.FormatInt(c.Team, 10),
		"{side}", strconv.FormatInt(c.Side, 10),
		"{room}", strconv.FormatInt(c.Room, 10),
		"{club}", strconv.FormatInt(c.Club, 10),
	).Replace(sql)
}

// Seed empties tbl and fills it as the superuser:
//
//	1  alice's own        alice  no group (todos) / alice's room (chats)
//	2  alice's, in team   alice  team          <- the row under test
//	3  mia's, in team     mia    team
//	4  otto's, in club    otto   otto's club
func (c *Crew) Seed(tbl GroupTable) []GroupRow {
	c.T.Helper()
	var own any // a todo of alice's own is in no group; a chat message in her room
	if tbl.Required {
		own = c.Room
	}
	c.DB.Exec(c.T, c.Expand(tbl, "truncate {table} restart identity cascade"))
	c.DB.Exec(c.T, c.Expand(tbl, `insert into {table} ({text}, owner_id, group_id) values
		('alice''s own', $1, $5), ('alice''s, in team', $1, $3), ('mia''s, in team', $2, $3), ('otto''s, in club', $4, $6)`),
		c.AliceID, c.MiaID, c.Team, c.OttoID, own, c.Club)
	return c.Rows(tbl)
}

// Rows is tbl as the superuser sees it.
func (c *Crew) Rows(tbl GroupTable) []GroupRow {
	c.T.Helper()
	rows, err := c.DB.SU.Query(c.T.Context(), c.Expand(tbl,
		"select id, {text}, owner_id::text, coalesce(group_id::text, '') from {table} order by id"))
	NoError(c.T, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[GroupRow])
	NoError(c.T, err)
	for i := range got {
		got[i].Owner, got[i].Group = c.Name(got[i].Owner), c.Name(got[i].Group)
	}
	return got
}

// WantRowsOf checks tbl as the superuser sees it.
func (c *Crew) WantRowsOf(t *testing.T, tbl GroupTable, want []GroupRow) {
	t.Helper()
	if diff := cmp.Diff(want, c.Rows(tbl), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s as the superuser sees it (-want +got):\n%s", tbl.Name, diff)
	}
}

// IDs runs a statement returning ids as who, in the transaction of method.
func (c *Crew) IDs(who Person, tbl GroupTable, method, sql string, args ...any) ([]int64, error) {
	c.T.Helper()
	var got []int64
	err := c.As(who, tbl.Path).Do(method, func(tx pgx.Tx) error {
		rows, err := tx.Query(c.T.Context(), c.Expand(tbl, sql), args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return got, err
}

// Affected runs a write as who and returns the number of rows it touched.
func (c *Crew) Affected(who Person, tbl GroupTable, method, sql string, args ...any) (int64, error) {
	c.T.Helper()
	var n int64
	err := c.As(who, tbl.Path).Do(method, func(tx pgx.Tx) error {
		tag, err := tx.Exec(c.T.Context(), c.Expand(tbl, sql), args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// ---------------------------------------------------------------------------
// Outcomes.
// ---------------------------------------------------------------------------

// Outcome is what one request is expected to get: the rows it sees (a
// read), the number of rows it changes (a write), or an error.
type Outcome struct {
	Read bool    // a read: ids is what it sees
	IDs  []int64 // a read: the ids seen
	N    int64   // a write: rows affected
	Code string  // SQLSTATE when refused
	Msg  string  // a fragment of the error message
}

// Sees, Affects and Fails are the outcomes of a read that sees ids, a
// write that changes n rows, and a refusal.
func Sees(ids ...int64) Outcome      { return Outcome{Read: true, IDs: ids} }
func Affects(n int64) Outcome        { return Outcome{N: n} }
func Fails(code, msg string) Outcome { return Outcome{Code: code, Msg: msg} }

func (o Outcome) String() string {
	switch {
	case o.Code != "":
		return fmt.Sprintf("SQLSTATE %s %q", o.Code, o.Msg)
	case o.Read:
		return fmt.Sprintf("sees %v", o.IDs)
	default:
		return fmt.Sprintf("%d rows", o.N)
	}
}

// Changes says whether a write with this outcome changes the table.
func (o Outcome) Changes() bool { return o.Code == "" && o.N > 0 }

// WantError checks err against a refusal (or no error for a success).
func WantError(t *testing.T, err error, want Outcome) bool {
	t.Helper()
	if want.Code == "" {
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
	case pgErr.Code != want.Code || !strings.Contains(pgErr.Message, want.Msg):
		t.Errorf("got SQLSTATE %s %q, want %s", pgErr.Code, pgErr.Message, want)
	}
	return false
}

// Refusals, by what SPEC §9 and §11 say the runtime answers.
var (
	Denied         = Fails("42501", "permission denied")                     // anonymous: no privilege at all (HTTP 401)
	NotInGroup     = Fails("42501", "you cannot put rows of")                // the row guard: no create role in the group
	OnlyOwnerMoves = Fails("42501", "only the owner of a row")               // the row guard: a member moves a row
	OwnerFixed     = Fails("42501", "cannot be changed")                     // the row guard: owner_id is fixed
	NeedsGroup     = Fails("23502", "belongs to a group")                    // a required group column left empty
	NoSuchGroup    = Fails("42501", "you cannot put rows of")                // SPEC §11: a group that does not exist looks like one you are not in
	LastOwner      = Fails("23514", "must keep at least one owner")          // group API
	AdminsOnly     = Fails("42501", "only owners and admins of group")       // group API
	OwnersOnly     = Fails("42501", "only owners of group")                  // group API
	NoOwnerRemoval = Fails("42501", "admins cannot remove owners")           // group API
	NoRowSeen      = Affects(0)                                              // RLS hides the row: the write reaches nothing
	OneRow         = Affects(1)                                              // the write reaches the row
	NoCaller       = Fails("28000", "groups need a signed-in user")          // group API without a user id
	NotMember      = Fails("PT404", "is not a member of group")              // group API: the user named is not in the group (HTTP 404)
	NotInIt        = Fails("PT404", "you are not a member of group")         // group API: the caller is not in the group, or it does not exist (HTTP 404)
	BadArgument    = func(msg string) Outcome { return Fails("22023", msg) } // group API
)

// MyGroup is a row of GET /groups, without the id and timestamp.
type MyGroup struct {
	Name, MyRole string
}

// MyGroups is GET /groups?order=name as who.
func (c *Crew) MyGroups(who Person) []MyGroup {
	c.T.Helper()
	var got []MyGroup
	err := c.As(who, "/groups").Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(c.T.Context(), "select name, my_role from app.groups order by name")
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[MyGroup])
		return err
	})
	NoError(c.T, err)
	return got
}

// GroupMembersAs is GET /group_members (?group_id=eq.gid unless gid is 0) as who.
func (c *Crew) GroupMembersAs(who Person, gid int64) []Membership {
	c.T.Helper()
	var got []Membership
	err := c.As(who, "/group_members").Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(c.T.Context(),
			"select group_id::text, user_id, role from app.group_members where $1::bigint = 0 or group_id = $1::bigint order by group_id, user_id", gid)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Membership])
		return err
	})
	NoError(c.T, err)
	for i := range got {
		got[i].Group, got[i].User = c.Name(got[i].Group), c.Name(got[i].User)
	}
	return got
}
