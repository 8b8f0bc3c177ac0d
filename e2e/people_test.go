package e2e

// README's "Inviting people", request by request, against a real
// PostgREST 12 run from the shipped postgrest.conf (db-pre-request
// included): the user directory, invitations, finding people by name,
// ownership transfer and the group's audit trail; every refusal with its
// HTTP status and code, and what the superuser then finds in the tables.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iamc/iamc/internal/exampletest"
)

// readmeWith is a request body as README writes it, with the shell's
// '$NAME' variables replaced by their values.
func readmeWith(body string, vars map[string]any) json.RawMessage {
	for name, v := range vars {
		body = strings.ReplaceAll(body, "'$"+name+"'", fmt.Sprint(v))
	}
	return json.RawMessage(body)
}

func TestInvitingPeople(t *testing.T) {
	bin := postgrestBinary(t)
	s := exampletest.Server(t)
	su := newDatabase(t, s, "people", buildPolicies(t))
	const secret = "e2e-people-shared-secret-of-more-than-32-characters"
	api := startPostgREST(t, bin, s, "people", jwtConfig{secret: secret})
	sign := hs256(secret)
	now := time.Now()
	token := func(u user, edit func(map[string]any)) string {
		c := u.claims(roleClaim, now)
		c["name"] = strings.ToUpper(u.username[:1]) + u.username[1:] + " Example"
		if edit != nil {
			edit(c)
		}
		return sign.token(t, c)
	}
	erin, frank := user{"erin", "e0e00000-0000-4000-8000-00000000e0e0"}, user{"frank", "f0f00000-0000-4000-8000-00000000f0f0"}
	tokAlice, tokBob, tokCarol, tokDave, tokErin, tokFrank := token(alice, nil), token(bob, nil), token(carol, nil), token(dave, nil), token(erin, nil), token(frank, nil)
	count := func(t *testing.T, sql string, args ...any) int {
		t.Helper()
		var n int
		if err := su.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
			t.Fatalf("as superuser: %s: %v", sql, err)
		}
		return n
	}
	state := func(t *testing.T) string {
		t.Helper()
		var s string
		err := su.QueryRow(t.Context(), `select concat_ws(' | ',
		    (select string_agg(format('%s %s %s', group_id, user_id, role), ', ' order by group_id, user_id) from iam.group_members),
		    (select string_agg(format('%s %s %s', id, uses, revoked_at is not null), ', ' order by id) from iam.invitations),
		    (select count(*) from iam.audit_log),
		    (select string_agg(format('%s %s', id, owner_id), ', ' order by id) from app.todos))`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	refused := func(t *testing.T, resp response, status int, code, msg string, before string) apiError {
		t.Helper()
		e := wantError(t, resp, status, code, msg)
		if after := state(t); after != before {
			t.Fatalf("a refused request changed the tables:\nbefore %s\nafter  %s", before, after)
		}
		return e
	}

	var home, work int64
	var inv struct {
		ID    int64  `json:"invitation_id"`
		Token string `json:"token"`
	}

	step(t, "reading writes nothing: frank's GET leaves the directory as it was", func(t *testing.T) {
		wantStatus(t, get(t, api, tokFrank, "/todos"), http.StatusOK)
		if n := count(t, `select count(*) from iam.users where user_id = $1`, frank.sub); n != 0 {
			t.Fatal("a GET put frank into the directory")
		}
	})

	step(t, "any write request puts its caller into the directory (the db-pre-request)", func(t *testing.T) {
		wantStatus(t, api.do(t, request{method: "POST", path: "/todos", token: tokErin, body: map[string]any{"title": "erin's"}}), http.StatusCreated)
		var name, mail string
		if err := su.QueryRow(t.Context(), `select username, email from iam.users where user_id = $1`, erin.sub).Scan(&name, &mail); err != nil || name != "erin" || mail != "erin@example.com" {
			t.Fatalf("erin's profile: %q %q (%v)", name, mail, err)
		}
	})

	step(t, "bob, who has only read so far, calls sync_profile once", func(t *testing.T) {
		resp := rpc(t, api, tokBob, "sync_profile", readme(`{}`))
		wantStatus(t, resp, http.StatusOK)
		var p map[string]any
		if err := json.Unmarshal(resp.body, &p); err != nil || p["username"] != "bob" || p["name"] != "Bob Example" || p["user_id"] != bob.sub {
			t.Fatalf("sync_profile answered %s (%v)", resp, err)
		}
		wantStatus(t, rpc(t, api, tokCarol, "sync_profile", readme(`{}`)), http.StatusOK)
	})

	step(t, "alice creates home and invites one member for two days", func(t *testing.T) {
		home = createGroup(t, api, tokAlice, "home")
		resp := rpc(t, api, tokAlice, "create_invitation",
			readmeWith(`{"group_id":'$GROUP',"role":"member","expires_in":"2 days","max_uses":1}`, map[string]any{"GROUP": home}))
		wantStatus(t, resp, http.StatusOK)
		if err := json.Unmarshal(resp.body, &inv); err != nil || len(inv.Token) != 43 || inv.ID == 0 {
			t.Fatalf("create_invitation answered %s (%v)", resp, err)
		}
		if n := count(t, `select count(*) from iam.invitations where token_sha256 = sha256(convert_to($1, 'UTF8'))`, inv.Token); n != 1 {
			t.Fatal("the invitation is not stored by its token's SHA-256")
		}
	})

	step(t, "alice lists home's open invitations, without the token", func(t *testing.T) {
		resp := get(t, api, tokAlice, fmt.Sprintf("/group_invitations?group_id=eq.%d", home))
		wantStatus(t, resp, http.StatusOK)
		if strings.Contains(string(resp.body), inv.Token) || !strings.Contains(string(resp.body), fmt.Sprintf(`"id":%d`, inv.ID)) {
			t.Fatalf("GET /group_invitations: %s", resp)
		}
		if got := apiRows[map[string]any](t, get(t, api, tokBob, "/group_invitations")); len(got) != 0 {
			t.Fatalf("bob lists invitations: %v", got)
		}
	})

	step(t, "bob accepts: a member of home", func(t *testing.T) {
		resp := rpc(t, api, tokBob, "accept_invitation", readmeWith(`{"token":"'$TOKEN'"}`, map[string]any{"TOKEN": inv.Token}))
		wantStatus(t, resp, http.StatusOK)
		if string(resp.body) != fmt.Sprintf(`{"role": "member", "group_id": %d}`, home) {
			t.Fatalf("accept_invitation answered %s", resp)
		}
		if n := count(t, `select count(*) from iam.group_members where group_id = $1 and user_id = $2 and role = 'member'`, home, bob.sub); n != 1 {
			t.Fatal("bob is not a member of home")
		}
	})

	var unusable apiError
	step(t, "used up, expired, revoked and unknown tokens: the same 404", func(t *testing.T) {
		before := state(t)
		unusable = refused(t, rpc(t, api, tokCarol, "accept_invitation", map[string]any{"token": inv.Token}), http.StatusNotFound, "PT404", "this invitation is not valid", before)
		var expired, revoked struct {
			ID    int64  `json:"invitation_id"`
			Token string `json:"token"`
		}
		for _, x := range []*struct {
			ID    int64  `json:"invitation_id"`
			Token string `json:"token"`
		}{&expired, &revoked} {
			resp := rpc(t, api, tokAlice, "create_invitation", map[string]any{"group_id": home})
			wantStatus(t, resp, http.StatusOK)
			if err := json.Unmarshal(resp.body, x); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := su.Exec(t.Context(), `update iam.invitations set expires_at = now() - interval '1 second' where id = $1`, expired.ID); err != nil {
			t.Fatal(err)
		}
		wantVoid(t, rpc(t, api, tokAlice, "revoke_invitation", map[string]any{"invitation_id": revoked.ID}))
		before = state(t)
		for _, tok := range []string{expired.Token, revoked.Token, strings.Repeat("A", 43)} {
			e := refused(t, rpc(t, api, tokCarol, "accept_invitation", map[string]any{"token": tok}), http.StatusNotFound, "PT404", "this invitation is not valid", before)
			if e.Code != unusable.Code || e.Message != unusable.Message || *e.Details != *unusable.Details || *e.Hint != *unusable.Hint {
				t.Fatalf("answered %+v, a used-up token %+v", e, unusable)
			}
		}
	})

	step(t, "refusals of create_invitation and accept_invitation, with their statuses", func(t *testing.T) {
		resp := rpc(t, api, tokAlice, "create_invitation", map[string]any{"group_id": home, "role": "admin"})
		wantStatus(t, resp, http.StatusOK)
		var adminInv struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(resp.body, &adminInv); err != nil {
			t.Fatal(err)
		}
		wantVoid(t, rpc(t, api, tokAlice, "set_group_member_role", map[string]any{"group_id": home, "user_id": bob.sub, "role": "admin"}))
		before := state(t)
		for _, c := range []struct {
			name      string
			token     string
			fn        string
			body      map[string]any
			status    int
			code, msg string
		}{
			{"a member who is admin already takes an admin invitation", tokBob, "accept_invitation", map[string]any{"token": adminInv.Token}, http.StatusConflict, "23505", "already a member"},
			{"a stranger invites", tokCarol, "create_invitation", map[string]any{"group_id": home}, http.StatusNotFound, "PT404", "you are not a member of group"},
			{"an admin invites an owner", tokBob, "create_invitation", map[string]any{"group_id": home, "role": "owner"}, http.StatusForbidden, "42501", "only owners of group"},
			{"an invitation for 31 days", tokAlice, "create_invitation", map[string]any{"group_id": home, "expires_in": "31 days"}, http.StatusBadRequest, "22023", "expires_in must be"},
			{"anonymous", "", "create_invitation", map[string]any{"group_id": home}, http.StatusUnauthorized, "42501", "permission denied"},
			{"no token in the body", tokCarol, "accept_invitation", map[string]any{"token": nil}, http.StatusBadRequest, "22023", "token is required"},
		} {
			refused(t, rpc(t, api, c.token, c.fn, c.body), c.status, c.code, c.msg, before)
		}
		if _, err := su.Exec(t.Context(), `update iam.settings set max_invitations_per_group = 1`); err != nil {
			t.Fatal(err)
		}
		refused(t, rpc(t, api, tokAlice, "create_invitation", map[string]any{"group_id": home}), http.StatusTooManyRequests, "PT429", "open invitations, the most it may have", before)
		if _, err := su.Exec(t.Context(), `update iam.settings set max_invitations_per_group = 100`); err != nil {
			t.Fatal(err)
		}
		wantVoid(t, rpc(t, api, tokAlice, "set_group_member_role", map[string]any{"group_id": home, "user_id": bob.sub, "role": "member"}))
	})

	step(t, "alice adds bob to work by username; strangers and nobody answer alike", func(t *testing.T) {
		work = createGroup(t, api, tokAlice, "work")
		wantVoid(t, rpc(t, api, tokAlice, "add_group_member", readmeWith(`{"group_id":'$WORK',"username":"bob"}`, map[string]any{"WORK": work})))
		before := state(t)
		strangers := refused(t, rpc(t, api, tokAlice, "add_group_member", map[string]any{"group_id": work, "username": "carol"}), http.StatusNotFound, "PT404", "no one who shares a group with you has the username carol", before)
		nobody := refused(t, rpc(t, api, tokAlice, "add_group_member", map[string]any{"group_id": work, "username": "nobod"}), http.StatusNotFound, "PT404", "no one who shares a group with you has the username nobod", before)
		if strings.Replace(strangers.Message, "carol", "nobod", 1) != nobody.Message || *strangers.Details != *nobody.Details || *strangers.Hint != *nobody.Hint {
			t.Fatalf("carol (who exists) answered %+v, nobody %+v", strangers, nobody)
		}
		// A stranger to work cannot look anyone up through it.
		refused(t, rpc(t, api, tokCarol, "add_group_member", map[string]any{"group_id": work, "username": "bob"}), http.StatusNotFound, "PT404", "you are not a member of group", before)
	})

	step(t, "GET /group_members shows usernames and names, no email", func(t *testing.T) {
		got := apiRows[map[string]any](t, get(t, api, tokBob, fmt.Sprintf("/group_members?group_id=eq.%d&order=username", work)))
		if len(got) != 2 || got[0]["username"] != "alice" || got[0]["name"] != "Alice Example" || got[0]["email"] != nil || got[1]["username"] != "bob" {
			t.Fatalf("bob's GET /group_members: %v", got)
		}
	})

	var todo int64
	step(t, "alice hands a todo to bob; he owns it, she no longer sees it", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: "/todos", token: tokAlice, prefer: "return=representation", body: map[string]any{"title": "water the plants"}})
		wantStatus(t, resp, http.StatusCreated)
		var rows []struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(resp.body, &rows); err != nil || len(rows) != 1 {
			t.Fatalf("%s (%v)", resp, err)
		}
		todo = rows[0].ID
		before := state(t)
		refused(t, rpc(t, api, tokBob, "todos_transfer", map[string]any{"id": todo, "username": "alice"}), http.StatusNotFound, "PT404", "you own no row of app.todos", before)
		refused(t, api.do(t, request{method: "PATCH", path: fmt.Sprintf("/todos?id=eq.%d", todo), token: tokAlice, body: map[string]any{"owner_id": bob.sub}}),
			http.StatusForbidden, "42501", "cannot be changed", before)
		wantVoid(t, rpc(t, api, tokAlice, "todos_transfer", readmeWith(`{"id":'$TODO',"username":"bob"}`, map[string]any{"TODO": todo})))
		if got := apiRows[map[string]any](t, get(t, api, tokAlice, fmt.Sprintf("/todos?id=eq.%d", todo))); len(got) != 0 {
			t.Fatalf("alice still sees the todo: %v", got)
		}
		if got := apiRows[map[string]any](t, get(t, api, tokBob, fmt.Sprintf("/todos?id=eq.%d", todo))); len(got) != 1 || got[0]["owner_id"] != bob.sub {
			t.Fatalf("bob's GET of the todo: %v", got)
		}
	})

	step(t, "alice hands home to bob: he owns it, she is an admin", func(t *testing.T) {
		wantVoid(t, rpc(t, api, tokAlice, "transfer_group", readmeWith(`{"group_id":'$GROUP',"username":"bob"}`, map[string]any{"GROUP": home})))
		var roles string
		if err := su.QueryRow(t.Context(), `select string_agg(user_id || ' ' || role, ', ' order by user_id) from iam.group_members where group_id = $1`, home).Scan(&roles); err != nil {
			t.Fatal(err)
		}
		if roles != alice.sub+" admin, "+bob.sub+" owner" {
			t.Fatalf("home's members: %s", roles)
		}
	})

	step(t, "two accepts of a single-use invitation at once: exactly one 200", func(t *testing.T) {
		resp := rpc(t, api, tokBob, "create_invitation", map[string]any{"group_id": home})
		wantStatus(t, resp, http.StatusOK)
		var once struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(resp.body, &once); err != nil {
			t.Fatal(err)
		}
		racers := []string{tokCarol, tokDave, tokErin, tokFrank}
		statuses := make([]int, len(racers))
		var wg sync.WaitGroup
		release := make(chan struct{})
		for i, tok := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				statuses[i] = api.do(t, request{method: "POST", path: "/rpc/accept_invitation", token: tok, body: map[string]any{"token": once.Token}}).status
			}()
		}
		close(release)
		wg.Wait()
		ok := 0
		for _, st := range statuses {
			switch st {
			case http.StatusOK:
				ok++
			case http.StatusNotFound:
			default:
				t.Errorf("an accept answered %d", st)
			}
		}
		if ok != 1 {
			t.Fatalf("statuses %v: %d accepts succeeded, want 1", statuses, ok)
		}
		if n := count(t, `select uses from iam.invitations where token_sha256 = sha256(convert_to($1, 'UTF8'))`, once.Token); n != 1 {
			t.Fatalf("the invitation was used %d times", n)
		}
	})

	step(t, "home's audit trail: every change, to its owners and admins only", func(t *testing.T) {
		got := apiRows[map[string]any](t, get(t, api, tokAlice, fmt.Sprintf("/group_audit?group_id=eq.%d&order=at", home)))
		var actions []string
		for _, e := range got {
			actions = append(actions, e["action"].(string))
		}
		want := "group.create invitation.create invitation.accept invitation.create invitation.create invitation.revoke invitation.create " +
			"member.role member.role group.transfer invitation.create invitation.accept"
		if strings.Join(actions, " ") != want {
			t.Fatalf("alice's GET /group_audit: %s\nwant %s", strings.Join(actions, " "), want)
		}
		if got := apiRows[map[string]any](t, get(t, api, tokErin, fmt.Sprintf("/group_audit?group_id=eq.%d", home))); len(got) != 0 {
			t.Fatalf("a member reads the audit trail: %v", got)
		}
		if got := apiRows[map[string]any](t, get(t, api, tokDave, "/group_audit")); len(got) != 0 {
			t.Fatalf("a stranger reads the audit trail: %v", got)
		}
		wantError(t, get(t, api, "", "/group_audit"), http.StatusUnauthorized, "42501", "permission denied")
	})

	step(t, "the todo's transfer is in the log too (no group: the DBA's view only)", func(t *testing.T) {
		var n int
		err := su.QueryRow(t.Context(), `select count(*) from iam.audit_log where action = 'row.transfer' and object = $1 and actor = $2 and subject = $3`,
			fmt.Sprint("app.todos ", todo), alice.sub, bob.sub).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("row.transfer entries: %d (%v)", n, err)
		}
		if _, err := su.Exec(t.Context(), `update iam.audit_log set actor = null`); err == nil {
			t.Fatal("the superuser updated the audit trail")
		}
	})
}
