package stdlib_test

// The token payloads the example's Keycloak realm issues
// (policies/testdata/keycloak/*.json), run against the runtime the way
// PostgREST, configured by the shipped policies/postgrest.conf, runs
// requests; and the deny list. policies/keycloak_files_test.go checks that
// those files agree with each other and with iam.iam.

import (
	"maps"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/stdlib"
)

// claimAt evaluates a PostgREST jwt-role-claim-key (".a.b[0]" paths only)
// on claims, as PostgREST does to pick the role.
func claimAt(t *testing.T, claims map[string]any, path string) (string, bool) {
	t.Helper()
	step := regexp.MustCompile(`^\.([A-Za-z_][A-Za-z0-9_-]*)|^\[(\d+)\]`)
	var v any = claims
	for path != "" {
		m := step.FindStringSubmatch(path)
		if m == nil {
			t.Fatalf("jwt-role-claim-key %q: this test reads only .name and [n] steps", path)
		}
		path = path[len(m[0]):]
		switch {
		case m[1] != "":
			obj, ok := v.(map[string]any)
			if !ok {
				return "", false
			}
			v, ok = obj[m[1]]
			if !ok {
				return "", false
			}
		default:
			arr, ok := v.([]any)
			i, _ := strconv.Atoi(m[2])
			if !ok || i >= len(arr) {
				return "", false
			}
			v = arr[i]
		}
	}
	s, ok := v.(string)
	return s, ok
}

// asPostgREST is who PostgREST, configured by postgrest.conf, runs a request
// with these verified claims as: the role from jwt-role-claim-key, or
// db-anon-role when the token has none.
func asPostgREST(t *testing.T, conf map[string]string, name string, claims map[string]any) Person {
	t.Helper()
	role, ok := claimAt(t, claims, conf["jwt-role-claim-key"])
	if !ok {
		role = conf["db-anon-role"]
	}
	return Person{Name: name, Role: role, Claims: claims}
}

// keycloakDB is a database of its own with schema.sql and the build of
// policies/.
func keycloakDB(t *testing.T, name string) *Database {
	t.Helper()
	db := NewDatabase(t, name, "schema.sql")
	script, err := BuildScript(Dir)
	NoError(t, err)
	if out, err := ApplyScript(t.Context(), db.Server, name, script); err != nil {
		t.Fatalf("applying the build: %v\n%s", err, out)
	}
	return db
}

// todo is a row of app.todos with its owner as text.
type todo struct {
	ID    int64
	Title string
	Owner string
}

func allTodos(t *testing.T, db *Database) []todo {
	t.Helper()
	rows, err := db.SU.Query(t.Context(), "select id, title, owner_id::text from app.todos order by id")
	NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[todo])
	NoError(t, err)
	return got
}

// todosAs is GET /todos as who.
func todosAs(t *testing.T, db *Database, who Person) ([]todo, error) {
	t.Helper()
	var got []todo
	err := Requester{T: t, DB: db, Who: who, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), "select id, title, owner_id::text from app.todos order by id")
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[todo])
		return err
	})
	return got, err
}

func wantTodos(t *testing.T, what string, got, want []todo) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("%s (-want +got):\n%s", what, diff)
	}
}

// ---------------------------------------------------------------------------
// The fixtures against the runtime.
// ---------------------------------------------------------------------------

func TestKeycloakTokens(t *testing.T) {
	conf, fixtures := PostgRESTConf(t), TokenFixtures(t)
	db := keycloakDB(t, "keycloak_tokens")
	as := func(name string) Person { return asPostgREST(t, conf, name, fixtures[name]) }
	local, noEmail, federated, member, realmOnly := as("local-user"), as("no-email"), as("federated-user"), as("group-member"), as("realm-role-only")

	t.Run("identity: the uuid sub of local users, with or without email", func(t *testing.T) {
		for _, who := range []Person{local, noEmail, member} {
			var got string
			err := Requester{T: t, DB: db, Who: who, Path: "/rpc/caller"}.Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select iam.caller_id()").Scan(&got)
			})
			NoError(t, err)
			if got != UserID(who) {
				t.Errorf("%s: caller id %q, want %q", who.Name, got, UserID(who))
			}
		}
	})

	var localTodo todo
	t.Run("owner CRUD: the local user creates, reads and edits their todo", func(t *testing.T) {
		err := Requester{T: t, DB: db, Who: local, Path: "/todos"}.Do("POST", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "insert into app.todos (title) values ('from keycloak') returning id, title, owner_id::text").
				Scan(&localTodo.ID, &localTodo.Title, &localTodo.Owner)
		})
		NoError(t, err)
		wantTodos(t, "the table", allTodos(t, db), []todo{{localTodo.ID, "from keycloak", UserID(local)}})
		got, err := todosAs(t, db, local)
		NoError(t, err)
		wantTodos(t, "GET /todos as the local user", got, []todo{localTodo})
		n, err := Requester{T: t, DB: db, Who: local, Path: "/todos"}.Exec("PATCH", "update app.todos set title = 'edited' where id = $1", localTodo.ID)
		NoError(t, err)
		if n != 1 {
			t.Fatalf("PATCH updated %d rows, want 1", n)
		}
		localTodo.Title = "edited"
		wantTodos(t, "the table", allTodos(t, db), []todo{localTodo})
	})

	t.Run("owner CRUD, the other side: the user without email neither sees nor changes it", func(t *testing.T) {
		got, err := todosAs(t, db, noEmail)
		NoError(t, err)
		wantTodos(t, "GET /todos as the user without email", got, nil)
		for _, stmt := range []struct{ method, sql string }{
			{"PATCH", "update app.todos set title = 'taken' where id = $1"},
			{"DELETE", "delete from app.todos where id = $1"},
		} {
			n, err := Requester{T: t, DB: db, Who: noEmail, Path: "/todos"}.Exec(stmt.method, stmt.sql, localTodo.ID)
			NoError(t, err)
			if n != 0 {
				t.Fatalf("%s changed %d rows, want 0", stmt.method, n)
			}
		}
		_, err = Requester{T: t, DB: db, Who: noEmail, Path: "/todos"}.Exec("POST", "insert into app.todos (title, owner_id) values ('forged', $1)", UserID(local))
		WantSQLError(t, err, "42501", "owner_id must be the caller's own user id")
		wantTodos(t, "the table after the refused writes", allTodos(t, db), []todo{localTodo})
	})

	t.Run("a federated user (sub f:<provider>:<name>) is refused on a uuid identity, reading and writing", func(t *testing.T) {
		_, err := todosAs(t, db, federated)
		WantSQLError(t, err, "28000", "the JWT claim sub is not a uuid")
		_, err = Requester{T: t, DB: db, Who: federated, Path: "/todos"}.Exec("POST", "insert into app.todos (title) values ('federated')")
		WantSQLError(t, err, "28000", "the JWT claim sub is not a uuid")
		wantTodos(t, "the table", allTodos(t, db), []todo{localTodo})
	})

	t.Run("the groups claim: a member of Keycloak group /team-a reads the team's todo, others do not", func(t *testing.T) {
		team := Scalar[int64](t, db, "insert into iam.groups (name, token_name, created_by) values ('Team A', '/team-a', 'dba') returning id")
		shared := todo{Title: "for team a", Owner: UserID(local)}
		shared.ID = Scalar[int64](t, db, "insert into app.todos (title, owner_id, group_id) values ($1, $2, $3) returning id", shared.Title, shared.Owner, team)
		got, err := todosAs(t, db, member)
		NoError(t, err)
		wantTodos(t, "GET /todos as the member of /team-a", got, []todo{shared})
		got, err = todosAs(t, db, noEmail)
		NoError(t, err)
		wantTodos(t, "GET /todos as a user without groups", got, nil)
		withoutGroups := Person{Name: "member without the groups claim", Role: member.Role, Claims: maps.Clone(member.Claims)}
		delete(withoutGroups.Claims, "groups")
		got, err = todosAs(t, db, withoutGroups)
		NoError(t, err)
		wantTodos(t, "GET /todos as the member, token without groups", got, nil)
	})

	t.Run("without the hard-coded role claim, PostgREST runs the token as the anonymous role", func(t *testing.T) {
		if realmOnly.Role != conf["db-anon-role"] {
			t.Fatalf("role %q, want db-anon-role %q", realmOnly.Role, conf["db-anon-role"])
		}
		_, err := todosAs(t, db, realmOnly)
		WantSQLError(t, err, "42501", "permission denied for table todos")
	})
}

// ---------------------------------------------------------------------------
// Revocation: the deny list, enforced by the runtime and, optionally, by
// db-pre-request.
// ---------------------------------------------------------------------------

// denyListModes are the two ways a deployment runs: without a pre-request
// (the runtime refuses a blocked subject wherever it computes the caller's
// id) and with the db-pre-request of the shipped postgrest.conf, which
// refuses before any query runs.
var denyListModes = []struct{ name, preRequest string }{
	{"runtime alone (no db-pre-request)", ""},
	{"with db-pre-request = " + stdlib.PreRequest + " (the shipped postgrest.conf)", stdlib.PreRequest},
}

// denyListRequest makes a request of who the way PostgREST does, with the
// given db-pre-request ("" for none).
func denyListRequest(t *testing.T, db *Database, preRequest string, who Person, method, sql string, args ...any) (int64, error) {
	t.Helper()
	var n int64
	req := pgrest.Request{Method: method, Path: "/todos", Role: who.Role, Claims: who.Claims, PreRequest: preRequest}
	err := pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
		tag, err := tx.Exec(t.Context(), sql, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

func TestDenyList(t *testing.T) {
	conf, fixtures := PostgRESTConf(t), TokenFixtures(t)
	if got := conf["db-pre-request"]; got != stdlib.PreRequest {
		t.Fatalf("postgrest.conf sets db-pre-request = %q, want %q (it also refuses planner-estimate counts and tokens without aud or exp)", got, stdlib.PreRequest)
	}
	db := keycloakDB(t, "keycloak_denylist")
	as := func(name string) Person { return asPostgREST(t, conf, name, maps.Clone(fixtures[name])) }
	alice, carol, erin := as("local-user"), as("no-email"), as("federated-user")
	anonymous := Person{Name: "anonymous", Role: conf["db-anon-role"], Claims: map[string]any{"role": conf["db-anon-role"]}}
	const read, write = "select id from app.todos", "insert into app.todos (title) values ('x')"
	const rpc = "select app.create_group('while blocked')"
	blocked := func() []string {
		return Scalar[[]string](t, db, "select coalesce(array_agg(subject order by subject), '{}') from iam.blocked_subjects")
	}
	// eachMode runs fn once per deployment mode.
	eachMode := func(t *testing.T, fn func(t *testing.T, preRequest string)) {
		for _, m := range denyListModes {
			t.Run(m.name, func(t *testing.T) { fn(t, m.preRequest) })
		}
	}

	step := func(name string, fn func(t *testing.T)) {
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}
	step("nobody blocked: every caller passes, anonymous ones too", func(t *testing.T) {
		eachMode(t, func(t *testing.T, pre string) {
			for _, who := range []Person{alice, carol} {
				_, err := denyListRequest(t, db, pre, who, "GET", read)
				NoError(t, err)
			}
			_, err := denyListRequest(t, db, pre, anonymous, "GET", "select 1")
			NoError(t, err)
		})
	})
	step("runtime roles cannot block, unblock or read the list", func(t *testing.T) {
		for _, sql := range []string{
			"select iam.block_subject($1, 'self-service')",
			"select iam.unblock_subject($1)",
			"select count(*) from iam.blocked_subjects where subject = $1",
			"select iam.refuse_blocked($1, $1)",
		} {
			_, err := Requester{T: t, DB: db, Who: alice, Path: "/rpc/x"}.Exec("POST", sql, UserID(carol))
			WantSQLError(t, err, "42501", "permission denied")
			_, err = Requester{T: t, DB: db, Who: anonymous, Path: "/rpc/x"}.Exec("POST", sql, UserID(carol))
			WantSQLError(t, err, "42501", "permission denied")
		}
		if got := blocked(); len(got) != 0 {
			t.Fatalf("the deny list holds %v after refused calls, want nothing", got)
		}
	})
	step("the owner role blocks alice (her uuid in upper case): her reads, writes and group calls are refused with 28000", func(t *testing.T) {
		// As the owner role, which owns the list (a superuser can too).
		tx, err := db.SU.Begin(t.Context())
		NoError(t, err)
		defer tx.Rollback(t.Context()) //nolint:errcheck // no-op after commit
		_, err = tx.Exec(t.Context(), "set local role api_owner")
		NoError(t, err)
		_, err = tx.Exec(t.Context(), "select iam.block_subject($1, 'disabled in Keycloak, ticket 42')", strings.ToUpper(UserID(alice)))
		NoError(t, err)
		NoError(t, tx.Commit(t.Context()))
		if diff := cmp.Diff([]string{UserID(alice)}, blocked()); diff != "" {
			t.Fatalf("the deny list (-want +got):\n%s", diff)
		}
		before := allTodos(t, db)
		groupsBefore := Scalar[int64](t, db, "select count(*) from iam.groups")
		eachMode(t, func(t *testing.T, pre string) {
			for _, r := range []struct{ method, sql string }{{"GET", read}, {"POST", write}, {"POST", rpc}} {
				_, err := denyListRequest(t, db, pre, alice, r.method, r.sql)
				WantSQLError(t, err, "28000", "this user is blocked")
			}
		})
		wantTodos(t, "the table after the refused writes", allTodos(t, db), before)
		if got := Scalar[int64](t, db, "select count(*) from iam.groups"); got != groupsBefore {
			t.Fatalf("%d groups after the refused create_group, want %d", got, groupsBefore)
		}
	})
	step("others are not affected", func(t *testing.T) {
		eachMode(t, func(t *testing.T, pre string) {
			n, err := denyListRequest(t, db, pre, carol, "POST", write)
			NoError(t, err)
			if n != 1 {
				t.Fatalf("carol inserted %d rows, want 1", n)
			}
			_, err = denyListRequest(t, db, pre, anonymous, "GET", "select 1")
			NoError(t, err)
		})
	})
	step("the difference: only the pre-request refuses a query that never asks who the caller is", func(t *testing.T) {
		// The runtime refuses where it computes the caller's id; a query
		// that reads no protected row (here, none at all) never does.
		_, err := denyListRequest(t, db, "", alice, "GET", "select 1")
		NoError(t, err)
		_, err = denyListRequest(t, db, stdlib.PreRequest, alice, "GET", "select 1")
		WantSQLError(t, err, "28000", "this user is blocked")
	})
	step("a federated subject is blocked by its exact text, before the uuid check", func(t *testing.T) {
		db.Exec(t, "select iam.block_subject($1, 'left the partner company')", UserID(erin))
		_, err := denyListRequest(t, db, stdlib.PreRequest, erin, "GET", read)
		WantSQLError(t, err, "28000", "this user is blocked")
		// Without the pre-request this example (uuid users) refuses the
		// federated subject anyway: its sub is not a uuid.
		_, err = denyListRequest(t, db, "", erin, "GET", read)
		WantSQLError(t, err, "28000", "is not a uuid")
	})
	step("tokens issued before a time: older tokens refused, newer ones pass", func(t *testing.T) {
		db.Exec(t, "select iam.block_subject($1, 'password reset', to_timestamp($2))", UserID(carol), carol.Claims["iat"].(float64)+1)
		fresh := Person{Name: "carol, signed in again", Role: carol.Role, Claims: maps.Clone(carol.Claims)}
		fresh.Claims["iat"] = carol.Claims["iat"].(float64) + 60
		noIat := Person{Name: "carol, token without iat", Role: carol.Role, Claims: maps.Clone(carol.Claims)}
		delete(noIat.Claims, "iat")
		eachMode(t, func(t *testing.T, pre string) {
			_, err := denyListRequest(t, db, pre, carol, "GET", read)
			WantSQLError(t, err, "28000", "this token was revoked")
			_, err = denyListRequest(t, db, pre, fresh, "GET", read)
			NoError(t, err)
			n, err := denyListRequest(t, db, pre, fresh, "POST", write)
			NoError(t, err)
			if n != 1 {
				t.Fatalf("carol's new token inserted %d rows, want 1", n)
			}
			_, err = denyListRequest(t, db, pre, noIat, "GET", read)
			WantSQLError(t, err, "28000", "this token was revoked")
		})
	})
	step("blocking needs a reason", func(t *testing.T) {
		_, err := db.SU.Exec(t.Context(), "select iam.block_subject($1, ' ')", UserID(alice))
		WantSQLError(t, err, "22023", "a reason is required")
	})
	step("unblocking lets alice in again; unblocking twice says it was not blocked", func(t *testing.T) {
		if !Scalar[bool](t, db, "select iam.unblock_subject($1)", UserID(alice)) {
			t.Fatal("unblock_subject said alice was not blocked")
		}
		if Scalar[bool](t, db, "select iam.unblock_subject($1)", UserID(alice)) {
			t.Fatal("unblock_subject said alice was blocked twice")
		}
		eachMode(t, func(t *testing.T, pre string) {
			for _, r := range []struct{ method, sql string }{{"GET", read}, {"POST", write}} {
				_, err := denyListRequest(t, db, pre, alice, r.method, r.sql)
				NoError(t, err)
			}
		})
	})
}
