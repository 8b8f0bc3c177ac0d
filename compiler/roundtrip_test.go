package compiler

import (
	"strings"
	"testing"

	"github.com/pganalyze/pg_query_go/v5/parser"

	"github.com/iamc/iamc/stdlib"
)

func TestRoundTripAccepts(t *testing.T) {
	for _, sql := range []string{
		"select 1;",
		"select 1",
		`create policy "iam: authenticated can select" on app.todos as permissive for select to web_user using (owner_id = (select iam.user_id_uuid('sub')));`,
		"-- a comment first\nalter table app.t enable row level security;",
		"create function f() returns int language plpgsql as $$ begin return 1; end $$;",
	} {
		if err := RoundTrip(sql); err != nil {
			t.Errorf("RoundTrip(%q): %v", sql, err)
		}
	}
}

// TestRoundTripRejects proves the check Build relies on can fail.
func TestRoundTripRejects(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"select 1; select 2;", "holds 2 statements, want exactly 1"},
		{"grant select on t to a; drop table t;", "holds 2 statements, want exactly 1"},
		{"", "holds 0 statements, want exactly 1"},
		{"-- only a comment", "holds 0 statements, want exactly 1"},
		{"selec 1;", `parse "selec 1;": syntax error at or near "selec"`},
		{"create policy p on t using (;", "syntax error"},
		{"select 'unterminated;", "unterminated quoted string"},
		{`alter table app."x`, "unterminated quoted identifier"},
		{"create function f() returns int language plpgsql as $$ begin retrun 1; end $$;", "PL/pgSQL body of"},
		{"create function f() returns int language plpgsql as $$ begin return 1 end $$;", "PL/pgSQL body of"},
	}
	for _, tt := range tests {
		err := RoundTrip(tt.sql)
		if err == nil {
			t.Errorf("RoundTrip(%q) passed, want an error containing %q", tt.sql, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("RoundTrip(%q) = %v, want it to contain %q", tt.sql, err, tt.want)
		}
	}
	// The error of a long statement is abbreviated and on one line.
	long := "select " + strings.Repeat("1 + ", 100) + "1; select 2;"
	err := RoundTrip(long)
	if err == nil || strings.Contains(err.Error(), "\n") || len(err.Error()) > 200 || !strings.Contains(err.Error(), "...") {
		t.Errorf("RoundTrip(long) = %v, want one abbreviated line", err)
	}
}

// TestSameWire: trees that differ only in source positions are the same;
// any other difference, however small, is not.
func TestSameWire(t *testing.T) {
	parse := func(sql string) []byte {
		t.Helper()
		tree, err := parser.ParseToProtobuf(sql)
		if err != nil {
			t.Fatal(err)
		}
		return tree
	}
	base := "select x from t where y = 1"
	same := []string{
		"  SELECT   x\n FROM t WHERE   y = 1",
		"select x from t where y = 1 -- a comment",
		"select\tx from \"t\" where (y = 1)",
	}
	different := []string{
		"select x from t where y = 2",
		"select x from t where y = '1'",
		"select x from u where y = 1",
		"select x from s.t where y = 1",
		"select z from t where y = 1",
		"select x, x from t where y = 1",
		"select x from t where y = 1 and true",
		"select x from t where y <> 1",
		"select x from t",
		"select distinct x from t where y = 1",
		"select x from t where y = 1 order by x",
		"select x from only t where y = 1",
		`select x from t where y = 1 limit 1`,
	}
	schema := parseResultSchema()
	for _, sql := range same {
		if !schema.sameWire(parse(base), parse(sql)) {
			t.Errorf("%q and %q differ only in positions, but are not the same", base, sql)
		}
	}
	for _, sql := range different {
		if schema.sameWire(parse(base), parse(sql)) {
			t.Errorf("%q and %q are different trees, but compare the same", base, sql)
		}
		if schema.sameWire(parse(sql), parse(base)) {
			t.Errorf("%q and %q are different trees, but compare the same (swapped)", sql, base)
		}
	}
	if schema.sameWire(parse(base), []byte{0xff}) {
		t.Error("a malformed encoding compares the same")
	}
}

// TestRuntimeStatements: the embedded runtime splits into statements that
// each round-trip, end in ';' and, taken together, are the whole file.
func TestRuntimeStatements(t *testing.T) {
	stmts := splitStatements(stdlib.Runtime)
	if len(stmts) < 10 {
		t.Fatalf("runtime split into %d statements", len(stmts))
	}
	for _, s := range stmts {
		if err := RoundTrip(s); err != nil {
			t.Errorf("runtime statement: %v", err)
		}
		if !strings.HasSuffix(s, ";") {
			t.Errorf("runtime statement does not end in ';': %q", s)
		}
	}
	// Nothing is lost: the statements, whitespace aside, are the file.
	squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
	if got, want := squash(strings.Join(stmts, "")), squash(stdlib.Runtime); got != want {
		t.Errorf("splitStatements lost text of the runtime")
	}
}
