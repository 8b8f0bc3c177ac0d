package e2e

// The shipped PostgREST configuration (policies/postgrest.conf) beyond the
// scenarios: the deny list (enforced by the runtime and by the shipped
// db-pre-request), the db-pre-request's other refusals (planner-estimate
// counts, tokens without aud or exp), what PostgREST puts
// in request.jwt.claims (which internal/pgrest must copy), and the
// documented realm-roles alternative to the hard-coded role claim.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
)

func TestShippedConfig(t *testing.T) {
	bin := postgrestBinary(t)
	s := exampletest.Server(t)
	script := buildPolicies(t)
	key := newRSAKey(t)
	cfg := jwtConfig{secret: jwks(t, &key.PublicKey, realmKid)}
	realm := rs256(key, realmKid)

	t.Run("revocation: a blocked user is refused until the block is lifted", func(t *testing.T) {
		t.Parallel()
		su := newDatabase(t, s, "revocation", script)
		api := startPostgREST(t, bin, s, "revocation", cfg)
		now := time.Now()
		aliceTok, bobTok := realm.token(t, alice.claims(roleClaim, now)), realm.token(t, bob.claims(roleClaim, now))
		todos := tables[0]
		var mine row
		step(t, "alice creates a todo", func(t *testing.T) {
			resp := api.do(t, request{method: "POST", path: "/todos", token: aliceTok, prefer: "return=representation", body: map[string]any{"title": "before the block"}})
			wantStatus(t, resp, http.StatusCreated)
			got := decodeRows(t, resp, todos)
			if len(got) != 1 {
				t.Fatalf("got %s, want the new row", resp)
			}
			mine = got[0]
		})
		step(t, "a DBA blocks alice: her reads and writes answer 403 (SQLSTATE 28000) and change nothing", func(t *testing.T) {
			if _, err := su.Exec(t.Context(), "select iam.block_subject($1, 'disabled in Keycloak')", alice.sub); err != nil {
				t.Fatal(err)
			}
			e := wantError(t, api.do(t, request{method: "GET", path: "/todos", token: aliceTok}), http.StatusForbidden, "28000", "this user is blocked")
			if e.Hint == nil || *e.Hint == "" {
				t.Errorf("the refusal has no hint: %+v", e)
			}
			wantError(t, api.do(t, request{method: "POST", path: "/todos", token: aliceTok, body: map[string]any{"title": "while blocked"}}), http.StatusForbidden, "28000", "this user is blocked")
			wantError(t, api.do(t, request{method: "DELETE", path: "/todos?id=eq.1", token: aliceTok}), http.StatusForbidden, "28000", "this user is blocked")
			wantTable(t, su, todos, []row{mine})
		})
		step(t, "bob is not affected; an anonymous request still reaches the privileges", func(t *testing.T) {
			wantRows(t, api.do(t, request{method: "GET", path: "/todos", token: bobTok}), todos, []row{})
			// 401 from the table privilege: no deny list refusal.
			wantError(t, api.do(t, request{method: "GET", path: "/todos"}), http.StatusUnauthorized, "42501", "permission denied for table todos")
		})
		step(t, "unblocked, alice sees her todo again", func(t *testing.T) {
			if _, err := su.Exec(t.Context(), "select iam.unblock_subject($1)", alice.sub); err != nil {
				t.Fatal(err)
			}
			wantRows(t, api.do(t, request{method: "GET", path: "/todos", token: aliceTok}), todos, []row{mine})
		})
		step(t, "the shipped db-pre-request also refuses what never asks who the caller is", func(t *testing.T) {
			// A filter no row matches: the policies' user id is never
			// computed, so without a db-pre-request the runtime alone
			// answers 200 []; the shipped db-pre-request = iam.check_request
			// refuses the request before its query runs.
			if _, err := su.Exec(t.Context(), "select iam.block_subject($1, 'disabled in Keycloak')", alice.sub); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = su.Exec(context.Background(), "select iam.unblock_subject($1)", alice.sub) })
			nothing := request{method: "GET", path: "/todos?id=eq.-1", token: aliceTok}
			wantError(t, api.do(t, nothing), http.StatusForbidden, "28000", "this user is blocked")
			wantRows(t, api.do(t, request{method: "GET", path: "/todos", token: bobTok}), todos, []row{})
			noPre := startPostgRESTAt(t, bin, s.URL("revocation", "authenticator"), cfg, "PGRST_DB_PRE_REQUEST=")
			wantRows(t, noPre.do(t, nothing), todos, []row{})
			wantError(t, noPre.do(t, request{method: "GET", path: "/todos", token: aliceTok}), http.StatusForbidden, "28000", "this user is blocked")
			if _, err := su.Exec(t.Context(), "select iam.unblock_subject($1)", alice.sub); err != nil {
				t.Fatal(err)
			}
			wantRows(t, api.do(t, request{method: "GET", path: "/todos", token: aliceTok}), todos, []row{mine})
		})
		step(t, "tokens issued before a time: the old token is refused, a new sign-in passes", func(t *testing.T) {
			old := realm.token(t, alice.claims(roleClaim, now.Add(-time.Minute)))
			if _, err := su.Exec(t.Context(), "select iam.block_subject($1, 'password reset', to_timestamp($2))", alice.sub, now.Add(-30*time.Second).Unix()); err != nil {
				t.Fatal(err)
			}
			wantError(t, api.do(t, request{method: "GET", path: "/todos", token: old}), http.StatusForbidden, "28000", "this token was revoked")
			wantRows(t, api.do(t, request{method: "GET", path: "/todos", token: aliceTok}), todos, []row{mine})
		})
	})

	t.Run("request.jwt.claims: internal/pgrest sets what PostgREST sets", func(t *testing.T) {
		t.Parallel()
		const db = "claims_probe"
		su := newDatabase(t, s, db, script)
		// A probe, in this test database only: the claims as the request
		// sees them. (The example grants web_anon nothing in schema app.)
		if _, err := su.Exec(t.Context(), `
			create function app.e2e_request_claims() returns json language sql stable
			    as $$ select current_setting('request.jwt.claims', true)::json $$;
			grant usage on schema app to web_anon;
			grant execute on function app.e2e_request_claims() to web_anon, web_user`); err != nil {
			t.Fatal(err)
		}
		api := startPostgREST(t, bin, s, db, cfg)
		u, err := url.Parse(s.URL(db, "authenticator"))
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword("authenticator", "mypass")
		conn, err := pgx.Connect(t.Context(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(t.Context()) })

		aliceClaims := alice.claims(roleClaim, time.Now())
		// The claims as JSON decodes them, to compare with what PostgREST saw.
		var aliceDecoded map[string]any
		if b, err := json.Marshal(aliceClaims); err != nil {
			t.Fatal(err)
		} else if err := json.Unmarshal(b, &aliceDecoded); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name  string
			token string
			req   pgrest.Request
		}{
			{"anonymous", "", pgrest.Request{Method: "GET", Path: "/rpc/e2e_request_claims", Role: "web_anon"}},
			{"with alice's token", realm.token(t, aliceClaims), pgrest.Request{Method: "GET", Path: "/rpc/e2e_request_claims", Role: "web_user", Claims: aliceDecoded}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				resp := api.do(t, request{method: "GET", path: "/rpc/e2e_request_claims", token: c.token})
				wantStatus(t, resp, http.StatusOK)
				var real any
				if err := json.Unmarshal(resp.body, &real); err != nil {
					t.Fatalf("got %s: %v", resp, err)
				}
				var emulated any
				emulate(t, conn, c.req, "app.e2e_request_claims", &emulated)
				t.Logf("PostgREST's request.jwt.claims: %s", resp.body)
				if diff := cmp.Diff(real, emulated); diff != "" {
					t.Errorf("request.jwt.claims (-PostgREST +internal/pgrest):\n%s", diff)
				}
			})
		}
	})

	t.Run("the documented alternative: the role from realm_access.roles[0]", func(t *testing.T) {
		t.Parallel()
		const db = "realm_roles"
		newDatabase(t, s, db, script)
		alt := cfg
		alt.roleClaimKey = ".realm_access.roles[0]"
		api := startPostgREST(t, bin, s, db, alt)
		now := time.Now()
		// realmRoles puts web_user first and no role claim.
		wantRows(t, api.do(t, request{method: "GET", path: "/todos", token: realm.token(t, alice.claims(realmRoles, now))}), tables[0], []row{})
		// Keycloak does not promise an order: with web_user elsewhere in the
		// list, PostgREST switches to the first role and fails (400).
		unordered := alice.claims(realmRoles, now)
		unordered["realm_access"] = map[string]any{"roles": []string{"default-roles-demo", "web_user"}}
		wantError(t, api.do(t, request{method: "GET", path: "/todos", token: realm.token(t, unordered)}),
			http.StatusBadRequest, "22023", `role "default-roles-demo" does not exist`)
	})
}
