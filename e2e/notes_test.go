package e2e

// README's recipes for Keycloak roles, tenants and single-role mode over a
// real PostgREST 12: the notes of notes.iam (tenant org_id from the token's
// org_id claim; org-admins read their organisation's notes), chats'
// moderators, and the example built in single-role mode served with
// db-anon-role = web_user. Every step checks the answer and what the
// superuser then finds.

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgtest"
)

type noteRow struct {
	ID    int64  `json:"id"`
	Org   string `json:"org_id"`
	Owner string `json:"owner_id"`
	Body  string `json:"body"`
}

const notesSQL = "select id, org_id, owner_id::text, body from app.notes order by id"

type chatRow struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

func notesScenario(t *testing.T, api *client, su *pgx.Conn, tok tokens) {
	post := func(token, path string, body any) response {
		return api.do(t, request{method: "POST", path: path, token: token, body: body})
	}
	patch := func(token, path string, body any) response {
		return api.do(t, request{method: "PATCH", path: path, token: token, body: body})
	}
	del := func(token, path string) response {
		return api.do(t, request{method: "DELETE", path: path, token: token})
	}
	plan := noteRow{ID: 1, Org: "acme", Owner: alice.sub, Body: "plan"}
	notes := func() []noteRow { return superRows[noteRow](t, su, notesSQL) }

	step(t, "alice writes a note: org_id comes from her token (201)", func(t *testing.T) {
		wantStatus(t, post(tok.alice, "/notes", readme(`{"body": "plan"}`)), http.StatusCreated)
		wantSame(t, "app.notes", notes(), []noteRow{plan})
	})
	step(t, "a note for another organisation is refused (403), and so is moving hers there", func(t *testing.T) {
		wantError(t, post(tok.alice, "/notes", readme(`{"body": "spy", "org_id": "globex"}`)), http.StatusForbidden, "42501", "org_id must be the caller's tenant")
		wantError(t, patch(tok.alice, "/notes?id=eq.1", readme(`{"org_id": "globex"}`)), http.StatusForbidden, "42501", "cannot be changed")
		wantSame(t, "app.notes", notes(), []noteRow{plan})
	})
	step(t, "bob, of the same organisation, does not see it; its org-admin reads it, and only reads", func(t *testing.T) {
		wantSame(t, "bob's GET /notes", apiRows[noteRow](t, get(t, api, tok.bob, "/notes")), nil)
		wantSame(t, "the acme org-admin's GET /notes", apiRows[noteRow](t, get(t, api, tok.bobOrgAdmin, "/notes?order=id")), []noteRow{plan})
		wantSame(t, "the acme org-admin's GET /rpc/notes_page", apiRows[noteRow](t, get(t, api, tok.bobOrgAdmin, "/rpc/notes_page")), []noteRow{plan})
		wantStatus(t, patch(tok.bobOrgAdmin, "/notes?id=eq.1", readme(`{"body": "edited"}`)), http.StatusNoContent)
		wantStatus(t, del(tok.bobOrgAdmin, "/notes?id=eq.1"), http.StatusNoContent)
		wantSame(t, "app.notes", notes(), []noteRow{plan})
	})
	step(t, "the org-admin of another organisation reads and deletes nothing of acme", func(t *testing.T) {
		wantSame(t, "the globex org-admin's GET /notes", apiRows[noteRow](t, get(t, api, tok.carolOrgAdmin, "/notes")), nil)
		wantSame(t, "the globex org-admin's GET /rpc/notes_page", apiRows[noteRow](t, get(t, api, tok.carolOrgAdmin, "/rpc/notes_page")), nil)
		wantStatus(t, del(tok.carolOrgAdmin, "/notes?org_id=eq.acme"), http.StatusNoContent)
		wantSame(t, "app.notes", notes(), []noteRow{plan})
	})
	step(t, "a token whose org_id is not a string, or missing, reads nothing and writes nothing (403 28000)", func(t *testing.T) {
		for _, token := range []string{tok.aliceOrgList, tok.aliceNoOrg} {
			wantSame(t, "GET /notes", apiRows[noteRow](t, get(t, api, token, "/notes")), nil)
			wantError(t, post(token, "/notes", readme(`{"body": "x"}`)), http.StatusForbidden, "28000", "without a tenant")
		}
		wantSame(t, "app.notes", notes(), []noteRow{plan})
	})
	step(t, "anonymous: 401", func(t *testing.T) {
		wantError(t, get(t, api, "", "/notes"), http.StatusUnauthorized, "42501", "permission denied")
	})

	// chats.iam: role 'moderator' can read, delete.
	var room int64
	chatsSQL := "select id, body from app.chats order by id"
	step(t, "alice posts in her room; bob, not in it, sees nothing", func(t *testing.T) {
		room = createGroup(t, api, tok.alice, "alice's room")
		wantStatus(t, post(tok.alice, "/chats", readmeIn(room, `{"body": "hello", "group_id": '$GROUP'}`)), http.StatusCreated)
		wantSame(t, "bob's GET /chats", apiRows[chatRow](t, get(t, api, tok.bob, "/chats")), nil)
	})
	step(t, "a moderator reads it and deletes it; a moderator's edits reach nothing", func(t *testing.T) {
		wantSame(t, "the moderator's GET /chats", apiRows[chatRow](t, get(t, api, tok.daveModerator, "/chats")), []chatRow{{1, "hello"}})
		wantStatus(t, patch(tok.daveModerator, "/chats?id=eq.1", readme(`{"body": "moderated"}`)), http.StatusNoContent)
		wantSame(t, "app.chats", superRows[chatRow](t, su, chatsSQL), []chatRow{{1, "hello"}})
		wantStatus(t, del(tok.dave, "/chats?id=eq.1"), http.StatusNoContent) // without the role: nothing
		wantSame(t, "app.chats", superRows[chatRow](t, su, chatsSQL), []chatRow{{1, "hello"}})
		wantStatus(t, del(tok.daveModerator, "/chats?id=eq.1"), http.StatusNoContent)
		wantSame(t, "app.chats", superRows[chatRow](t, su, chatsSQL), nil)
	})
}

// TestSingleRolePostgREST: the example built with `single role web_user`
// and PostgREST configured with db-anon-role = web_user: a request without
// a token runs as web_user and is anonymous (an empty list instead of 401,
// 403 28000 on create); signed-in users get exactly their rows.
func TestSingleRolePostgREST(t *testing.T) {
	bin := postgrestBinary(t)
	s := pgtest.New(t)
	psqlFile(t, s, "postgres", filepath.Join(policiesDir, "roles.sql"))
	dir := t.TempDir()
	entries, err := filepath.Glob(filepath.Join(policiesDir, "*.iam"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range entries {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Column reads are grants to a database role, which in single-role
		// mode serves requests with and without a token alike: the checker
		// refuses them there, so the stores' anonymous rule goes.
		text := strings.Replace(string(b), "  anonymous can read (id, name)\n", "", 1)
		if filepath.Base(p) == "iam.iam" {
			text = strings.Replace(text, "  authenticated web_user\n  anonymous web_anon\n", "  single role web_user\n", 1)
			if !strings.Contains(text, "single role web_user") {
				t.Fatal("iam.iam has no roles block to put in single-role mode")
			}
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := compiler.Compile(dir)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "single.sql")
	if err := os.WriteFile(script, []byte(out.Script()), 0o644); err != nil {
		t.Fatal(err)
	}
	su := newDatabase(t, s, "single", script)
	const secret = "e2e-single-role-shared-secret-of-32-characters"
	api := startPostgRESTAt(t, bin, s.URL("single", "authenticator"), jwtConfig{secret: secret}, "PGRST_DB_ANON_ROLE=web_user")
	now := time.Now()
	aliceTok, bobTok := hs256(secret).token(t, alice.claims(roleClaim, now)), hs256(secret).token(t, bob.claims(roleClaim, now))
	type todo struct {
		ID    int64  `json:"id"`
		Title string `json:"title"`
	}
	todosSQL := "select id, title from app.todos order by id"

	step(t, "alice creates a todo (201); bob does not see it", func(t *testing.T) {
		wantStatus(t, api.do(t, request{method: "POST", path: "/todos", token: aliceTok, body: readme(`{"title": "buy milk"}`)}), http.StatusCreated)
		wantSame(t, "alice's GET /todos", apiRows[todo](t, get(t, api, aliceTok, "/todos")), []todo{{1, "buy milk"}})
		wantSame(t, "bob's GET /todos", apiRows[todo](t, get(t, api, bobTok, "/todos")), nil)
	})
	step(t, "without a token: web_user, anonymous: an empty list (200), no page, nothing created (403 28000), nothing deleted", func(t *testing.T) {
		wantSame(t, "anonymous GET /todos", apiRows[todo](t, get(t, api, "", "/todos")), nil)
		wantSame(t, "anonymous GET /rpc/todos_page", apiRows[todo](t, get(t, api, "", "/rpc/todos_page")), nil)
		wantError(t, api.do(t, request{method: "POST", path: "/todos", body: readme(`{"title": "anon"}`)}), http.StatusForbidden, "28000", "without a user id")
		wantStatus(t, api.do(t, request{method: "DELETE", path: "/todos?id=eq.1"}), http.StatusNoContent)
		wantSame(t, "app.todos", superRows[todo](t, su, todosSQL), []todo{{1, "buy milk"}})
	})
}
