package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/internal/pgtest"
)

// exitCode is the code main() exits with for an error RunE returned.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// jsonFinding is one element of `iamc check --format json`.
type jsonFinding struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Code    string `json:"code"`
	Level   string `json:"level"`
	Message string `json:"message"`
	Hint    string `json:"hint"`
}

func decodeFindings(t *testing.T, stdout string) []jsonFinding {
	t.Helper()
	var got []jsonFinding
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not a JSON array of findings: %v\n%s", err, stdout)
	}
	if got == nil {
		t.Fatalf("stdout is null, want an array: %q", stdout)
	}
	return got
}

// TestCheckJSONOffline: without a database, --format json prints [] for
// good files and the problems of bad ones as error findings (exit 1).
func TestCheckJSONOffline(t *testing.T) {
	noDatabase(t)
	stdout, _, err := run(t, "check", "../../policies", "--offline", "--format", "json")
	if err != nil || stdout != "[]\n" {
		t.Errorf("check --offline --format json: %q, %v", stdout, err)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "b.iam")
	writeFile(t, bad, "resource app.b {\n  owner can reed\n}\nresource app.c {\n  owner can read\n}\n")
	stdout, _, err = run(t, "check", dir, "--format", "json")
	if code := exitCode(err); code != 1 {
		t.Errorf("exit code %d, want 1 (%v)", code, err)
	}
	want := []jsonFinding{
		{File: bad, Line: 2, Col: 13, Code: "IAM150", Level: "error", Message: `unknown permission "reed": expected read, create, write or delete (did you mean "read"?)`},
		{File: bad, Line: 4, Col: 1, Code: "IAM143", Level: "error", Message: "resource app.c has owner rules but no owner column: add `owner column owner_id` (the column holding the creator's user id)"},
	}
	if diff := cmp.Diff(want, decodeFindings(t, stdout)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// TestCheckUsageErrors: mistakes in how check is called exit 2, before
// anything is read.
func TestCheckUsageErrors(t *testing.T) {
	noDatabase(t)
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"check", "../../policies", "--format", "yaml"}, `--format must be text, json, sarif or github, not "yaml"`},
		{[]string{"check", "../../policies", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"check", "a", "b"}, "check takes one policy directory, got 2 arguments"},
		{[]string{"check", "../../policies", "--offline", "--db", "postgres://x"}, "--offline and --db contradict each other"},
		{[]string{"check", filepath.Join(t.TempDir(), "missing")}, "policy path: "},
		{[]string{"check", t.TempDir()}, "no .iam files in "},
		{[]string{"check", "../../policies", "--db", "postgres://127.0.0.1:1/none?connect_timeout=1"}, "connecting to the database: "},
	} {
		_, _, err := run(t, tt.args...)
		if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%v: exit %d, %v; want exit 2, %q", tt.args, code, err, tt.msg)
		}
	}
}

// checkServer starts PostgreSQL with the example's roles and three
// databases: unbuilt (policies/schema.sql), built (the same with iamc
// build applied) and broken (built, then a table given away and one added
// that no resource declares). It returns their URLs.
func checkServer(t *testing.T) (s *pgtest.Server, unbuilt, built, broken string) {
	t.Helper()
	ctx := context.Background()
	s = pgtest.New(t)
	if err := s.Exec(ctx, "postgres", readFile(t, "../../policies/roles.sql")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "iam.sql")
	if _, _, err := run(t, "build", "../../policies", "-o", script); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"unbuilt", "built", "broken"} {
		if err := s.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		if err := s.Exec(ctx, db, readFile(t, "../../policies/schema.sql")); err != nil {
			t.Fatal(err)
		}
		if db == "unbuilt" {
			continue
		}
		if _, err := s.Psql(ctx, db, "-q", "-f", script); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Exec(ctx, "broken", `alter table app.chats owner to postgres;
create table app.memos (id bigint primary key);`); err != nil {
		t.Fatal(err)
	}
	return s, s.URL("unbuilt", "postgres"), s.URL("built", "postgres"), s.URL("broken", "postgres")
}

// TestCheckDatabase: iamc check against a live database: text and JSON
// output, the URL from --db or the environment, --strict, and the exit
// codes the shell sees.
func TestCheckDatabase(t *testing.T) {
	// Unset rather than empty: psql reads PGSERVICE="" as a service name.
	for _, v := range []string{"DATABASE_URL", "PGHOST", "PGDATABASE", "PGSERVICE"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	_, unbuilt, built, broken := checkServer(t)

	t.Run("built: ok", func(t *testing.T) {
		stdout, stderr, err := run(t, "check", "../../policies", "--db", built, "--strict")
		if err != nil || stdout != "ok: 5 resources in ../../policies match the database\n" || stderr != "" {
			t.Errorf("check: %q, %q, %v", stdout, stderr, err)
		}
		stdout, _, err = run(t, "check", "../../policies", "--db", built, "--format", "json")
		if err != nil || stdout != "[]\n" {
			t.Errorf("check --format json: %q, %v", stdout, err)
		}
	})

	t.Run("DATABASE_URL", func(t *testing.T) {
		t.Setenv("DATABASE_URL", broken)
		_, _, err := run(t, "check", "../../policies")
		if code := exitCode(err); code != 1 {
			t.Errorf("check with DATABASE_URL of the broken database: exit %d, %v", code, err)
		}
		if _, _, err := run(t, "check", "../../policies", "--db", built); err != nil {
			t.Errorf("--db wins over DATABASE_URL: %v", err)
		}
	})

	t.Run("unbuilt: warnings only", func(t *testing.T) {
		stdout, _, err := run(t, "check", "../../policies", "--db", unbuilt)
		if err != nil {
			t.Fatalf("warnings failed the check: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		var findings []string
		for _, l := range lines {
			if !strings.HasPrefix(l, "  hint: ") && !strings.HasPrefix(l, "ok: ") {
				findings = append(findings, l)
			}
		}
		want := []string{
			"../../policies/chats.iam:5:1: warning IAM315: row-level security is off on app.chats: every role with a privilege on it sees and changes every row",
			"../../policies/chats.iam:6:16: warning IAM320: no index of app.chats leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/chats.iam:7:16: warning IAM320: no index of app.chats leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/chats.iam:7:16: warning IAM323: column app.chats.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them",
			"../../policies/notes.iam:8:1: warning IAM315: row-level security is off on app.notes: every role with a privilege on it sees and changes every row",
			"../../policies/notes.iam:9:17: warning IAM320: no index of app.notes leads with org_id, id: the policies read every row of the caller's tenant for some rules (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/notes.iam:10:16: warning IAM320: no index of app.notes leads with org_id, owner_id, id: the policies compare it with the caller's id within the caller's tenant (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/notes.iam:11:16: warning IAM320: no index of app.notes leads with org_id, group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows within the caller's tenant (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/notes.iam:11:16: warning IAM323: column app.notes.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them",
			"../../policies/stores.iam:7:1: warning IAM315: row-level security is off on app.stores: every role with a privilege on it sees and changes every row",
			"../../policies/stores.iam:8:16: warning IAM320: no index of app.stores leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/stores.iam:9:16: warning IAM320: no index of app.stores leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/stores.iam:9:16: warning IAM323: column app.stores.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them",
			"../../policies/stores.iam:20:1: warning IAM315: row-level security is off on app.products: every role with a privilege on it sees and changes every row",
			"../../policies/stores.iam:21:3: warning IAM320: no index of app.products leads with store_id, id: the policies look rows up by their parent (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/todos.iam:4:1: warning IAM315: row-level security is off on app.todos: every role with a privilege on it sees and changes every row",
			"../../policies/todos.iam:5:16: warning IAM320: no index of app.todos leads with owner_id, id: the policies compare it with the caller's id (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/todos.iam:6:16: warning IAM320: no index of app.todos leads with group_id, id: the policies look rows up by the caller's groups, and deleting a group looks up its rows (and the page function walks it in id order), so without one every request reads the whole table",
			"../../policies/todos.iam:6:16: warning IAM323: column app.todos.group_id has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them",
		}
		if diff := cmp.Diff(want, findings); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		if last := lines[len(lines)-1]; last != "ok: 5 resources in ../../policies match the database (19 warning(s))" {
			t.Errorf("last line %q", last)
		}
		if !strings.Contains(stdout, "\n  hint: iamc build creates it (expected before the first build): create index todos_owner_id_id_iam_idx on app.todos (owner_id, id);\n") {
			t.Errorf("no hint under the index warning:\n%s", stdout)
		}

		_, _, err = run(t, "check", "../../policies", "--db", unbuilt, "--strict")
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 1 || err.Error() != "0 error(s), 19 warning(s) in the .iam files and against the database" {
			t.Errorf("--strict: %v, want exit 1 with the count", err)
		}
	})

	t.Run("ignore comments apply to the catalog check", func(t *testing.T) {
		dir := t.TempDir()
		names, err := filepath.Glob("../../policies/*.iam")
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range names {
			name := filepath.Base(path)
			text := readFile(t, path)
			text = strings.Replace(text, "resource app.todos {", "resource app.todos {  # iamc:ignore IAM315 applied by the deploy job", 1)
			text = strings.Replace(text, "resource app.chats {", "resource app.chats {  # iamc:ignore IAM316 it has a key", 1)
			writeFile(t, filepath.Join(dir, name), text)
		}
		stdout, _, err := run(t, "check", dir, "--db", unbuilt, "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, f := range decodeFindings(t, stdout) {
			codes = append(codes, fmt.Sprintf("%s:%d %s", filepath.Base(f.File), f.Line, f.Code))
		}
		want := []string{"chats.iam:5 IAM315", "chats.iam:5 IAM190", "chats.iam:6 IAM320", "chats.iam:7 IAM320", "chats.iam:7 IAM323",
			"notes.iam:8 IAM315", "notes.iam:9 IAM320", "notes.iam:10 IAM320", "notes.iam:11 IAM320", "notes.iam:11 IAM323",
			"stores.iam:7 IAM315", "stores.iam:8 IAM320", "stores.iam:9 IAM320", "stores.iam:9 IAM323", "stores.iam:20 IAM315", "stores.iam:21 IAM320",
			"todos.iam:5 IAM320", "todos.iam:6 IAM320", "todos.iam:6 IAM323"}
		if diff := cmp.Diff(want, codes); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		// Offline, an ignore of a catalog code is not judged.
		if stdout, _, err := run(t, "check", dir, "--offline", "--strict"); err != nil {
			t.Errorf("offline: %v\n%s", err, stdout)
		}
	})

	t.Run("broken: text", func(t *testing.T) {
		stdout, _, err := run(t, "check", "../../policies", "--db", broken)
		want := `../../policies: warning IAM330: table app.memos in exposed schema app has row-level security off and no resource in the .iam files: every role with a privilege on it sees and changes every row
  hint: declare it in a .iam file (` + "`resource app.memos { }`" + ` denies everything until rules are added) and apply iamc build, or move it out of the schemas PostgREST serves
../../policies/chats.iam:5:1: error IAM312: table app.chats is owned by postgres, not by the owner role api_owner
  hint: alter table app.chats owner to api_owner;
`
		if diff := cmp.Diff(want, stdout); diff != "" {
			t.Errorf("stdout (-want +got):\n%s", diff)
		}
		if code := exitCode(err); code != 1 || err.Error() != "1 error(s), 1 warning(s) in the .iam files and against the database" {
			t.Errorf("exit %d, %v", code, err)
		}
	})

	t.Run("broken: json", func(t *testing.T) {
		stdout, _, err := run(t, "check", "../../policies", "--db", broken, "--format", "json", "--schemas", "app")
		if code := exitCode(err); code != 1 {
			t.Errorf("exit %d, %v", code, err)
		}
		want := []jsonFinding{
			{File: "../../policies", Code: "IAM330", Level: "warning",
				Message: "table app.memos in exposed schema app has row-level security off and no resource in the .iam files: every role with a privilege on it sees and changes every row",
				Hint:    "declare it in a .iam file (`resource app.memos { }` denies everything until rules are added) and apply iamc build, or move it out of the schemas PostgREST serves"},
			{File: "../../policies/chats.iam", Line: 5, Col: 1, Code: "IAM312", Level: "error",
				Message: "table app.chats is owned by postgres, not by the owner role api_owner",
				Hint:    "alter table app.chats owner to api_owner;"},
		}
		if diff := cmp.Diff(want, decodeFindings(t, stdout)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})

	t.Run("--authenticator and --schemas", func(t *testing.T) {
		stdout, _, err := run(t, "check", "../../policies", "--db", built, "--authenticator", "pgrst", "--format", "json")
		if code := exitCode(err); code != 1 {
			t.Errorf("exit %d, %v", code, err)
		}
		got := decodeFindings(t, stdout)
		if len(got) != 1 || got[0].Message != "role pgrst does not exist: PostgREST logs in as it (--authenticator)" || got[0].Line != rolesLine(t) {
			t.Errorf("findings: %+v", got)
		}
		if _, _, err := run(t, "check", "../../policies", "--db", built, "--authenticator", ""); err != nil {
			t.Errorf(`--authenticator "": %v`, err)
		}
		_, _, err = run(t, "check", "../../policies", "--db", built, "--schemas", "app,nope")
		if code := exitCode(err); code != 2 || err.Error() != "schema nope (--schemas) does not exist" {
			t.Errorf("--schemas with a missing schema: exit %d, %v", code, err)
		}
	})

	// What a shell sees: the real main(), exit codes and all.
	t.Run("exit codes", func(t *testing.T) {
		for _, tt := range []struct {
			name, args string
			code       int
			stderrPart string
		}{
			{"built", "check ../../policies --db " + built, 0, ""},
			{"unbuilt", "check ../../policies --db " + unbuilt, 0, ""},
			{"unbuilt strict", "check ../../policies --db " + unbuilt + " --strict", 1, "iamc: 0 error(s), 19 warning(s) in the .iam files and against the database"},
			{"broken", "check ../../policies --db " + broken, 1, "iamc: 1 error(s), 1 warning(s) in the .iam files and against the database"},
			{"unreachable", "check ../../policies --db postgres://127.0.0.1:1/none?connect_timeout=1", 2, "iamc: connecting to the database: "},
			{"bad format", "check ../../policies --format xml", 2, `iamc: --format must be text, json, sarif or github, not "xml"`},
			{"bad flag", "check ../../policies --no-such-flag", 2, "iamc: unknown flag: --no-such-flag"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCheckDatabase$")
				cmd.Env = append(os.Environ(), "IAMC_TEST_MAIN=1", "IAMC_TEST_ARGS="+tt.args)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				code := 0
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					code = exit.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != tt.code {
					t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr.String())
				}
				if !strings.Contains(stderr.String(), tt.stderrPart) || tt.stderrPart == "" && stderr.Len() > 0 {
					t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.stderrPart)
				}
			})
		}
	})
}

// TestPreCommitHooks: .pre-commit-hooks.yaml declares iamc-check and
// iamc-fmt, and their entries are commands iamc runs (pre-commit appends
// args, and the changed file names when pass_filenames is true).
func TestPreCommitHooks(t *testing.T) {
	noDatabase(t)
	t.Chdir(filepath.Join("..", ".."))
	f, err := os.Open(".pre-commit-hooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hooks := map[string]map[string]string{}
	var id string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "- "), ":")
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		value = strings.TrimSpace(value)
		if key == "id" {
			id = value
			hooks[id] = map[string]string{}
		}
		hooks[id][key] = value
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"iamc-check": {"entry": "iamc check --offline", "language": "golang", "files": `\.iam$`, "pass_filenames": "false"},
		"iamc-fmt":   {"entry": "iamc fmt -l", "language": "golang", "files": `\.iam$`, "pass_filenames": "true"},
	}
	for id, fields := range want {
		for k, v := range fields {
			if got := hooks[id][k]; got != v {
				t.Errorf("hook %s: %s is %q, want %q", id, k, got, v)
			}
		}
		entry := strings.Fields(hooks[id]["entry"])
		if len(entry) == 0 || entry[0] != "iamc" {
			t.Errorf("hook %s: entry %q does not run the iamc binary", id, hooks[id]["entry"])
			continue
		}
		args := entry[1:]
		if hooks[id]["pass_filenames"] == "true" {
			args = append(args, "policies/todos.iam", "policies/chats.iam")
		}
		if _, _, err := run(t, args...); err != nil {
			t.Errorf("hook %s on the example: %v", id, err)
		}
	}
	if len(hooks) != len(want) {
		t.Errorf("hooks %v, want %d", hooks, len(want))
	}
}

// rolesLine is the line of the roles block in policies/iam.iam, where
// findings about the runtime roles point.
func rolesLine(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("../../policies/iam.iam")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "roles {") {
			return i + 1
		}
	}
	t.Fatal("policies/iam.iam has no roles block")
	return 0
}
