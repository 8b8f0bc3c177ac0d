package e2e

// README's "Sharing with groups", request by request, against a real
// PostgREST 12: the same requests (the README's JSON bodies verbatim), the
// answers it announces, and what the superuser then finds in the tables.
// Then what README lists after the walk-through (leave_group,
// delete_group) and Keycloak token groups.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// todo is a row of app.todos; chat one of app.chats. Group 0 is no group
// (group ids are at least 1; a JSON null leaves the field 0).
type todo struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
	Owner string `json:"owner_id"`
	Group int64  `json:"group_id"`
}

type chat struct {
	ID    int64  `json:"id"`
	Body  string `json:"body"`
	Owner string `json:"owner_id"`
	Group int64  `json:"group_id"`
}

// group is a row of GET /groups; member one of GET /group_members (and of
// iam.group_members).
type group struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	MyRole string `json:"my_role"`
}

type member struct {
	Group int64  `json:"group_id"`
	User  string `json:"user_id"`
	Role  string `json:"role"`
}

// readme is a request body exactly as README writes it.
func readme(body string) json.RawMessage { return json.RawMessage(body) }

// readmeIn is a request body as README writes it, with the shell's
// '$GROUP' (README keeps the id create_group answered in $GROUP: ids are
// random) replaced by the group's id.
func readmeIn(gid int64, body string) json.RawMessage {
	return json.RawMessage(strings.ReplaceAll(body, "'$GROUP'", strconv.FormatInt(gid, 10)))
}

// byGroup sorts memberships as membersSQL and GET /group_members?order=group_id,user_id do.
func byGroup(ms ...member) []member {
	return slices.SortedFunc(slices.Values(ms), func(a, b member) int {
		if a.Group != b.Group {
			return cmp.Compare(a.Group, b.Group)
		}
		return strings.Compare(a.User, b.User)
	})
}

// rpc calls POST /rpc/<fn>.
func rpc(t *testing.T, api *client, token, fn string, body any) response {
	t.Helper()
	return api.do(t, request{method: "POST", path: "/rpc/" + fn, token: token, body: body})
}

// createGroup calls POST /rpc/create_group, which answers 200 with the new
// group's id as a bare JSON number.
func createGroup(t *testing.T, api *client, token, name string) int64 {
	t.Helper()
	resp := rpc(t, api, token, "create_group", map[string]any{"name": name})
	wantStatus(t, resp, http.StatusOK)
	id, err := strconv.ParseInt(string(resp.body), 10, 64)
	if err != nil {
		t.Fatalf("got %s, want the new group's id as a JSON number", resp)
	}
	return id
}

// wantVoid checks the answer of a group API function returning void:
// PostgREST 12 answers 204 No Content, with no body.
func wantVoid(t *testing.T, resp response) {
	t.Helper()
	wantStatus(t, resp, http.StatusNoContent)
	if len(resp.body) != 0 {
		t.Fatalf("got %s, want no body", resp)
	}
}

// superRows reads rows as the superuser (RLS does not apply).
func superRows[T any](t *testing.T, su *pgx.Conn, sql string) []T {
	t.Helper()
	rows, err := su.Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("as superuser: %s: %v", sql, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		t.Fatalf("as superuser: %s: %v", sql, err)
	}
	return got
}

const (
	todosSQL   = "select id, title, done, owner_id::text, coalesce(group_id, 0) from app.todos order by id"
	chatsSQL   = "select id, body, owner_id::text, coalesce(group_id, 0) from app.chats order by id"
	membersSQL = "select group_id, user_id, role from iam.group_members order by group_id, user_id"
)

// wantSame fails the test unless got equals want.
func wantSame[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

// apiRows decodes a JSON array answer with status 200.
func apiRows[T any](t *testing.T, resp response) []T {
	t.Helper()
	wantStatus(t, resp, http.StatusOK)
	var got []T
	if err := json.Unmarshal(resp.body, &got); err != nil {
		t.Fatalf("got %s, want a JSON array: %v", resp, err)
	}
	return got
}

func get(t *testing.T, api *client, token, path string) response {
	t.Helper()
	return api.do(t, request{method: "GET", path: path, token: token})
}

func groupsScenario(t *testing.T, api *client, su *pgx.Conn, tok tokens) {
	// What the walk-through creates, as the superuser will find it.
	// home is README's $GROUP, the id create_group answers: random.
	var home int64
	milk := todo{ID: 1, Title: "buy milk", Owner: alice.sub}
	question := chat{ID: 1, Body: "who buys milk?", Owner: alice.sub}
	answer := chat{ID: 2, Body: "done!", Owner: bob.sub}
	var aliceOwnsHome, bobInHome member

	step(t, "an anonymous visitor cannot create a group (401)", func(t *testing.T) {
		resp := rpc(t, api, "", "create_group", readme(`{"name":"home"}`))
		// web_anon may not even use schema app (no anonymous rule anywhere).
		wantError(t, resp, http.StatusUnauthorized, "42501", "permission denied")
		if n := superRows[member](t, su, membersSQL); len(n) != 0 {
			t.Fatalf("iam.group_members holds %v, want nothing", n)
		}
	})

	step(t, "alice creates a group and gets its id, a random number below 2^53", func(t *testing.T) {
		resp := rpc(t, api, tok.alice, "create_group", readme(`{"name":"home"}`))
		wantStatus(t, resp, http.StatusOK)
		var err error
		// README: the answer is the bare id; a first group's id is not 1.
		if home, err = strconv.ParseInt(string(resp.body), 10, 64); err != nil || home <= 1 || home >= 1<<53 {
			t.Fatalf("got %s, want a random group id in (1, 2^53) as the body", resp)
		}
		milk.Group, question.Group, answer.Group = home, home, home
		aliceOwnsHome, bobInHome = member{home, alice.sub, "owner"}, member{home, bob.sub, "member"}
		wantSame(t, "iam.group_members", superRows[member](t, su, membersSQL), []member{aliceOwnsHome})
	})

	step(t, "alice adds bob as a member (204, no body)", func(t *testing.T) {
		resp := rpc(t, api, tok.alice, "add_group_member",
			readmeIn(home, `{"group_id":'$GROUP',"user_id":"b0b00000-0000-4000-8000-000000000b0b","role":"member"}`))
		wantVoid(t, resp)
		wantSame(t, "iam.group_members", superRows[member](t, su, membersSQL), []member{aliceOwnsHome, bobInHome})
	})

	step(t, "alice shares a todo with the group (201)", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: "/todos", token: tok.alice, body: readmeIn(home, `{"title":"buy milk","group_id":'$GROUP'}`)})
		wantStatus(t, resp, http.StatusCreated)
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
	})

	step(t, "alice posts in the room (201)", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: "/chats", token: tok.alice, body: readmeIn(home, `{"body":"who buys milk?","group_id":'$GROUP'}`)})
		wantStatus(t, resp, http.StatusCreated)
		wantSame(t, "app.chats", superRows[chat](t, su, chatsSQL), []chat{question})
	})

	step(t, "bob sees the shared todo", func(t *testing.T) {
		wantSame(t, "bob's GET /todos", apiRows[todo](t, get(t, api, tok.bob, "/todos")), []todo{milk})
	})

	step(t, "bob sees alice's message in the room", func(t *testing.T) {
		wantSame(t, "bob's GET /chats", apiRows[chat](t, get(t, api, tok.bob, "/chats")), []chat{question})
	})

	step(t, "bob ticks the todo off (204)", func(t *testing.T) {
		resp := api.do(t, request{method: "PATCH", path: "/todos?id=eq.1", token: tok.bob, body: readme(`{"done":true}`)})
		wantVoid(t, resp)
		milk.Done = true
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
	})

	step(t, "bob answers in the room (201)", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: "/chats", token: tok.bob, body: readmeIn(home, `{"body":"done!","group_id":'$GROUP'}`)})
		wantStatus(t, resp, http.StatusCreated)
		wantSame(t, "app.chats", superRows[chat](t, su, chatsSQL), []chat{question, answer})
	})

	step(t, "alice sees bob's answer", func(t *testing.T) {
		wantSame(t, "alice's GET /chats", apiRows[chat](t, get(t, api, tok.alice, "/chats?order=id")), []chat{question, answer})
	})

	// README's page function requests (page by id): newest first, then
	// the page before a cursor; an outsider's page of the room is empty.
	step(t, "bob pages through the room with GET /rpc/chats_page", func(t *testing.T) {
		wantSame(t, "bob's GET /rpc/chats_page?group_id=$GROUP", apiRows[chat](t, get(t, api, tok.bob, fmt.Sprintf("/rpc/chats_page?group_id=%d", home))), []chat{answer, question})
		wantSame(t, "bob's GET /rpc/chats_page?group_id=$GROUP&before=2", apiRows[chat](t, get(t, api, tok.bob, fmt.Sprintf("/rpc/chats_page?group_id=%d&before=%d", home, answer.ID))), []chat{question})
		wantSame(t, "bob's GET /rpc/chats_page?page_size=1", apiRows[chat](t, get(t, api, tok.bob, "/rpc/chats_page?page_size=1")), []chat{answer})
		wantSame(t, "dave's GET /rpc/chats_page?group_id=$GROUP", apiRows[chat](t, get(t, api, tok.dave, fmt.Sprintf("/rpc/chats_page?group_id=%d", home))), nil)
	})

	step(t, "a page size out of range is 400 (22023)", func(t *testing.T) {
		resp := api.do(t, request{method: "GET", path: "/rpc/chats_page?page_size=5000", token: tok.bob})
		wantError(t, resp, http.StatusBadRequest, "22023", "page_size must be between 1 and 1000")
	})

	// What bob may not do. Rows RLS hides from his DELETE and UPDATE match
	// nothing: 204 (or 200 [] with return=representation), table unchanged.
	for _, c := range []struct {
		name, method, path, prefer string
		body                       any
		status                     int
		wantBody                   string
	}{
		{"bob cannot delete alice's todo (members cannot delete: 0 rows)", "DELETE", "/todos?id=eq.1", "", nil, http.StatusNoContent, ""},
		{"bob's DELETE of alice's todo with return=representation returns no rows", "DELETE", "/todos?id=eq.1", "return=representation", nil, http.StatusOK, "[]"},
		{"bob cannot edit alice's message (only authors edit: 0 rows)", "PATCH", "/chats?id=eq.1", "", readme(`{"body":"edited by bob"}`), http.StatusNoContent, ""},
		{"bob's PATCH of alice's message with return=representation returns no rows", "PATCH", "/chats?id=eq.1", "return=representation", readme(`{"body":"edited by bob"}`), http.StatusOK, "[]"},
		{"bob cannot delete alice's message (only the author and the room's admins: 0 rows)", "DELETE", "/chats?id=eq.1", "", nil, http.StatusNoContent, ""},
	} {
		step(t, c.name, func(t *testing.T) {
			resp := api.do(t, request{method: c.method, path: c.path, token: tok.bob, prefer: c.prefer, body: c.body})
			wantStatus(t, resp, c.status)
			if string(resp.body) != c.wantBody {
				t.Fatalf("got %s, want body %q", resp, c.wantBody)
			}
			wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
			wantSame(t, "app.chats", superRows[chat](t, su, chatsSQL), []chat{question, answer})
		})
	}

	step(t, "bob cannot add carol (403: only owners and admins manage members)", func(t *testing.T) {
		resp := rpc(t, api, tok.bob, "add_group_member", readmeIn(home, `{"group_id":'$GROUP',"user_id":"c0c00000-0000-4000-8000-00000000c0c0"}`))
		t.Logf("POST /rpc/add_group_member: %s", resp)
		want := fmt.Sprintf("only owners and admins of group %d can add members", home)
		e := wantError(t, resp, http.StatusForbidden, "42501", want)
		if e.Message != want {
			t.Fatalf("got message %q, want README's exactly", e.Message)
		}
		// README: {"code":"42501","message":"only owners and admins of group <id> can add members",...}
		if !strings.HasPrefix(string(resp.body), `{"code":"42501",`) {
			t.Errorf("got %s, want a body starting as README's", resp)
		}
		wantSame(t, "iam.group_members", superRows[member](t, su, membersSQL), []member{aliceOwnsHome, bobInHome})
	})

	// A group bob is not in: neither it nor its members show in his lists.
	var teamA int64
	step(t, "alice creates a second group, team-a, with carol and without bob", func(t *testing.T) {
		teamA = createGroup(t, api, tok.alice, "team-a")
		if teamA == home || teamA == home+1 {
			t.Fatalf("got group %d after %d, want a random id", teamA, home)
		}
		wantVoid(t, rpc(t, api, tok.alice, "add_group_member", map[string]any{"group_id": teamA, "user_id": carol.sub}))
	})
	aliceOwnsTeamA, carolInTeamA := member{teamA, alice.sub, "owner"}, member{teamA, carol.sub, "member"}

	step(t, "bob's GET /groups: home, where he is a member", func(t *testing.T) {
		resp := get(t, api, tok.bob, "/groups")
		t.Logf("GET /groups: %s", resp)
		// README: [{"id":<id>,"name":"home","my_role":"member",...}]
		if !strings.HasPrefix(string(resp.body), fmt.Sprintf(`[{"id":%d,"name":"home","my_role":"member",`, home)) {
			t.Errorf("got %s, want a body starting as README's", resp)
		}
		wantSame(t, "bob's GET /groups", apiRows[group](t, resp), []group{{home, "home", "member"}})
	})

	step(t, "alice's GET /groups: both, as owner", func(t *testing.T) {
		wantSame(t, "alice's GET /groups", apiRows[group](t, get(t, api, tok.alice, "/groups?order=name")),
			[]group{{home, "home", "owner"}, {teamA, "team-a", "owner"}})
	})

	step(t, "bob's GET /group_members: his co-members only", func(t *testing.T) {
		wantSame(t, "bob's GET /group_members", apiRows[member](t, get(t, api, tok.bob, "/group_members?order=group_id,user_id")),
			[]member{aliceOwnsHome, bobInHome})
	})

	step(t, "bob's GET /group_members of team-a: [] (not an error)", func(t *testing.T) {
		wantSame(t, "bob's GET /group_members?group_id=eq.<team-a>", apiRows[member](t, get(t, api, tok.bob, fmt.Sprintf("/group_members?group_id=eq.%d", teamA))), nil)
	})

	step(t, "alice's GET /group_members: both groups", func(t *testing.T) {
		wantSame(t, "alice's GET /group_members", apiRows[member](t, get(t, api, tok.alice, "/group_members?order=group_id,user_id")),
			byGroup(aliceOwnsHome, bobInHome, aliceOwnsTeamA, carolInTeamA))
	})

	step(t, "alice removes bob (204)", func(t *testing.T) {
		resp := rpc(t, api, tok.alice, "remove_group_member", readmeIn(home, `{"group_id":'$GROUP',"user_id":"b0b00000-0000-4000-8000-000000000b0b"}`))
		wantVoid(t, resp)
		wantSame(t, "iam.group_members", superRows[member](t, su, membersSQL), byGroup(aliceOwnsHome, aliceOwnsTeamA, carolInTeamA))
	})

	step(t, "bob's next GET /todos no longer has the shared todo", func(t *testing.T) {
		wantSame(t, "bob's GET /todos", apiRows[todo](t, get(t, api, tok.bob, "/todos")), nil)
	})

	step(t, "bob's next GET /chats has only his own message", func(t *testing.T) {
		wantSame(t, "bob's GET /chats", apiRows[chat](t, get(t, api, tok.bob, "/chats")), []chat{answer})
	})

	step(t, "bob can no longer post in the room (403)", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: "/chats", token: tok.bob, body: readmeIn(home, `{"body":"still here?","group_id":'$GROUP'}`)})
		wantError(t, resp, http.StatusForbidden, "42501", fmt.Sprintf("you cannot put rows of app.chats into group %d", home))
		wantSame(t, "app.chats", superRows[chat](t, su, chatsSQL), []chat{question, answer})
	})

	step(t, "bob can no longer edit his own message in the room (200 [], unchanged)", func(t *testing.T) {
		// An owner edits a row in a group only while a member (SPEC §11):
		// RLS hides it from his PATCH, which matches nothing.
		resp := api.do(t, request{method: "PATCH", path: fmt.Sprintf("/chats?id=eq.%d", answer.ID), token: tok.bob,
			prefer: "return=representation", body: map[string]any{"body": "edited after removal"}})
		wantStatus(t, resp, http.StatusOK)
		if string(resp.body) != "[]" {
			t.Errorf("got %s, want []", resp)
		}
		wantSame(t, "app.chats", superRows[chat](t, su, chatsSQL), []chat{question, answer})
	})

	step(t, "bob's GET /groups and /group_members are empty", func(t *testing.T) {
		wantSame(t, "bob's GET /groups", apiRows[group](t, get(t, api, tok.bob, "/groups")), nil)
		wantSame(t, "bob's GET /group_members", apiRows[member](t, get(t, api, tok.bob, "/group_members")), nil)
	})

	// README, after the walk-through: leave_group, delete_group.
	step(t, "alice cannot leave home: she is its last owner (400, 23514)", func(t *testing.T) {
		resp := rpc(t, api, tok.alice, "leave_group", readmeIn(home, `{"group_id":'$GROUP'}`))
		wantError(t, resp, http.StatusBadRequest, "23514", fmt.Sprintf("group %d must keep at least one owner", home))
		wantSame(t, "iam.group_members", superRows[member](t, su, membersSQL), byGroup(aliceOwnsHome, aliceOwnsTeamA, carolInTeamA))
	})

	step(t, "alice adds bob back, as an admin", func(t *testing.T) {
		wantVoid(t, rpc(t, api, tok.alice, "add_group_member", readmeIn(home, `{"group_id":'$GROUP',"user_id":"b0b00000-0000-4000-8000-000000000b0b","role":"admin"}`)))
	})
	bobAdminOfHome := member{home, bob.sub, "admin"}
	membersNow := byGroup(aliceOwnsHome, bobAdminOfHome, aliceOwnsTeamA, carolInTeamA)

	for _, c := range []struct {
		name, fn, body, message string
	}{
		{"bob, an admin, cannot delete home (403: owners only)", "delete_group", `{"group_id":'$GROUP'}`,
			"only owners of group %d can delete the group"},
		{"bob, an admin, cannot remove alice, an owner (403)", "remove_group_member", `{"group_id":'$GROUP',"user_id":"` + alice.sub + `"}`,
			"admins cannot remove owners of group %d"},
		{"bob, an admin, cannot demote alice, an owner (403)", "set_group_member_role", `{"group_id":'$GROUP',"user_id":"` + alice.sub + `","role":"member"}`,
			"only owners of group %d can make or unmake owners"},
		{"bob, an admin, cannot make himself an owner (403)", "set_group_member_role", `{"group_id":'$GROUP',"user_id":"` + bob.sub + `","role":"owner"}`,
			"only owners of group %d can make or unmake owners"},
	} {
		step(t, c.name, func(t *testing.T) {
			wantError(t, rpc(t, api, tok.bob, c.fn, readmeIn(home, c.body)), http.StatusForbidden, "42501", fmt.Sprintf(c.message, home))
			wantSame(t, "iam.group_members", superRows[member](t, su, membersSQL), membersNow)
			wantSame(t, "app.chats", superRows[chat](t, su, chatsSQL), []chat{question, answer})
		})
	}

	var teamChat chat
	step(t, "alice posts in team-a's room too", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: "/chats", token: tok.alice, prefer: "return=representation", body: map[string]any{"body": "hello team", "group_id": teamA}})
		wantStatus(t, resp, http.StatusCreated)
		var got []chat
		if err := json.Unmarshal(resp.body, &got); err != nil || len(got) != 1 {
			t.Fatalf("got %s, want the new message (%v)", resp, err)
		}
		teamChat = got[0]
		if want := (chat{ID: teamChat.ID, Body: "hello team", Owner: alice.sub, Group: teamA}); teamChat != want {
			t.Fatalf("got %+v, want %+v", teamChat, want)
		}
	})

	step(t, "alice deletes home (204)", func(t *testing.T) {
		wantVoid(t, rpc(t, api, tok.alice, "delete_group", readmeIn(home, `{"group_id":'$GROUP'}`)))
		if groups := superRows[group](t, su, "select id, name, '' from iam.groups order by id"); !slices.Equal(groups, []group{{teamA, "team-a", ""}}) {
			t.Fatalf("iam.groups holds %+v, want only team-a", groups)
		}
		wantSame(t, "iam.group_members", superRows[member](t, su, membersSQL), []member{aliceOwnsTeamA, carolInTeamA})
	})

	step(t, "home's messages are gone with it, team-a's are not", func(t *testing.T) {
		wantSame(t, "app.chats", superRows[chat](t, su, chatsSQL), []chat{teamChat})
	})

	step(t, "the shared todo is back to alice only", func(t *testing.T) {
		milk.Group = 0
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
		wantSame(t, "alice's GET /todos", apiRows[todo](t, get(t, api, tok.alice, "/todos")), []todo{milk})
		wantSame(t, "bob's GET /todos", apiRows[todo](t, get(t, api, tok.bob, "/todos")), nil)
		wantSame(t, "bob's GET /chats", apiRows[chat](t, get(t, api, tok.bob, "/chats")), nil)
	})

	tokenGroupsScenario(t, api, su, tok, teamA)
}

// tokenGroupsScenario: `token claim 'groups' as member`. Dave has no
// membership row; his token lists Keycloak group /team-a, which a DBA links
// to team-a.
func tokenGroupsScenario(t *testing.T, api *client, su *pgx.Conn, tok tokens, teamA int64) {
	var plan todo
	step(t, "alice shares a todo with team-a", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: "/todos", token: tok.alice, body: map[string]any{"title": "team-a plan", "group_id": teamA}})
		wantStatus(t, resp, http.StatusCreated)
		got := superRows[todo](t, su, todosSQL)
		if len(got) != 2 {
			t.Fatalf("app.todos holds %+v, want the shared todo and team-a plan", got)
		}
		plan = got[1]
		if want := (todo{ID: plan.ID, Title: "team-a plan", Owner: alice.sub, Group: teamA}); plan != want {
			t.Fatalf("app.todos holds %+v, want %+v last", got, want)
		}
	})

	step(t, "before a DBA links team-a to /team-a, dave's token group gives nothing", func(t *testing.T) {
		wantSame(t, "dave's GET /todos", apiRows[todo](t, get(t, api, tok.daveTeamA, "/todos")), nil)
	})

	step(t, "a DBA links team-a to the Keycloak group /team-a", func(t *testing.T) {
		if _, err := su.Exec(t.Context(), "update iam.groups set token_name = '/team-a' where id = $1", teamA); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := su.QueryRow(t.Context(), "select count(*) from iam.group_members where user_id = $1", dave.sub).Scan(&n); err != nil || n != 0 {
			t.Fatalf("dave has %d membership rows (%v), want none", n, err)
		}
	})

	step(t, `dave, with "groups": ["/team-a"] in his token, reads team-a's todos`, func(t *testing.T) {
		wantSame(t, "dave's GET /todos", apiRows[todo](t, get(t, api, tok.daveTeamA, "/todos")), []todo{plan})
	})

	step(t, `dave, with "groups": ["/team-a"], reads team-a's room`, func(t *testing.T) {
		got := apiRows[chat](t, get(t, api, tok.daveTeamA, "/chats"))
		if len(got) != 1 || got[0].Body != "hello team" || got[0].Group != teamA {
			t.Fatalf("dave's GET /chats: got %+v, want alice's hello team", got)
		}
	})

	step(t, `dave, with "groups": ["/team-a"], sees team-a in GET /groups as a member`, func(t *testing.T) {
		wantSame(t, "dave's GET /groups", apiRows[group](t, get(t, api, tok.daveTeamA, "/groups")), []group{{teamA, "team-a", "member"}})
	})

	step(t, "dave without the groups claim reads nothing", func(t *testing.T) {
		wantSame(t, "dave's GET /todos", apiRows[todo](t, get(t, api, tok.dave, "/todos")), nil)
		wantSame(t, "dave's GET /groups", apiRows[group](t, get(t, api, tok.dave, "/groups")), nil)
	})

	step(t, `dave with "groups": ["/team-b"] reads nothing`, func(t *testing.T) {
		wantSame(t, "dave's GET /todos", apiRows[todo](t, get(t, api, tok.daveTeamB, "/todos")), nil)
	})

	step(t, "a token group gives access to rows, not the right to manage the group (403)", func(t *testing.T) {
		resp := rpc(t, api, tok.daveTeamA, "add_group_member", map[string]any{"group_id": teamA, "user_id": bob.sub})
		wantError(t, resp, http.StatusForbidden, "42501", fmt.Sprintf("only owners and admins of group %d can add members", teamA))
		var n int
		if err := su.QueryRow(t.Context(), "select count(*) from iam.group_members where user_id = $1", bob.sub).Scan(&n); err != nil || n != 0 {
			t.Fatalf("bob has %d membership rows (%v), want none", n, err)
		}
	})
}
