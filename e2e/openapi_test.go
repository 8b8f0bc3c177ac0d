package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/iamc/iamc/internal/pgtest"
)

// TestOpenAPIOwnerOptional: PostgREST's OpenAPI document (GET /) marks a
// column required when it is NOT NULL without a default. The row guard
// fills the owner column from the token, so the build gives it a default
// (the caller's id) and clients and code generators see it as optional;
// what a client may send is unchanged (an insert without it is the
// caller's, one naming someone else is refused).
func TestOpenAPIOwnerOptional(t *testing.T) {
	bin := postgrestBinary(t)
	s := pgtest.New(t)
	psqlFile(t, s, "postgres", filepath.Join(policiesDir, "roles.sql"))
	su := newDatabase(t, s, "openapi", buildPolicies(t))
	setup := jwtSetups[0]
	cfg, trusted, _ := setup.keys(t)
	api := startPostgREST(t, bin, s, "openapi", cfg)
	token := trusted.token(t, alice.claims(setup.style, time.Now()))

	resp := api.do(t, request{method: "GET", path: "/", token: token})
	wantStatus(t, resp, http.StatusOK)
	var doc struct {
		Definitions map[string]struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		t.Fatalf("GET /: %v\n%s", err, resp.body)
	}
	for _, name := range []string{"todos", "chats"} {
		def, ok := doc.Definitions[name]
		if !ok {
			t.Fatalf("GET /: no definition of %s:\n%s", name, resp.body)
		}
		t.Logf("%s: required %v, owner_id %s", name, def.Required, def.Properties["owner_id"])
		if slices.Contains(def.Required, "owner_id") {
			t.Errorf("the OpenAPI definition of %s lists owner_id as required: %v", name, def.Required)
		}
		if _, ok := def.Properties["owner_id"]; !ok {
			t.Errorf("the OpenAPI definition of %s has no owner_id property", name)
		}
	}

	// Over HTTP, as before: left out, it is the caller's; someone else's is refused.
	resp = api.do(t, request{method: "POST", path: "/todos", token: token, prefer: "return=representation", body: map[string]any{"title": "no owner given"}})
	wantStatus(t, resp, http.StatusCreated)
	if got := decodeRows(t, resp, tables[0]); len(got) != 1 || got[0].Owner != alice.sub {
		t.Errorf("got %s, want one todo owned by %s", resp, alice.sub)
	}
	resp = api.do(t, request{method: "POST", path: "/todos", token: token, body: map[string]any{"title": "bob's?", "owner_id": bob.sub}})
	wantError(t, resp, http.StatusForbidden, "42501", "owner_id must be the caller's own user id")
	if got := tableRows(t, su, tables[0]); len(got) != 1 {
		t.Errorf("app.todos holds %v, want alice's one todo", got)
	}
}
