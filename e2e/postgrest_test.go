package e2e

// The example of policies/ (todos.iam and chats.iam: the owner of a row has
// full CRUD on it; a chat message is posted into a room, a group its author
// is a member of) served by a real PostgREST 12 and exercised over HTTP,
// once per JWT set-up. Every step checks what the caller gets (status and
// JSON body) and what the superuser then finds in the table. The groups
// walk-through of README is in groups_test.go.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/exampletest"
)

// table is a table of policies/schema.sql protected by
// `owner can read, create, write, delete`.
type table struct {
	name string // qualified name
	path string // PostgREST path
	noun string // what a row is, for test names
	text string // its text column
	// room: every row is posted into a group its author is a member of
	// (`group column group_id required`, `group member can read, create`).
	room bool
}

var tables = []table{
	{name: "app.todos", path: "/todos", noun: "todo", text: "title"},
	{name: "app.chats", path: "/chats", noun: "chat message", text: "body", room: true},
}

// jwtSetup is one way of signing tokens and configuring PostgREST to verify
// them.
type jwtSetup struct {
	name  string
	db    string
	style roleStyle
	// keys returns the PostgREST configuration, a signer PostgREST trusts
	// and a signer it must not trust.
	keys func(t *testing.T) (cfg jwtConfig, trusted, untrusted signer)
}

var jwtSetups = []jwtSetup{
	{
		// A shared secret, and a Keycloak "Hardcoded claim" mapper that adds
		// "role": "web_user" at the top level (PostgREST's default role claim).
		name:  "with HS256 tokens and a top-level role claim",
		db:    "hs256",
		style: roleClaim,
		keys: func(t *testing.T) (jwtConfig, signer, signer) {
			const secret = "e2e-hs256-shared-secret-of-more-than-32-characters"
			return jwtConfig{secret: secret}, hs256(secret), hs256("an-attacker's-guess-at-the-secret-32+-chars")
		},
	},
	{
		// Keycloak's realm key published as a JWKS (as at .../certs), and the
		// role from the hard-coded claim mapper: the shipped set-up.
		name:  "with RS256 tokens verified by a JWKS and a top-level role claim",
		db:    "jwks",
		style: roleClaim,
		keys: func(t *testing.T) (jwtConfig, signer, signer) {
			key, other := newRSAKey(t), newRSAKey(t)
			// The untrusted key claims the same kid.
			return jwtConfig{secret: jwks(t, &key.PublicKey, realmKid)}, rs256(key, realmKid), rs256(other, realmKid)
		},
	},
}

// realmKid names the realm's signing key in the JWKS.
const realmKid = "e2e-realm-key"

// tokens are the bearer tokens of the scenario.
type tokens struct {
	alice, bob string
	dave       string // dave's, without a groups claim
	daveTeamA  string // dave's, listing Keycloak group /team-a in the groups claim
	daveTeamB  string // dave's, listing only /team-b, a group no iam group is linked to
	federated  string // a valid token whose sub is "f:ldap:alice"
	noSub      string // a valid token without sub
	expired    string // alice's, expired five minutes ago
	wrongKey   string // alice's, signed by a key PostgREST does not trust
	otherAud   string // alice's, issued for another client
	// notes.iam and chats.iam's roles (notes_test.go).
	bobOrgAdmin   string // bob's (acme) with the realm role org-admin
	carolOrgAdmin string // carol's (globex) with the realm role org-admin
	daveModerator string // dave's with the realm role moderator
	aliceOrgList  string // alice's, org_id an array ["acme"]
	aliceNoOrg    string // alice's, without org_id
}

func newTokens(t *testing.T, style roleStyle, trusted, untrusted signer) tokens {
	now := time.Now()
	aliceClaims := func(edit func(map[string]any)) map[string]any {
		c := alice.claims(style, now)
		edit(c)
		return c
	}
	// Keycloak's Group Membership mapper, claim name "groups", full path on.
	daveIn := func(groups ...string) string {
		c := dave.claims(style, now)
		c["groups"] = groups
		return trusted.token(t, c)
	}
	return tokens{
		alice:     trusted.token(t, alice.claims(style, now)),
		bob:       trusted.token(t, bob.claims(style, now)),
		dave:      trusted.token(t, dave.claims(style, now)),
		daveTeamA: daveIn("/team-a"),
		daveTeamB: daveIn("/team-b"),
		federated: trusted.token(t, federatedAlice.claims(style, now)),
		noSub:     trusted.token(t, aliceClaims(func(c map[string]any) { delete(c, "sub") })),
		// Issued ten minutes ago for five: beyond PostgREST's 30 s clock skew allowance.
		expired:  trusted.token(t, alice.claims(style, now.Add(-10*time.Minute))),
		wrongKey: untrusted.token(t, alice.claims(style, now)),
		otherAud: trusted.token(t, aliceClaims(func(c map[string]any) { c["aud"] = "another-client" })),

		bobOrgAdmin:   trusted.token(t, withRealmRole(bob.claims(style, now), "org-admin")),
		carolOrgAdmin: trusted.token(t, withRealmRole(carol.claims(style, now), "org-admin")),
		daveModerator: trusted.token(t, withRealmRole(dave.claims(style, now), "moderator")),
		aliceOrgList:  trusted.token(t, aliceClaims(func(c map[string]any) { c["org_id"] = []string{"acme"} })),
		aliceNoOrg:    trusted.token(t, aliceClaims(func(c map[string]any) { delete(c, "org_id") })),
	}
}

func TestPostgREST(t *testing.T) {
	bin := postgrestBinary(t)
	s := exampletest.Server(t)
	script := buildPolicies(t)

	for _, setup := range jwtSetups {
		t.Run(setup.name, func(t *testing.T) {
			t.Parallel()
			su := newDatabase(t, s, setup.db, script)
			cfg, trusted, untrusted := setup.keys(t)
			api := startPostgREST(t, bin, s, setup.db, cfg)
			tok := newTokens(t, setup.style, trusted, untrusted)
			for _, tbl := range tables {
				t.Run(tbl.noun+"s", func(t *testing.T) {
					scenario(t, api, su, tbl, tok)
				})
			}
			// README's walk-through names todo 1 and messages 1 and 2: a
			// database of its own, where they are the first ones.
			t.Run("sharing with groups", func(t *testing.T) {
				db := setup.db + "_groups"
				su := newDatabase(t, s, db, script)
				api := startPostgREST(t, bin, s, db, cfg)
				groupsScenario(t, api, su, tok)
			})
			t.Run("sharing todos", func(t *testing.T) {
				db := setup.db + "_shares"
				su := newDatabase(t, s, db, script)
				api := startPostgREST(t, bin, s, db, cfg)
				sharingScenario(t, api, su, tok)
			})
			t.Run("marketplace", func(t *testing.T) {
				db := setup.db + "_market"
				su := newDatabase(t, s, db, script)
				api := startPostgREST(t, bin, s, db, cfg)
				marketplaceScenario(t, api, su, tok)
			})
			t.Run("notes of organisations and moderators", func(t *testing.T) {
				db := setup.db + "_notes"
				su := newDatabase(t, s, db, script)
				api := startPostgREST(t, bin, s, db, cfg)
				notesScenario(t, api, su, tok)
			})
		})
	}
}

// step runs one step of a scenario. The steps build on each other, so the
// scenario stops at the first that fails.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

func scenario(t *testing.T, api *client, su *pgx.Conn, tbl table, tok tokens) {
	noun := tbl.noun
	byID := func(id int64) string { return fmt.Sprintf("%s?id=eq.%d", tbl.path, id) }
	text := func(s string) map[string]any { return map[string]any{tbl.text: s} }

	// Chat messages are posted into a room: alice and bob each create one,
	// and each is the only member of their own.
	var aliceRoom, bobRoom int64
	if tbl.room {
		step(t, "alice and bob each create a room", func(t *testing.T) {
			aliceRoom = createGroup(t, api, tok.alice, "alice's room")
			bobRoom = createGroup(t, api, tok.bob, "bob's room")
		})
	}
	// posted is the body of a new row: in the room when rows are posted into one.
	posted := func(s string, room int64) map[string]any {
		body := text(s)
		if tbl.room {
			body["group_id"] = room
		}
		return body
	}
	wantRoom := func(t *testing.T, id, room int64) {
		t.Helper()
		if !tbl.room {
			return
		}
		var got *int64
		if err := su.QueryRow(t.Context(), fmt.Sprintf("select group_id from %s where id = $1", tbl.name), id).Scan(&got); err != nil {
			t.Fatalf("as superuser: %v", err)
		}
		if got == nil {
			t.Fatalf("row %d of %s has no group_id, want %d", id, tbl.name, room)
		}
		if *got != room {
			t.Fatalf("row %d of %s has group_id %d, want %d", id, tbl.name, *got, room)
		}
	}

	var mine []row // alice's rows, by id
	var his row    // bob's row

	step(t, "alice creates a "+noun+" and gets it back, owned by her", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: tbl.path, token: tok.alice, prefer: "return=representation", body: posted("alice's first", aliceRoom)})
		wantStatus(t, resp, http.StatusCreated)
		got := decodeRows(t, resp, tbl)
		if len(got) != 1 || got[0].Owner != alice.sub || got[0].Text != "alice's first" {
			t.Fatalf("got %s, want one row with owner_id %s", resp, alice.sub)
		}
		mine = got
		wantTable(t, su, tbl, mine)
		wantRoom(t, got[0].ID, aliceRoom)
	})

	step(t, "alice creates a "+noun+" with return=minimal and gets an empty 201", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: tbl.path, token: tok.alice, prefer: "return=minimal", body: posted("alice's second", aliceRoom)})
		wantStatus(t, resp, http.StatusCreated)
		if len(resp.body) != 0 {
			t.Fatalf("got %s, want no body", resp)
		}
		all := tableRows(t, su, tbl)
		if len(all) != 2 || all[1].Owner != alice.sub || all[1].Text != "alice's second" {
			t.Fatalf("%s holds %v, want alice's second row owned by %s", tbl.name, all, alice.sub)
		}
		mine = all
		wantRoom(t, all[1].ID, aliceRoom)
	})

	step(t, "bob, who has written none, lists no "+noun+"s", func(t *testing.T) {
		resp := api.do(t, request{method: "GET", path: tbl.path, token: tok.bob})
		wantStatus(t, resp, http.StatusOK)
		wantRows(t, resp, tbl, nil)
	})

	step(t, "bob creates a "+noun+" of his own", func(t *testing.T) {
		resp := api.do(t, request{method: "POST", path: tbl.path, token: tok.bob, prefer: "return=representation", body: posted("bob's", bobRoom)})
		wantStatus(t, resp, http.StatusCreated)
		got := decodeRows(t, resp, tbl)
		if len(got) != 1 || got[0].Owner != bob.sub {
			t.Fatalf("got %s, want one row with owner_id %s", resp, bob.sub)
		}
		his = got[0]
		wantTable(t, su, tbl, append(mine[:len(mine):len(mine)], his))
		wantRoom(t, his.ID, bobRoom)
	})
	all := append(mine[:len(mine):len(mine)], his)

	step(t, "alice lists exactly her own "+noun+"s", func(t *testing.T) {
		resp := api.do(t, request{method: "GET", path: tbl.path + "?order=id", token: tok.alice})
		wantStatus(t, resp, http.StatusOK)
		wantRows(t, resp, tbl, mine)
	})

	step(t, "bob lists exactly his own "+noun+"s", func(t *testing.T) {
		resp := api.do(t, request{method: "GET", path: tbl.path + "?order=id", token: tok.bob})
		wantStatus(t, resp, http.StatusOK)
		wantRows(t, resp, tbl, []row{his})
	})

	if tbl.room {
		step(t, "bob, outside alice's room, sees none of its "+noun+"s", func(t *testing.T) {
			resp := api.do(t, request{method: "GET", path: fmt.Sprintf("%s?group_id=eq.%d", tbl.path, aliceRoom), token: tok.bob})
			wantStatus(t, resp, http.StatusOK)
			wantRows(t, resp, tbl, nil)
		})
	}

	// Bob's writes to alice's rows: RLS hides her rows from his UPDATE and
	// DELETE, so they match nothing. That is a success with no rows, not an
	// error: PostgREST answers as for a filter that matches nothing.
	target := mine[0]
	aliceOwns := tbl.path + "?owner_id=eq." + alice.sub
	for _, c := range []struct {
		name     string
		method   string
		path     string
		prefer   string
		body     any
		status   int
		wantBody string
	}{
		{"bob's PATCH of alice's " + noun + " changes nothing", "PATCH", byID(target.ID), "", text("edited by bob"), http.StatusNoContent, ""},
		{"bob's PATCH of alice's " + noun + " with return=representation returns no rows", "PATCH", byID(target.ID), "return=representation", text("edited by bob"), http.StatusOK, "[]"},
		{"bob's PATCH of all of alice's " + noun + "s changes nothing", "PATCH", aliceOwns, "", text("edited by bob"), http.StatusNoContent, ""},
		{"bob's DELETE of alice's " + noun + " deletes nothing", "DELETE", byID(target.ID), "", nil, http.StatusNoContent, ""},
		{"bob's DELETE of alice's " + noun + " with return=representation returns no rows", "DELETE", byID(target.ID), "return=representation", nil, http.StatusOK, "[]"},
		{"bob's DELETE of all of alice's " + noun + "s deletes nothing", "DELETE", aliceOwns, "", nil, http.StatusNoContent, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := api.do(t, request{method: c.method, path: c.path, token: tok.bob, prefer: c.prefer, body: c.body})
			wantStatus(t, resp, c.status)
			if string(resp.body) != c.wantBody {
				t.Errorf("got %s, want body %q", resp, c.wantBody)
			}
			wantTable(t, su, tbl, all)
		})
	}

	// Requests that are refused: an HTTP error with PostgREST's JSON body,
	// and the table unchanged.
	type refusal struct {
		name    string
		token   string
		method  string
		path    string
		body    any
		status  int
		code    string // the JSON body's code: a SQLSTATE, or PGRSTnnn for PostgREST's own errors
		message string // a part of the JSON body's message
		details string // a part of the JSON body's details; "" to not check
	}
	forged := posted("forged", aliceRoom)
	forged["owner_id"] = bob.sub
	refusals := []refusal{
		// No token: PostgREST runs the request as web_anon, which has no
		// privileges on the table; 42501 without a JWT is a 401.
		{"an anonymous visitor cannot list " + noun + "s", "", "GET", tbl.path, nil,
			http.StatusUnauthorized, "42501", "permission denied", ""},
		{"an anonymous visitor cannot create a " + noun, "", "POST", tbl.path, posted("anonymous", aliceRoom),
			http.StatusUnauthorized, "42501", "permission denied", ""},
		// The owner trigger: 42501 with a JWT is a 403.
		{"alice cannot give her " + noun + " to bob", tok.alice, "PATCH", byID(target.ID), map[string]any{"owner_id": bob.sub},
			http.StatusForbidden, "42501", "cannot be changed", ""},
		{"alice cannot create a " + noun + " in bob's name", tok.alice, "POST", tbl.path, forged,
			http.StatusForbidden, "42501", "owner_id must be the caller's own user id", ""},
		// identity { type uuid }: a sub that is not a uuid is SQLSTATE 28000, a 403.
		{"a federated user whose sub is not a uuid is told why when listing " + noun + "s", tok.federated, "GET", tbl.path, nil,
			http.StatusForbidden, "28000", "the JWT claim sub is not a uuid", "f:ldap:alice"},
		{"a federated user whose sub is not a uuid is told why when creating a " + noun, tok.federated, "POST", tbl.path, posted("federated", aliceRoom),
			http.StatusForbidden, "28000", "the JWT claim sub is not a uuid", "f:ldap:alice"},
		{"a token without sub cannot create a " + noun, tok.noSub, "POST", tbl.path, posted("nobody's", aliceRoom),
			http.StatusForbidden, "28000", "without a user id", "sub claim"},
		// PostgREST's own JWT checks, before any SQL runs.
		{"an expired token is refused", tok.expired, "GET", tbl.path, nil,
			http.StatusUnauthorized, "PGRST301", "JWT expired", ""},
		{"a token signed with the wrong key is refused", tok.wrongKey, "GET", tbl.path, nil,
			http.StatusUnauthorized, "PGRST301", "JWSInvalidSignature", ""},
		{"a token issued for another audience is refused", tok.otherAud, "GET", tbl.path, nil,
			http.StatusUnauthorized, "PGRST301", "JWTNotInAudience", ""},
	}
	if tbl.room {
		notYours := fmt.Sprintf("you cannot put rows of %s into group %d", tbl.name, aliceRoom)
		refusals = append(refusals, []refusal{
			// The row guard: only members (group member can create) post into a room.
			{"bob, outside alice's room, cannot post into it", tok.bob, "POST", tbl.path, posted("bob's intrusion", aliceRoom),
				http.StatusForbidden, "42501", notYours, "member role"},
			{"bob cannot move his " + noun + " into alice's room", tok.bob, "PATCH", byID(his.ID), map[string]any{"group_id": aliceRoom},
				http.StatusForbidden, "42501", notYours, "member role"},
			// group column group_id required: 23502, a 400.
			{"alice cannot post a " + noun + " without a room", tok.alice, "POST", tbl.path, text("roomless"),
				http.StatusBadRequest, "23502", "every row of " + tbl.name + " belongs to a group", "group_id is required"},
			{"alice cannot take her " + noun + " out of its room", tok.alice, "PATCH", byID(target.ID), map[string]any{"group_id": nil},
				http.StatusBadRequest, "23502", "every row of " + tbl.name + " belongs to a group", "group_id is required"},
			// A room that does not exist is refused as one the caller is not
			// in (the row guard runs before the foreign key's 23503), so
			// the answer does not tell which group ids exist.
			{"alice cannot post a " + noun + " into a room that does not exist", tok.alice, "POST", tbl.path, posted("lost", 999999),
				http.StatusForbidden, "42501", "you cannot put rows of " + tbl.name + " into group 999999", ""},
		}...)
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			resp := api.do(t, request{method: c.method, path: c.path, token: c.token, body: c.body})
			t.Logf("%s %s: %s", c.method, c.path, resp)
			e := wantError(t, resp, c.status, c.code, c.message)
			if c.details != "" && (e.Details == nil || !strings.Contains(*e.Details, c.details)) {
				t.Errorf("got %s, want details mentioning %q", resp, c.details)
			}
			wantTable(t, su, tbl, all)
		})
	}

	step(t, "alice edits her "+noun, func(t *testing.T) {
		resp := api.do(t, request{method: "PATCH", path: byID(target.ID), token: tok.alice, prefer: "return=representation", body: text("edited by alice")})
		wantStatus(t, resp, http.StatusOK)
		target.Text = "edited by alice"
		wantRows(t, resp, tbl, []row{target})
		wantTable(t, su, tbl, []row{target, mine[1], his})
	})

	step(t, "alice deletes her other "+noun, func(t *testing.T) {
		resp := api.do(t, request{method: "DELETE", path: byID(mine[1].ID), token: tok.alice})
		wantStatus(t, resp, http.StatusNoContent)
		wantTable(t, su, tbl, []row{target, his})
	})
}
