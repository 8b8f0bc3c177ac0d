package e2e

// README's "Sharing a todo with more people", request by request, against
// a real PostgREST 12: the share API (POST /rpc/todos_share,
// /rpc/todos_unshare, GET /rpc/todos_shares), the statuses of its errors,
// and what the superuser then finds in app.todos and the share table.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// share is a row of GET /rpc/todos_shares.
type share struct {
	User  *string  `json:"user_id"`
	Group *int64   `json:"group_id"`
	Perms []string `json:"permissions"`
	By    string   `json:"shared_by"`
}

// shareRow is a row of iam.app_todos_shares as the superuser sees it.
type shareRow struct {
	Todo     int64
	User     string
	Group    int64
	CanWrite bool
}

const sharesSQL = "select row_id, coalesce(user_id::text, ''), coalesce(group_id, 0), can_write from iam.app_todos_shares order by row_id, user_id, group_id"

func sharingScenario(t *testing.T, api *client, su *pgx.Conn, tok tokens) {
	post := func(token, path string, body any) response {
		return api.do(t, request{method: "POST", path: path, token: token, body: body})
	}
	milk := todo{ID: 1, Title: "buy milk", Owner: alice.sub}
	var home int64

	step(t, "alice creates a todo; bob does not see it", func(t *testing.T) {
		wantStatus(t, post(tok.alice, "/todos", readme(`{"title":"buy milk"}`)), http.StatusCreated)
		wantSame(t, "bob's GET /todos", apiRows[todo](t, get(t, api, tok.bob, "/todos")), nil)
	})
	step(t, "alice shares it with bob, read and write (204)", func(t *testing.T) {
		wantVoid(t, rpc(t, api, tok.alice, "todos_share",
			readme(`{"id":1,"user_id":"b0b00000-0000-4000-8000-000000000b0b","permissions":["read","write"]}`)))
		wantSame(t, "iam.app_todos_shares", superRows[shareRow](t, su, sharesSQL), []shareRow{{1, bob.sub, 0, true}})
	})
	step(t, "bob sees it in the table and in the page function, and ticks it off", func(t *testing.T) {
		wantSame(t, "bob's GET /todos", apiRows[todo](t, get(t, api, tok.bob, "/todos")), []todo{milk})
		wantSame(t, "bob's GET /rpc/todos_page", apiRows[todo](t, get(t, api, tok.bob, "/rpc/todos_page")), []todo{milk})
		wantStatus(t, api.do(t, request{method: "PATCH", path: "/todos?id=eq.1", token: tok.bob, body: readme(`{"done":true}`)}), http.StatusNoContent)
		milk.Done = true
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
	})
	step(t, "bob cannot delete it (no delete in his share: 0 rows) nor share it on (403)", func(t *testing.T) {
		wantStatus(t, api.do(t, request{method: "DELETE", path: "/todos?id=eq.1", token: tok.bob}), http.StatusNoContent)
		wantError(t, rpc(t, api, tok.bob, "todos_share", map[string]any{"id": 1, "user_id": dave.sub}), http.StatusForbidden, "42501", "you cannot share the row of app.todos with id 1")
		wantError(t, get(t, api, tok.bob, "/rpc/todos_shares?id=1"), http.StatusForbidden, "42501", "you cannot see the shares")
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
		wantSame(t, "iam.app_todos_shares", superRows[shareRow](t, su, sharesSQL), []shareRow{{1, bob.sub, 0, true}})
	})
	step(t, "alice lists its shares (200)", func(t *testing.T) {
		got := apiRows[share](t, get(t, api, tok.alice, "/rpc/todos_shares?id=1"))
		if len(got) != 1 || got[0].User == nil || *got[0].User != bob.sub || strings.Join(got[0].Perms, ",") != "read,write" || got[0].By != alice.sub {
			t.Fatalf("GET /rpc/todos_shares?id=1 as alice: %+v", got)
		}
	})
	step(t, "the errors of the share API: 409, 400, 404 (a todo one cannot read is one that does not exist), 401", func(t *testing.T) {
		wantError(t, rpc(t, api, tok.alice, "todos_share", map[string]any{"id": 1, "user_id": bob.sub}), http.StatusConflict, "23505", "is already shared with user")
		wantError(t, rpc(t, api, tok.alice, "todos_share", map[string]any{"id": 1, "user_id": dave.sub, "permissions": []string{"own"}}), http.StatusBadRequest, "22023", "unknown permission 'own'")
		wantError(t, rpc(t, api, tok.alice, "todos_share", map[string]any{"id": 1, "user_id": "dave"}), http.StatusBadRequest, "22023", "is not a uuid")
		unseen := wantError(t, rpc(t, api, tok.dave, "todos_share", map[string]any{"id": 1, "user_id": bob.sub}), http.StatusNotFound, "PT404", "app.todos has no row with id 1")
		none := wantError(t, rpc(t, api, tok.dave, "todos_share", map[string]any{"id": 999, "user_id": bob.sub}), http.StatusNotFound, "PT404", "app.todos has no row with id 999")
		if *unseen.Details != *none.Details || *unseen.Hint != *none.Hint {
			t.Errorf("an unseen todo and a missing one answer differently: %+v, %+v", unseen, none)
		}
		wantError(t, get(t, api, tok.dave, "/rpc/todos_shares?id=1"), http.StatusNotFound, "PT404", "app.todos has no row with id 1")
		wantError(t, rpc(t, api, "", "todos_share", map[string]any{"id": 1, "user_id": dave.sub}), http.StatusUnauthorized, "42501", "permission denied")
		wantSame(t, "iam.app_todos_shares", superRows[shareRow](t, su, sharesSQL), []shareRow{{1, bob.sub, 0, true}})
	})
	step(t, "alice shares it with her group home, read only; dave, a member, sees it", func(t *testing.T) {
		home = createGroup(t, api, tok.alice, "home")
		wantVoid(t, rpc(t, api, tok.alice, "add_group_member", map[string]any{"group_id": home, "user_id": dave.sub}))
		wantVoid(t, rpc(t, api, tok.alice, "todos_share", readmeIn(home, `{"id":1,"group_id":'$GROUP'}`)))
		wantSame(t, "dave's GET /todos", apiRows[todo](t, get(t, api, tok.dave, "/todos")), []todo{milk})
		wantStatus(t, api.do(t, request{method: "PATCH", path: "/todos?id=eq.1", token: tok.dave, body: readme(`{"title":"buy oat milk"}`)}), http.StatusNoContent)
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
	})
	step(t, "a share with a group one is not in is 404, as for a group that does not exist", func(t *testing.T) {
		wantError(t, rpc(t, api, tok.alice, "todos_share", map[string]any{"id": 1, "group_id": 1}), http.StatusNotFound, "PT404", "you are not a member of group 1")
	})
	step(t, "alice unshares bob (204): his next request no longer sees it", func(t *testing.T) {
		wantVoid(t, rpc(t, api, tok.alice, "todos_unshare", readme(`{"id":1,"user_id":"b0b00000-0000-4000-8000-000000000b0b"}`)))
		wantSame(t, "bob's GET /todos", apiRows[todo](t, get(t, api, tok.bob, "/todos")), nil)
		wantStatus(t, api.do(t, request{method: "PATCH", path: "/todos?id=eq.1", token: tok.bob, body: readme(`{"done":false}`)}), http.StatusNoContent)
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{milk})
		wantError(t, rpc(t, api, tok.alice, "todos_unshare", map[string]any{"id": 1, "user_id": bob.sub}), http.StatusNotFound, "PT404", "is not shared with user")
	})
	step(t, "dave removes the group's share? no: he is only a member (403); alice can", func(t *testing.T) {
		wantError(t, rpc(t, api, tok.dave, "todos_unshare", map[string]any{"id": 1, "group_id": home}), http.StatusForbidden, "42501", "you cannot unshare")
		wantVoid(t, rpc(t, api, tok.alice, "todos_unshare", map[string]any{"id": 1, "group_id": home}))
		wantSame(t, "dave's GET /todos", apiRows[todo](t, get(t, api, tok.dave, "/todos")), nil)
	})
	step(t, "a todo's shares are bounded (max shares per row 100): the 101st is 429", func(t *testing.T) {
		if _, err := su.Exec(t.Context(), `insert into iam.app_todos_shares (row_id, user_id, shared_by)
			select 1, gen_random_uuid(), $1::uuid from generate_series(1, 100)`, alice.sub); err != nil {
			t.Fatal(err)
		}
		wantError(t, rpc(t, api, tok.alice, "todos_share", map[string]any{"id": 1, "user_id": bob.sub}), http.StatusTooManyRequests, "PT429", "has 100 shares, the most it may have")
		if n := len(superRows[shareRow](t, su, sharesSQL)); n != 100 {
			t.Errorf("%d shares, want 100", n)
		}
	})
}
