package stdlib_test

// The db-pre-request of the shipped postgrest.conf (iam.check_request)
// beyond the deny list (keycloak_test.go): what PostgREST 12 lets through
// and the runtime refuses before the request's query runs. Planner-estimate
// counts on protected relations, and tokens without the audience of iam.iam
// or without exp.

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/stdlib"
)

// preRequest makes a request of who the way PostgREST configured by the
// shipped postgrest.conf does (db-pre-request = iam.check_request, or none
// when pre is ""), with the given Prefer header ("" for none). The query
// runs only when the pre-request passed: ran says whether it did.
func preRequest(t *testing.T, db *Database, pre string, who Person, method, path, prefer, sql string) (ran bool, err error) {
	t.Helper()
	req := pgrest.Request{Method: method, Path: path, Role: who.Role, Claims: who.Claims, PreRequest: pre}
	if prefer != "" {
		req.Headers = map[string]string{"Prefer": prefer}
	}
	err = pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
		ran = true
		_, err := tx.Exec(t.Context(), sql)
		return err
	})
	return ran, err
}

// planRows is what PostgREST 12 answers for Prefer: count=planned: the
// planner's row estimate of the request's query, here run as who.
func planRows(t *testing.T, db *Database, who Person, sql string) float64 {
	t.Helper()
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	req := pgrest.Request{Method: "GET", Path: "/todos", Role: who.Role, Claims: who.Claims}
	err := pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
		var text string
		if err := tx.QueryRow(t.Context(), "explain (format json) "+sql).Scan(&text); err != nil {
			return err
		}
		return json.Unmarshal([]byte(text), &plan)
	})
	NoError(t, err)
	return plan[0].Plan.Rows
}

func TestPreRequestCounts(t *testing.T) {
	conf, fixtures := PostgRESTConf(t), TokenFixtures(t)
	if conf["db-pre-request"] != stdlib.PreRequest {
		t.Fatalf("postgrest.conf db-pre-request = %q, want %q", conf["db-pre-request"], stdlib.PreRequest)
	}
	db := keycloakDB(t, "prerequest_counts")
	releaseAtEnd(t, db)
	alice := asPostgREST(t, conf, "alice", fixtures["local-user"])
	anonymous := Person{Name: "anonymous", Role: conf["db-anon-role"], Claims: map[string]any{"role": conf["db-anon-role"]}}
	const eve = "e7e00000-0000-4000-8000-000000000e7e"
	// Skewed data, as in the attack: eve owns 400 todos, 40 others one
	// each; alice owns none. Relations of this test database only: a table
	// without row-level security, and a partitioned table with it whose
	// partition has none of its own.
	db.Exec(t, `
		insert into app.todos (title, owner_id) select 'eve''s', '`+eve+`'::uuid from generate_series(1, 400);
		insert into app.todos (title, owner_id) select 'other', gen_random_uuid() from generate_series(1, 40);
		analyze app.todos;
		create table app.notices (id int primary key, body text);
		insert into app.notices select g, 'notice' from generate_series(1, 10) g;
		grant usage on schema app to web_anon;
		grant select on app.notices to web_user, web_anon;
		create table app.events (id int, at date) partition by range (at);
		create table app.events_2026 partition of app.events for values from ('2026-01-01') to ('2027-01-01');
		alter table app.events enable row level security;
		grant select on app.events, app.events_2026 to web_user;`)

	t.Run("the leak it closes: without it, a planned count tells alice that eve owns many todos", func(t *testing.T) {
		byEve := planRows(t, db, alice, "select * from app.todos where owner_id = '"+eve+"'")
		byNobody := planRows(t, db, alice, "select * from app.todos where owner_id = '00000000-0000-4000-8000-000000000000'")
		var visible int64
		req := pgrest.Request{Method: "GET", Path: "/todos", Role: alice.Role, Claims: alice.Claims}
		NoError(t, pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "select count(*) from app.todos where owner_id = $1", eve).Scan(&visible)
		}))
		t.Logf("planned rows as alice: %v for eve's id, %v for an id nobody has; alice sees %d of eve's", byEve, byNobody, visible)
		if visible != 0 || byEve <= byNobody {
			t.Fatalf("want alice to see none of eve's todos while the estimate for eve (%v) exceeds the one for nobody (%v): got %d visible", byEve, byNobody, visible)
		}
	})

	cases := []struct {
		name         string
		who          Person
		method, path string
		prefer       string
		refused      string // the kind in the message; "" when the request passes
	}{
		{"count=planned on todos (row-level security)", alice, "GET", "/todos", "count=planned", "planned"},
		{"count=estimated on todos", alice, "GET", "/todos", "count=estimated", "estimated"},
		{"count=planned on chats", alice, "GET", "/chats", "count=planned", "planned"},
		{"count=estimated on chats, HEAD", alice, "HEAD", "/chats", "count=estimated", "estimated"},
		{"count=planned among other preferences", alice, "POST", "/todos", "return=representation, count=planned", "planned"},
		{"count=planned in another spelling", alice, "GET", "/todos", "Count = Planned", "planned"},
		{"count=planned on a view of the group API (a view filters rows itself)", alice, "GET", "/groups", "count=planned", "planned"},
		{"count=estimated on the group members view", alice, "GET", "/group_members", "count=estimated", "estimated"},
		{"count=planned on an RPC (the planner sees through SQL functions)", alice, "GET", "/rpc/create_group", "count=planned", "planned"},
		{"count=planned on a name no relation has", alice, "GET", "/no_such_table", "count=planned", "planned"},
		{"count=planned on a partitioned table with row-level security", alice, "GET", "/events", "count=planned", "planned"},
		{"count=planned on its partition (no policy of its own)", alice, "GET", "/events_2026", "count=planned", "planned"},
		{"anonymous: count=planned on todos", anonymous, "GET", "/todos", "count=planned", "planned"},
		{"count=exact on todos (counts only visible rows)", alice, "GET", "/todos", "count=exact", ""},
		{"no count on todos", alice, "GET", "/todos", "", ""},
		{"other preferences on todos", alice, "POST", "/todos", "return=minimal", ""},
		{"count=exact on the groups view", alice, "GET", "/groups", "count=exact", ""},
		{"count=planned on a table without row-level security", alice, "GET", "/notices", "count=planned", ""},
		{"count=estimated on a table without row-level security, with a filter", alice, "GET", "/notices/", "count=estimated", ""},
		{"anonymous: count=planned on a table without row-level security", anonymous, "GET", "/notices", "count=planned", ""},
		{"count=planned on the root (the OpenAPI document)", anonymous, "GET", "/", "count=planned", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ran, err := preRequest(t, db, stdlib.PreRequest, c.who, c.method, c.path, c.prefer, "select 1")
			if c.refused == "" {
				NoError(t, err)
				if !ran {
					t.Fatal("the query did not run")
				}
				return
			}
			target := strings.SplitN(strings.TrimPrefix(c.path, "/"), "/", 2)[0]
			WantSQLError(t, err, "22023", "Prefer: count="+c.refused+" is not allowed on "+target)
			if ran {
				t.Fatal("the query ran after the refusal")
			}
			// Without the pre-request nothing refuses it.
			ran, err = preRequest(t, db, "", c.who, c.method, c.path, c.prefer, "select 1")
			NoError(t, err)
			if !ran {
				t.Fatal("without the pre-request, the query did not run")
			}
		})
	}

	t.Run("count=exact passes and counts only the rows alice can see", func(t *testing.T) {
		var n int64
		req := pgrest.Request{Method: "GET", Path: "/todos", Role: alice.Role, Claims: alice.Claims, PreRequest: stdlib.PreRequest,
			Headers: map[string]string{"Prefer": "count=exact"}}
		NoError(t, pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&n)
		}))
		if n != 0 {
			t.Fatalf("alice counted %d todos, want 0 (she owns none)", n)
		}
	})

	t.Run("the refusal says why and what to do instead", func(t *testing.T) {
		_, err := preRequest(t, db, stdlib.PreRequest, alice, "GET", "/todos", "count=planned", "select 1")
		e := pgError(t, err)
		if !strings.Contains(e.Detail, "statistics") || !strings.Contains(e.Hint, "count=exact") {
			t.Fatalf("detail %q, hint %q: want the statistics named and count=exact offered", e.Detail, e.Hint)
		}
	})
}

// tokenVariant is a token of the shipped realm with one change.
type tokenVariant struct {
	name string
	edit func(claims map[string]any)
	msg  string // the 28000 message; "" when the token passes
}

var tokenVariants = []tokenVariant{
	{"Keycloak's token (aud lists todo-api and account, numeric exp)", func(map[string]any) {}, ""},
	{"aud the string todo-api", func(c map[string]any) { c["aud"] = "todo-api" }, ""},
	{"aud only todo-api", func(c map[string]any) { c["aud"] = []any{"todo-api"} }, ""},
	{"no aud", func(c map[string]any) { delete(c, "aud") }, "this token has no audience (aud)"},
	{"aud another client (a string)", func(c map[string]any) { c["aud"] = "account" }, "this token is not issued for this API"},
	{"aud another client (an array)", func(c map[string]any) { c["aud"] = []any{"account"} }, "this token is not issued for this API"},
	{"aud in another case", func(c map[string]any) { c["aud"] = []any{"TODO-API"} }, "this token is not issued for this API"},
	{"aud an object with the audience as a key", func(c map[string]any) { c["aud"] = map[string]any{"todo-api": true} }, "this token is not issued for this API"},
	{"aud null", func(c map[string]any) { c["aud"] = nil }, "this token is not issued for this API"},
	{"aud an empty array", func(c map[string]any) { c["aud"] = []any{} }, "this token is not issued for this API"},
	{"no exp", func(c map[string]any) { delete(c, "exp") }, "this token has no expiry (exp)"},
	{"exp a string", func(c map[string]any) { c["exp"] = "1763900300" }, "this token has no expiry (exp)"},
	{"exp null", func(c map[string]any) { c["exp"] = nil }, "this token has no expiry (exp)"},
	{"neither aud nor exp: the audience is named first", func(c map[string]any) { delete(c, "aud"); delete(c, "exp") }, "this token has no audience (aud)"},
	{"only the role and a sub", func(c map[string]any) {
		for k := range c {
			if k != "role" && k != "sub" {
				delete(c, k)
			}
		}
	}, "this token has no audience (aud)"},
}

func TestPreRequestTokens(t *testing.T) {
	conf, fixtures := PostgRESTConf(t), TokenFixtures(t)
	db := keycloakDB(t, "prerequest_tokens")
	releaseAtEnd(t, db)
	const read = "select id from app.todos"
	if got := Scalar[string](t, db, "select format('%s %s', audience, expiry_required::text) from iam.settings"); got != "todo-api true" {
		t.Fatalf("iam.settings audience, expiry_required = %s, want todo-api true (iam.iam)", got)
	}
	for _, v := range tokenVariants {
		t.Run(v.name, func(t *testing.T) {
			claims := maps.Clone(fixtures["local-user"])
			v.edit(claims)
			who := asPostgREST(t, conf, v.name, claims)
			for _, method := range []string{"GET", "POST"} {
				ran, err := preRequest(t, db, stdlib.PreRequest, who, method, "/todos", "", read)
				if v.msg == "" {
					NoError(t, err)
					continue
				}
				WantSQLError(t, err, "28000", v.msg)
				if ran {
					t.Fatal("the query ran after the refusal")
				}
				if e := pgError(t, err); e.Detail == "" || e.Hint == "" {
					t.Fatalf("the refusal has no detail or hint: %+v", e)
				}
			}
			// The other side: PostgREST and the per-statement helpers take
			// it; only the pre-request refuses.
			_, err := preRequest(t, db, "", who, "GET", "/todos", "", read)
			NoError(t, err)
		})
	}
	t.Run("anonymous requests carry no token: not refused", func(t *testing.T) {
		for _, claims := range []map[string]any{{"role": conf["db-anon-role"]}, nil} {
			who := Person{Name: "anonymous", Role: conf["db-anon-role"], Claims: claims}
			_, err := preRequest(t, db, stdlib.PreRequest, who, "GET", "/", "", "select 1")
			NoError(t, err)
		}
	})
	t.Run("a token without a role claim (run as the anonymous role) is still a token", func(t *testing.T) {
		claims := maps.Clone(fixtures["realm-role-only"])
		delete(claims, "exp")
		who := asPostgREST(t, conf, "realm role only, no exp", claims)
		if who.Role != conf["db-anon-role"] {
			t.Fatalf("role %q, want the anonymous role", who.Role)
		}
		_, err := preRequest(t, db, stdlib.PreRequest, who, "GET", "/", "", "select 1")
		WantSQLError(t, err, "28000", "this token has no expiry (exp)")
	})
}

// TestPreRequestTokensOptOut builds policies/ with `expiry optional` and no
// audience: such tokens pass; building the shipped files again restores
// the refusals (the build writes the settings both ways).
func TestPreRequestTokensOptOut(t *testing.T) {
	conf, fixtures := PostgRESTConf(t), TokenFixtures(t)
	shipped, err := os.ReadFile(File("iam.iam"))
	NoError(t, err)
	edited := strings.Replace(string(shipped), "  audience 'todo-api'\n", "  expiry optional\n", 1)
	if edited == string(shipped) {
		t.Fatal("iam.iam has no line audience 'todo-api'")
	}
	dir := exampleWith(t, edited)
	db := NewDatabase(t, "prerequest_optout", "schema.sql")
	releaseAtEnd(t, db)
	apply := func(dir string) {
		t.Helper()
		script, err := BuildScript(dir)
		NoError(t, err)
		if out, err := ApplyScript(t.Context(), db.Server, db.Name, script); err != nil {
			t.Fatalf("applying the build of %s: %v\n%s", dir, err, out)
		}
	}
	apply(dir)
	if got := Scalar[string](t, db, "select format('%s %s', audience, expiry_required::text) from iam.settings"); got != " false" {
		t.Fatalf("iam.settings audience, expiry_required = %q, want NULL false", got)
	}
	noAud, noExp := maps.Clone(fixtures["local-user"]), maps.Clone(fixtures["local-user"])
	delete(noAud, "aud")
	delete(noExp, "exp")
	for _, claims := range []map[string]any{noAud, noExp} {
		_, err := preRequest(t, db, stdlib.PreRequest, asPostgREST(t, conf, "opted out", claims), "GET", "/todos", "", "select id from app.todos")
		NoError(t, err)
	}
	apply(Dir)
	_, err = preRequest(t, db, stdlib.PreRequest, asPostgREST(t, conf, "no aud", noAud), "GET", "/todos", "", "select id from app.todos")
	WantSQLError(t, err, "28000", "this token has no audience (aud)")
	_, err = preRequest(t, db, stdlib.PreRequest, asPostgREST(t, conf, "no exp", noExp), "GET", "/todos", "", "select id from app.todos")
	WantSQLError(t, err, "28000", "this token has no expiry (exp)")
}

// pgError is err as a database error, failing the test otherwise.
func pgError(t *testing.T, err error) *pgconn.PgError {
	t.Helper()
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		t.Fatalf("got error %v, want a database error", err)
	}
	return e
}

// releaseAtEnd closes the database's connections when the test ends: the
// shared cluster has 50 connection slots for the whole package.
func releaseAtEnd(t *testing.T, db *Database) {
	t.Cleanup(func() {
		_ = db.SU.Close(context.Background())
		_ = db.API.Close(context.Background())
	})
}
