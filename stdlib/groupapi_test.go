package stdlib_test

// The group API (SPEC §11): the functions and views iamc puts in the API
// schema, called as PostgREST calls them (POST /rpc/<function>, GET
// /groups, /group_members) by the members of a crew on the groups database
// (the example built). Every refused call leaves iam.groups and
// iam.group_members exactly as before. What membership gives on the
// example's rows is policies/groups_test.go's.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/jackc/pgx/v5"
)

// ---------------------------------------------------------------------------
// Attacks on memberships.
// ---------------------------------------------------------------------------

// TestMembershipAttacks: every way to get into a group, or to take a group
// from its owners, without the right to (SPEC §8.7, §11 "The group API").
// Each is refused with the SQLSTATE and message the SPEC names, and
// iam.groups and iam.group_members are exactly as before.
func TestMembershipAttacks(t *testing.T) {
	db := GroupsDB(t)
	type args = []any
	attacks := []struct {
		name string
		who  func(c *Crew) Person
		fn   string
		args func(c *Crew) args
		want Outcome
	}{
		{"an outsider adds himself to someone's group",
			func(c *Crew) Person { return c.Otto }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, NotInIt},
		{"an outsider adds himself to someone's group as owner",
			func(c *Crew) Person { return c.Otto }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID, "role", "owner"} }, NotInIt},
		{"a plain member adds someone else",
			func(c *Crew) Person { return c.Mia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, AdminsOnly},
		{"a plain member promotes herself to admin",
			func(c *Crew) Person { return c.Mia }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID, "role", "admin"} }, AdminsOnly},
		{"a plain member removes another member",
			func(c *Crew) Person { return c.Mia }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.AliceID} }, AdminsOnly},
		{"an outsider removes a member",
			func(c *Crew) Person { return c.Otto }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID} }, NotInIt},
		{"an admin removes the owner",
			func(c *Crew) Person { return c.Adam }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OliviaID} }, NoOwnerRemoval},
		{"an admin demotes the owner",
			func(c *Crew) Person { return c.Adam }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OliviaID, "role", "member"} }, OwnersOnly},
		{"an admin adds an owner",
			func(c *Crew) Person { return c.Adam }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID, "role", "owner"} }, OwnersOnly},
		{"an admin promotes himself to owner",
			func(c *Crew) Person { return c.Adam }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.AdamID, "role", "owner"} }, OwnersOnly},
		{"an admin promotes a member to owner",
			func(c *Crew) Person { return c.Adam }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID, "role", "owner"} }, OwnersOnly},
		{"an admin deletes the group",
			func(c *Crew) Person { return c.Adam }, "delete_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, OwnersOnly},
		{"a plain member deletes the group",
			func(c *Crew) Person { return c.Mia }, "delete_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, OwnersOnly},
		{"an outsider deletes the group",
			func(c *Crew) Person { return c.Otto }, "delete_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, NotInIt},
		{"the last owner leaves",
			func(c *Crew) Person { return c.Olivia }, "leave_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, LastOwner},
		{"the last owner demotes herself",
			func(c *Crew) Person { return c.Olivia }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OliviaID, "role", "admin"} }, LastOwner},
		{"the last owner removes herself",
			func(c *Crew) Person { return c.Olivia }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OliviaID} }, LastOwner},
		{"an anonymous visitor creates a group",
			func(c *Crew) Person { return Anonymous }, "create_group",
			func(c *Crew) args { return args{"name", "anon"} }, Denied},
		{"an anonymous visitor adds someone to a group",
			func(c *Crew) Person { return Anonymous }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, Denied},
		{"a token without sub creates a group",
			func(c *Crew) Person { return NoSub }, "create_group",
			func(c *Crew) args { return args{"name", "nobody's"} }, NoCaller},
		{"a token without sub adds someone to a group",
			func(c *Crew) Person { return NoSub }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, NoCaller},
		// Mistakes, with the errors SPEC §11 names.
		{"the owner adds a member twice",
			func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID} }, Fails("23505", "is already a member of group")},
		{"the owner adds a user id that is not a uuid",
			func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", "f:ldap:otto"} }, BadArgument("is not a uuid")},
		{"the owner adds a member with an unknown role",
			func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID, "role", "superuser"} }, BadArgument("unknown group role")},
		{"the owner removes someone who is not a member",
			func(c *Crew) Person { return c.Olivia }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, NotMember},
		{"an outsider leaves a group he is not in",
			func(c *Crew) Person { return c.Otto }, "leave_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, NotInIt},
		{"a group with a blank name",
			func(c *Crew) Person { return c.Otto }, "create_group",
			func(c *Crew) args { return args{"name", "  "} }, BadArgument("a group needs a name")},
	}
	for _, a := range attacks {
		t.Run(fmt.Sprintf("%s: %s", a.name, a.want), func(t *testing.T) {
			c := NewCrew(t, db)
			before := Snapshot(t, db)
			err := RPC(t, db, a.who(c), a.fn, a.args(c)...)
			WantError(t, err, a.want)
			WantUnchanged(t, db, before)
		})
	}
}

// TestGroupAPI: what the group API allows does what SPEC §11 says, and the
// rules attacked above are about the right people.
func TestGroupAPI(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	m := func(user, role string) Membership { return Membership{Group: "team", User: user, Role: role} }
	wantMembers := func(t *testing.T, want ...Membership) {
		t.Helper()
		if diff := cmp.Diff(want, c.In(t).GroupMembers(c.Team), cmpopts.SortSlices(func(a, b Membership) bool { return a.User < b.User })); diff != "" {
			t.Errorf("team's members (-want +got):\n%s", diff)
		}
	}
	wantMembers(t, m("adam", "admin"), m("alice", "member"), m("mia", "member"), m("olivia", "owner"))

	steps := []struct {
		name string
		who  Person
		fn   string
		args []any
		want []Membership
	}{
		{"an admin adds a member", c.Adam, "add_group_member", []any{"group_id", c.Team, "user_id", c.OttoID},
			[]Membership{m("adam", "admin"), m("alice", "member"), m("mia", "member"), m("olivia", "owner"), m("otto", "member")}},
		{"an admin removes a member", c.Adam, "remove_group_member", []any{"group_id", c.Team, "user_id", c.OttoID},
			[]Membership{m("adam", "admin"), m("alice", "member"), m("mia", "member"), m("olivia", "owner")}},
		{"the owner makes mia an owner", c.Olivia, "set_group_member_role", []any{"group_id", c.Team, "user_id", c.MiaID, "role", "owner"},
			[]Membership{m("adam", "admin"), m("alice", "member"), m("mia", "owner"), m("olivia", "owner")}},
		{"an owner who is not the last one leaves", c.Olivia, "leave_group", []any{"group_id", c.Team},
			[]Membership{m("adam", "admin"), m("alice", "member"), m("mia", "owner")}},
		{"a member leaves", c.Alice, "leave_group", []any{"group_id", c.Team},
			[]Membership{m("adam", "admin"), m("mia", "owner")}},
		{"an owner demotes an admin", c.Mia, "set_group_member_role", []any{"group_id", c.Team, "user_id", c.AdamID, "role", "member"},
			[]Membership{m("adam", "member"), m("mia", "owner")}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			NoError(t, RPC(t, db, s.who, s.fn, s.args...))
			wantMembers(t, s.want...)
		})
	}
}

// TestMayEnterGroupAgreesWithGroupIDs: the row guard's fast path,
// iam.may_enter_group (primary-key probes for one group), must give the
// answer of gid = any(iam.group_ids(role)) for every caller, group and
// role, token groups included. (A wrong no would only be slow, since
// iam.check_group_entry explains it again; a wrong yes would be caught by
// the insert policy, with a vaguer error. Neither is acceptable.)
func TestMayEnterGroupAgreesWithGroupIDs(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	path := fmt.Sprintf("/team-a-%d", c.Team)
	db.Exec(t, "update iam.groups set token_name = $1 where id = $2", path, c.Team)
	callers := []Person{c.Alice, c.Olivia, c.Adam, c.Mia, c.Otto, c.Carol,
		WithGroups(c.Carol, []string{path}), WithGroups(c.Otto, []string{"/nobody", path})}
	groups := []int64{c.Team, c.Side, c.Room, c.Club, -1}
	var checked, yes int
	for _, who := range callers {
		for _, role := range []string{"member", "admin", "owner"} {
			err := Requester{T: t, DB: db, Who: who, Path: "/chats"}.Do("GET", func(tx pgx.Tx) error {
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
						t.Errorf("%s, group %d, role %s: may_enter_group = %v, group_ids says %v", who.Name, gid, role, fast, full)
					}
				}
				return rows.Err()
			})
			NoError(t, err)
		}
	}
	// Both answers occur, so agreement is not vacuous.
	if yes == 0 || yes == checked {
		t.Fatalf("%d of %d cases were yes: the cast does not exercise both answers", yes, checked)
	}
}

// TestGroupViews: GET /groups lists the caller's groups with their role,
// GET /group_members the members of those groups; nothing of anyone
// else's, and asking for a group one is not in returns [] (no error, which
// would tell outsiders which group ids exist).
func TestGroupViews(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	g := func(name, role string) MyGroup { return MyGroup{Name: name, MyRole: role} }
	for _, v := range []struct {
		who  Person
		want []MyGroup
	}{
		{c.Alice, []MyGroup{g("alice's room", "owner"), g("side", "owner"), g("team", "member")}},
		{c.Olivia, []MyGroup{g("side", "member"), g("team", "owner")}},
		{c.Adam, []MyGroup{g("side", "member"), g("team", "admin")}},
		{c.Mia, []MyGroup{g("side", "member"), g("team", "member")}},
		{c.Otto, []MyGroup{g("otto's club", "owner")}},
		{c.Carol, nil},
	} {
		t.Run("GET /groups as "+v.who.Name, func(t *testing.T) {
			c := c.In(t)
			if diff := cmp.Diff(v.want, c.MyGroups(v.who), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	m := func(group, user, role string) Membership { return Membership{Group: group, User: user, Role: role} }
	byName := cmpopts.SortSlices(func(a, b Membership) bool { return a.Group+a.User < b.Group+b.User })
	team := []Membership{m("team", "adam", "admin"), m("team", "alice", "member"), m("team", "mia", "member"), m("team", "olivia", "owner")}
	side := []Membership{m("side", "adam", "member"), m("side", "alice", "owner"), m("side", "mia", "member"), m("side", "olivia", "member")}
	for _, v := range []struct {
		name string
		who  Person
		gid  int64
		want []Membership
	}{
		{"mia sees the members of team and side", c.Mia, 0, append(slices.Clone(team), side...)},
		{"alice sees the members of team, side and her room", c.Alice, 0, append(append(slices.Clone(team), side...), m("alice's room", "alice", "owner"))},
		{"otto sees only his club", c.Otto, 0, []Membership{m("otto's club", "otto", "owner")}},
		{"mia asks for team's members", c.Mia, c.Team, team},
		{"otto asks for team's members: [] (no error)", c.Otto, c.Team, nil},
		{"mia asks for otto's club's members: [] (no error)", c.Mia, c.Club, nil},
		{"otto asks for a group that does not exist: [] as well", c.Otto, 9000000000000000001, nil},
	} {
		t.Run("GET /group_members: "+v.name, func(t *testing.T) {
			c := c.In(t)
			if diff := cmp.Diff(v.want, c.GroupMembersAs(v.who, v.gid), byName, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("GET /groups?id=eq.<team> as otto: [] (no error)", func(t *testing.T) {
		c := c.In(t)
		var n int
		err := c.As(c.Otto, "/groups").Do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "select count(*) from app.groups where id = $1", c.Team).Scan(&n)
		})
		NoError(t, err)
		if n != 0 {
			t.Errorf("otto sees %d rows of team, want 0", n)
		}
	})
	for _, path := range []string{"/groups", "/group_members"} {
		t.Run("GET "+path+" without a JWT: 42501 (PostgREST 401)", func(t *testing.T) {
			c := c.In(t)
			err := c.As(Anonymous, path).Do("GET", func(tx pgx.Tx) error {
				_, err := tx.Exec(t.Context(), "select * from app"+strings.ReplaceAll(path, "/", "."))
				return err
			})
			WantError(t, err, Denied)
		})
	}
}
