package e2e

// README's "Partitioning a resource": the example with app.chats
// partitioned by month (policies/testdata/partitioned.sql) over a real
// PostgREST 12. Partitions made after apply, by hand and by attaching a
// table granted to the runtime roles, are locked down by the build's event
// trigger: through /chats every rule of chats.iam holds for a message
// stored in one, and the partition's own endpoint gives nobody a row.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/exampletest"
)

// partitionedDatabase is newDatabase with testdata/partitioned.sql run
// before the build.
func partitionedDatabase(t *testing.T, name, script string) *pgx.Conn {
	t.Helper()
	s := exampletest.Server(t)
	if err := s.CreateDatabase(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"schema.sql", "testdata/partitioned.sql"} {
		psqlFile(t, s, name, policiesDir+"/"+f)
	}
	psqlFile(t, s, name, script)
	su, err := pgx.Connect(t.Context(), s.URL(name, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(t.Context()) })
	return su
}

// reloadSchema makes PostgREST read its schema cache again (as after a
// migration), and waits until it answers for path with a status other than
// 404 PGRST205/42P01, or for a while.
func reloadSchema(t *testing.T, api *client, su *pgx.Conn, token, path string) response {
	t.Helper()
	if _, err := su.Exec(t.Context(), "notify pgrst, 'reload schema'"); err != nil {
		t.Fatal(err)
	}
	var resp response
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp = api.do(t, request{method: "GET", path: path, token: token})
		if resp.status != http.StatusNotFound {
			break
		}
	}
	return resp
}

// wantNoRowThrough: a direct request for a partition answers with an error
// (PostgREST 12: 401 for anonymous, 403 when signed in: permission denied;
// or 404 if its schema cache leaves partitions out), and no row.
func wantNoRowThrough(t *testing.T, resp response, secret string) {
	t.Helper()
	if resp.status < 400 || strings.Contains(string(resp.body), secret) {
		t.Fatalf("got %s: a partition answered directly", resp)
	}
}

func TestPartitionedChatsOverPostgREST(t *testing.T) {
	bin := postgrestBinary(t)
	setup := jwtSetups[0]
	su := partitionedDatabase(t, "parts_http", buildPolicies(t))
	cfg, trusted, _ := setup.keys(t)
	api := startPostgREST(t, bin, exampletest.Server(t), "parts_http", cfg)
	now := time.Now()
	tok := map[string]string{}
	for _, u := range []user{alice, bob, carol, dave} {
		tok[u.username] = trusted.token(t, u.claims(setup.style, now))
	}
	type chat struct {
		ID   int64  `json:"id"`
		Body string `json:"body"`
	}
	var room int64
	step(t, "alice opens a room with bob as a member and carol as an admin", func(t *testing.T) {
		room = createGroup(t, api, tok["alice"], "room")
		wantVoid(t, rpc(t, api, tok["alice"], "add_group_member", map[string]any{"group_id": room, "user_id": bob.sub}))
		wantVoid(t, rpc(t, api, tok["alice"], "add_group_member", map[string]any{"group_id": room, "user_id": carol.sub, "role": "admin"}))
	})
	step(t, "partitions made after apply: by the owner role under default privileges, and attached after a grant", func(t *testing.T) {
		for _, sql := range []string{
			`alter default privileges for role api_owner in schema app grant select, insert, update, delete on tables to web_user, web_anon`,
			`set role api_owner`,
			`create table app.chats_2031_01 partition of app.chats for values from ('2031-01-01') to ('2031-02-01')`,
			`create table app.chats_2032_01 (like app.chats including defaults including constraints)`,
			`grant select, insert, update, delete on app.chats_2032_01 to public`,
			`alter table app.chats attach partition app.chats_2032_01 for values from ('2032-01-01') to ('2032-02-01')`,
			`reset role`,
		} {
			if _, err := su.Exec(t.Context(), sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		var open int64
		if err := su.QueryRow(t.Context(), `select count(*) from pg_class where relname in ('chats_2031_01', 'chats_2032_01')
		    and (not relrowsecurity or not relforcerowsecurity or relacl::text like '%web_%' or relacl::text like '%=r%')`).Scan(&open); err != nil || open != 0 {
			t.Fatalf("%d of the new partitions are not locked down (err %v)", open, err)
		}
		reloadSchema(t, api, su, tok["alice"], "/chats_2031_01")
	})
	for _, p := range []struct{ partition, at string }{{"chats_2031_01", "2031-01-10T12:00:00Z"}, {"chats_2032_01", "2032-01-10T12:00:00Z"}} {
		t.Run(p.partition, func(t *testing.T) {
			var id int64
			body := func(id int64) string {
				var b string
				err := su.QueryRow(t.Context(), "select body from app.chats where id = $1", id).Scan(&b)
				if err == pgx.ErrNoRows {
					return "(deleted)"
				} else if err != nil {
					t.Fatal(err)
				}
				return b
			}
			step(t, "alice posts into the room, stored in the partition (201)", func(t *testing.T) {
				resp := api.do(t, request{method: "POST", path: "/chats", token: tok["alice"], prefer: "return=representation",
					body: map[string]any{"body": "hello " + p.partition, "group_id": room, "created_at": p.at}})
				wantStatus(t, resp, http.StatusCreated)
				var created []chat
				if err := json.Unmarshal(resp.body, &created); err != nil || len(created) != 1 {
					t.Fatalf("got %s: %v", resp, err)
				}
				id = created[0].ID
				var where string
				if err := su.QueryRow(t.Context(), "select tableoid::regclass::text from app.chats where id = $1", id).Scan(&where); err != nil || where != "app."+p.partition {
					t.Fatalf("stored in %s (err %v), want app.%s", where, err, p.partition)
				}
			})
			step(t, "the room reads it through /chats and /rpc/chats_page; dave sees nothing; anonymous 401", func(t *testing.T) {
				for _, who := range []string{"alice", "bob", "carol"} {
					wantSame(t, who+"'s GET /chats", apiRows[chat](t, get(t, api, tok[who], fmt.Sprintf("/chats?id=eq.%d&select=id,body", id))),
						[]chat{{id, "hello " + p.partition}})
					page := apiRows[chat](t, get(t, api, tok[who], fmt.Sprintf("/rpc/chats_page?group_id=%d&before=%d&page_size=1&select=id,body", room, id+1)))
					wantSame(t, who+"'s chats_page", page, []chat{{id, "hello " + p.partition}})
				}
				wantSame(t, "dave's GET /chats", apiRows[chat](t, get(t, api, tok["dave"], fmt.Sprintf("/chats?id=eq.%d&select=id,body", id))), nil)
				wantError(t, get(t, api, "", "/chats"), http.StatusUnauthorized, "42501", "permission denied")
			})
			step(t, "bob and carol cannot edit it, dave cannot post into the room; alice edits it", func(t *testing.T) {
				for _, who := range []string{"bob", "carol", "dave"} {
					wantStatus(t, api.do(t, request{method: "PATCH", path: fmt.Sprintf("/chats?id=eq.%d", id), token: tok[who], body: map[string]any{"body": "edited"}}), http.StatusNoContent)
				}
				if got := body(id); got != "hello "+p.partition {
					t.Fatalf("a refused edit changed the chat: %q", got)
				}
				wantError(t, api.do(t, request{method: "POST", path: "/chats", token: tok["dave"], body: map[string]any{"body": "intruder", "group_id": room, "created_at": p.at}}),
					http.StatusForbidden, "42501", "you cannot put rows of app.chats into group")
				wantStatus(t, api.do(t, request{method: "PATCH", path: fmt.Sprintf("/chats?id=eq.%d", id), token: tok["alice"], body: map[string]any{"body": "edited"}}), http.StatusNoContent)
				if got := body(id); got != "edited" {
					t.Fatalf("alice's edit: %q", got)
				}
			})
			step(t, "the partition's own endpoint gives nobody a row, nor lets anyone write", func(t *testing.T) {
				for _, who := range []string{"alice", "bob", "dave", ""} {
					token := tok[who]
					resp := get(t, api, token, "/"+p.partition)
					t.Logf("GET /%s as %q: %s", p.partition, who, resp)
					wantNoRowThrough(t, resp, "edited")
					wantNoRowThrough(t, api.do(t, request{method: "POST", path: "/" + p.partition, token: token,
						body: map[string]any{"id": id + 1000000, "body": "direct", "owner_id": alice.sub, "group_id": room, "created_at": p.at}}), "edited")
					wantNoRowThrough(t, api.do(t, request{method: "PATCH", path: fmt.Sprintf("/%s?id=eq.%d", p.partition, id), token: token, body: map[string]any{"body": "direct"}}), "edited")
					wantNoRowThrough(t, api.do(t, request{method: "DELETE", path: fmt.Sprintf("/%s?id=eq.%d", p.partition, id), token: token}), "edited")
				}
				if got := body(id); got != "edited" {
					t.Fatalf("a direct request changed the chat: %q", got)
				}
				var direct int64
				if err := su.QueryRow(t.Context(), "select count(*) from app.chats where body in ('direct', 'intruder')").Scan(&direct); err != nil || direct != 0 {
					t.Fatalf("direct requests left %d rows (err %v)", direct, err)
				}
			})
			step(t, "bob cannot delete it; carol, an admin, does", func(t *testing.T) {
				wantStatus(t, api.do(t, request{method: "DELETE", path: fmt.Sprintf("/chats?id=eq.%d", id), token: tok["bob"]}), http.StatusNoContent)
				if body(id) == "(deleted)" {
					t.Fatal("bob deleted it")
				}
				wantStatus(t, api.do(t, request{method: "DELETE", path: fmt.Sprintf("/chats?id=eq.%d", id), token: tok["carol"]}), http.StatusNoContent)
				if body(id) != "(deleted)" {
					t.Fatal("carol's delete left it")
				}
			})
		})
	}

	// The trap, with the event trigger disabled: a partition granted to the
	// runtime roles (default privileges) and no row-level security of its
	// own. Applying the build again closes it.
	step(t, "without the event trigger, a new partition is open until the next apply", func(t *testing.T) {
		for _, sql := range []string{
			`alter event trigger iam_lock_partitions disable`,
			`set role api_owner`,
			`create table app.chats_2035_01 partition of app.chats for values from ('2035-01-01') to ('2035-02-01')`,
			`reset role`,
		} {
			if _, err := su.Exec(t.Context(), sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		if _, err := su.Exec(t.Context(), "insert into app.chats (body, owner_id, group_id, created_at) values ('secret', $1::uuid, $2, '2035-01-10')", alice.sub, room); err != nil {
			t.Fatal(err)
		}
		resp := reloadSchema(t, api, su, tok["dave"], "/chats_2035_01")
		t.Logf("dave's GET /chats_2035_01 before the apply (the trap): %s", resp)
		if resp.status == http.StatusOK && !strings.Contains(string(resp.body), "secret") {
			t.Errorf("PostgREST served the open partition without its row: %s", resp)
		}
		psqlFile(t, exampletest.Server(t), "parts_http", buildPolicies(t))
		wantNoRowThrough(t, get(t, api, tok["dave"], "/chats_2035_01"), "secret")
		wantNoRowThrough(t, get(t, api, "", "/chats_2035_01"), "secret")
		wantSame(t, "dave's GET /chats", apiRows[chat](t, get(t, api, tok["dave"], "/chats?body=eq.secret&select=id,body")), nil)
	})
}
