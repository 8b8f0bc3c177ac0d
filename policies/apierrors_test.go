package policies_test

// The errors of the group API (SPEC §9, §11; issue 13 §2 and §4), as
// PostgREST runs each request (pgrest.Do): every refusal carries the
// SQLSTATE PostgREST maps to the intended HTTP status (PT404 for a group
// the caller is not in, exactly as for one that does not exist; 22023 for
// bad input, naming the parameter), never a constraint's error, and never
// data of rows the caller cannot read. The member who may still succeeds.
// Over a real PostgREST, e2e/apierrors_test.go checks the HTTP statuses.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// noSuchGroupID is an id no group has: the largest a group id can be.
const noSuchGroupID = int64(1)<<53 - 1

// apiError runs one group API call as who and returns its database error
// (nil when it succeeded).
func apiError(t *testing.T, db *database, who person, fn string, args ...any) *pgconn.PgError {
	t.Helper()
	err := rpc(t, db, who, fn, args...)
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("%s: got %v, want a database error", fn, err)
	}
	return pgErr
}

// wantCleanError checks a refusal's SQLSTATE and message, and that no
// field of it shows a constraint's failing row or anything of the group
// tables (names, internal columns, the ids of users the caller did not
// name).
func wantCleanError(t *testing.T, e *pgconn.PgError, code, msg string, hidden ...string) {
	t.Helper()
	if e == nil {
		t.Fatalf("succeeded, want SQLSTATE %s %q", code, msg)
	}
	if e.Code != code || !strings.Contains(e.Message, msg) {
		t.Fatalf("got SQLSTATE %s %q (detail %q), want %s %q", e.Code, e.Message, e.Detail, code, msg)
	}
	all := strings.Join([]string{e.Message, e.Detail, e.Hint, e.ConstraintName, e.TableName, e.ColumnName}, "\n")
	for _, h := range append([]string{"Failing row", "iam.groups", "iam.group_members", "constraint", "violates"}, hidden...) {
		if h != "" && strings.Contains(all, h) {
			t.Errorf("the error shows %q: message %q, detail %q, hint %q, constraint %q", h, e.Message, e.Detail, e.Hint, e.ConstraintName)
		}
	}
}

// TestGroupAPIErrors: every refusal of the group API, from the refused
// side (SQLSTATE, a clean message, nothing changed) and, where the same
// call is allowed to someone, from the allowed side.
func TestGroupAPIErrors(t *testing.T) {
	db := groupsDB(t)
	type args = []any
	long := strings.Repeat("x", 5000)
	cases := []struct {
		name string
		who  func(c *crew) person
		fn   string
		args func(c *crew) args
		code string
		msg  string
	}{
		// A group the caller is not in looks exactly like one that does not exist: 404.
		{"an outsider adds himself", func(c *crew) person { return c.otto }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, "PT404", "you are not a member of group"},
		{"an outsider removes a member", func(c *crew) person { return c.otto }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID} }, "PT404", "you are not a member of group"},
		{"an outsider changes a role", func(c *crew) person { return c.otto }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID, "role", "owner"} }, "PT404", "you are not a member of group"},
		{"an outsider leaves", func(c *crew) person { return c.otto }, "leave_group",
			func(c *crew) args { return args{"group_id", c.team} }, "PT404", "you are not a member of group"},
		{"an outsider deletes the group", func(c *crew) person { return c.otto }, "delete_group",
			func(c *crew) args { return args{"group_id", c.team} }, "PT404", "you are not a member of group"},
		{"the owner adds to a group that does not exist", func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", noSuchGroupID, "user_id", c.ottoID} }, "PT404", "you are not a member of group"},
		{"the owner leaves a group that does not exist", func(c *crew) person { return c.olivia }, "leave_group",
			func(c *crew) args { return args{"group_id", noSuchGroupID} }, "PT404", "you are not a member of group"},
		{"the owner deletes a group that does not exist", func(c *crew) person { return c.olivia }, "delete_group",
			func(c *crew) args { return args{"group_id", -1} }, "PT404", "you are not a member of group"},
		// The group is the caller's; the user named is not in it: 404 too.
		{"the owner removes someone who is not a member", func(c *crew) person { return c.olivia }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, "PT404", "is not a member of group"},
		{"the owner changes the role of someone who is not a member", func(c *crew) person { return c.olivia }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID, "role", "admin"} }, "PT404", "is not a member of group"},
		// A member without the right: 403.
		{"a plain member adds someone", func(c *crew) person { return c.mia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID} }, "42501", "only owners and admins of group"},
		{"an admin deletes the group", func(c *crew) person { return c.adam }, "delete_group",
			func(c *crew) args { return args{"group_id", c.team} }, "42501", "only owners of group"},
		// Conflicts with the group's state.
		{"the owner adds a member twice", func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID} }, "23505", "is already a member of group"},
		{"the last owner leaves", func(c *crew) person { return c.olivia }, "leave_group",
			func(c *crew) args { return args{"group_id", c.team} }, "23514", "must keep at least one owner"},
		// Missing arguments: 22023 naming the parameter, before anything else.
		{"add_group_member without group_id", func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", nil, "user_id", c.ottoID} }, "22023", "group_id is required"},
		{"add_group_member without user_id", func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", nil} }, "22023", "user_id is required"},
		{"add_group_member with a null role", func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID, "role", nil} }, "22023", "role is required"},
		{"remove_group_member without group_id", func(c *crew) person { return c.olivia }, "remove_group_member",
			func(c *crew) args { return args{"group_id", nil, "user_id", c.miaID} }, "22023", "group_id is required"},
		{"remove_group_member without user_id", func(c *crew) person { return c.olivia }, "remove_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", nil} }, "22023", "user_id is required"},
		{"set_group_member_role without group_id", func(c *crew) person { return c.olivia }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", nil, "user_id", c.miaID, "role", "admin"} }, "22023", "group_id is required"},
		{"set_group_member_role without role", func(c *crew) person { return c.olivia }, "set_group_member_role",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.miaID, "role", nil} }, "22023", "role is required"},
		{"leave_group without group_id", func(c *crew) person { return c.mia }, "leave_group",
			func(c *crew) args { return args{"group_id", nil} }, "22023", "group_id is required"},
		{"delete_group without group_id", func(c *crew) person { return c.olivia }, "delete_group",
			func(c *crew) args { return args{"group_id", nil} }, "22023", "group_id is required"},
		{"create_group without a name", func(c *crew) person { return c.otto }, "create_group",
			func(c *crew) args { return args{"name", nil} }, "22023", "name is required"},
		// Bad values: 22023, the caller's value cut short in the message.
		{"a user id of 5000 characters", func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", long} }, "22023", "user_id"},
		{"a role of 5000 characters", func(c *crew) person { return c.olivia }, "add_group_member",
			func(c *crew) args { return args{"group_id", c.team, "user_id", c.ottoID, "role", long} }, "22023", "unknown group role"},
	}
	// Names that are only white space, including Unicode and zero-width spaces.
	for _, blank := range []string{"", "   ", "\u00a0", "\u2003", "\u3000", "\u200b", "\ufeff", " \u00a0\u200b\t\n\u3000 "} {
		cases = append(cases, struct {
			name string
			who  func(c *crew) person
			fn   string
			args func(c *crew) args
			code string
			msg  string
		}{fmt.Sprintf("a group named %+q", blank), func(c *crew) person { return c.otto }, "create_group",
			func(c *crew) args { return args{"name", blank} }, "22023", "a group needs a name"})
	}
	for _, bad := range []struct{ name, value, msg string }{
		{"a group name of 201 characters", strings.Repeat("n", 201), "at most 200 characters"},
		{"a group name of 201 characters after trimming", " " + strings.Repeat("é", 201) + " ", "at most 200 characters"},
		{"a group name with a control character", "home\u0001", "control character"},
	} {
		cases = append(cases, struct {
			name string
			who  func(c *crew) person
			fn   string
			args func(c *crew) args
			code string
			msg  string
		}{bad.name, func(c *crew) person { return c.otto }, "create_group",
			func(c *crew) args { return args{"name", bad.value} }, "22023", bad.msg})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCrew(t, db)
			before := snapshot(t, db)
			who := tc.who(c)
			// The ids of the people the caller did not name must not show,
			// nor the group's creator.
			var hidden []string
			named := fmt.Sprint(tc.args(c)...)
			for _, uid := range []string{c.oliviaID, c.adamID, c.miaID, c.aliceID, c.ottoID} {
				if uid != id(who) && !strings.Contains(named, uid) {
					hidden = append(hidden, uid)
				}
			}
			e := apiError(t, db, who, tc.fn, tc.args(c)...)
			wantCleanError(t, e, tc.code, tc.msg, hidden...)
			if len(e.Message)+len(e.Detail)+len(e.Hint) > 1000 {
				t.Errorf("the error is %d bytes long (message %.200q...): the caller's value is not cut short", len(e.Message)+len(e.Detail)+len(e.Hint), e.Message)
			}
			wantUnchanged(t, db, before)
		})
	}
}

// TestGroupAPIErrorsTheAllowedSide: the calls refused above, made by those
// who may make them, with well-formed arguments, succeed.
func TestGroupAPIErrorsTheAllowedSide(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	for _, call := range []struct {
		who  person
		fn   string
		args []any
	}{
		{c.adam, "add_group_member", []any{"group_id", c.team, "user_id", c.ottoID}},
		{c.olivia, "set_group_member_role", []any{"group_id", c.team, "user_id", c.ottoID, "role", "owner"}},
		{c.olivia, "remove_group_member", []any{"group_id", c.team, "user_id", c.miaID}},
		{c.olivia, "leave_group", []any{"group_id", c.team}},
		{c.otto, "delete_group", []any{"group_id", c.team}},
	} {
		if e := apiError(t, db, call.who, call.fn, call.args...); e != nil {
			t.Fatalf("%s: %s %v: SQLSTATE %s %q", call.who.name, call.fn, call.args, e.Code, e.Message)
		}
	}
	if n := scalar[int64](t, db, "select count(*) from iam.groups where id = $1", c.team); n != 0 {
		t.Errorf("team is still there after otto, its owner by then, deleted it")
	}
}

// TestGroupNotFoundIsNoOracle: for a caller, a group they are not in and a
// group that does not exist give the same error, field by field (but the
// id), from every function of the group API.
func TestGroupNotFoundIsNoOracle(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	for _, call := range []struct {
		fn   string
		args func(gid int64) []any
	}{
		{"add_group_member", func(gid int64) []any { return []any{"group_id", gid, "user_id", c.miaID} }},
		{"remove_group_member", func(gid int64) []any { return []any{"group_id", gid, "user_id", c.miaID} }},
		{"set_group_member_role", func(gid int64) []any { return []any{"group_id", gid, "user_id", c.miaID, "role", "owner"} }},
		{"leave_group", func(gid int64) []any { return []any{"group_id", gid} }},
		{"delete_group", func(gid int64) []any { return []any{"group_id", gid} }},
	} {
		t.Run(call.fn, func(t *testing.T) {
			shown := func(gid int64) string {
				e := apiError(t, db, c.otto, call.fn, call.args(gid)...)
				if e == nil {
					t.Fatalf("otto's %s on group %d succeeded", call.fn, gid)
				}
				g := strconv.FormatInt(gid, 10)
				return strings.Join([]string{e.Code, strings.ReplaceAll(e.Message, g, "N"), strings.ReplaceAll(e.Detail, g, "N"), e.Hint}, " | ")
			}
			notIn, missing := shown(c.team), shown(noSuchGroupID)
			if notIn != missing {
				t.Errorf("a group otto is not in: %s\na group that does not exist: %s\nwant the same", notIn, missing)
			}
			if !strings.HasPrefix(notIn, "PT404 ") {
				t.Errorf("got %s, want PT404 (HTTP 404)", notIn)
			}
		})
	}
}

// TestGroupNames: what create_group stores for a name (SPEC §11: trimmed
// of white space, Unicode and zero-width included, inner runs of white
// space made one space, NFC), and that the longest allowed name is taken.
func TestGroupNames(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	for _, n := range []struct{ given, stored string }{
		{"  home\u3000", "home"},
		{"\u200b\ufeffteam\u00a0a\u200b", "team a"},
		{"a \u00a0\t\n b", "a b"},
		{"caf\u0065\u0301", "caf\u00e9"},       // NFC: e + combining acute is é
		{"👩\u200d👩\u200d👧", "👩\u200d👩\u200d👧"}, // a zero-width joiner inside a name is kept
		{strings.Repeat("日", 200), strings.Repeat("日", 200)},
		{" " + strings.Repeat("é", 200) + "\u2003", strings.Repeat("é", 200)},
	} {
		t.Run(fmt.Sprintf("%+.20q", n.given), func(t *testing.T) {
			gid := createGroup(t, db, c.otto, n.given)
			if got := scalar[string](t, db, "select name from iam.groups where id = $1", gid); got != n.stored {
				t.Errorf("stored %+q, want %+q", got, n.stored)
			}
		})
	}
}

// TestGroupIDsAreNotSequential: a new group's id tells nothing about how
// many groups there are (issue 13 §2): ids are random, below 2^53 (exact in
// JavaScript), and the column is no identity or serial any more.
func TestGroupIDsAreNotSequential(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	var ids []int64
	large := 0
	for i := range 20 {
		gid := createGroup(t, db, c.otto, fmt.Sprintf("g%d", i))
		if gid < 1 || gid >= 1<<53 {
			t.Errorf("group id %d is outside [1, 2^53)", gid)
		}
		if gid >= 1<<32 {
			large++
		}
		for _, prev := range ids {
			if d := gid - prev; d >= -20 && d <= 20 {
				t.Errorf("group ids %d and %d are %d apart: sequential", prev, gid, d)
			}
		}
		ids = append(ids, gid)
	}
	if large == 0 {
		t.Errorf("all 20 group ids %v are below 2^32: not drawn from [1, 2^53)", ids)
	}
	if got := scalar[string](t, db, `select attidentity::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
		where a.attrelid = 'iam.groups'::regclass and a.attname = 'id'`); got != " iam.new_group_id()" {
		t.Errorf("iam.groups.id: identity and default %q, want no identity and default iam.new_group_id()", got)
	}
}

// TestOutsidersTakeNoGroupLock: the group API refuses a caller who is not
// in the group before it locks the group's row (iam.lock_group), so an
// outsider neither waits behind a member's change (which would tell him the
// group exists) nor makes the members wait behind him.
func TestOutsidersTakeNoGroupLock(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	// A member's change of team, in flight: the row lock is held.
	tx, err := db.su.Begin(t.Context())
	noError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck
	_, err = tx.Exec(t.Context(), "select from iam.groups where id = $1 for update", c.team)
	noError(t, err)

	done := make(chan *pgconn.PgError, 1)
	go func() {
		done <- apiError(t, db, c.otto, "add_group_member", "group_id", c.team, "user_id", c.ottoID)
	}()
	select {
	case e := <-done:
		wantCleanError(t, e, "PT404", "you are not a member of group")
	case <-time.After(5 * time.Second):
		noError(t, tx.Rollback(t.Context())) // let the call finish before the test does
		e := <-done
		t.Fatalf("otto's add_group_member waited for the lock of a group he is not in (then: %v)", e)
	}
}
