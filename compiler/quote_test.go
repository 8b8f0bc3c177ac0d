package compiler

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	_ "github.com/iamc/iamc/internal/goldenfile" // -update in every test binary
)

// regressed fails a test that guards a bug found and fixed earlier: the
// message says what came back.
func regressed(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Fatalf("regression of a fixed bug: "+format, args...)
}

func TestQuoteIdent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"todos", "todos"},
		{"web_user", "web_user"},
		{"_x1", "_x1"},
		{"a$b", "a$b"},
		// upper case and odd characters
		{"Todos", `"Todos"`},
		{"TODOS", `"TODOS"`},
		{"to-dos", `"to-dos"`},
		{"Owner Id", `"Owner Id"`},
		{"1st", `"1st"`},
		{"$x", `"$x"`},
		{"größe", `"größe"`},
		{"", `""`},
		// quotes inside
		{`say "hi"`, `"say ""hi"""`},
		{`"`, `""""`},
		{"it's", `"it's"`},
		// reserved keywords must be quoted
		{"user", `"user"`},
		{"order", `"order"`},
		{"select", `"select"`},
		{"table", `"table"`},
		{"current_user", `"current_user"`},
		{"authorization", `"authorization"`}, // type/function-name keyword
		{"between", `"between"`},             // column-name keyword
		// unreserved keywords read fine bare
		{"name", "name"},
		{"type", "type"},
		{"owner", "owner"},
		{"role", "role"},
		{"data", "data"},
	}
	for _, tt := range tests {
		if got := quoteIdent(tt.in); got != tt.want {
			t.Errorf("quoteIdent(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestQuoteIdentAgainstPostgres: whatever quoteIdent prints, PostgreSQL
// reads back as exactly the name, as a column and as a table.
func TestQuoteIdentAgainstPostgres(t *testing.T) {
	for _, name := range []string{"todos", "Todos", "user", "order", "to-dos", `say "hi"`, "it's", "name", "größe", "a$b", "between", "authorization", "x y z"} {
		q := quoteIdent(name)
		tree, err := pg_query.Parse(fmt.Sprintf("select %s from app.%s", q, q))
		if err != nil {
			t.Errorf("%q quoted as %s does not parse: %v", name, q, err)
			continue
		}
		sel := tree.Stmts[0].Stmt.GetSelectStmt()
		col := sel.TargetList[0].GetResTarget().Val.GetColumnRef().Fields[0].GetString_().Sval
		rel := sel.FromClause[0].GetRangeVar().Relname
		if col != name || rel != name {
			t.Errorf("%q quoted as %s reads back as column %q, table %q", name, q, col, rel)
		}
	}
}

func TestQuoteLiteralAndQualify(t *testing.T) {
	for in, want := range map[string]string{"sub": "'sub'", "it's": "'it''s'", "": "''", `a\b`: `'a\b'`} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
	if got := qualify("Weird Schema", "to-dos"); got != `"Weird Schema"."to-dos"` {
		t.Errorf("qualify = %s", got)
	}
	if got := qualify("public", "user"); got != `public."user"` {
		t.Errorf("qualify = %s", got)
	}
}

func TestDerivedName(t *testing.T) {
	if got := derivedName("todos", "owner_id", "iam_idx"); got != "todos_owner_id_iam_idx" {
		t.Errorf("short name changed: %s", got)
	}
	exact := strings.Repeat("a", 63-len("_b_iam_idx")) // exactly 63 bytes joined
	if got := derivedName(exact, "b", "iam_idx"); got != exact+"_b_iam_idx" || len(got) != 63 {
		t.Errorf("63-byte name changed: %s (%d)", got, len(got))
	}

	long := strings.Repeat("t", 63)
	a := derivedName(long, "owner_id", "iam_idx")
	b := derivedName(long, "owner_ie", "iam_idx")
	c := derivedName(long+"x", "owner_id", "iam_idx")
	for _, n := range []string{a, b, c} {
		if len(n) != 63 {
			t.Errorf("derived name %q is %d bytes, want exactly 63 (cut and hashed)", n, len(n))
		}
	}
	if a == b || a == c || b == c {
		t.Errorf("different long inputs give the same name: %s %s %s", a, b, c)
	}
	if derivedName(long, "owner_id", "iam_idx") != a {
		t.Error("derivedName is not deterministic")
	}
	// The separator is part of what is hashed: these differ.
	if derivedName(long, "ab", "c") == derivedName(long, "a", "bc") {
		t.Errorf("parts joined ambiguously")
	}

	// Many distinct long inputs: no collisions, all within 63 bytes.
	seen := map[string]string{}
	for i := range 2000 {
		in := fmt.Sprintf("%s_%d", long, i)
		n := derivedName(in, "owner_id", "iam_idx")
		if prev, dup := seen[n]; dup {
			t.Fatalf("%q and %q both give %q", prev, in, n)
		}
		seen[n] = in
		if len(n) > 63 {
			t.Fatalf("%q is %d bytes", n, len(n))
		}
	}
}

// TestDerivedNameUTF8: the cut never splits a character, wherever it falls.
func TestDerivedNameUTF8(t *testing.T) {
	for _, r := range []string{"ä", "€", "𝄞"} { // 2, 3 and 4 bytes
		for pad := range 8 {
			table := strings.Repeat("x", pad) + strings.Repeat(r, 40)
			n := derivedName(table, "owner_id", "iam_idx")
			if !utf8.ValidString(n) {
				t.Errorf("derivedName(%q) = %q is not valid UTF-8", table, n)
			}
			if len(n) > 63 || len(n) < 63-utf8.UTFMax {
				t.Errorf("derivedName(%q) is %d bytes", table, len(n))
			}
			if !strings.HasPrefix(table+"_owner_id_iam_idx", n[:len(n)-9]) {
				t.Errorf("derivedName(%q) = %q: the kept part is not a prefix", table, n)
			}
			if _, err := pg_query.Parse("create index " + quoteIdent(n) + " on t (c)"); err != nil {
				t.Errorf("%q: %v", n, err)
			}
		}
	}
}
