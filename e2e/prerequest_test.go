package e2e

// The db-pre-request of the shipped postgrest.conf (iam.check_request) over
// HTTP, from both sides: what it refuses, what PostgREST 12 answers without
// it (PGRST_DB_PRE_REQUEST= turns it off), and what it lets through. Also
// the practical size limit of a token's groups claim.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
)

// eve owns many todos in the count tests; nobody owns none.
const (
	eveSub    = "e7e00000-0000-4000-8000-000000000e7e"
	nobodySub = "00000000-0000-4000-8000-000000000000"
)

// countOf is the total of a Content-Range header ("0-9/425", "*/425").
func countOf(t *testing.T, resp response) int64 {
	t.Helper()
	cr := resp.header.Get("Content-Range")
	_, total, ok := strings.Cut(cr, "/")
	n, err := strconv.ParseInt(total, 10, 64)
	if !ok || err != nil {
		t.Fatalf("Content-Range %q: want a total (response %s)", cr, resp)
	}
	return n
}

func TestPreRequest(t *testing.T) {
	bin := postgrestBinary(t)
	s := exampletest.Server(t)
	script := buildPolicies(t)
	key := newRSAKey(t)
	cfg := jwtConfig{secret: jwks(t, &key.PublicKey, realmKid)}
	realm := rs256(key, realmKid)
	// off is the shipped configuration without its db-pre-request.
	off := func(t *testing.T, db string) *client {
		return startPostgRESTAt(t, bin, s.URL(db, "authenticator"), cfg, "PGRST_DB_PRE_REQUEST=")
	}

	t.Run("Prefer: count=planned and count=estimated on protected relations", func(t *testing.T) {
		t.Parallel()
		const db = "counts"
		su := newDatabase(t, s, db, script)
		// Skewed data as in the attack: eve owns 400 todos, 40 others one
		// each, alice none. app.notices, a table without row-level
		// security, exists in this test database only.
		if _, err := su.Exec(t.Context(), `
			insert into app.todos (title, owner_id) select 'eve''s', '`+eveSub+`'::uuid from generate_series(1, 400);
			insert into app.todos (title, owner_id) select 'other', gen_random_uuid() from generate_series(1, 40);
			analyze app.todos;
			create table app.notices (id int primary key, body text);
			insert into app.notices select g, 'notice' from generate_series(1, 10) g;
			analyze app.notices;
			grant select on app.notices to web_user`); err != nil {
			t.Fatal(err)
		}
		api, noPre := startPostgREST(t, bin, s, db, cfg), off(t, db)
		aliceTok := realm.token(t, alice.claims(roleClaim, time.Now()))
		get := func(api *client, path, prefer string) response {
			return api.do(t, request{method: "GET", path: path, token: aliceTok, prefer: prefer})
		}
		byEve, byNobody := "/todos?owner_id=eq."+eveSub, "/todos?owner_id=eq."+nobodySub

		step(t, "the leak: without the db-pre-request a planned count tells alice that eve owns many todos", func(t *testing.T) {
			eve, nobody := get(noPre, byEve, "count=planned"), get(noPre, byNobody, "count=planned")
			wantRows(t, eve, tables[0], []row{})
			wantRows(t, nobody, tables[0], []row{})
			t.Logf("without db-pre-request, as alice: %s Content-Range %s; %s Content-Range %s",
				byEve, eve.header.Get("Content-Range"), byNobody, nobody.header.Get("Content-Range"))
			if countOf(t, eve) <= countOf(t, nobody) {
				t.Fatalf("planned count for eve %d, for nobody %d: want eve's larger (the leak this test is about)", countOf(t, eve), countOf(t, nobody))
			}
		})
		step(t, "the shipped configuration answers 400 (SQLSTATE 22023), saying why and what to ask instead", func(t *testing.T) {
			for _, c := range []struct{ path, prefer, target string }{
				{byEve, "count=planned", "todos"},
				{byNobody, "count=estimated", "todos"},
				{"/chats?group_id=eq.6", "count=planned", "chats"},
				{"/groups", "count=planned", "groups"},
				{"/todos", "return=representation,count=planned", "todos"},
			} {
				e := wantError(t, get(api, c.path, c.prefer), http.StatusBadRequest, "22023", "Prefer: "+strings.Split(c.prefer, ",")[len(strings.Split(c.prefer, ","))-1]+" is not allowed on "+c.target)
				if e.Details == nil || !strings.Contains(*e.Details, "statistics") || e.Hint == nil || !strings.Contains(*e.Hint, "count=exact") {
					t.Fatalf("%s: details %v, hint %v: want the statistics named and count=exact offered", c.path, e.Details, e.Hint)
				}
			}
			head := api.do(t, request{method: "HEAD", path: byEve, token: aliceTok, prefer: "count=planned"})
			wantStatus(t, head, http.StatusBadRequest)
			// Anonymous requests too (before the schema privilege answers 401).
			wantError(t, api.do(t, request{method: "GET", path: byEve, prefer: "count=planned"}), http.StatusBadRequest, "22023", "is not allowed on todos")
		})
		step(t, "count=exact and plain requests pass: exact counts only what alice sees", func(t *testing.T) {
			exact := get(api, byEve, "count=exact")
			wantRows(t, exact, tables[0], []row{})
			if n := countOf(t, exact); n != 0 {
				t.Fatalf("count=exact for eve's todos as alice: %d, want 0", n)
			}
			wantRows(t, get(api, "/todos", ""), tables[0], []row{})
		})
		step(t, "a table without row-level security keeps its planned count", func(t *testing.T) {
			resp := get(api, "/notices", "count=planned")
			wantStatus(t, resp, http.StatusOK)
			if n := countOf(t, resp); n != 10 {
				t.Fatalf("planned count of app.notices: %d, want its 10 rows", n)
			}
		})
	})

	t.Run("tokens without aud or exp", func(t *testing.T) {
		t.Parallel()
		const db = "tokens"
		newDatabase(t, s, db, script)
		api, noPre := startPostgREST(t, bin, s, db, cfg), off(t, db)
		now := time.Now()
		without := func(claim string) string {
			c := alice.claims(roleClaim, now)
			delete(c, claim)
			return realm.token(t, c)
		}
		good, noAud, noExp := realm.token(t, alice.claims(roleClaim, now)), without("aud"), without("exp")
		audString := alice.claims(roleClaim, now)
		audString["aud"] = audience
		get := func(api *client, token string) response {
			return api.do(t, request{method: "GET", path: "/todos", token: token})
		}
		step(t, "without the db-pre-request PostgREST 12 accepts both", func(t *testing.T) {
			wantRows(t, get(noPre, noAud), tables[0], []row{})
			wantRows(t, get(noPre, noExp), tables[0], []row{})
		})
		step(t, "the shipped configuration refuses a token without aud: 403, SQLSTATE 28000", func(t *testing.T) {
			e := wantError(t, get(api, noAud), http.StatusForbidden, "28000", "this token has no audience (aud)")
			if e.Hint == nil || !strings.Contains(*e.Hint, audience) {
				t.Fatalf("hint %v: want the audience named", e.Hint)
			}
		})
		step(t, "and a token without exp: 403, SQLSTATE 28000", func(t *testing.T) {
			wantError(t, get(api, noExp), http.StatusForbidden, "28000", "this token has no expiry (exp)")
		})
		step(t, "good tokens pass: aud an array holding the audience, or the audience as a string", func(t *testing.T) {
			wantRows(t, get(api, good), tables[0], []row{})
			wantRows(t, get(api, realm.token(t, audString)), tables[0], []row{})
		})
		step(t, "another audience is PostgREST's own 401, with or without the db-pre-request", func(t *testing.T) {
			other := alice.claims(roleClaim, now)
			other["aud"] = "another-client"
			for _, api := range []*client{api, noPre} {
				wantError(t, get(api, realm.token(t, other)), http.StatusUnauthorized, "PGRST301", "")
			}
		})
		step(t, "anonymous requests are not refused by it: the table privilege answers", func(t *testing.T) {
			wantError(t, get(api, ""), http.StatusUnauthorized, "42501", "permission denied for table todos")
		})
	})

	t.Run("request.headers and request.path: internal/pgrest sets what PostgREST sets", func(t *testing.T) {
		t.Parallel()
		const db = "headers_probe"
		su := newDatabase(t, s, db, script)
		// A probe, in this test database only: what the pre-request reads.
		if _, err := su.Exec(t.Context(), `
			create function app.e2e_request_headers() returns json language sql stable
			    as $$ select json_build_object(
			        'prefer', current_setting('request.headers', true)::json ->> 'prefer',
			        'path', current_setting('request.path', true)) $$;
			grant execute on function app.e2e_request_headers() to web_user`); err != nil {
			t.Fatal(err)
		}
		api := startPostgREST(t, bin, s, db, cfg)
		claims := alice.claims(roleClaim, time.Now())
		resp := api.do(t, request{method: "GET", path: "/rpc/e2e_request_headers", token: realm.token(t, claims), prefer: "count=exact"})
		wantStatus(t, resp, http.StatusOK)
		var real map[string]any
		if err := json.Unmarshal(resp.body, &real); err != nil {
			t.Fatalf("got %s: %v", resp, err)
		}
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
		var decoded map[string]any
		b, _ := json.Marshal(claims)
		if err := json.Unmarshal(b, &decoded); err != nil {
			t.Fatal(err)
		}
		var emulated map[string]any
		req := pgrest.Request{Method: "GET", Path: "/rpc/e2e_request_headers", Role: "web_user", Claims: decoded, Headers: map[string]string{"Prefer": "count=exact"}}
		emulate(t, conn, req, "app.e2e_request_headers", &emulated)
		t.Logf("PostgREST: %s", resp.body)
		if diff := cmp.Diff(real, emulated); diff != "" {
			t.Errorf("request.headers' prefer and request.path (-PostgREST +internal/pgrest):\n%s", diff)
		}
	})

	t.Run("a groups claim of thousands of paths: PostgREST refuses the header itself", func(t *testing.T) {
		// Measured on PostgREST 12.2.3: an Authorization header of 49,753
		// bytes (2,600 paths such as /team-00001) passes, one of 51,620
		// (2,700) gets a plain-text 400 "Bad Request" before any SQL runs;
		// at 150 KB (8,000) the connection is also reset. README, Keycloak
		// section, advises database memberships for users in many groups.
		t.Parallel()
		const db = "big_groups"
		newDatabase(t, s, db, script)
		api := startPostgREST(t, bin, s, db, cfg)
		now := time.Now()
		daveIn := func(n int) string {
			c := dave.claims(roleClaim, now)
			groups := make([]string, n)
			for i := range groups {
				groups[i] = fmt.Sprintf("/team-%05d", i)
			}
			c["groups"] = groups
			return realm.token(t, c)
		}
		for _, c := range []struct {
			paths int
			ok    bool
		}{{2000, true}, {3000, false}, {8000, false}} {
			tok := daveIn(c.paths)
			status, body, err := api.raw("GET", "/todos", tok, nil)
			t.Logf("%d group paths: Authorization header %d bytes: status %d, %q, error %v", c.paths, len("Bearer ")+len(tok), status, truncate(body, 40), err)
			switch {
			case c.ok && (err != nil || status != http.StatusOK):
				t.Errorf("%d group paths: status %d, error %v; want 200", c.paths, status, err)
			case !c.ok && err == nil && (status != http.StatusBadRequest || json.Valid(body)):
				t.Errorf("%d group paths: status %d %q; want PostgREST's plain-text 400 (or a reset connection)", c.paths, status, body)
			}
		}
	})
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
