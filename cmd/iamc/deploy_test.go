package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/stdlib"
)

// TestPlanApplyCommands: plan --detailed-exitcode says 2 before apply and
// 0 after; apply applies once, then says no changes; drift shows and is
// repaired; a newer runtime is refused.
func TestPlanApplyCommands(t *testing.T) {
	noDatabase(t)
	s := pgtest.New(t)
	ctx := t.Context()
	if err := s.Exec(ctx, "postgres", `create role api_owner noinherit; create role web_user nologin; create role web_anon nologin;`); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "app", `create schema app authorization api_owner; set role api_owner;
		create table app.todos (id bigint generated always as identity primary key, title text, owner_id uuid not null);
		reset role;`); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "policies")
	writeFile(t, filepath.Join(dir, "todos.iam"), "resource app.todos {\n  owner column owner_id\n  owner can read, create, write, delete\n}\n")
	url := s.URL("app", "postgres")

	out, errOut, code := runIamc(t, "plan", dir, "--db", url, "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "  + create policy \"iam: authenticated can select\" on app.todos\n") ||
		!strings.Contains(out, "\nPlan: ") || !strings.Contains(errOut, "change(s) pending (exit code 2: --detailed-exitcode)") {
		t.Errorf("plan before apply: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := runIamc(t, "plan", dir, "--db", url); code != 0 {
		t.Errorf("plan without --detailed-exitcode: exit %d, want 0", code)
	}

	out, errOut, code = runIamc(t, "apply", dir, "--db", url)
	if code != 0 || !strings.Contains(out, "Applied: ") || !strings.HasSuffix(out, "recorded as iam.applied #1.\n") {
		t.Errorf("apply: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runIamc(t, "apply", dir, "--db", url, "--lock-timeout", "1s")
	if code != 0 || !strings.Contains(out, "No changes. The database matches "+dir+".\n") || !strings.HasSuffix(out, "Apply: no changes; nothing was committed.\n") {
		t.Errorf("second apply: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = runIamc(t, "plan", dir, "--db", url, "--detailed-exitcode")
	if code != 0 || !strings.HasSuffix(out, "No changes. The database matches "+dir+".\n") {
		t.Errorf("plan after apply: exit %d\n%s", code, out)
	}

	// Drift: named in the plan, repaired by apply.
	if err := s.Exec(ctx, "app", `grant delete on app.todos to web_anon`); err != nil {
		t.Fatal(err)
	}
	out, _, code = runIamc(t, "plan", dir, "--db", url, "--detailed-exitcode")
	if want := "  - drop grant delete on table app.todos to web_anon  [drift: created outside iamc; apply reverts it]\n"; code != 2 || !strings.Contains(out, want) {
		t.Errorf("plan with drift: exit %d, want 2 and %q\n%s", code, want, out)
	}
	if _, errOut, code := runIamc(t, "apply", dir, "--db", url, "--concurrent-indexes"); code != 0 {
		t.Errorf("apply repairing drift: exit %d: %s", code, errOut)
	}
	if _, _, code := runIamc(t, "plan", dir, "--db", url, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the repair: exit %d", code)
	}

	// The real main: exit codes as a shell sees them.
	for _, tt := range []struct {
		args string
		code int
	}{
		{"plan " + dir + " --db " + url + " --detailed-exitcode", 0},
		{"plan " + dir + " --db " + url + " --detailed-exitcode --lock-timeout nonsense", 1},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExitCodes$")
		cmd.Env = append(os.Environ(), "IAMC_TEST_MAIN=1", "IAMC_TEST_ARGS="+tt.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code {
			t.Errorf("iamc %s: exit %d, want %d (stderr %q)", tt.args, code, tt.code, stderr.String())
		}
	}
	if err := s.Exec(ctx, "app", `grant delete on app.todos to web_anon`); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitCodes$")
	cmd.Env = append(os.Environ(), "IAMC_TEST_MAIN=1", "IAMC_TEST_ARGS=plan "+dir+" --db "+url+" --detailed-exitcode")
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("main with changes pending: %v, want exit status 2", err)
	}

	// A runtime newer than this iamc's is refused, by both.
	if err := s.Exec(ctx, "app", `update iam.runtime set version = 99`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"plan", "apply"} {
		_, errOut, code := runIamc(t, c, dir, "--db", url, "--detailed-exitcode")
		if c == "apply" {
			_, errOut, code = runIamc(t, c, dir, "--db", url)
		}
		if code != 1 || !strings.Contains(errOut, "iamc: the iam runtime in this database is version 99, newer than the one this iamc installs (version "+strconv.Itoa(stdlib.Version)+")") {
			t.Errorf("%s over a newer runtime: exit %d, %q", c, code, errOut)
		}
	}
}

func TestPlanApplyNeedADatabase(t *testing.T) {
	noDatabase(t)
	for _, c := range []string{"plan", "apply"} {
		_, errOut, code := runIamc(t, c, "../../policies")
		if code != 1 || !strings.Contains(errOut, "iamc: "+c+" needs a database: --db URL") {
			t.Errorf("%s without a database: exit %d, %q", c, code, errOut)
		}
	}
	// Errors in the files come first, as for build.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.iam"), "resource app.a {\n  owner can reed\n}\n")
	if _, errOut, code := runIamc(t, "plan", dir, "--db", "postgres://127.0.0.1:1/none"); code != 1 || !strings.Contains(errOut, `unknown permission "reed"`) {
		t.Errorf("plan of a broken file: exit %d, %q", code, errOut)
	}
}
