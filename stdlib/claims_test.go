package stdlib_test

// Bad claims: what the runtime does with request.jwt.claims that PostgREST
// would never set from a well-formed Keycloak token, or that an earlier
// request left behind on a reused connection. Every case ends in a clear
// error (SQLSTATE and message) or in no access, never in another user's rows.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
)

// rawRequest runs fn as PostgREST would run a request as role, except that
// request.jwt.claims is set to the raw text claims (nil: not set at all).
func rawRequest(t *testing.T, conn *pgx.Conn, method, role string, claims *string, fn func(pgx.Tx) error) error {
	t.Helper()
	mode := pgx.ReadWrite
	if method == "GET" {
		mode = pgx.ReadOnly
	}
	tx, err := conn.BeginTx(t.Context(), pgx.TxOptions{AccessMode: mode})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(t.Context()) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(t.Context(), "select set_config('role', $1, true), set_config('request.method', $2, true)", role, method); err != nil {
		return fmt.Errorf("setting the role: %w", err)
	}
	if claims != nil {
		if _, err := tx.Exec(t.Context(), "select set_config('request.jwt.claims', $1, true)", *claims); err != nil {
			return fmt.Errorf("setting the claims: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(t.Context())
}

// apiConn is a new connection as authenticator, PostgREST's login role.
func apiConn(t *testing.T, db *Database) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(db.Server.URL(db.Name, "authenticator"))
	NoError(t, err)
	u.User = url.UserPassword("authenticator", "mypass")
	conn, err := pgx.Connect(t.Context(), u.String())
	NoError(t, err)
	t.Cleanup(func() { conn.Close(t.Context()) })
	return conn
}

func readTodos(t *testing.T, tx pgx.Tx) ([]todo, error) {
	rows, err := tx.Query(t.Context(), "select id, title, owner_id::text from app.todos order by id")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[todo])
}

func str(s string) *string { return &s }

// sqlErr is an expected error: SQLSTATE and part of the message; zero for none.
type sqlErr struct{ code, msg string }

func wantOutcome(t *testing.T, what string, err error, want sqlErr) {
	t.Helper()
	if want.code == "" {
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", what, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("%s: no error, want SQLSTATE %s (%q)", what, want.code, want.msg)
	}
	WantSQLError(t, err, want.code, want.msg)
}

func TestBadClaims(t *testing.T) {
	db := keycloakDB(t, "bad_claims")
	const aliceID, carolID, daveID = "a11ce000-0000-4000-8000-000000000001", "c0c00000-0000-4000-8000-00000000c0c0", "da7e0000-0000-4000-8000-00000000da7e"
	teamA := Scalar[int64](t, db, "insert into iam.groups (name, token_name, created_by) values ('Team A', '/team-a', 'dba') returning id")
	// A group whose token name is the JSON text of a number: a groups claim
	// of numbers must not reach it.
	one := Scalar[int64](t, db, "insert into iam.groups (name, token_name, created_by) values ('One', '1', 'dba') returning id")
	insertTodo := func(title, owner string, group *int64) todo {
		id := Scalar[int64](t, db, "insert into app.todos (title, owner_id, group_id) values ($1, $2, $3) returning id", title, owner, group)
		return todo{id, title, owner}
	}
	alicesTodo := insertTodo("alice's", aliceID, nil)
	carolsTodo := insertTodo("carol's", carolID, nil)
	teamTodo := insertTodo("team a's", aliceID, &teamA)
	oneTodo := insertTodo("group one's", aliceID, &one)
	all := []todo{alicesTodo, carolsTodo, teamTodo, oneTodo}
	wantTodos(t, "the table", allTodos(t, db), all)

	const noUserID = "without a user id"
	notString, notJSON := sqlErr{"28000", "the JWT claim sub is not a string"}, sqlErr{"22P02", "invalid input syntax for type json"}

	t.Run("identity", func(t *testing.T) {
		cases := []struct {
			name   string
			claims *string // nil: request.jwt.claims never set on the connection
			read   sqlErr  // the error of a GET; zero: it succeeds and sees no row
			write  sqlErr  // the error of a POST
		}{
			{"missing", nil, sqlErr{}, sqlErr{"28000", noUserID}},
			{"empty", str(""), sqlErr{}, sqlErr{"28000", noUserID}},
			{"not JSON", str("sub=" + aliceID), notJSON, notJSON},
			{"truncated JSON", str(`{"sub": "` + aliceID), notJSON, notJSON},
			{"a JSON array holding alice's claims", str(`[{"sub": "` + aliceID + `"}]`), sqlErr{}, sqlErr{"28000", noUserID}},
			{"a JSON string of alice's id", str(`"` + aliceID + `"`), sqlErr{}, sqlErr{"28000", noUserID}},
			{"a JSON number", str(`42`), sqlErr{}, sqlErr{"28000", noUserID}},
			{"JSON null", str(`null`), sqlErr{}, sqlErr{"28000", noUserID}},
			{"sub a number", str(`{"sub": 42}`), notString, notString},
			{"sub an object holding alice's id", str(`{"sub": {"id": "` + aliceID + `"}}`), notString, notString},
			{"sub an array holding alice's id", str(`{"sub": ["` + aliceID + `"]}`), notString, notString},
			{"sub a boolean", str(`{"sub": true}`), notString, notString},
			{"sub empty", str(`{"sub": ""}`), sqlErr{}, sqlErr{"28000", noUserID}},
			{"sub null", str(`{"sub": null}`), sqlErr{}, sqlErr{"28000", noUserID}},
			{"sub not a uuid", str(`{"sub": "alice"}`), sqlErr{"28000", "the JWT claim sub is not a uuid"}, sqlErr{"28000", "the JWT claim sub is not a uuid"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				conn := apiConn(t, db) // fresh: "missing" means never set
				var got []todo
				err := rawRequest(t, conn, "GET", "web_user", c.claims, func(tx pgx.Tx) (err error) {
					got, err = readTodos(t, tx)
					return err
				})
				wantOutcome(t, "GET /todos", err, c.read)
				wantTodos(t, "GET /todos", got, nil)
				err = rawRequest(t, conn, "POST", "web_user", c.claims, func(tx pgx.Tx) error {
					_, err := tx.Exec(t.Context(), "insert into app.todos (title) values ('bad claims')")
					return err
				})
				wantOutcome(t, "POST /todos", err, c.write)
				wantTodos(t, "the table after the refused write", allTodos(t, db), all)
			})
		}
	})

	t.Run("groups", func(t *testing.T) {
		huge := make([]string, 0, 10_000)
		for i := range 9_999 {
			huge = append(huge, fmt.Sprintf("/keycloak-group-%05d", i))
		}
		huge = append(huge, "/team-a")
		hugeJSON, err := json.Marshal(huge)
		NoError(t, err)
		cases := []struct {
			name   string
			groups string // the JSON of the groups claim
			want   []todo
		}{
			{"a string, not an array", `"/team-a"`, nil},
			{"numbers (a group's token name is '1')", `[1, 1.0]`, nil},
			{"objects", `[{"path": "/team-a"}]`, nil},
			{"nested arrays", `[["/team-a"]]`, nil},
			{"an object keyed by path", `{"/team-a": true}`, nil},
			{"null", `null`, nil},
			{"strings among other types: the strings count", `[1, {"x": 1}, "/team-a", null]`, []todo{teamTodo}},
			{"10,000 paths, /team-a last", string(hugeJSON), []todo{teamTodo}},
		}
		conn := apiConn(t, db)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				claims := fmt.Sprintf(`{"sub": %q, "role": "web_user", "groups": %s}`, daveID, c.groups)
				var got []todo
				err := rawRequest(t, conn, "GET", "web_user", &claims, func(tx pgx.Tx) (err error) {
					got, err = readTodos(t, tx)
					return err
				})
				NoError(t, err)
				wantTodos(t, "GET /todos as dave", got, c.want)
			})
		}
		t.Run("10,000 paths: the groups are computed once per statement, not per row", func(t *testing.T) {
			var claims map[string]any
			NoError(t, json.Unmarshal([]byte(fmt.Sprintf(`{"sub": %q, "role": "web_user", "groups": %s}`, daveID, hugeJSON)), &claims))
			plan, text := ExplainWith(t, db, Person{Name: "dave", Role: "web_user", Claims: claims}, "", "select * from app.todos")
			var problems []string
			for _, p := range PlanProblems(plan, TodosInitPlans) {
				// The table holds four rows: reading them all is the right plan.
				if !strings.HasPrefix(p, "a Seq Scan") {
					problems = append(problems, p)
				}
			}
			if len(problems) > 0 {
				t.Errorf("plan %+v:\n%s\n%s", plan, strings.Join(problems, "\n"), text)
			}
		})
	})

	t.Run("realm roles: only an array of role names counts", func(t *testing.T) {
		cases := []struct {
			name, realmAccess string
			want              bool
		}{
			{"an array listing the role", `{"roles": ["offline_access", "iam-admin"]}`, true},
			{"an array without it", `{"roles": ["offline_access"]}`, false},
			{"roles a string", `{"roles": "iam-admin"}`, false},
			{"roles an object keyed by role", `{"roles": {"iam-admin": true}}`, false},
			{"realm_access a string", `"iam-admin"`, false},
			{"realm_access null", `null`, false},
		}
		conn := apiConn(t, db)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				claims := fmt.Sprintf(`{"sub": %q, "realm_access": %s}`, aliceID, c.realmAccess)
				var got bool
				err := rawRequest(t, conn, "GET", "web_user", &claims, func(tx pgx.Tx) error {
					return tx.QueryRow(t.Context(), "select iam.has_realm_role('iam-admin')").Scan(&got)
				})
				NoError(t, err)
				if got != c.want {
					t.Fatalf("has_realm_role('iam-admin') = %v, want %v", got, c.want)
				}
			})
		}
	})

	t.Run("a realm role does not outrank the deny list: a blocked admin is refused", func(t *testing.T) {
		conn := apiConn(t, db)
		admin := func(sub string) (bool, error) {
			claims := fmt.Sprintf(`{"sub": %q, "realm_access": {"roles": ["iam-admin"]}}`, sub)
			var got bool
			err := rawRequest(t, conn, "GET", "web_user", &claims, func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select iam.has_realm_role('iam-admin')").Scan(&got)
			})
			return got, err
		}
		db.Exec(t, "select iam.block_subject($1, 'admin account compromised')", carolID)
		t.Cleanup(func() { db.Exec(t, "select iam.unblock_subject($1)", carolID) })
		_, err := admin(carolID)
		WantSQLError(t, err, "28000", "this user is blocked")
		got, err := admin(daveID)
		NoError(t, err)
		if !got {
			t.Fatal("an admin who is not blocked lost the realm role")
		}
		// The same holds for a subject the identity type refuses.
		_, err = admin("f:ldap:mallory")
		WantSQLError(t, err, "28000", "is not a uuid")
	})
}

// TestSessionLevelClaims: claims an earlier request set for the whole
// session (set_config(..., false)) on a connection PostgREST reuses.
func TestSessionLevelClaims(t *testing.T) {
	db := keycloakDB(t, "session_claims")
	const aliceID, carolID = "a11ce000-0000-4000-8000-000000000001", "c0c00000-0000-4000-8000-00000000c0c0"
	alicesTodo := Scalar[int64](t, db, "insert into app.todos (title, owner_id) values ('alice''s', $1) returning id", aliceID)
	carolsTodo := Scalar[int64](t, db, "insert into app.todos (title, owner_id) values ('carol''s', $1) returning id", carolID)
	alice, carol := KeycloakUser("alice", aliceID), KeycloakUser("carol", carolID)
	aliceClaims, err := json.Marshal(alice.Claims)
	NoError(t, err)
	conn := apiConn(t, db)

	do := func(t *testing.T, req pgrest.Request, fn func(pgx.Tx) error) {
		t.Helper()
		NoError(t, pgrest.Do(t.Context(), conn, req, fn))
	}
	ids := func(t *testing.T, tx pgx.Tx) []int64 {
		rows, err := tx.Query(t.Context(), "select id from app.todos order by id")
		NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		NoError(t, err)
		return got
	}

	// An earlier request of alice's leaves her claims on the session, as a
	// careless function calling set_config(..., false) would.
	do(t, pgrest.Request{Method: "POST", Path: "/rpc/careless", Role: "web_user", Claims: alice.Claims}, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), "select set_config('request.jwt.claims', $1, false)", string(aliceClaims))
		return err
	})

	t.Run("a PostgREST request on the same connection sees only its own identity", func(t *testing.T) {
		do(t, pgrest.Request{Method: "GET", Path: "/todos", Role: "web_user", Claims: carol.Claims}, func(tx pgx.Tx) error {
			if got := ids(t, tx); len(got) != 1 || got[0] != carolsTodo {
				t.Fatalf("carol sees todos %v, want only %d", got, carolsTodo)
			}
			return nil
		})
		var inserted string
		do(t, pgrest.Request{Method: "POST", Path: "/todos", Role: "web_user", Claims: carol.Claims}, func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "insert into app.todos (title) values ('by carol') returning owner_id::text").Scan(&inserted)
		})
		if inserted != carolID {
			t.Fatalf("carol's new todo is owned by %s, want %s", inserted, carolID)
		}
	})
	t.Run("an anonymous PostgREST request on the same connection carries the anonymous claims", func(t *testing.T) {
		do(t, pgrest.Request{Method: "GET", Path: "/todos", Role: "web_anon"}, func(tx pgx.Tx) error {
			var claims string
			NoError(t, tx.QueryRow(t.Context(), "select current_setting('request.jwt.claims')").Scan(&claims))
			if strings.Contains(claims, aliceID) {
				t.Fatalf("the anonymous request sees claims %s", claims)
			}
			return nil
		})
	})
	t.Run("the honest limit: a transaction that sets no claims sees the session's (PostgreSQL cannot tell them apart)", func(t *testing.T) {
		// PostgREST never does this: it sets the claims in every
		// transaction. Only a client that can log in as authenticator and
		// skips set_config could, and such a client can set any claims anyway.
		err := rawRequest(t, conn, "GET", "web_user", nil, func(tx pgx.Tx) error {
			if got := ids(t, tx); len(got) != 1 || got[0] != alicesTodo {
				t.Fatalf("without transaction-level claims the request sees todos %v, want alice's %d (the session's claims)", got, alicesTodo)
			}
			return nil
		})
		NoError(t, err)
	})
}
