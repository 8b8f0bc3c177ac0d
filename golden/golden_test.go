// Package golden_test compiles every case under golden/ the way `iamc build`
// does (lang.ParseDir -> lang.Check -> compiler.Build) and compares the
// result with the files checked in beside the input:
//
//	golden/<case>/policies/*.iam   the input
//	golden/<case>/build.sql        the full script, for a good case
//	golden/<case>/errors.txt       the exact error text, for a case named err-*
//
// `go test ./golden/ -update` rewrites build.sql and errors.txt; review the
// diff like code. Paths in the output are "policies/<file>.iam", relative
// to the case directory, so the goldens do not depend on where the
// repository is checked out.
package golden_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/goldenfile"
	"github.com/iamc/iamc/lang"
)

// exampleCopies are cases whose input is a copy of the example in
// policies/; the copies are kept identical (-update refreshes them).
var exampleCopies = map[string][]string{
	"todos": {"iam.iam", "todos.iam"},
	"chats": {"iam.iam", "chats.iam"},
	"notes": {"iam.iam", "notes.iam"},
}

// errorAt is one error an error case must report: where, and the text the
// source has at that position (so a golden cannot drift to a wrong column).
type errorAt struct {
	pos   string // policies/file.iam:line:col
	token string // what the source holds at pos ("" for end of file)
	msg   string // a substring of the message
}

// wantErrors pins, for every error case, each error's position and what it
// points at, independently of errors.txt.
var wantErrors = map[string][]errorAt{
	"err-unknown-keyword": {
		{"policies/todos.iam:4:3", "permit", `unexpected "permit"`},
	},
	"err-unknown-permission": {
		{"policies/todos.iam:4:13", "wirte", `unknown permission "wirte": expected read, create, write or delete (did you mean "write"?)`},
	},
	"err-duplicate-resource": {
		{"policies/b.iam:2:10", "App.TODOS", "resource app.todos is declared twice (first at policies/a.iam:1:1)"},
	},
	"err-bad-identifier": {
		{"policies/todos.iam:1:14", "2todos", `bad table name 2todos: an unquoted identifier starts with a letter or _ (quote it as "2todos"`},
	},
	"err-unqualified-name": {
		{"policies/todos.iam:1:10", "todos", "resource name must be schema.table (e.g. app.todos), got 1 part(s)"},
	},
	"err-identity-twice": {
		{"policies/b.iam:6:1", "identity", "identity is declared twice (first at policies/a.iam:1:1)"},
	},
	"err-unknown-identity-type": {
		{"policies/iam.iam:3:8", "integer", `unknown identity type "integer": expected uuid or text`},
	},
	"err-parents": {
		{"policies/bad.iam:2:3", "parent", "parents of app.a go round in a cycle (app.a -> app.b -> app.a)"},
		{"policies/bad.iam:10:3", "parent", "parent app.missing of app.c is not a resource"},
		{"policies/bad.iam:14:3", "parent", "parent owner: app.d has no parent"},
		{"policies/bad.iam:15:16", "chief", `unknown group role "chief"`},
		{"policies/bad.iam:19:3", "parent", "app.e cannot be its own parent"},
		{"policies/bad.iam:23:3", "parent", "the parent app.g has no owner column"},
		{"policies/bad.iam:24:3", "parent", "the parent app.g has no group column"},
	},
	"err-group-roles": {
		{"policies/docs.iam:6:9", "editor", `unknown group role "editor": expected member, admin or owner`},
		{"policies/iam.iam:3:27", `"Chief"`, "a group role is a bare name"},
		{"policies/iam.iam:3:37", "column", "bad group role column: it reads as part of a rule"},
		{"policies/iam.iam:3:46", "editor", "group role editor is declared twice in the order (first at policies/iam.iam:3:18)"},
		{"policies/iam.iam:4:18", "'a/b'", "bad token subgroup 'a/b': name one Keycloak subgroup, without slashes"},
		{"policies/iam.iam:5:28", "boss", `unknown group role "boss"`},
		{"policies/iam.iam:6:22", "boss", `unknown group role "boss"`},
		{"policies/iam.iam:8:21", "nobody", `unknown group role "nobody"`},
		{"policies/iam.iam:9:27", "reader", `unknown group role "reader"`},
	},
	"err-column-rules": {
		{"policies/tasks.iam:8:27", "title", "owner can create (...): a column list goes with write"},
		{"policies/tasks.iam:8:42", "owner_id", "the owner column never changes"},
		{"policies/tasks.iam:9:26", "title", "group member can read (...): column reads are grants to a database role"},
		{"policies/tasks.iam:10:38", "done", "column done is listed twice"},
		{"policies/tasks.iam:11:27", "id", "authenticated can read (...) in app.tasks: column reads are grants to the authenticated role, and owner can read gives it whole rows"},
		{"policies/tasks.iam:15:11", "id", "page by in app.catalog: every read rule lists columns"},
		{"policies/tasks.iam:25:23", "id", "anonymous can read (...) in app.notes opens every row to signed-in callers too, and owner can read gives the authenticated role whole rows"},
	},
	"err-write-without-read": {
		{"policies/todos.iam:3:21", "write", "owner can write but not read in app.todos"},
		{"policies/todos.iam:3:28", "delete", "owner can delete but not read in app.todos"},
	},
	"err-anonymous-write": {
		{"policies/guestbook.iam:2:23", "create", "anonymous callers can only be granted read"},
		{"policies/guestbook.iam:3:27", "write", "authenticated callers can only be granted read"},
	},
	"err-missing-owner-column": {
		{"policies/todos.iam:2:1", "resource", "resource app.todos has owner rules but no owner column"},
	},
	"err-groups": {
		{"policies/a.iam:3:27", "boss", `unknown group role "boss"`},
		{"policies/todos.iam:5:20", "create", "group member can create needs owner can create in app.todos"},
		{"policies/todos.iam:6:19", "delete", "group admin can delete but not read in app.todos"},
		{"policies/todos.iam:10:16", "group_id", "the group column of app.chats is required, but no group role can create"},
		{"policies/todos.iam:14:20", "read", "group rules need a group column in app.notes"},
	},
	"err-shares": {
		{"policies/bad.iam:3:3", "share", "shares of app.a would grant nothing"},
		{"policies/bad.iam:3:3", "share", "nobody may share rows of app.a: add `owner can share`"},
		{"policies/bad.iam:3:12", "o", "share by o in app.a: a share points at a row by a unique key"},
		{"policies/bad.iam:3:26", "friends", `unknown share recipient "friends"`},
		{"policies/bad.iam:10:3", "shared", "shared rules in app.b need rows that can be shared"},
		{"policies/bad.iam:11:3", "max", "max shares in app.b, which declares no shares"},
		{"policies/bad.iam:11:22", "0", "bad limit 0: max shares per row"},
		{"policies/bad.iam:16:3", "share", "nobody may share rows of app.c"},
	},
	"err-unterminated-block": {
		{"policies/todos.iam:4:1", "", "unexpected end of file"},
	},
	"err-syntax-in-two-files": {
		{"policies/a.iam:2:9", "sub", `unexpected "sub"`},
		{"policies/b.iam:2:24", ";", "unexpected character ';'"},
	},
	"err-many": {
		{"policies/todos.iam:2:1", "roles", "the authenticated and anonymous roles must differ (both are \"web_user\"); for one role with and without a token, write `single role web_user`"},
		{"policies/todos.iam:5:3", "admin", `unknown role slot "admin"`},
		{"policies/todos.iam:8:14", `""`, "bad table name: a quoted identifier cannot be empty"},
		{"policies/todos.iam:14:3", "owner column user_id", "owner column is declared twice in app.todos (first at policies/todos.iam:13:3)"},
		{"policies/todos.iam:15:19", "read", "owner is already granted read (at policies/todos.iam:15:13)"},
		{"policies/todos.iam:16:27", "delete", "authenticated callers can only be granted read"},
		{"policies/todos.iam:17:13", "select", `unknown permission "select": expected read, create, write or delete (did you mean "read"?)`},
		{"policies/todos.iam:20:14", "a_table_name_that_is_longer", "bad table name: 70 bytes is longer than PostgreSQL's limit of 63"},
	},
	"err-long-names": {
		{"policies/names.iam:3:14", "customer_relationship", "bad table name: 64 bytes is longer than PostgreSQL's limit of 63; PostgreSQL would silently cut it"},
		{"policies/names.iam:9:14", `"注文履歴`, "bad table name: 66 bytes (22 characters in UTF-8) is longer than PostgreSQL's limit of 63"},
		{"policies/names.iam:16:16", "the_user_who_created", "bad column name: 69 bytes"},
		{"policies/names.iam:20:10", "a_schema_name", "bad schema name: 66 bytes"},
		{"policies/names.iam:27:17", `"üü`, "bad role name: 64 bytes (32 characters in UTF-8)"},
		{"policies/names.iam:31:14", "the_schema_postgrest", "bad schema name: 66 bytes"},
	},
	"err-keycloak": {
		{"policies/bad.iam:10:3", "anonymous", "anonymous can read in app.notes: a request without a token has no tenant claim"},
		{"policies/bad.iam:14:35", "'realm_access.roles'", "claim 'realm_access.roles' is never a string"},
		{"policies/bad.iam:15:8", "''", "the role name is empty"},
		{"policies/bad.iam:16:18", "delete", "role 'mod' can delete but not read in app.posts"},
		{"policies/bad.iam:17:40", "write", "keeper = claim 'user_type' callers can only be granted read"},
		{"policies/bad.iam:18:18", "'address..region'", "bad claim 'address..region': an empty name between dots"},
		{"policies/bad.iam:19:16", "'groups'", "claim 'groups' is never a string: the groups block reads it as the token's list of groups"},
		{"policies/bad.iam:24:3", "anonymous", "single role names the role of every request (at policies/bad.iam:23:3)"},
	},
	"err-unquoted-unicode": {
		{"policies/a.iam:2:17", "é", `unexpected character 'é': a bare name holds only ASCII letters, digits, _ and $; double-quote a name with other characters, e.g. "café"`},
		{"policies/b.iam:2:16", "👤", `unexpected character '👤'`},
	},
}

const minCases = 14

func TestGolden(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		if e.IsDir() {
			cases = append(cases, e.Name())
		}
	}
	if len(cases) < minCases {
		t.Fatalf("%d golden cases, want at least %d", len(cases), minCases)
	}
	for name := range wantErrors {
		if !slices.Contains(cases, name) {
			t.Errorf("wantErrors names %s, which is not a case directory", name)
		}
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			syncExampleCopies(t, name)
			if strings.HasPrefix(name, "err-") {
				errorCase(t, name)
			} else {
				goodCase(t, name)
			}
		})
	}
}

// syncExampleCopies keeps the copies of policies/ identical to it.
func syncExampleCopies(t *testing.T, name string) {
	t.Helper()
	for _, file := range exampleCopies[name] {
		src, err := os.ReadFile(filepath.Join("..", "policies", file))
		if err != nil {
			t.Fatal(err)
		}
		goldenfile.Check(t, filepath.Join(name, "policies", file), string(src))
	}
}

// result is what one way of compiling a case produced.
type result struct {
	files  []*lang.File
	model  *lang.Model
	out    *compiler.Output
	script string
	err    error
}

// text is the script, or the error text, with a trailing newline.
func (r result) text() string {
	if r.err != nil {
		return r.err.Error() + "\n"
	}
	return r.script
}

// compileRelative compiles a case with file names relative to the case
// directory: it reads the directory as lang.ParseDir does (every *.iam file
// directly inside it, in name order, parse errors of all files together)
// and names each file "policies/<name>".
func compileRelative(t *testing.T, name string) result {
	t.Helper()
	dir := filepath.Join(name, "policies")
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		t.Fatal(err)
	}
	var (
		files []*lang.File
		errs  lang.ErrorList
	)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), lang.Extension) {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		f, err := lang.ParseFile(path.Join("policies", e.Name()), src)
		if err != nil {
			var list lang.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("ParseFile returned %T, want lang.ErrorList: %v", err, err)
			}
			errs = append(errs, list...)
			continue
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return result{err: errs}
	}
	return build(files)
}

// compileCLI compiles a case exactly as the CLI does, from its directory.
func compileCLI(name string) result {
	files, err := lang.ParseDir(filepath.Join(name, "policies"))
	if err != nil {
		return result{err: err}
	}
	return build(files)
}

func build(files []*lang.File) result {
	r := result{files: files}
	r.out, r.err = compiler.CompileFiles(files)
	if r.err == nil {
		r.model, r.script = r.out.Model, r.out.Script()
	}
	return r
}

// compile runs both ways and insists they agree: the golden is the
// relative one, and the CLI's differs only by the case directory prefix.
func compile(t *testing.T, name string) result {
	t.Helper()
	rel := compileRelative(t, name)
	cli := compileCLI(name)
	prefix := filepath.ToSlash(filepath.Join(name, "policies")) + "/"
	if got, want := strings.ReplaceAll(cli.text(), prefix, "policies/"), rel.text(); got != want {
		t.Fatalf("lang.ParseDir path and relative path disagree:\nParseDir:\n%s\nrelative:\n%s", got, want)
	}
	return rel
}

func goodCase(t *testing.T, name string) {
	r := compile(t, name)
	if r.err != nil {
		t.Fatalf("good case does not compile (name error cases err-*):\n%v", r.err)
	}
	if _, err := os.Stat(filepath.Join(name, "errors.txt")); err == nil {
		t.Errorf("%s/errors.txt exists in a good case: remove it", name)
	}
	goldenfile.Check(t, filepath.Join(name, "build.sql"), goldenfile.ElideRuntime(t, r.script))

	// Every generated statement round-trips, checked here directly too so
	// that a golden cannot hide one that does not.
	n := 0
	for _, s := range r.out.Sections {
		for _, st := range s.Statements {
			n++
			if err := compiler.RoundTrip(st.SQL); err != nil {
				t.Errorf("section %q: %v", s.Header[0], err)
			}
			if !strings.HasSuffix(st.SQL, ";") {
				t.Errorf("statement does not end in ';': %q", st.SQL)
			}
		}
	}
	// And the script as a whole: PostgreSQL's parser cuts it into the
	// begin and the preamble, the section statements and commit, each of which
	// round-trips. A statement merged into a comment or lost would show.
	parts, err := pg_query.SplitWithParser(r.script, true)
	if err != nil {
		t.Fatalf("the script does not split: %v", err)
	}
	if want := 1 + len(r.out.Preamble()) + n + 1; len(parts) != want {
		t.Errorf("the script holds %d statements, want %d (begin, preamble %d, sections %d, commit)", len(parts), want, len(r.out.Preamble()), n)
	}
	for _, p := range parts {
		if err := compiler.RoundTrip(p + ";"); err != nil {
			t.Errorf("script statement: %v", err)
		}
	}
	if first, last := parts[0], parts[len(parts)-1]; !strings.HasSuffix(first, "begin") || last != "commit" {
		t.Errorf("the script runs from %q to %q, want begin to commit", first, last)
	}
	checkNames(t, r.script)
	checkDeterministic(t, name, r)
}

// checkNames parses the script and checks every name iamc derives fits in
// PostgreSQL's 63 bytes, is valid UTF-8, and that index names are unique.
func checkNames(t *testing.T, script string) {
	t.Helper()
	tree, err := pg_query.Parse(script)
	if err != nil {
		t.Fatal(err)
	}
	indexes := map[string]bool{}
	for _, raw := range tree.Stmts {
		var names []string
		if idx := raw.Stmt.GetIndexStmt(); idx != nil {
			if indexes[idx.Idxname] {
				t.Errorf("index name %q used twice", idx.Idxname)
			}
			indexes[idx.Idxname] = true
			names = append(names, idx.Idxname)
		}
		if p := raw.Stmt.GetCreatePolicyStmt(); p != nil {
			names = append(names, p.PolicyName)
		}
		if trg := raw.Stmt.GetCreateTrigStmt(); trg != nil {
			names = append(names, trg.Trigname)
		}
		for _, n := range names {
			if len(n) > lang.MaxIdentLen || !utf8.ValidString(n) || n == "" {
				t.Errorf("generated name %q (%d bytes) is not a valid PostgreSQL name", n, len(n))
			}
		}
	}
}

// checkDeterministic builds again, and with the files in reverse order: the
// sections must not change (only the list of sources in the header may).
func checkDeterministic(t *testing.T, name string, r result) {
	t.Helper()
	again := compileRelative(t, name)
	if again.script != r.script {
		t.Errorf("two builds of the same files differ")
	}
	reversed := slices.Clone(r.files)
	slices.Reverse(reversed)
	rev := build(reversed)
	if rev.err != nil {
		t.Fatalf("files in reverse order do not compile: %v", rev.err)
	}
	if got, want := sectionsSQL(rev.out), sectionsSQL(r.out); got != want {
		t.Errorf("the sections depend on the order the files are given in")
	}
}

func sectionsSQL(o *compiler.Output) string {
	var b strings.Builder
	for _, s := range o.Sections {
		b.WriteString(s.SQL())
	}
	return b.String()
}

var errorLine = regexp.MustCompile(`^(policies/[^:]+\.iam:\d+:\d+): (.+)$`)

func errorCase(t *testing.T, name string) {
	r := compile(t, name)
	if r.err == nil {
		t.Fatalf("error case compiles; expected errors (name good cases without err-)")
	}
	var list lang.ErrorList
	if !errors.As(r.err, &list) {
		t.Fatalf("error is %T, want lang.ErrorList: %v", r.err, r.err)
	}
	if _, err := os.Stat(filepath.Join(name, "build.sql")); err == nil {
		t.Errorf("%s/build.sql exists in an error case: remove it", name)
	}
	text := r.text()
	goldenfile.Check(t, filepath.Join(name, "errors.txt"), text)

	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	want, ok := wantErrors[name]
	if !ok {
		t.Fatalf("add the expected positions of %s to wantErrors", name)
	}
	if len(lines) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(lines), len(want), text)
	}
	for i, line := range lines {
		m := errorLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("error %q is not policies/FILE.iam:LINE:COL: MESSAGE", line)
			continue
		}
		if i >= len(want) {
			continue
		}
		w := want[i]
		if m[1] != w.pos {
			t.Errorf("error %d is at %s, want %s: %s", i+1, m[1], w.pos, line)
		}
		if !strings.Contains(m[2], w.msg) {
			t.Errorf("error %d says %q, want it to contain %q", i+1, m[2], w.msg)
		}
		if got := sourceAt(t, name, m[1], len(w.token)); got != w.token {
			t.Errorf("error %d points at %q, want %q: %s", i+1, got, w.token, line)
		}
	}
}

// sourceAt returns n bytes of the case's source at file:line:col ("" at the
// end of the file). Columns count characters (runes) from 1, as the
// lexer does; n is in bytes.
func sourceAt(t *testing.T, name, pos string, n int) string {
	t.Helper()
	parts := strings.Split(pos, ":")
	line, _ := strconv.Atoi(parts[1])
	col, _ := strconv.Atoi(parts[2])
	src, err := os.Open(filepath.Join(name, filepath.FromSlash(parts[0])))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sc := bufio.NewScanner(src)
	for i := 1; sc.Scan(); i++ {
		if i == line {
			text := []rune(sc.Text())
			if col-1 > len(text) {
				return fmt.Sprintf("<column %d is past the end of line %d>", col, line)
			}
			tail := string(text[col-1:])
			return tail[:min(n, len(tail))]
		}
	}
	return "" // past the last line: end of file
}
