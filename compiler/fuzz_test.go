package compiler

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/stdlib"
)

// FuzzCompile compiles whatever parses and checks and verifies every
// generated statement that depends on the input with PostgreSQL's parser
// (the embedded runtime is the same for every input and is verified by
// the golden tests). Index names derived from table names must stay within
// 63 bytes and unique in their schema, apart from every resource table.
// It shares FuzzParse's seeds; to fuzz:
//
//	go test -run '^$' -fuzz '^FuzzCompile$' -fuzztime 5m -parallel 1 ./compiler/
func FuzzCompile(f *testing.F) {
	for _, pattern := range []string{"../policies/*.iam", "../golden/*/policies/*.iam", "../lang/testdata/fuzz/FuzzParse/*"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			f.Add(readSeed(f, p))
		}
	}
	runtime := map[string]bool{}
	for _, st := range splitStatements(stdlib.Runtime) {
		runtime[st] = true
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := lang.ParseFile("p.iam", src)
		if err != nil {
			return
		}
		m, err := lang.Check([]*lang.File{file})
		if err != nil {
			return
		}
		checkGenerated(t, m, runtime, src)
	})
}

// FuzzCompileNames fuzzes the names alone, inside a policy that checks:
// two resources of one schema, quoted whatever they hold, so that nearly
// every input reaches the compiler. Quoting, keywords, unicode, names at
// 63 bytes and derived index names that collide are what it explores.
//
//	go test -run '^$' -fuzz '^FuzzCompileNames$' -fuzztime 5m -parallel 1 ./compiler/
func FuzzCompileNames(f *testing.F) {
	for _, seed := range [][4]string{
		{"app", "todos", "owner_id", "notes"},
		{"order", "select", "user", "table"},
		{"Mixed Case", "Order-Items", `Owner "Id"`, "x"},
		{"日本", "注文", "所有者", "🙂 emoji"},
		{"app", strings.Repeat("注", 21), "owner_id", strings.Repeat("注", 20) + "x"},
		{"app", strings.Repeat("t", 63), strings.Repeat("c", 63), strings.Repeat("t", 62) + "u"},
		{"app", "a", "o", "a_o_iam_idx"},
		{"app", "user", "orders_owner", "user_orders"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	runtime := map[string]bool{}
	for _, st := range splitStatements(stdlib.Runtime) {
		runtime[st] = true
	}
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	f.Fuzz(func(t *testing.T, schema, table, column, other string) {
		src := []byte(fmt.Sprintf("resource %s.%s {\n  owner column %s\n  owner can read, create, write, delete\n}\n"+
			"resource %s.%s {\n  owner column %s\n  owner can read\n}\n",
			q(schema), q(table), q(column), q(schema), q(other), q(column)))
		file, err := lang.ParseFile("p.iam", src)
		if err != nil {
			return // a newline in a name: not a name
		}
		m, err := lang.Check([]*lang.File{file})
		if err != nil {
			return // refused names (too long, empty, control characters): FuzzParse checks the errors
		}
		checkGenerated(t, m, runtime, src)
	})
}

// checkIndexName checks the name of a generated `create index`: at most
// 63 bytes (PostgreSQL would cut it), and unique in its schema among
// indexes and resource tables (indexes share the namespace of tables).
func checkIndexName(t *testing.T, sql string, tables map[string]bool, seen map[string]string, src []byte) {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("parse %q: %v", sql, err)
	}
	idx := tree.Stmts[0].Stmt.GetIndexStmt()
	if idx == nil {
		return
	}
	name, schema := idx.Idxname, idx.Relation.Schemaname
	if len(name) > lang.MaxIdentLen {
		t.Fatalf("index name %q is %d bytes, more than %d\ninput: %q", name, len(name), lang.MaxIdentLen, src)
	}
	key := schema + "\x00" + name
	if tables[key] {
		t.Fatalf("index name %q is also the name of a resource table in schema %q\ninput: %q", name, schema, src)
	}
	if prev, dup := seen[key]; dup {
		t.Fatalf("index name %q is used twice in schema %q:\n%s\n%s\ninput: %q", name, schema, prev, sql, src)
	}
	seen[key] = sql
}

// readSeed reads a seed: a .iam file, or a file of Go's fuzz corpus
// format holding one []byte or string value.
func readSeed(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading a seed: %v", err)
	}
	text, ok := strings.CutPrefix(string(b), "go test fuzz v1\n")
	if !ok {
		return b
	}
	text = strings.TrimSpace(text)
	for _, prefix := range []string{"[]byte(", "string("} {
		if v, ok := strings.CutPrefix(text, prefix); ok {
			s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
			if err != nil {
				t.Fatalf("seed %s: %v", path, err)
			}
			return []byte(s)
		}
	}
	t.Fatalf("seed %s: not a []byte or string value", path)
	return nil
}

// checkGenerated compiles a checked model and checks what the fuzz targets
// promise of every statement the input shaped (the runtime's are fixed):
// it round-trips, and index names are short, unique and not table names.
func checkGenerated(t *testing.T, m *lang.Model, runtime map[string]bool, src []byte) {
	t.Helper()
	out := generate(m, nil)
	tables := map[string]bool{}
	for _, r := range m.Resources {
		tables[r.Schema+"\x00"+r.Table] = true
	}
	indexes := map[string]string{}
	for _, s := range out.Sections {
		for _, st := range s.Statements {
			if runtime[st.SQL] {
				continue
			}
			if err := RoundTrip(st.SQL); err != nil {
				t.Fatalf("generated SQL does not round-trip: %v\ninput: %q", err, src)
			}
			checkIndexName(t, st.SQL, tables, indexes, src)
		}
	}
}
