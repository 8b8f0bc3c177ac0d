package stdlib_test

// Nothing iamc installs or generates sets session-level state: behind a
// transaction pooler a session outlives the request, so a setting made for
// the session would reach the next client of the same server connection.
// Checked statically with PostgreSQL's own parser (pg_query) on the
// runtime and on a build of the example, down into function bodies,
// and dynamically on a real session.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/stdlib"
)

// sessionSettings lists every statement of script (and of the SQL and
// PL/pgSQL function bodies it creates) that sets session-level state: SET
// or RESET without LOCAL, set_config(..., is_local) with anything but the
// constant true.
func sessionSettings(script string) ([]string, error) {
	tree, err := pg_query.Parse(script)
	if err != nil {
		return nil, fmt.Errorf("parsing the script: %w", err)
	}
	var found []string
	for _, raw := range tree.Stmts {
		text := stmtText(script, raw)
		found = append(found, settingsIn(raw.Stmt.ProtoReflect(), abbreviate(text))...)
		fn := raw.Stmt.GetCreateFunctionStmt()
		if fn == nil {
			continue
		}
		lang, body := functionLanguageAndBody(fn)
		where := "function " + functionName(fn)
		switch lang {
		case "sql":
			t, err := pg_query.Parse(body)
			if err != nil {
				return nil, fmt.Errorf("parsing the body of %s: %w", where, err)
			}
			for _, s := range t.Stmts {
				found = append(found, settingsIn(s.Stmt.ProtoReflect(), where)...)
			}
		case "plpgsql":
			f, err := plpgsqlSettings(text, where)
			if err != nil {
				return nil, err
			}
			found = append(found, f...)
		}
	}
	return found, nil
}

func stmtText(script string, raw *pg_query.RawStmt) string {
	start := int(raw.StmtLocation)
	end := len(script)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	return script[start:end]
}

func abbreviate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func functionName(fn *pg_query.CreateFunctionStmt) string {
	var parts []string
	for _, n := range fn.Funcname {
		parts = append(parts, n.GetString_().GetSval())
	}
	return strings.Join(parts, ".")
}

func functionLanguageAndBody(fn *pg_query.CreateFunctionStmt) (lang, body string) {
	for _, opt := range fn.Options {
		d := opt.GetDefElem()
		if d == nil {
			continue
		}
		switch d.Defname {
		case "language":
			lang = d.Arg.GetString_().GetSval()
		case "as":
			if l := d.Arg.GetList(); l != nil && len(l.Items) > 0 {
				body = l.Items[0].GetString_().GetSval()
			}
		}
	}
	return lang, body
}

// plpgsqlSettings parses a PL/pgSQL function with pg_query's PL/pgSQL
// parser and checks every SQL statement and expression in it. Assignments
// (x := expr) are checked as SELECT expr; a SET statement in PL/pgSQL is an
// SQL statement of its own.
func plpgsqlSettings(createFunction, where string) ([]string, error) {
	js, err := pg_query.ParsePlPgSqlToJSON(createFunction)
	if err != nil {
		return nil, fmt.Errorf("parsing the PL/pgSQL body of %s: %w", where, err)
	}
	var doc any
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		return nil, fmt.Errorf("reading the PL/pgSQL tree of %s: %w", where, err)
	}
	var queries []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "query" {
					queries = append(queries, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	var found []string
	for _, q := range queries {
		t, err := pg_query.Parse(q)
		if err != nil {
			// An assignment target := expression, or a bare expression.
			expr := q
			if i := strings.Index(q, ":="); i >= 0 {
				expr = q[i+2:]
			}
			if t, err = pg_query.Parse("select " + expr); err != nil {
				return nil, fmt.Errorf("parsing %q in %s: %w", q, where, err)
			}
		}
		for _, s := range t.Stmts {
			found = append(found, settingsIn(s.Stmt.ProtoReflect(), where)...)
		}
	}
	return found, nil
}

// settingsIn walks a parse tree for session-level settings.
func settingsIn(m protoreflect.Message, where string) []string {
	var found []string
	switch n := m.Interface().(type) {
	case *pg_query.DefElem:
		if n.Defname == "set" {
			return nil // a function's SET clause: in effect during a call only
		}
	case *pg_query.VariableSetStmt:
		if !n.IsLocal {
			found = append(found, fmt.Sprintf("%s: SET/RESET %s without LOCAL", where, n.Name))
		}
	case *pg_query.FuncCall:
		if len(n.Funcname) > 0 && n.Funcname[len(n.Funcname)-1].GetString_().GetSval() == "set_config" {
			local := len(n.Args) == 3 && n.Args[2].GetAConst().GetBoolval() != nil && n.Args[2].GetAConst().GetBoolval().GetBoolval()
			if !local {
				found = append(found, where+": set_config(...) not with is_local = true")
			}
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				found = append(found, settingsIn(l.Get(i).Message(), where)...)
			}
		case fd.Message() != nil && !fd.IsMap():
			found = append(found, settingsIn(v.Message(), where)...)
		}
		return true
	})
	return found
}

// TestSessionSettingsScanner: the scanner finds what it looks for, in
// statements, SQL bodies and PL/pgSQL bodies, and accepts the local forms.
func TestSessionSettingsScanner(t *testing.T) {
	for _, c := range []struct {
		name, sql string
		found     int
	}{
		{"SET LOCAL", "set local role api_owner;", 0},
		{"SET", "set role api_owner;", 1},
		{"RESET", "reset role;", 1},
		{"set_config local", "select set_config('request.jwt.claims', '{}', true);", 0},
		{"set_config session", "select set_config('request.jwt.claims', '{}', false);", 1},
		{"set_config computed", "select set_config('a.b', 'x', 1 = 1);", 1},
		{"SQL body", "create function f() returns text language sql as $$ select set_config('a.b', 'x', false) $$;", 1},
		{"PL/pgSQL perform", "create function f() returns void language plpgsql as $$ begin perform set_config('a.b', 'x', false); end $$;", 1},
		{"PL/pgSQL assignment", "create function f() returns void language plpgsql as $$ declare v text; begin v := set_config('a.b', 'x', false); end $$;", 1},
		{"PL/pgSQL SET", "create function f() returns void language plpgsql as $$ begin set search_path = public; end $$;", 1},
		{"PL/pgSQL SET LOCAL", "create function f() returns void language plpgsql as $$ begin set local search_path = public; end $$;", 0},
		{"function SET clause (scoped to the call)", "create function f() returns int language sql set search_path = pg_catalog as $$ select 1 $$;", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := sessionSettings(c.sql)
			NoError(t, err)
			if len(got) != c.found {
				t.Errorf("found %d session-level settings %v, want %d", len(got), got, c.found)
			}
		})
	}
}

// TestNothingSetsSessionState: the runtime and a build of the example
// set nothing for the session, only for the transaction.
func TestNothingSetsSessionState(t *testing.T) {
	script, err := BuildScript(Dir)
	NoError(t, err)
	for name, sql := range map[string]string{"stdlib/runtime.sql": stdlib.Runtime, "the build of policies/": script} {
		t.Run(name, func(t *testing.T) {
			found, err := sessionSettings(sql)
			NoError(t, err)
			if len(found) > 0 {
				t.Errorf("session-level settings:\n%s", strings.Join(found, "\n"))
			}
		})
	}
}

// TestRequestsLeaveNoSessionState: on one session, requests of every kind
// (reads, writes, the group API) leave the session as they found it: the
// role, the request settings and every setting whose source is the
// session. The next client of a pooled connection starts clean.
func TestRequestsLeaveNoSessionState(t *testing.T) {
	db := ExampleDB(t)
	ctx := t.Context()
	snapshot := func() []string {
		rows, err := db.API.Query(ctx, `
			select 'current_user=' || current_user
			union all select 'session_user=' || session_user
			-- After the first request PostgreSQL keeps an empty placeholder of
			-- each request.* setting for the session: empty counts as unset
			-- (iam.claims() reads '' as no claims).
			union all select s || '=' || coalesce(nullif(current_setting(s, true), ''), '<unset>')
			from unnest(array['request.jwt.claims', 'request.method', 'request.path', 'request.headers', 'search_path', 'role']) s
			union all select name || '=' || setting from pg_settings where source = 'session'`)
		NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		NoError(t, err)
		return got
	}
	before := snapshot()
	var gid int64
	requests := []struct {
		who          Person
		method, path string
		sql          func() string
		args         func() []any
	}{
		{Alice, "GET", "/todos", func() string { return "select count(*) from app.todos" }, nil},
		{Alice, "POST", "/rpc/create_group", func() string { return "select app.create_group(name => 'session test')" }, nil},
		{Alice, "GET", "/groups", func() string { return "select count(*) from app.groups" }, nil},
		{Alice, "POST", "/rpc/add_group_member", func() string { return "select app.add_group_member(group_id => $1, user_id => $2)" },
			func() []any { return []any{gid, BobID} }},
		{Bob, "POST", "/todos", func() string { return "insert into app.todos (title, group_id) values ('session test', $1)" },
			func() []any { return []any{gid} }},
		{Bob, "PATCH", "/todos", func() string { return "update app.todos set done = true where title = 'session test'" }, nil},
		{Anonymous, "GET", "/todos", func() string { return "select count(*) from app.todos" }, nil}, // refused: 42501
		{Alice, "DELETE", "/todos", func() string { return "delete from app.todos where title = 'session test'" }, nil},
		{Alice, "POST", "/rpc/delete_group", func() string { return "select app.delete_group(group_id => $1)" },
			func() []any { return []any{gid} }},
	}
	for i, r := range requests {
		var args []any
		if r.args != nil {
			args = r.args()
		}
		err := pgrest.Do(ctx, db.API, pgrest.Request{Method: r.method, Path: r.path, Role: r.who.Role, Claims: r.who.Claims},
			func(tx pgx.Tx) error {
				if i == 1 {
					return tx.QueryRow(ctx, r.sql(), args...).Scan(&gid)
				}
				_, err := tx.Exec(ctx, r.sql(), args...)
				return err
			})
		if r.who.Role == "web_anon" {
			if code := pgrest.SQLState(err); code != "42501" {
				t.Fatalf("%s %s as anonymous: %v, want 42501", r.method, r.path, err)
			}
		} else if err != nil {
			t.Fatalf("%s %s as %s: %v", r.method, r.path, r.who.Name, err)
		}
		if diff := cmp.Diff(before, snapshot(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("after %s %s as %s the session changed (-before +after):\n%s", r.method, r.path, r.who.Name, diff)
		}
	}
	if n := Scalar[int64](t, db, "select count(*) from app.todos where title = 'session test'"); n != 0 {
		t.Errorf("%d todos left over by the test", n)
	}
}
