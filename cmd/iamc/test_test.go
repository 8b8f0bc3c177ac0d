package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/iamc/iamc/internal/pgtest"
)

// exampleWithout copies policies/ (the .iam, .sql and .iamtest files) into
// a temporary directory, with line taken out of todos.iam.
func exampleWithout(t *testing.T, line string) string {
	t.Helper()
	dir := t.TempDir()
	for _, pattern := range []string{"*.iam", "*.sql", "*.iamtest"} {
		paths, err := filepath.Glob(filepath.Join("../../policies", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			text := readFile(t, p)
			if filepath.Base(p) == "todos.iam" {
				cut := strings.Replace(text, line+"\n", "", 1)
				if cut == text {
					t.Fatalf("todos.iam has no line %q", line)
				}
				text = cut
			}
			writeFile(t, filepath.Join(dir, filepath.Base(p)), text)
		}
	}
	return dir
}

// lineOf is the number of the first line of the example's test file that
// starts with prefix after its indentation, within the block that starts
// with block.
func lineOf(t *testing.T, block, prefix string) int {
	t.Helper()
	in := false
	for i, l := range strings.Split(readFile(t, "../../policies/access.iamtest"), "\n") {
		in = in || strings.TrimSpace(l) == block
		if in && strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return i + 1
		}
	}
	t.Fatalf("access.iamtest has no line %q after %q", prefix, block)
	return 0
}

// TestTestCommandFails: `iamc test` on a copy of the example without
// `group admin can delete`, on its default throwaway server: exit 1, each
// failure at the file:line:col of the listing line that states it, with
// what was expected and what the database did.
func TestTestCommandFails(t *testing.T) {
	dir := exampleWithout(t, "  group admin can delete")
	stdout, _, err := run(t, "test", dir)
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit code %d, want 1 (%v)\n%s", code, err, stdout)
	}
	file := filepath.Join(dir, "access.iamtest")
	for _, want := range []string{
		file + ":" + strconv.Itoa(lineOf(t, "t2 {", "olivia")) + ":5: error IAM203: expected: olivia can delete todos[t2] (access listing); actual: cannot: 0 rows deleted (the policies let the statement reach no row)",
		file + ":" + strconv.Itoa(lineOf(t, "t3 {", "adam")) + ":5: error IAM203: expected: adam can delete todos[t3] (access listing); actual: cannot: 0 rows deleted",
		"FAIL: 7 of ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, ": error IAM2"); n != 7 {
		t.Errorf("%d failures printed, want 7:\n%s", n, stdout)
	}
	if !regexp.MustCompile(`^7 of \d+ expectations failed$`).MatchString(err.Error()) {
		t.Errorf("error %q", err)
	}
}

// testServer is a server with the example's roles and a database app with
// its tables, for `iamc test --db`.
func testServer(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	s := pgtest.New(t)
	if err := s.Exec(ctx, "postgres", readFile(t, "../../policies/roles.sql")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "app", readFile(t, "../../policies/schema.sql")); err != nil {
		t.Fatal(err)
	}
	return s.URL("app", "postgres")
}

// TestTestCommandFormats: --format json and junit, passing and failing,
// and --fail-fast, with --db; the exit code follows the failures.
func TestTestCommandFormats(t *testing.T) {
	url := testServer(t)
	failing := exampleWithout(t, "  group admin can delete")

	stdout, _, err := run(t, "test", "../../policies", "--db", url, "--format", "json")
	if code := exitCode(err); code != 0 {
		t.Fatalf("exit code %d (%v)\n%s", code, err, stdout)
	}
	var doc struct {
		OK           bool     `json:"ok"`
		Expectations int      `json:"expectations"`
		Failures     int      `json:"failures"`
		Notes        []string `json:"notes"`
		Results      []struct {
			File, Expectation, Expected, Actual, Code string
			Line, Col                                 int
			Passed                                    bool
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if !doc.OK || doc.Failures != 0 || doc.Expectations != len(doc.Results) || doc.Expectations < 250 || len(doc.Notes) != 1 {
		t.Errorf("json: ok %v, %d expectations, %d results, %d failures, notes %q", doc.OK, doc.Expectations, len(doc.Results), doc.Failures, doc.Notes)
	}

	stdout, _, err = run(t, "test", failing, "--db", url, "--format", "json")
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit code %d, want 1 (%v)", code, err)
	}
	doc.Results = nil
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	var failed []string
	for _, r := range doc.Results {
		if !r.Passed {
			failed = append(failed, r.Code+" "+r.Expectation+" "+r.Expected+" / "+r.Actual)
		}
	}
	if doc.OK || doc.Failures != 7 || len(failed) != 7 || failed[0] != "IAM203 olivia can delete todos[t2] can / cannot: 0 rows deleted (the policies let the statement reach no row)" {
		t.Errorf("json of a failing run: ok %v, %d failures:\n%s", doc.OK, doc.Failures, strings.Join(failed, "\n"))
	}

	// --fail-fast: the first failure in file order, and what was left.
	stdout, _, err = run(t, "test", failing, "--db", url, "--fail-fast")
	if code := exitCode(err); code != 1 {
		t.Fatalf("--fail-fast: exit code %d, want 1 (%v)\n%s", code, err, stdout)
	}
	if n := strings.Count(stdout, ": error IAM2"); n != 1 || !strings.Contains(stdout, "error IAM203: expected: olivia can delete todos[t2]") || !strings.Contains(stdout, "not run after the first failure") {
		t.Errorf("--fail-fast printed %d failures:\n%s", n, stdout)
	}

	stdout, _, err = run(t, "test", failing, "--db", url, "--format", "junit")
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit code %d, want 1 (%v)", code, err)
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Line    int    `xml:"line,attr"`
				Failure *struct {
					Type string `xml:"type,attr"`
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(stdout), &junit); err != nil {
		t.Fatalf("not XML: %v\n%s", err, stdout)
	}
	if junit.Failures != 7 || len(junit.Suites) != 1 || len(junit.Suites[0].Cases) != junit.Tests {
		t.Fatalf("junit: %d tests, %d failures, %d suites", junit.Tests, junit.Failures, len(junit.Suites))
	}
	for _, c := range junit.Suites[0].Cases {
		if c.Failure != nil && (c.Failure.Type != "IAM203" || !strings.Contains(c.Failure.Text, ":"+strconv.Itoa(c.Line)+":5: error IAM203: ")) {
			t.Errorf("junit failure %q (line %d): %s %s", c.Name, c.Line, c.Failure.Type, c.Failure.Text)
		}
	}
}

// TestTestCommandErrors: mistakes in the call exit 2; problems in the test
// files exit 1 with file:line:col and their code, in every format.
func TestTestCommandErrors(t *testing.T) {
	noTests := t.TempDir()
	writeFile(t, filepath.Join(noTests, "a.iam"), "resource app.a {\n  owner column owner_id\n  owner can read\n}\n")
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"test", "../../policies", "--format", "sarif"}, `--format must be text, json, junit, not "sarif"`},
		{[]string{"test", "a", "b"}, "test takes one policy directory, got 2 arguments"},
		{[]string{"test", noTests}, "no .iamtest files in " + noTests},
		{[]string{"test", "../../policies", "--db", "postgres://127.0.0.1:1/none?connect_timeout=1"}, "connecting to the database: "},
	} {
		_, _, err := run(t, tt.args...)
		if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%v: exit %d, %v; want exit 2, %q", tt.args, code, err, tt.msg)
		}
	}

	bad := t.TempDir()
	for _, name := range []string{"iam.iam", "todos.iam", "chats.iam"} {
		writeFile(t, filepath.Join(bad, name), readFile(t, filepath.Join("../../policies", name)))
	}
	file := filepath.Join(bad, "x.iamtest")
	writeFile(t, file, "user alice\nrow todos[t1] { owner alise }\nalice can raed todos[t1]\n")
	stdout, _, err := run(t, "test", bad)
	if code := exitCode(err); code != 1 || err.Error() != "2 error(s) in the policy and test files" {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	for _, want := range []string{
		file + ":2:23: error IAM211: unknown user alise: declare it with `user alise` (did you mean alice?)",
		file + ":3:11: error IAM211: unknown permission \"raed\"",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = run(t, "test", bad, "--format", "json")
	var doc struct {
		OK     bool `json:"ok"`
		Errors []struct {
			File, Code, Message string
			Line, Col           int
		} `json:"errors"`
	}
	if jerr := json.Unmarshal([]byte(stdout), &doc); jerr != nil || exitCode(err) != 1 || doc.OK || len(doc.Errors) != 2 ||
		doc.Errors[0].Line != 2 || doc.Errors[0].Col != 23 || doc.Errors[0].Code != "IAM211" {
		t.Errorf("json errors: exit %d, %v, %+v\n%s", exitCode(err), jerr, doc, stdout)
	}
	stdout, _, err = run(t, "test", bad, "--format", "junit")
	if exitCode(err) != 1 || !strings.Contains(stdout, `errors="2"`) || !strings.Contains(stdout, `<error message="unknown user alise`) {
		t.Errorf("junit errors: exit %d\n%s", exitCode(err), stdout)
	}
}
