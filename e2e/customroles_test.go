package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/exampletest"
)

// TestCustomGroupRoles: the policies of golden/group-roles (roles viewer <
// editor < moderator < admin < owner, members managed by moderator, token
// subgroups) over a real PostgREST 12: the group API's answers with
// declared roles, and what each role may do to the docs, a Keycloak
// subgroup path included.
func TestCustomGroupRoles(t *testing.T) {
	bin := postgrestBinary(t)
	s := exampletest.Server(t)
	const db = "custom_roles"
	if err := s.CreateDatabase(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(t.Context(), db, `
create schema app authorization api_owner;
set role api_owner;
create table app.docs (
    id bigint generated always as identity primary key,
    title text not null default '',
    owner_id uuid not null,
    group_id bigint not null
);
create table app.comments (
    id bigint generated always as identity primary key,
    doc_id bigint not null references app.docs (id) on delete cascade,
    author_id uuid not null,
    body text not null default ''
);
reset role;`); err != nil {
		t.Fatal(err)
	}
	out, err := compiler.Compile(filepath.Join("..", "golden", "group-roles", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "custom.sql")
	if err := os.WriteFile(script, []byte(out.Script()), 0o644); err != nil {
		t.Fatal(err)
	}
	psqlFile(t, s, db, script)
	su, err := pgx.Connect(t.Context(), s.URL(db, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(context.Background()) })

	const secret = "e2e-custom-roles-shared-secret-of-more-than-32-characters"
	api := startPostgREST(t, bin, s, db, jwtConfig{secret: secret})
	key := hs256(secret)
	now := time.Now()
	token := func(u user, groups ...string) string {
		c := u.claims(roleClaim, now)
		if groups != nil {
			c["groups"] = groups
		}
		return key.token(t, c)
	}
	// alice owns the group; bob moderates it, carol edits, dave is a
	// viewer (added without a role).
	aliceTok, bobTok, carolTok, daveTok := token(alice), token(bob), token(carol), token(dave)
	// In Keycloak only: in the subgroup managers of /campus/chicago.
	erin := user{"erin", "e1e00000-0000-4000-8000-00000000e1e0"}
	type body = map[string]any
	var team int64
	step(t, "the owner builds the team: a moderator adds an editor, and a viewer without naming a role", func(t *testing.T) {
		team = createGroup(t, api, aliceTok, "team")
		wantVoid(t, rpc(t, api, aliceTok, "add_group_member", body{"group_id": team, "user_id": bob.sub, "role": "moderator"}))
		wantVoid(t, rpc(t, api, bobTok, "add_group_member", body{"group_id": team, "user_id": carol.sub, "role": "editor"}))
		wantVoid(t, rpc(t, api, bobTok, "add_group_member", body{"group_id": team, "user_id": dave.sub}))
		type member struct {
			User string `json:"user_id"`
			Role string `json:"role"`
		}
		got := apiRows[member](t, get(t, api, daveTok, fmt.Sprintf("/group_members?group_id=eq.%d&order=user_id&select=user_id,role", team)))
		wantSame(t, "GET /group_members", got, []member{{alice.sub, "owner"}, {bob.sub, "moderator"}, {carol.sub, "editor"}, {dave.sub, "viewer"}})
	})
	step(t, "the API's refusals name the declared roles", func(t *testing.T) {
		wantError(t, rpc(t, api, bobTok, "add_group_member", body{"group_id": team, "user_id": erin.sub, "role": "admin"}),
			http.StatusForbidden, "42501", fmt.Sprintf("only owners and admins of group %d can add admins", team))
		wantError(t, rpc(t, api, carolTok, "add_group_member", body{"group_id": team, "user_id": alice.sub}),
			http.StatusForbidden, "42501", fmt.Sprintf("only owners, admins and moderators of group %d can add members", team))
		for _, name := range []string{"Admin", "admin ", " admin", "member", "boss"} {
			e := wantError(t, rpc(t, api, bobTok, "set_group_member_role", body{"group_id": team, "user_id": dave.sub, "role": name}),
				http.StatusBadRequest, "22023", "unknown group role")
			if e.Hint == nil || *e.Hint != "A group role is viewer, editor, moderator, admin or owner." {
				t.Errorf("%q: hint %v", name, e.Hint)
			}
		}
	})
	step(t, "each role does what its rules give it", func(t *testing.T) {
		post := func(tok string) response {
			return api.do(t, request{method: "POST", path: "/docs", token: tok, body: body{"title": "plan", "group_id": team}})
		}
		wantError(t, post(daveTok), http.StatusForbidden, "42501", "you cannot put rows of app.docs into group")
		wantStatus(t, post(carolTok), http.StatusCreated)
		// A doc of the team that none of them owns (an owner deletes their own).
		var doc int64
		if err := su.QueryRow(t.Context(), "insert into app.docs (title, owner_id, group_id) values ('spec', gen_random_uuid(), $1) returning id", team).Scan(&doc); err != nil {
			t.Fatal(err)
		}
		path := fmt.Sprintf("/docs?id=eq.%d", doc)
		if rows := apiRows[map[string]any](t, get(t, api, daveTok, path)); len(rows) != 1 {
			t.Errorf("the viewer reads %d docs, want 1", len(rows))
		}
		wantStatus(t, api.do(t, request{method: "DELETE", path: path, token: carolTok}), http.StatusNoContent) // editors do not delete: nothing
		var n int
		if err := su.QueryRow(t.Context(), "select count(*) from app.docs where id = $1", doc).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the doc after the editor's delete: %d (%v), want it kept", n, err)
		}
		// A Keycloak subgroup path: /campus/chicago/managers is an admin of
		// the group a DBA tagged /campus/chicago, and admins delete.
		if _, err := su.Exec(t.Context(), "update iam.groups set token_name = '/campus/chicago' where id = $1", team); err != nil {
			t.Fatal(err)
		}
		manager := token(erin, "/campus/chicago/managers")
		wantStatus(t, api.do(t, request{method: "DELETE", path: path, token: manager}), http.StatusNoContent)
		if err := su.QueryRow(t.Context(), "select count(*) from app.docs where id = $1", doc).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the doc after the manager's delete: %d (%v), want it deleted", n, err)
		}
	})
}
