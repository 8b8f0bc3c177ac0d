package e2e

// PostgREST in the deployments of issue 6 beyond a single server: reading
// from a hot standby, and behind pgbouncer in transaction pooling mode.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgtest"
)

// TestPostgRESTOnStandby serves the example from a streaming replica: every
// read answers as on the primary, for each user and for anonymous; writes
// are refused and change nothing; a block made on the primary reaches the
// replica's runtime, which refuses the blocked user there too.
func TestPostgRESTOnStandby(t *testing.T) {
	bin := postgrestBinary(t)
	// A primary of its own: the standby copies a whole cluster.
	s := pgtest.New(t)
	if err := exampletest.Roles(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	su := newDatabase(t, s, "replicated", buildPolicies(t))
	key := newRSAKey(t)
	cfg := jwtConfig{secret: jwks(t, &key.PublicKey, realmKid)}
	realm := rs256(key, realmKid)
	now := time.Now()
	tokens := map[string]string{
		"alice": realm.token(t, alice.claims(roleClaim, now)),
		"bob":   realm.token(t, bob.claims(roleClaim, now)),
		"carol": realm.token(t, carol.claims(roleClaim, now)),
		"anon":  "",
	}
	standby := pgtest.NewStandby(t, s)
	primary := startPostgREST(t, bin, s, "replicated", cfg)

	// Written on the primary after the standby was made: only replication
	// brings them there.
	step(t, "alice and bob write on the primary", func(t *testing.T) {
		for _, title := range []string{"alice's own", "alice's shared"} {
			wantStatus(t, primary.do(t, request{method: "POST", path: "/todos", token: tokens["alice"], body: map[string]any{"title": title}}), http.StatusCreated)
		}
		wantStatus(t, primary.do(t, request{method: "POST", path: "/todos", token: tokens["bob"], body: map[string]any{"title": "bob's own"}}), http.StatusCreated)
		team := createGroup(t, primary, tokens["alice"], "team")
		wantVoid(t, rpc(t, primary, tokens["alice"], "add_group_member", map[string]any{"group_id": team, "user_id": bob.sub}))
		wantStatus(t, primary.do(t, request{method: "PATCH", path: "/todos?title=eq.alice's%20shared", token: tokens["alice"], body: map[string]any{"group_id": team}}), http.StatusNoContent)
		wantStatus(t, primary.do(t, request{method: "POST", path: "/chats", token: tokens["bob"], body: map[string]any{"body": "hi team", "group_id": team}}), http.StatusCreated)
	})
	if err := standby.CatchUp(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	// A standby cannot LISTEN: PostgREST's schema cache channel is off there.
	replica := startPostgRESTAt(t, bin, standby.URL("replicated", "authenticator"), cfg, "PGRST_DB_CHANNEL_ENABLED=false")

	reads := []string{"/todos?order=id", "/chats?order=id", "/groups?order=id", "/group_members?order=group_id,user_id", "/todos?select=count"}
	step(t, "every read answers on the replica as on the primary", func(t *testing.T) {
		for _, who := range []string{"alice", "bob", "carol", "anon"} {
			for _, path := range reads {
				onPrimary := primary.do(t, request{method: "GET", path: path, token: tokens[who]})
				onReplica := replica.do(t, request{method: "GET", path: path, token: tokens[who]})
				if onPrimary.status != onReplica.status || !jsonEqual(onPrimary.body, onReplica.body) {
					t.Errorf("%s GET %s: primary %s, replica %s", who, path, onPrimary, onReplica)
				}
			}
		}
		// And they are the answers of the policies, not merely equal ones.
		wantTitles(t, replica.do(t, request{method: "GET", path: "/todos?order=id", token: tokens["alice"]}), "alice's own", "alice's shared")
		wantTitles(t, replica.do(t, request{method: "GET", path: "/todos?order=id", token: tokens["bob"]}), "alice's shared", "bob's own")
		wantTitles(t, replica.do(t, request{method: "GET", path: "/todos?order=id", token: tokens["carol"]}))
	})

	step(t, "writes on the replica are refused and change nothing", func(t *testing.T) {
		before := tableRows(t, su, tables[0])
		for _, req := range []request{
			{method: "POST", path: "/todos", token: tokens["alice"], body: map[string]any{"title": "on the replica"}},
			{method: "PATCH", path: "/todos?title=eq.alice's%20own", token: tokens["alice"], body: map[string]any{"done": true}},
			{method: "DELETE", path: "/todos?title=eq.alice's%20own", token: tokens["alice"]},
			{method: "POST", path: "/rpc/create_group", token: tokens["carol"], body: map[string]any{"name": "on the replica"}},
		} {
			// PostgREST opens a write request with BEGIN ... READ WRITE,
			// which a server in recovery refuses (0A000, HTTP 400) before
			// anything runs.
			wantError(t, replica.do(t, req), http.StatusBadRequest, "0A000", "cannot set transaction read-write mode during recovery")
		}
		if diff := cmp.Diff(before, tableRows(t, su, tables[0])); diff != "" {
			t.Errorf("the primary changed (-before +after):\n%s", diff)
		}
	})

	step(t, "a block made on the primary refuses bob on the replica", func(t *testing.T) {
		if _, err := su.Exec(t.Context(), "select iam.block_subject($1, 'left the company')", bob.sub); err != nil {
			t.Fatal(err)
		}
		if err := standby.CatchUp(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		wantError(t, replica.do(t, request{method: "GET", path: "/todos", token: tokens["bob"]}), http.StatusForbidden, "28000", "this user is blocked")
		wantTitles(t, replica.do(t, request{method: "GET", path: "/todos?order=id", token: tokens["alice"]}), "alice's own", "alice's shared")
	})
}

// TestPostgRESTBehindPgBouncer runs PostgREST through pgbouncer in
// transaction pooling mode with two server connections for eight
// PostgREST connections, as README's "Behind a pooler" says to configure
// it, while several users read and write at once: every answer is the
// caller's own.
func TestPostgRESTBehindPgBouncer(t *testing.T) {
	bin := postgrestBinary(t)
	s := exampletest.Server(t)
	newDatabase(t, s, "pooled", buildPolicies(t))
	pool := pgtest.NewPgBouncer(t, s, pgtest.PgBouncerOptions{PoolSize: 2})
	key := newRSAKey(t)
	cfg := jwtConfig{secret: jwks(t, &key.PublicKey, realmKid)}
	realm := rs256(key, realmKid)
	api := startPostgRESTAt(t, bin, pool.URL("pooled", "authenticator"), cfg,
		// pgbouncer 1.18 keeps no prepared statements across transactions,
		// and LISTEN does not survive transaction pooling.
		"PGRST_DB_PREPARED_STATEMENTS=false", "PGRST_DB_CHANNEL_ENABLED=false")

	now := time.Now()
	var callers []caller
	for _, u := range []user{alice, bob, carol, dave} {
		callers = append(callers, caller{u.username, realm.token(t, u.claims(roleClaim, now))})
	}

	const rounds = 15
	var wg sync.WaitGroup
	errs := make(chan error, len(callers)*2)
	for i, c := range callers {
		for worker := 0; worker < 2; worker++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- c.work(api, i, worker, rounds)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Every user ends with exactly the todos their workers left.
	for _, c := range callers {
		resp := api.do(t, request{method: "GET", path: "/todos?order=title", token: c.token})
		var want []string
		for worker := 0; worker < 2; worker++ {
			want = append(want, fmt.Sprintf("%s/%d/kept", c.name, worker))
		}
		wantTitles(t, resp, want...)
	}
}

// work is one worker of one user: each round it creates a todo, lists the
// user's todos (only the user's, and its own new one among them), and
// deletes it again; at the end it keeps one. Safe to run in a goroutine:
// it reports instead of failing the test.
func (c caller) work(api *client, user, worker, rounds int) error {
	for r := 0; r < rounds; r++ {
		title := fmt.Sprintf("%s/%d/%d", c.name, worker, r)
		status, body, err := api.raw("POST", "/todos", c.token, map[string]any{"title": title})
		if err != nil || status != http.StatusCreated {
			return fmt.Errorf("%s: POST %s: %d %s %v", c.name, title, status, body, err)
		}
		status, body, err = api.raw("GET", "/todos?select=title,owner_id", c.token, nil)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%s: GET /todos: %d %s %v", c.name, status, body, err)
		}
		var rows []struct {
			Title string `json:"title"`
		}
		if err := json.Unmarshal(body, &rows); err != nil {
			return fmt.Errorf("%s: GET /todos: %s: %v", c.name, body, err)
		}
		found := false
		for _, row := range rows {
			if !bytes.HasPrefix([]byte(row.Title), []byte(c.name+"/")) {
				return fmt.Errorf("%s saw another user's todo %q", c.name, row.Title)
			}
			found = found || row.Title == title
		}
		if !found {
			return fmt.Errorf("%s: GET /todos lacks the todo just created, %q: %s", c.name, title, body)
		}
		status, body, err = api.raw("DELETE", "/todos?title=eq."+title, c.token, nil)
		if err != nil || status != http.StatusNoContent {
			return fmt.Errorf("%s: DELETE %s: %d %s %v", c.name, title, status, body, err)
		}
	}
	title := fmt.Sprintf("%s/%d/kept", c.name, worker)
	if status, body, err := api.raw("POST", "/todos", c.token, map[string]any{"title": title}); err != nil || status != http.StatusCreated {
		return fmt.Errorf("%s: POST %s: %d %s %v", c.name, title, status, body, err)
	}
	return nil
}

// caller is a signed-in user of the pooled API.
type caller struct {
	name, token string
}

// raw is client.do for goroutines: it returns errors instead of failing.
func (c *client) raw(method, path, token string, body any) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		reader = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// wantTitles checks a 200 response listing todos with exactly these titles,
// in order.
func wantTitles(t *testing.T, resp response, titles ...string) {
	t.Helper()
	wantStatus(t, resp, http.StatusOK)
	var rows []struct {
		Title string `json:"title"`
	}
	if err := json.Unmarshal(resp.body, &rows); err != nil {
		t.Fatalf("got %s, want todos: %v", resp, err)
	}
	got := []string{}
	for _, r := range rows {
		got = append(got, r.Title)
	}
	if titles == nil {
		titles = []string{}
	}
	if !slices.Equal(got, titles) {
		t.Fatalf("got todos %q, want %q", got, titles)
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return cmp.Equal(x, y)
}
