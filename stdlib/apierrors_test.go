package stdlib_test

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

	. "github.com/iamc/iamc/internal/exampletest"
)

// noSuchGroupID is an id no group has: the largest a group id can be.
const noSuchGroupID = int64(1)<<53 - 1

// apiError runs one group API call as who and returns its database error
// (nil when it succeeded).
func apiError(t *testing.T, db *Database, who Person, fn string, args ...any) *pgconn.PgError {
	t.Helper()
	err := RPC(t, db, who, fn, args...)
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
	db := GroupsDB(t)
	type args = []any
	long := strings.Repeat("x", 5000)
	cases := []struct {
		name string
		who  func(c *Crew) Person
		fn   string
		args func(c *Crew) args
		code string
		msg  string
	}{
		// A group the caller is not in looks exactly like one that does not exist: 404.
		{"an outsider adds himself", func(c *Crew) Person { return c.Otto }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, "PT404", "you are not a member of group"},
		{"an outsider removes a member", func(c *Crew) Person { return c.Otto }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID} }, "PT404", "you are not a member of group"},
		{"an outsider changes a role", func(c *Crew) Person { return c.Otto }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID, "role", "owner"} }, "PT404", "you are not a member of group"},
		{"an outsider leaves", func(c *Crew) Person { return c.Otto }, "leave_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, "PT404", "you are not a member of group"},
		{"an outsider deletes the group", func(c *Crew) Person { return c.Otto }, "delete_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, "PT404", "you are not a member of group"},
		{"the owner adds to a group that does not exist", func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", noSuchGroupID, "user_id", c.OttoID} }, "PT404", "you are not a member of group"},
		{"the owner leaves a group that does not exist", func(c *Crew) Person { return c.Olivia }, "leave_group",
			func(c *Crew) args { return args{"group_id", noSuchGroupID} }, "PT404", "you are not a member of group"},
		{"the owner deletes a group that does not exist", func(c *Crew) Person { return c.Olivia }, "delete_group",
			func(c *Crew) args { return args{"group_id", -1} }, "PT404", "you are not a member of group"},
		// The group is the caller's; the user named is not in it: 404 too.
		{"the owner removes someone who is not a member", func(c *Crew) Person { return c.Olivia }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, "PT404", "is not a member of group"},
		{"the owner changes the role of someone who is not a member", func(c *Crew) Person { return c.Olivia }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID, "role", "admin"} }, "PT404", "is not a member of group"},
		// A member without the right: 403.
		{"a plain member adds someone", func(c *Crew) Person { return c.Mia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID} }, "42501", "only owners and admins of group"},
		{"an admin deletes the group", func(c *Crew) Person { return c.Adam }, "delete_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, "42501", "only owners of group"},
		// Conflicts with the group's state.
		{"the owner adds a member twice", func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID} }, "23505", "is already a member of group"},
		{"the last owner leaves", func(c *Crew) Person { return c.Olivia }, "leave_group",
			func(c *Crew) args { return args{"group_id", c.Team} }, "23514", "must keep at least one owner"},
		// Missing arguments: 22023 naming the parameter, before anything else.
		{"add_group_member without group_id", func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", nil, "user_id", c.OttoID} }, "22023", "group_id is required"},
		{"add_group_member without user_id", func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", nil} }, "22023", "user_id is required"},
		{"add_group_member with a null role", func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID, "role", nil} }, "22023", "role is required"},
		{"remove_group_member without group_id", func(c *Crew) Person { return c.Olivia }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", nil, "user_id", c.MiaID} }, "22023", "group_id is required"},
		{"remove_group_member without user_id", func(c *Crew) Person { return c.Olivia }, "remove_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", nil} }, "22023", "user_id is required"},
		{"set_group_member_role without group_id", func(c *Crew) Person { return c.Olivia }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", nil, "user_id", c.MiaID, "role", "admin"} }, "22023", "group_id is required"},
		{"set_group_member_role without role", func(c *Crew) Person { return c.Olivia }, "set_group_member_role",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.MiaID, "role", nil} }, "22023", "role is required"},
		{"leave_group without group_id", func(c *Crew) Person { return c.Mia }, "leave_group",
			func(c *Crew) args { return args{"group_id", nil} }, "22023", "group_id is required"},
		{"delete_group without group_id", func(c *Crew) Person { return c.Olivia }, "delete_group",
			func(c *Crew) args { return args{"group_id", nil} }, "22023", "group_id is required"},
		{"create_group without a name", func(c *Crew) Person { return c.Otto }, "create_group",
			func(c *Crew) args { return args{"name", nil} }, "22023", "name is required"},
		// Bad values: 22023, the caller's value cut short in the message.
		{"a user id of 5000 characters", func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", long} }, "22023", "user_id"},
		{"a role of 5000 characters", func(c *Crew) Person { return c.Olivia }, "add_group_member",
			func(c *Crew) args { return args{"group_id", c.Team, "user_id", c.OttoID, "role", long} }, "22023", "unknown group role"},
	}
	// Names that are only white space, including Unicode and zero-width spaces.
	for _, blank := range []string{"", "   ", "\u00a0", "\u2003", "\u3000", "\u200b", "\ufeff", " \u00a0\u200b\t\n\u3000 "} {
		cases = append(cases, struct {
			name string
			who  func(c *Crew) Person
			fn   string
			args func(c *Crew) args
			code string
			msg  string
		}{fmt.Sprintf("a group named %+q", blank), func(c *Crew) Person { return c.Otto }, "create_group",
			func(c *Crew) args { return args{"name", blank} }, "22023", "a group needs a name"})
	}
	for _, bad := range []struct{ name, value, msg string }{
		{"a group name of 201 characters", strings.Repeat("n", 201), "at most 200 characters"},
		{"a group name of 201 characters after trimming", " " + strings.Repeat("é", 201) + " ", "at most 200 characters"},
		{"a group name with a control character", "home\u0001", "control character"},
	} {
		cases = append(cases, struct {
			name string
			who  func(c *Crew) Person
			fn   string
			args func(c *Crew) args
			code string
			msg  string
		}{bad.name, func(c *Crew) Person { return c.Otto }, "create_group",
			func(c *Crew) args { return args{"name", bad.value} }, "22023", bad.msg})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCrew(t, db)
			before := Snapshot(t, db)
			who := tc.who(c)
			// The ids of the people the caller did not name must not show,
			// nor the group's creator.
			var hidden []string
			named := fmt.Sprint(tc.args(c)...)
			for _, uid := range []string{c.OliviaID, c.AdamID, c.MiaID, c.AliceID, c.OttoID} {
				if uid != UserID(who) && !strings.Contains(named, uid) {
					hidden = append(hidden, uid)
				}
			}
			e := apiError(t, db, who, tc.fn, tc.args(c)...)
			wantCleanError(t, e, tc.code, tc.msg, hidden...)
			if len(e.Message)+len(e.Detail)+len(e.Hint) > 1000 {
				t.Errorf("the error is %d bytes long (message %.200q...): the caller's value is not cut short", len(e.Message)+len(e.Detail)+len(e.Hint), e.Message)
			}
			WantUnchanged(t, db, before)
		})
	}
}

// TestGroupAPIErrorsTheAllowedSide: the calls refused above, made by those
// who may make them, with well-formed arguments, succeed.
func TestGroupAPIErrorsTheAllowedSide(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	for _, call := range []struct {
		who  Person
		fn   string
		args []any
	}{
		{c.Adam, "add_group_member", []any{"group_id", c.Team, "user_id", c.OttoID}},
		{c.Olivia, "set_group_member_role", []any{"group_id", c.Team, "user_id", c.OttoID, "role", "owner"}},
		{c.Olivia, "remove_group_member", []any{"group_id", c.Team, "user_id", c.MiaID}},
		{c.Olivia, "leave_group", []any{"group_id", c.Team}},
		{c.Otto, "delete_group", []any{"group_id", c.Team}},
	} {
		if e := apiError(t, db, call.who, call.fn, call.args...); e != nil {
			t.Fatalf("%s: %s %v: SQLSTATE %s %q", call.who.Name, call.fn, call.args, e.Code, e.Message)
		}
	}
	if n := Scalar[int64](t, db, "select count(*) from iam.groups where id = $1", c.Team); n != 0 {
		t.Errorf("team is still there after otto, its owner by then, deleted it")
	}
}

// TestGroupNotFoundIsNoOracle: for a caller, a group they are not in and a
// group that does not exist give the same error, field by field (but the
// id), from every function of the group API.
func TestGroupNotFoundIsNoOracle(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	for _, call := range []struct {
		fn   string
		args func(gid int64) []any
	}{
		{"add_group_member", func(gid int64) []any { return []any{"group_id", gid, "user_id", c.MiaID} }},
		{"remove_group_member", func(gid int64) []any { return []any{"group_id", gid, "user_id", c.MiaID} }},
		{"set_group_member_role", func(gid int64) []any { return []any{"group_id", gid, "user_id", c.MiaID, "role", "owner"} }},
		{"leave_group", func(gid int64) []any { return []any{"group_id", gid} }},
		{"delete_group", func(gid int64) []any { return []any{"group_id", gid} }},
	} {
		t.Run(call.fn, func(t *testing.T) {
			shown := func(gid int64) string {
				e := apiError(t, db, c.Otto, call.fn, call.args(gid)...)
				if e == nil {
					t.Fatalf("otto's %s on group %d succeeded", call.fn, gid)
				}
				g := strconv.FormatInt(gid, 10)
				return strings.Join([]string{e.Code, strings.ReplaceAll(e.Message, g, "N"), strings.ReplaceAll(e.Detail, g, "N"), e.Hint}, " | ")
			}
			notIn, missing := shown(c.Team), shown(noSuchGroupID)
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
	db := GroupsDB(t)
	c := NewCrew(t, db)
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
			gid := CreateGroup(t, db, c.Otto, n.given)
			if got := Scalar[string](t, db, "select name from iam.groups where id = $1", gid); got != n.stored {
				t.Errorf("stored %+q, want %+q", got, n.stored)
			}
		})
	}
}

// TestGroupIDsAreNotSequential: a new group's id tells nothing about how
// many groups there are (issue 13 §2): ids are random, below 2^53 (exact in
// JavaScript), and the column is no identity or serial any more.
func TestGroupIDsAreNotSequential(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	var ids []int64
	large := 0
	for i := range 20 {
		gid := CreateGroup(t, db, c.Otto, fmt.Sprintf("g%d", i))
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
	if got := Scalar[string](t, db, `select attidentity::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
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
	db := GroupsDB(t)
	c := NewCrew(t, db)
	// A member's change of team, in flight: the row lock is held.
	tx, err := db.SU.Begin(t.Context())
	NoError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck
	_, err = tx.Exec(t.Context(), "select from iam.groups where id = $1 for update", c.Team)
	NoError(t, err)

	done := make(chan *pgconn.PgError, 1)
	go func() {
		done <- apiError(t, db, c.Otto, "add_group_member", "group_id", c.Team, "user_id", c.OttoID)
	}()
	select {
	case e := <-done:
		wantCleanError(t, e, "PT404", "you are not a member of group")
	case <-time.After(5 * time.Second):
		NoError(t, tx.Rollback(t.Context())) // let the call finish before the test does
		e := <-done
		t.Fatalf("otto's add_group_member waited for the lock of a group he is not in (then: %v)", e)
	}
}
