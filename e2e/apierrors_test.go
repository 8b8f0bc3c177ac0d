package e2e

// Every documented error of the group API (SPEC §9 and §11), over HTTP
// against a real PostgREST 12: the status PostgREST answers, the code of
// its JSON body, a message a client can show, and a body that never holds
// a constraint's failing row or the group tables' names. Each refused
// request leaves the memberships as they were; the calls the same people
// may make still succeed afterwards.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iamc/iamc/internal/exampletest"
)

func TestGroupAPIErrorStatuses(t *testing.T) {
	bin := postgrestBinary(t)
	s := exampletest.Server(t)
	su := newDatabase(t, s, "apierrors", buildPolicies(t))
	const secret = "e2e-apierrors-shared-secret-of-more-than-32-characters"
	api := startPostgREST(t, bin, s, "apierrors", jwtConfig{secret: secret})
	tok := newTokens(t, roleClaim, hs256(secret), hs256("an-attacker's-guess-at-the-secret-32+-chars"))
	carolToken := hs256(secret).token(t, carol.claims(roleClaim, time.Now()))

	// home: alice owns it, bob is an admin, carol a member; dave is in it
	// only through his token's Keycloak group /team-a.
	home := createGroup(t, api, tok.alice, "home")
	wantVoid(t, rpc(t, api, tok.alice, "add_group_member", map[string]any{"group_id": home, "user_id": bob.sub, "role": "admin"}))
	wantVoid(t, rpc(t, api, tok.alice, "add_group_member", map[string]any{"group_id": home, "user_id": carol.sub}))
	if _, err := su.Exec(t.Context(), "update iam.groups set token_name = '/team-a' where id = $1", home); err != nil {
		t.Fatal(err)
	}
	// An id no group has: the largest a group id can be.
	const missing = int64(1)<<53 - 1

	type body = map[string]any
	cases := []struct {
		name   string
		token  string
		fn     string
		body   any
		status int
		code   string
		msg    string
	}{
		// Who may call at all.
		{"anonymous creates a group", "", "create_group", body{"name": "x"}, http.StatusUnauthorized, "42501", "permission denied"},
		{"a token without sub creates a group", tok.noSub, "create_group", body{"name": "x"}, http.StatusForbidden, "28000", "groups need a signed-in user"},
		// Names.
		{"an empty name", tok.dave, "create_group", body{"name": ""}, http.StatusBadRequest, "22023", "a group needs a name"},
		{"a name of Unicode spaces only", tok.dave, "create_group", body{"name": "\u00a0\u2003\u3000"}, http.StatusBadRequest, "22023", "a group needs a name"},
		{"a name of zero-width spaces only", tok.dave, "create_group", body{"name": "\u200b\ufeff"}, http.StatusBadRequest, "22023", "a group needs a name"},
		{"a null name", tok.dave, "create_group", body{"name": nil}, http.StatusBadRequest, "22023", "name is required"},
		{"a name of 201 characters", tok.dave, "create_group", body{"name": strings.Repeat("n", 201)}, http.StatusBadRequest, "22023", "at most 200 characters"},
		{"a name with a control character", tok.dave, "create_group", body{"name": "home\u0007"}, http.StatusBadRequest, "22023", "control character"},
		// PostgREST turns the JSON body into text before the function runs:
		// PostgreSQL's text cannot hold NUL, so the cast refuses it (22P05).
		{"a name with NUL", tok.dave, "create_group", body{"name": "ho\u0000me"}, http.StatusBadRequest, "22P05", "unsupported Unicode escape sequence"},
		// Arguments.
		{"a null group_id", tok.alice, "add_group_member", body{"group_id": nil, "user_id": dave.sub}, http.StatusBadRequest, "22023", "group_id is required"},
		{"a null user_id", tok.alice, "add_group_member", body{"group_id": home, "user_id": nil}, http.StatusBadRequest, "22023", "user_id is required"},
		{"a null role", tok.alice, "add_group_member", body{"group_id": home, "user_id": dave.sub, "role": nil}, http.StatusBadRequest, "22023", "role is required"},
		// A parameter left out is PostgREST's: no function has those parameters.
		{"user_id left out", tok.alice, "remove_group_member", body{"group_id": home}, http.StatusNotFound, "PGRST202", "Could not find the function"},
		// add_group_member names the member by user_id, username or email,
		// each optional in the signature: naming nobody is the function's 400.
		{"nobody named", tok.alice, "add_group_member", body{"group_id": home}, http.StatusBadRequest, "22023", "user_id is required"},
		{"a user id that is not a uuid", tok.alice, "add_group_member", body{"group_id": home, "user_id": "f:ldap:dave"}, http.StatusBadRequest, "22023", "is not a uuid"},
		{"a user id of 5000 characters", tok.alice, "add_group_member", body{"group_id": home, "user_id": strings.Repeat("d", 5000)}, http.StatusBadRequest, "22023", "user_id is too long"},
		{"an unknown role", tok.alice, "add_group_member", body{"group_id": home, "user_id": dave.sub, "role": "superuser"}, http.StatusBadRequest, "22023", "unknown group role"},
		{"remove_group_member with a null group_id", tok.alice, "remove_group_member", body{"group_id": nil, "user_id": carol.sub}, http.StatusBadRequest, "22023", "group_id is required"},
		{"set_group_member_role with a null role", tok.alice, "set_group_member_role", body{"group_id": home, "user_id": carol.sub, "role": nil}, http.StatusBadRequest, "22023", "role is required"},
		{"leave_group with a null group_id", carolToken, "leave_group", body{"group_id": nil}, http.StatusBadRequest, "22023", "group_id is required"},
		{"delete_group with a null group_id", tok.alice, "delete_group", body{"group_id": nil}, http.StatusBadRequest, "22023", "group_id is required"},
		// A group the caller is not in, or that does not exist: 404, alike.
		{"an outsider adds himself", tok.dave, "add_group_member", body{"group_id": home, "user_id": dave.sub}, http.StatusNotFound, "PT404", "you are not a member of group"},
		{"adding to a group that does not exist", tok.alice, "add_group_member", body{"group_id": missing, "user_id": dave.sub}, http.StatusNotFound, "PT404", "you are not a member of group"},
		{"an outsider removes a member", tok.dave, "remove_group_member", body{"group_id": home, "user_id": carol.sub}, http.StatusNotFound, "PT404", "you are not a member of group"},
		{"an outsider changes a role", tok.dave, "set_group_member_role", body{"group_id": home, "user_id": dave.sub, "role": "owner"}, http.StatusNotFound, "PT404", "you are not a member of group"},
		{"an outsider leaves", tok.dave, "leave_group", body{"group_id": home}, http.StatusNotFound, "PT404", "you are not a member of group"},
		{"leaving a group that does not exist", tok.alice, "leave_group", body{"group_id": missing}, http.StatusNotFound, "PT404", "you are not a member of group"},
		{"an outsider deletes the group", tok.dave, "delete_group", body{"group_id": home}, http.StatusNotFound, "PT404", "you are not a member of group"},
		{"deleting a group that does not exist", tok.alice, "delete_group", body{"group_id": missing}, http.StatusNotFound, "PT404", "you are not a member of group"},
		// The user named is not in the caller's group: 404.
		{"removing someone who is not a member", tok.alice, "remove_group_member", body{"group_id": home, "user_id": dave.sub}, http.StatusNotFound, "PT404", "is not a member of group"},
		{"changing the role of someone who is not a member", tok.alice, "set_group_member_role", body{"group_id": home, "user_id": dave.sub, "role": "admin"}, http.StatusNotFound, "PT404", "is not a member of group"},
		// A member without the right: 403.
		{"a member adds someone", carolToken, "add_group_member", body{"group_id": home, "user_id": dave.sub}, http.StatusForbidden, "42501", "only owners and admins of group"},
		{"an admin adds an owner", tok.bob, "add_group_member", body{"group_id": home, "user_id": dave.sub, "role": "owner"}, http.StatusForbidden, "42501", "only owners of group"},
		{"an admin removes the owner", tok.bob, "remove_group_member", body{"group_id": home, "user_id": alice.sub}, http.StatusForbidden, "42501", "admins cannot remove owners"},
		{"an admin makes himself owner", tok.bob, "set_group_member_role", body{"group_id": home, "user_id": bob.sub, "role": "owner"}, http.StatusForbidden, "42501", "only owners of group"},
		{"an admin deletes the group", tok.bob, "delete_group", body{"group_id": home}, http.StatusForbidden, "42501", "only owners of group"},
		{"a token group member adds someone", tok.daveTeamA, "add_group_member", body{"group_id": home, "user_id": dave.sub}, http.StatusForbidden, "42501", "only owners and admins of group"},
		// Conflicts with the group's state.
		{"adding a member twice", tok.bob, "add_group_member", body{"group_id": home, "user_id": carol.sub}, http.StatusConflict, "23505", "is already a member of group"},
		{"a token group member leaves", tok.daveTeamA, "leave_group", body{"group_id": home}, http.StatusConflict, "PT409", "through your token's groups"},
		{"the last owner leaves", tok.alice, "leave_group", body{"group_id": home}, http.StatusBadRequest, "23514", "must keep at least one owner"},
		{"the last owner removes herself", tok.alice, "remove_group_member", body{"group_id": home, "user_id": alice.sub}, http.StatusBadRequest, "23514", "must keep at least one owner"},
		{"the last owner steps down", tok.alice, "set_group_member_role", body{"group_id": home, "user_id": alice.sub, "role": "admin"}, http.StatusBadRequest, "23514", "must keep at least one owner"},
	}
	members := func() []member { return superRows[member](t, su, membersSQL) }
	groupCount := func() int {
		var n int
		if err := su.QueryRow(t.Context(), "select count(*) from iam.groups").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before, groupsBefore := members(), groupCount()
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s: %d %s", c.name, c.status, c.code), func(t *testing.T) {
			resp := rpc(t, api, c.token, c.fn, c.body)
			wantError(t, resp, c.status, c.code, c.msg)
			for _, hidden := range []string{"Failing row", "iam.groups", "iam.group_members", "constraint"} {
				if strings.Contains(string(resp.body), hidden) {
					t.Errorf("the body shows %q: %s", hidden, resp)
				}
			}
			if len(resp.body) > 1000 {
				t.Errorf("the body is %d bytes: the caller's value is not cut short", len(resp.body))
			}
			wantSame(t, "iam.group_members", members(), before)
			if n := groupCount(); n != groupsBefore {
				t.Errorf("iam.groups holds %d groups, want %d", n, groupsBefore)
			}
		})
	}

	// The quotas of the groups block (lowered here by the superuser, as a
	// build would write them): 429.
	t.Run("quotas: 429 PT429", func(t *testing.T) {
		if _, err := su.Exec(t.Context(), `update iam.settings set max_members_per_group = 3, max_groups_created_per_user = 0`); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := su.Exec(context.Background(), `update iam.settings set max_members_per_group = 1000, max_groups_created_per_user = 100`); err != nil {
				t.Fatal(err)
			}
		}()
		wantError(t, rpc(t, api, tok.alice, "add_group_member", body{"group_id": home, "user_id": dave.sub}), http.StatusTooManyRequests, "PT429", "is full")
		wantError(t, rpc(t, api, tok.dave, "create_group", body{"name": "one too many"}), http.StatusTooManyRequests, "PT429", "you cannot create more than 0 groups")
		wantSame(t, "iam.group_members", members(), before)
		if n := groupCount(); n != groupsBefore {
			t.Errorf("iam.groups holds %d groups, want %d", n, groupsBefore)
		}
	})

	// A group the caller is not in and one that does not exist give the
	// same body, but for the id.
	t.Run("no existence oracle", func(t *testing.T) {
		notIn := rpc(t, api, tok.dave, "delete_group", body{"group_id": home})
		none := rpc(t, api, tok.dave, "delete_group", body{"group_id": missing})
		a := strings.ReplaceAll(string(notIn.body), strconv.FormatInt(home, 10), "N")
		b := strings.ReplaceAll(string(none.body), strconv.FormatInt(missing, 10), "N")
		if notIn.status != none.status || a != b {
			t.Errorf("a group dave is not in: %s\na group that does not exist: %s\nwant the same", notIn, none)
		}
	})

	// The same calls, by those who may make them: they succeed.
	t.Run("the ones who may still succeed", func(t *testing.T) {
		named := createGroup(t, api, tok.dave, "\u3000 dave's\u00a0room \u200b")
		var name string
		if err := su.QueryRow(t.Context(), "select name from iam.groups where id = $1", named).Scan(&name); err != nil || name != "dave's room" {
			t.Errorf("stored name %q (%v), want %q", name, err, "dave's room")
		}
		wantVoid(t, rpc(t, api, tok.bob, "add_group_member", body{"group_id": home, "user_id": dave.sub}))
		wantVoid(t, rpc(t, api, tok.alice, "set_group_member_role", body{"group_id": home, "user_id": dave.sub, "role": "owner"}))
		wantVoid(t, rpc(t, api, tok.alice, "leave_group", body{"group_id": home}))
		wantVoid(t, rpc(t, api, tok.dave, "remove_group_member", body{"group_id": home, "user_id": bob.sub}))
		wantVoid(t, rpc(t, api, tok.dave, "delete_group", body{"group_id": home}))
	})
}
