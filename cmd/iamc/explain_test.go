package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestExplainMatrixAndGraph: --matrix and --graph read the files alone.
func TestExplainMatrixAndGraph(t *testing.T) {
	stdout, _, err := run(t, "explain", "--matrix", "--dir", "../../policies")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"app.todos (../../policies/todos.iam:4:1)\n",
		"  group admin    yes (as group member)  yes (as group member)  yes (as group member)  yes (todos.iam:11)\n",
		"  anonymous      -                      -                      -                      -\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--matrix lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = run(t, "explain", "--matrix", "chats", "--format", "markdown", "--dir", "../../policies")
	if err != nil || !strings.HasPrefix(stdout, "### app.chats\n\n| subject | who | read | create | write | delete |\n|---|---|---|---|---|---|\n") ||
		strings.Contains(stdout, "app.todos") || !strings.Contains(stdout, "| group member | members of the row's group (group_id) | yes (chats.iam:11) | yes (chats.iam:11) | - | - |\n") {
		t.Errorf("--matrix chats --format markdown: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "explain", "--matrix", "--format", "json", "--dir", "../../policies")
	var ms []map[string]any
	if err != nil || json.Unmarshal([]byte(stdout), &ms) != nil || len(ms) != 5 {
		t.Errorf("--matrix --format json: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "explain", "--graph", "--dir", "../../policies")
	if err != nil || !strings.HasPrefix(stdout, "flowchart LR\n") || !strings.Contains(stdout, `s_group_20_admin -- "delete" --> r_app_2e_todos`) {
		t.Errorf("--graph: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "explain", "--graph", "--format", "dot", "--dir", "../../policies")
	if err != nil || !strings.HasPrefix(stdout, "digraph iam {\n") || !strings.Contains(stdout, `r_app_2e_chats -> groups [label="group_id (required)"];`) {
		t.Errorf("--graph --format dot: %v\n%s", err, stdout)
	}
	again, _, _ := run(t, "explain", "--graph", "--format", "dot", "--dir", "../../policies")
	if again != stdout {
		t.Error("--graph differs between two runs")
	}
}

// TestExplainUsageErrors: contradictory or incomplete requests exit 2.
func TestExplainUsageErrors(t *testing.T) {
	noDatabase(t)
	claims := t.TempDir() + "/claims.json"
	if err := os.WriteFile(claims, []byte(`["not", "an", "object"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"explain"}, "explain needs a TABLE"},
		{[]string{"explain", "--matrix", "--graph"}, "choose one of"},
		{[]string{"explain", "todos", "--as", "x", "--plan"}, "choose one of"},
		{[]string{"explain", "todos", "--graph"}, "--graph draws every resource"},
		{[]string{"explain", "todos", "--anonymous", "--as", "x"}, "--anonymous is a request without a token"},
		{[]string{"explain", "todos", "--row", "1"}, "--row and --group go with --as"},
		{[]string{"explain", "--matrix", "--format", "svg", "--dir", "../../policies"}, "--format must be text, markdown or json"},
		{[]string{"explain", "--graph", "--format", "svg", "--dir", "../../policies"}, "--format must be mermaid or dot"},
		{[]string{"explain", "todos", "--as", "x", "--format", "yaml", "--dir", "../../policies"}, "--format must be text or json"},
		{[]string{"explain", "todos", "--claims", claims, "--dir", "../../policies"}, "want a JSON object"},
		{[]string{"explain", "todos", "--as", "x", "--dir", "../../policies"}, "explain --as needs a database"},
	} {
		_, _, err := run(t, tt.args...)
		if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%v: exit %d, %v; want exit 2, %q", tt.args, code, err, tt.msg)
		}
	}
}

// TestExplainAs: iamc explain --as against a database where the example
// is applied (no rows yet): counts, a row that does not exist, JSON, and a
// connection that cannot read past row-level security.
func TestExplainAs(t *testing.T) {
	for _, v := range []string{"DATABASE_URL", "PGHOST", "PGDATABASE", "PGSERVICE"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	s, _, built, _ := checkServer(t)
	const sub = "a11ce000-0000-4000-8000-000000000001"
	stdout, _, err := run(t, "explain", "todos", "--dir", "../../policies", "--db", built, "--as", sub)
	if err != nil || !strings.HasPrefix(stdout, "app.todos as "+sub+" (role web_user)\nrows you see: 0\n") ||
		!strings.Contains(stdout, "\ndelete             denied   may delete 0 of the 0 rows you see;") {
		t.Errorf("explain --as: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "explain", "app.chats", "--dir", "../../policies", "--db", built, "--as", sub, "--row", "7", "--format", "json")
	var rep struct {
		Row struct {
			Key   string
			Found bool
		}
		Answers []struct {
			Command string
			Allowed bool
			Why     string
		}
	}
	if err != nil || json.Unmarshal([]byte(stdout), &rep) != nil || rep.Row.Key != "id=7" || rep.Row.Found || len(rep.Answers) != 4 ||
		rep.Answers[3].Why != "no row id=7 in app.chats" {
		t.Errorf("explain --row 7 --format json: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "explain", "todos", "--dir", "../../policies", "--db", built, "--anonymous")
	if err != nil || !strings.Contains(stdout, "select             denied   web_anon has no SELECT privilege on app.todos: no rule grants read to anonymous callers\n") {
		t.Errorf("explain --anonymous: %v\n%s", err, stdout)
	}
	if err := s.Exec(t.Context(), "built", "create role plain login; grant web_user to plain;"); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "explain", "todos", "--dir", "../../policies", "--db", s.URL("built", "plain"), "--as", sub)
	if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), "connect as a superuser") {
		t.Errorf("explain --as as a role subject to RLS: exit %d, %v", code, err)
	}
}
