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
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// ---------------------------------------------------------------------------
// The matrix.
// ---------------------------------------------------------------------------

// The six roles of the matrix, in the order of its columns.
var matrixRoles = [6]string{"row owner", "group owner", "group admin", "group member", "outsider", "anonymous"}

func byRole(c *Crew) [6]Person {
	return [6]Person{c.Alice, c.Olivia, c.Adam, c.Mia, c.Otto, Anonymous}
}

// groupOp is one request of the matrix on row 2 (alice's, in team).
type groupOp struct {
	name  string
	read  bool
	sql   func(c *Crew, actor Person) string
	after func(c *Crew, seed []GroupRow, actor Person) []GroupRow // the table when the write succeeds
}

func constSQL(sql string) func(*Crew, Person) string {
	return func(*Crew, Person) string { return sql }
}

// withRow2 returns seed with row 2 changed by f.
func withRow2(seed []GroupRow, f func(*GroupRow)) []GroupRow {
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
		after: func(c *Crew, seed []GroupRow, actor Person) []GroupRow {
			return append(slices.Clone(seed), GroupRow{ID: 5, Text: "new", Owner: actor.Name})
		}},
	{name: "insert into a group", sql: constSQL("insert into {table} ({text}, group_id) values ('new', {team})"),
		after: func(c *Crew, seed []GroupRow, actor Person) []GroupRow {
			return append(slices.Clone(seed), GroupRow{ID: 5, Text: "new", Owner: actor.Name, Group: "team"})
		}},
	{name: "update", sql: constSQL("update {table} set {text} = 'edited' where id = 2"),
		after: func(c *Crew, seed []GroupRow, _ Person) []GroupRow {
			return withRow2(seed, func(r *GroupRow) { r.Text = "edited" })
		}},
	{name: "move to another group", sql: constSQL("update {table} set group_id = {side} where id = 2"),
		after: func(c *Crew, seed []GroupRow, _ Person) []GroupRow {
			return withRow2(seed, func(r *GroupRow) { r.Group = "side" })
		}},
	{name: "take out of its group", sql: constSQL("update {table} set group_id = null where id = 2"),
		after: func(c *Crew, seed []GroupRow, _ Person) []GroupRow {
			return withRow2(seed, func(r *GroupRow) { r.Group = "" })
		}},
	{name: "change owner", // alice gives her row to olivia; anyone else takes it
		sql: func(c *Crew, actor Person) string {
			to := UserID(actor)
			if to == c.AliceID || to == "" {
				to = c.OliviaID
			}
			return fmt.Sprintf("update {table} set owner_id = '%s' where id = 2", to)
		},
		after: func(c *Crew, seed []GroupRow, actor Person) []GroupRow {
			return withRow2(seed, func(r *GroupRow) { r.Owner = actor.Name })
		}},
	{name: "delete", sql: constSQL("delete from {table} where id = 2"),
		after: func(c *Crew, seed []GroupRow, _ Person) []GroupRow {
			return slices.DeleteFunc(slices.Clone(seed), func(r GroupRow) bool { return r.ID == 2 })
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
var groupMatrix = map[string]map[string][6]Outcome{
	"app.todos": {
		//                        row owner       group owner     group admin     group member    outsider        anonymous
		"list":                  {Sees(1, 2, 3), Sees(2, 3), Sees(2, 3), Sees(2, 3), Sees(4), Denied},
		"read one":              {Sees(2), Sees(2), Sees(2), Sees(2), Sees(), Denied},
		"insert":                {OneRow, OneRow, OneRow, OneRow, OneRow, Denied},
		"insert into a group":   {OneRow, OneRow, OneRow, OneRow, NotInGroup, Denied},
		"update":                {OneRow, OneRow, OneRow, OneRow, NoRowSeen, Denied},
		"move to another group": {OneRow, OnlyOwnerMoves, OnlyOwnerMoves, OnlyOwnerMoves, NoRowSeen, Denied},
		"take out of its group": {OneRow, OnlyOwnerMoves, OnlyOwnerMoves, OnlyOwnerMoves, NoRowSeen, Denied},
		"change owner":          {OwnerFixed, OwnerFixed, OwnerFixed, OwnerFixed, NoRowSeen, Denied},
		"delete":                {OneRow, OneRow, OneRow, NoRowSeen, NoRowSeen, Denied},
	},
	"app.chats": {
		//                        row owner       group owner     group admin     group member    outsider        anonymous
		"list":                  {Sees(1, 2, 3), Sees(2, 3), Sees(2, 3), Sees(2, 3), Sees(4), Denied},
		"read one":              {Sees(2), Sees(2), Sees(2), Sees(2), Sees(), Denied},
		"insert":                {NeedsGroup, NeedsGroup, NeedsGroup, NeedsGroup, NeedsGroup, Denied},
		"insert into a group":   {OneRow, OneRow, OneRow, OneRow, NotInGroup, Denied},
		"update":                {OneRow, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, Denied},
		"move to another group": {OneRow, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, Denied},
		"take out of its group": {NeedsGroup, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, Denied},
		"change owner":          {OwnerFixed, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, Denied},
		"delete":                {OneRow, OneRow, OneRow, NoRowSeen, NoRowSeen, Denied},
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
	runGroupMatrix(t, GroupsDB(t), Anonymous, nil)
}

// runGroupMatrix runs the group matrix on db, the anonymous column as anon
// with the outcomes of anonWants where it names a table and request (the
// single-role mode's, single_role_test.go).
func runGroupMatrix(t *testing.T, db *Database, anon Person, anonWants map[string]map[string]Outcome) {
	c := NewCrew(t, db)
	cells := 0
	for _, tbl := range GroupTables {
		t.Run(tbl.Name, func(t *testing.T) {
			for _, op := range groupOps {
				wants, ok := groupMatrix[tbl.Name][op.name]
				if !ok {
					t.Fatalf("no row %q in the matrix of %s", op.name, tbl.Name)
				}
				for i, actor := range byRole(c) {
					want := wants[i]
					if i == len(matrixRoles)-1 {
						actor = anon
						if w, ok := anonWants[tbl.Name][op.name]; ok {
							want = w
						}
					}
					cells++
					t.Run(fmt.Sprintf("%s (%s) %s: %s", matrixRoles[i], actor.Name, op.name, want), func(t *testing.T) {
						c := c.In(t)
						sql := op.sql(c, actor)
						if op.read {
							seed := c.Seed(tbl)
							before := Snapshot(t, db)
							got, err := c.IDs(actor, tbl, "GET", sql)
							if WantError(t, err, want) {
								if diff := cmp.Diff(want.IDs, got, cmpopts.EquateEmpty()); diff != "" {
									t.Errorf("ids seen (-want +got):\n%s", diff)
								}
							}
							c.WantRowsOf(t, tbl, seed)
							WantUnchanged(t, db, before)
							return
						}
						for _, prefer := range []string{"return=representation", "return=minimal"} {
							seed := c.Seed(tbl)
							before := Snapshot(t, db)
							stmt := sql
							if prefer == "return=representation" {
								stmt += " returning id"
							}
							method := map[bool]string{true: "POST", false: "PATCH"}[strings.HasPrefix(stmt, "insert")]
							if strings.HasPrefix(stmt, "delete") {
								method = "DELETE"
							}
							n, err := c.Affected(actor, tbl, method, stmt)
							if WantError(t, err, want) && n != want.N {
								t.Errorf("%s: %d rows affected, want %d", prefer, n, want.N)
							}
							expected := seed
							if want.Changes() {
								expected = op.after(c, seed, actor)
							} else {
								WantUnchanged(t, db, before)
							}
							c.WantRowsOf(t, tbl, expected)
						}
					})
				}
			}
		})
	}
	if want := len(GroupTables) * len(groupOps) * len(matrixRoles); cells != want {
		t.Errorf("ran %d cells, want %d", cells, want)
	}
	t.Logf("group matrix: %d cells (%d tables x %d requests x %d roles)", cells, len(GroupTables), len(groupOps), len(matrixRoles))
}

// ---------------------------------------------------------------------------
// Attacks on rows.
// ---------------------------------------------------------------------------

// TestGroupRowAttacks: putting rows into groups, or taking them, without
// the right to (SPEC §8.7, §11 "Moving rows"). Each is refused, or reaches
// no row, and the table is exactly as seeded afterwards.
func TestGroupRowAttacks(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	const missing = "9000000000000000001" // no such group
	attacks := []struct {
		name   string
		tbl    GroupTable
		who    func(c *Crew) Person
		method string
		sql    string
		want   Outcome
	}{
		{"an outsider shares alice's private todo into his own group", Todos,
			func(c *Crew) Person { return c.Otto }, "PATCH", "update {table} set group_id = {club} where id = 1", NoRowSeen},
		{"a member of team shares alice's private todo into team", Todos,
			func(c *Crew) Person { return c.Mia }, "PATCH", "update {table} set group_id = {team} where id = 1", NoRowSeen},
		{"an outsider moves a todo of team into his own group", Todos,
			func(c *Crew) Person { return c.Otto }, "PATCH", "update {table} set group_id = {club} where id = 2", NoRowSeen},
		{"an outsider lists the todos of a group he is not in", Todos,
			func(c *Crew) Person { return c.Otto }, "GET", "select id from {table} where group_id = {team}", Sees()},
		{"an outsider reads the chat of a room he is not in", Chats,
			func(c *Crew) Person { return c.Otto }, "GET", "select id from {table} where group_id = {team}", Sees()},
		{"alice moves her own todo into a group she is not in", Todos,
			func(c *Crew) Person { return c.Alice }, "PATCH", "update {table} set group_id = {club} where id = 1", NotInGroup},
		{"alice moves her own chat message into a room she is not in", Chats,
			func(c *Crew) Person { return c.Alice }, "PATCH", "update {table} set group_id = {club} where id = 1", NotInGroup},
		{"alice creates a todo in a group she is not in", Todos,
			func(c *Crew) Person { return c.Alice }, "POST", "insert into {table} ({text}, group_id) values ('spam', {club})", NotInGroup},
		{"alice posts a chat message into a room she is not in", Chats,
			func(c *Crew) Person { return c.Alice }, "POST", "insert into {table} ({text}, group_id) values ('spam', {club})", NotInGroup},
		{"a member moves someone else's todo to another group (both hers)", Todos,
			func(c *Crew) Person { return c.Mia }, "PATCH", "update {table} set group_id = {side} where id = 2", OnlyOwnerMoves},
		{"a member moves every todo she can write to another group: one is not hers, so none moves", Todos,
			func(c *Crew) Person { return c.Mia }, "PATCH", "update {table} set group_id = {side}", OnlyOwnerMoves},
		{"an admin takes someone else's todo out of the group", Todos,
			func(c *Crew) Person { return c.Adam }, "PATCH", "update {table} set group_id = null where id = 2", OnlyOwnerMoves},
		{"a member plants a todo in team in alice's name", Todos,
			func(c *Crew) Person { return c.Mia }, "POST", "insert into {table} ({text}, group_id, owner_id) values ('from alice', {team}, '{alice}')",
			Fails("42501", "owner_id must be the caller's own user id")},
		{"a member posts a chat message in alice's name", Chats,
			func(c *Crew) Person { return c.Mia }, "POST", "insert into {table} ({text}, group_id, owner_id) values ('from alice', {team}, '{alice}')",
			Fails("42501", "owner_id must be the caller's own user id")},
		{"an outsider deletes every todo of a group", Todos,
			func(c *Crew) Person { return c.Otto }, "DELETE", "delete from {table} where group_id = {team}", NoRowSeen},
		{"a group owner edits someone else's chat message", Chats,
			func(c *Crew) Person { return c.Olivia }, "PATCH", "update {table} set {text} = 'censored' where id = 2", NoRowSeen},
		// SPEC §11: a group that does not exist is refused like a group one is
		// not in (42501), so that the answer does not tell which ids exist.
		{"alice creates a todo in a group that does not exist", Todos,
			func(c *Crew) Person { return c.Alice }, "POST", "insert into {table} ({text}, group_id) values ('lost', " + missing + ")", NoSuchGroup},
		{"alice posts a chat message into a room that does not exist", Chats,
			func(c *Crew) Person { return c.Alice }, "POST", "insert into {table} ({text}, group_id) values ('lost', " + missing + ")", NoSuchGroup},
		{"alice moves her todo into a group that does not exist", Todos,
			func(c *Crew) Person { return c.Alice }, "PATCH", "update {table} set group_id = " + missing + " where id = 1", NoSuchGroup},
	}
	for _, a := range attacks {
		t.Run(fmt.Sprintf("%s %s: %s", a.tbl.Name, a.name, a.want), func(t *testing.T) {
			c := c.In(t)
			seed := c.Seed(a.tbl)
			before := Snapshot(t, db)
			sql := strings.ReplaceAll(a.sql, "{alice}", c.AliceID)
			if a.method == "GET" {
				got, err := c.IDs(a.who(c), a.tbl, a.method, sql)
				if WantError(t, err, a.want) && len(got) != 0 {
					t.Errorf("saw rows %v, want none", got)
				}
			} else {
				n, err := c.Affected(a.who(c), a.tbl, a.method, sql)
				if WantError(t, err, a.want) && n != a.want.N {
					t.Errorf("%d rows affected, want %d", n, a.want.N)
				}
			}
			c.WantRowsOf(t, a.tbl, seed)
			WantUnchanged(t, db, before)
		})
	}
	t.Run("the foreign key refuses a group that does not exist even to a backend job (superuser)", func(t *testing.T) {
		c := c.In(t)
		seed := c.Seed(Todos)
		before := Snapshot(t, db)
		_, err := db.SU.Exec(t.Context(), "insert into app.todos (title, owner_id, group_id) values ('lost', $1, "+missing+")", c.AliceID)
		WantError(t, err, Fails("23503", "violates foreign key constraint"))
		c.WantRowsOf(t, Todos, seed)
		WantUnchanged(t, db, before)
	})
	t.Run("a member's update that repeats the row's owner and group (a PUT) is an ordinary update", func(t *testing.T) {
		c := c.In(t)
		seed := c.Seed(Todos)
		n, err := c.Affected(c.Mia, Todos, "PATCH", "update {table} set {text} = 'edited', owner_id = $1, group_id = {team} where id = 2", c.AliceID)
		NoError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
		c.WantRowsOf(t, Todos, withRow2(seed, func(r *GroupRow) { r.Text = "edited" }))
	})
	t.Run("the owner moves her own row between groups she is in, and out of the group", func(t *testing.T) {
		c := c.In(t)
		seed := c.Seed(Todos)
		n, err := c.Affected(c.Mia, Todos, "PATCH", "update {table} set group_id = {side} where id = 3")
		NoError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
		n, err = c.Affected(c.Alice, Todos, "PATCH", "update {table} set group_id = null where id = 2")
		NoError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
		want := withRow2(seed, func(r *GroupRow) { r.Group = "" })
		want[2].Group = "side"
		c.WantRowsOf(t, Todos, want)
	})
}

// ---------------------------------------------------------------------------
// Revocation, token groups, deleting a group, the views.
// ---------------------------------------------------------------------------

// TestRevocationIsImmediate: SPEC §8.8. The request after a removal (a new
// transaction, as every PostgREST request is) no longer sees the group's
// rows; a demotion takes the admin's rights at once too.
func TestRevocationIsImmediate(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	c.Seed(Todos)
	c.Seed(Chats)

	visible := func(who Person, tbl GroupTable) []int64 {
		t.Helper()
		got, err := c.IDs(who, tbl, "GET", "select id from {table} order by id")
		NoError(t, err)
		return got
	}
	for _, tbl := range GroupTables {
		if got := visible(c.Mia, tbl); !slices.Equal(got, []int64{2, 3}) {
			t.Fatalf("before the removal, mia sees %s %v, want [2 3]", tbl.Name, got)
		}
	}

	NoError(t, RPC(t, db, c.Olivia, "remove_group_member", "group_id", c.Team, "user_id", c.MiaID))

	for _, tbl := range GroupTables {
		t.Run("mia's next request does not see team's "+tbl.Name, func(t *testing.T) {
			c := c.In(t)
			if got := visible(c.Mia, tbl); !slices.Equal(got, []int64{3}) {
				t.Errorf("mia sees %s %v, want only her own row [3]", tbl.Name, got)
			}
		})
	}
	t.Run("mia can no longer change alice's todo in team", func(t *testing.T) {
		c := c.In(t)
		before := Snapshot(t, db)
		n, err := c.Affected(c.Mia, Todos, "PATCH", "update {table} set {text} = 'too late' where id = 2")
		NoError(t, err)
		if n != 0 {
			t.Errorf("%d rows affected, want 0", n)
		}
		WantUnchanged(t, db, before)
	})
	t.Run("mia can no longer post into team", func(t *testing.T) {
		c := c.In(t)
		before := Snapshot(t, db)
		_, err := c.Affected(c.Mia, Chats, "POST", "insert into {table} ({text}, group_id) values ('still here?', {team})")
		WantError(t, err, NotInGroup)
		WantUnchanged(t, db, before)
	})
	t.Run("mia no longer sees team or its members", func(t *testing.T) {
		c := c.In(t)
		if got := c.MyGroups(c.Mia); slices.ContainsFunc(got, func(g MyGroup) bool { return g.Name == "team" }) {
			t.Errorf("GET /groups as mia lists team: %v", got)
		}
		if got := c.GroupMembersAs(c.Mia, c.Team); len(got) != 0 {
			t.Errorf("GET /group_members?group_id=eq.team as mia = %v, want []", got)
		}
	})
	t.Run("an admin demoted to member can no longer delete the group's rows", func(t *testing.T) {
		c := c.In(t)
		NoError(t, RPC(t, db, c.Olivia, "set_group_member_role", "group_id", c.Team, "user_id", c.AdamID, "role", "member"))
		for _, tbl := range GroupTables {
			before := Snapshot(t, db)
			n, err := c.Affected(c.Adam, tbl, "DELETE", "delete from {table} where id = 2")
			NoError(t, err)
			if n != 0 {
				t.Errorf("adam deleted %d rows of %s, want 0", n, tbl.Name)
			}
			WantUnchanged(t, db, before)
		}
	})
	for _, tbl := range GroupTables {
		if got := c.Rows(tbl); len(got) != 4 {
			t.Errorf("%s holds %v after the refused requests, want the 4 seeded rows", tbl.Name, got)
		}
	}
}

// TestTokenGroups: SPEC §11 "The groups block": a group whose token_name is
// in the token's groups claim counts the bearer as a member (groups.iam:
// token claim 'groups' as member), without a membership row, and only for
// rows: the token does not let her manage the group.
func TestTokenGroups(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	path := fmt.Sprintf("/team-a-%d", c.Team) // unique per crew: token_name is unique
	db.Exec(t, "update iam.groups set token_name = $1 where id = $2", path, c.Team)
	c.Seed(Todos)
	c.Seed(Chats)
	carolInTeamA := WithGroups(c.Carol, []string{"/other", path})

	for _, tbl := range GroupTables {
		t.Run("carol with the claim sees team's "+tbl.Name, func(t *testing.T) {
			c := c.In(t)
			got, err := c.IDs(carolInTeamA, tbl, "GET", "select id from {table} order by id")
			NoError(t, err)
			if !slices.Equal(got, []int64{2, 3}) {
				t.Errorf("carol sees %v, want team's rows [2 3]", got)
			}
		})
	}
	t.Run("carol with the claim posts into team's chat room", func(t *testing.T) {
		c := c.In(t)
		n, err := c.Affected(carolInTeamA, Chats, "POST", "insert into {table} ({text}, group_id) values ('hi, carol here', {team}) returning id")
		NoError(t, err)
		if n != 1 {
			t.Errorf("%d rows inserted, want 1", n)
		}
		rows := c.Rows(Chats)
		if last := rows[len(rows)-1]; last.Owner != "carol" || last.Group != "team" {
			t.Errorf("carol's message is %+v, want it owned by carol, in team", last)
		}
		c.Seed(Chats)
	})
	t.Run("carol with the claim is listed in GET /groups as a member of team", func(t *testing.T) {
		c := c.In(t)
		want := []MyGroup{{Name: "team", MyRole: "member"}}
		if diff := cmp.Diff(want, c.MyGroups(carolInTeamA)); diff != "" {
			t.Errorf("GET /groups (-want +got):\n%s", diff)
		}
	})
	for _, v := range []struct {
		name string
		who  Person
	}{
		{"carol without the claim", c.Carol},
		{"carol with a claim naming other groups", WithGroups(c.Carol, []string{"/team-b", path + "/sub"})},
		{"carol with a claim that is not a list", WithGroups(c.Carol, path)},
	} {
		t.Run(v.name+" sees nothing and cannot post", func(t *testing.T) {
			c := c.In(t)
			for _, tbl := range GroupTables {
				got, err := c.IDs(v.who, tbl, "GET", "select id from {table} order by id")
				NoError(t, err)
				if len(got) != 0 {
					t.Errorf("sees %s %v, want none", tbl.Name, got)
				}
			}
			seed := c.Rows(Chats)
			before := Snapshot(t, db)
			_, err := c.Affected(v.who, Chats, "POST", "insert into {table} ({text}, group_id) values ('let me in', {team})")
			WantError(t, err, NotInGroup)
			c.WantRowsOf(t, Chats, seed)
			WantUnchanged(t, db, before)
		})
	}
	manage := []struct {
		name string
		fn   string
		args []any
		want Outcome
	}{
		{"add herself as a member", "add_group_member", []any{"group_id", c.Team, "user_id", c.CarolID}, AdminsOnly},
		{"add someone else", "add_group_member", []any{"group_id", c.Team, "user_id", c.OttoID}, AdminsOnly},
		{"remove a member", "remove_group_member", []any{"group_id", c.Team, "user_id", c.MiaID}, AdminsOnly},
		{"change a role", "set_group_member_role", []any{"group_id", c.Team, "user_id", c.MiaID, "role", "admin"}, AdminsOnly},
		{"delete the group", "delete_group", []any{"group_id", c.Team}, OwnersOnly},
		// She sees the group (it is no secret to her), but has no membership to leave: 409.
		{"leave the group (she has no membership row)", "leave_group", []any{"group_id", c.Team}, Fails("PT409", "through your token's groups")},
	}
	for _, m := range manage {
		t.Run("carol with the claim cannot "+m.name, func(t *testing.T) {
			before := Snapshot(t, db)
			WantError(t, RPC(t, db, carolInTeamA, m.fn, m.args...), m.want)
			WantUnchanged(t, db, before)
		})
	}
}

// TestDeleteGroup: SPEC §11. Only owners delete a group; its memberships go
// with it, the chat messages in it (group column required: on delete
// cascade) are deleted, and its todos go back to their owners only.
func TestDeleteGroup(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	todoSeed := c.Seed(Todos)
	chatSeed := c.Seed(Chats)
	// One more chat message of alice's, in side: deleting team must not touch it.
	_, err := c.Affected(c.Alice, Chats, "POST", "insert into {table} ({text}, group_id) values ('in side', {side})")
	NoError(t, err)
	chatSeed = append(chatSeed, GroupRow{ID: 5, Text: "in side", Owner: "alice", Group: "side"})
	c.WantRowsOf(t, Chats, chatSeed)

	for _, who := range []Person{c.Adam, c.Mia, c.Otto, c.Alice} {
		t.Run(who.Name+" cannot delete team", func(t *testing.T) {
			c := c.In(t)
			before := Snapshot(t, db)
			want := OwnersOnly
			if who.Name == "otto" { // not in team: as if it did not exist
				want = NotInIt
			}
			WantError(t, RPC(t, db, who, "delete_group", "group_id", c.Team), want)
			WantUnchanged(t, db, before)
			c.WantRowsOf(t, Todos, todoSeed)
			c.WantRowsOf(t, Chats, chatSeed)
		})
	}

	NoError(t, RPC(t, db, c.Olivia, "delete_group", "group_id", c.Team))

	t.Run("the group and its memberships are gone", func(t *testing.T) {
		c := c.In(t)
		if n := Scalar[int](t, db, "select count(*) from iam.groups where id = $1", c.Team); n != 0 {
			t.Errorf("iam.groups still holds team")
		}
		if got := c.GroupMembers(c.Team); len(got) != 0 {
			t.Errorf("iam.group_members still holds %v", got)
		}
		for _, who := range []Person{c.Olivia, c.Adam, c.Mia, c.Alice} {
			if got := c.MyGroups(who); slices.ContainsFunc(got, func(g MyGroup) bool { return g.Name == "team" }) {
				t.Errorf("GET /groups as %s still lists team: %v", who.Name, got)
			}
		}
	})
	t.Run("its chat messages are deleted with it, other rooms' are not", func(t *testing.T) {
		c := c.In(t)
		c.WantRowsOf(t, Chats, []GroupRow{chatSeed[0], chatSeed[3], chatSeed[4]})
	})
	t.Run("its todos are back to their owners only", func(t *testing.T) {
		c := c.In(t)
		want := slices.Clone(todoSeed)
		want[1].Group, want[2].Group = "", ""
		c.WantRowsOf(t, Todos, want)
		for _, v := range []struct {
			who  Person
			want []int64
		}{{c.Alice, []int64{1, 2}}, {c.Mia, []int64{3}}, {c.Olivia, nil}, {c.Adam, nil}, {c.Otto, []int64{4}}} {
			got, err := c.IDs(v.who, Todos, "GET", "select id from {table} order by id")
			NoError(t, err)
			if diff := cmp.Diff(v.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s's todos (-want +got):\n%s", v.who.Name, diff)
			}
		}
	})
	t.Run("the owners still change their todos", func(t *testing.T) {
		c := c.In(t)
		n, err := c.Affected(c.Mia, Todos, "PATCH", "update {table} set {text} = 'mine again' where id = 3")
		NoError(t, err)
		if n != 1 {
			t.Errorf("%d rows affected, want 1", n)
		}
	})
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
	db := NewDatabase(t, "groupplans", "schema.sql")
	script, err := BuildScript(Dir)
	NoError(t, err)
	_, err = ApplyScript(t.Context(), db.Server, "groupplans", script)
	NoError(t, err)

	// User k (0..1999) is 00000000-0000-4000-8000-<k as 12 digits>. Group g
	// (1..300) has 10 members: users (g + 200 j) % 2000 for j = 0..9, the
	// first its owner; user 1 is also in groups 50, 100 and 150, so in 5
	// groups. Todo i is user (i % 2000)'s; every 10th is in group
	// (i / 10) % 300 + 1. This is a load of 3,000 memberships for the
	// planner, not a test of the API: it writes the tables directly, and
	// skips the guard trigger (replica mode) to load fast.
	db.Exec(t, PlanLoad)
	user1 := KeycloakUser("user1", "00000000-0000-4000-8000-000000000001")
	groups := Scalar[[]int64](t, db, "select array_agg(group_id order by group_id) from iam.group_members where user_id = $1", UserID(user1))
	if len(groups) < 3 {
		t.Fatalf("user1 is in groups %v, want several", groups)
	}
	want := Scalar[int64](t, db, "select count(*) from app.todos where owner_id = $1 or group_id = any($2)", UserID(user1), groups)

	var count int64
	err = Requester{T: t, DB: db, Who: user1, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&count)
	})
	NoError(t, err)
	if count != want {
		t.Fatalf("user1 counts %d todos, want %d (own, and of groups %v)", count, want, groups)
	}
	t.Logf("user1 is in groups %v and sees %d of 300000 todos", groups, count)

	ownerAndGroup := TodosArms // and the primary key, for the rows shared with user1 (none)
	const list = "select * from app.todos order by id desc limit 50"
	const countAll = "select count(*) from app.todos"

	t.Run("the count (default settings) is a BitmapOr of the owner and group indexes, the user id and groups computed once", func(t *testing.T) {
		plan, text := ExplainWith(t, db, user1, "", countAll)
		t.Logf("EXPLAIN ANALYZE %s:\n%s", countAll, text)
		if problems := PlanProblems(plan, TodosInitPlans, ownerAndGroup...); len(problems) > 0 {
			t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
		}
		if !slices.Contains(plan.Nodes, "BitmapOr") {
			t.Errorf("plan %+v: no BitmapOr", plan)
		}
	})
	t.Run("the list (default settings) is a BitmapOr of the owner and group indexes plus a top-N sort, not a walk of the primary key", func(t *testing.T) {
		// The planner cannot see the InitPlans' values; the generated
		// `and group_id is not null` keeps its estimate near a typical
		// caller's rows (SPEC §11), so it reads the two indexes.
		plan, text := ExplainWith(t, db, user1, "", list)
		t.Logf("EXPLAIN ANALYZE %s (default settings):\n%s", list, text)
		if problems := PlanProblems(plan, TodosInitPlans, ownerAndGroup...); len(problems) > 0 {
			t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
		}
		if !slices.Contains(plan.Nodes, "BitmapOr") {
			t.Errorf("plan %+v: no BitmapOr", plan)
		}
		if slices.Contains(plan.Walks, "todos_pkey") {
			t.Errorf("plan %+v walks the primary key", plan)
		}
	})
}
