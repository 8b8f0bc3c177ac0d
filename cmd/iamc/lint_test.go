package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	_ "github.com/iamc/iamc/internal/goldenfile" // so `go test ./... -update` works
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/lint"
)

// runIamc runs the CLI in-process and returns stdout, stderr and the exit
// code main would use.
func runIamc(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	code := 0
	if err := root.Execute(); err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		stderr.WriteString("iamc: " + err.Error() + "\n")
	}
	return stdout.String(), stderr.String(), code
}

func TestLintCommand(t *testing.T) {
	s := pgtest.New(t)
	ctx := t.Context()
	if err := s.Exec(ctx, "postgres", `
create role web_user nologin; create role web_anon nologin;`); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"clean", "warned", "broken"} {
		if err := s.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	setup := map[string]string{
		"clean": `create schema app; create table app.t (id int); alter table app.t enable row level security;
			grant usage on schema app to web_user; grant select on app.t to web_user;`,
		// one warning: a volatile function per row
		"warned": `create schema app; create table app.t (id int); alter table app.t enable row level security;
			create policy p on app.t for select to web_user using (random() < 0.5);`,
		// one error: RLS off on a table web_user can read; one info: web_anon reads it too (RLS on)
		"broken": `create schema app; create table app.open (id int); grant select on app.open to web_user;
			create table app.pub (id int); alter table app.pub enable row level security;
			grant usage on schema app to web_anon; grant select on app.pub to web_anon;`,
	}
	for db, sql := range setup {
		if err := s.Exec(ctx, db, sql); err != nil {
			t.Fatal(err)
		}
	}
	url := func(db string) string { return s.URL(db, "postgres") }

	t.Run("clean", func(t *testing.T) {
		out, _, code := runIamc(t, "lint", "--db", url("clean"))
		if code != 0 || !strings.HasPrefix(out, "ok: no findings") {
			t.Errorf("exit %d, stdout %q; want 0 and ok", code, out)
		}
		out, _, code = runIamc(t, "lint", "--db", url("clean"), "--format", "json", "--strict")
		if code != 0 || strings.TrimSpace(out) != "[]" {
			t.Errorf("json: exit %d, stdout %q; want 0 and []", code, out)
		}
	})

	t.Run("warnings pass unless --strict", func(t *testing.T) {
		out, errOut, code := runIamc(t, "lint", "--db", url("warned"))
		want := `IAM004 warning app.t policy "p": calls random() (internal, volatile) for every row; hint: wrap it as (select random()) or make it an indexable comparison` + "\n"
		if code != 0 || out != want {
			t.Errorf("exit %d, stdout:\n%s\nwant 0 and:\n%s", code, out, want)
		}
		if !strings.Contains(errOut, "0 error(s), 1 warning(s), 0 info") {
			t.Errorf("stderr %q has no summary", errOut)
		}
		if _, _, code := runIamc(t, "lint", "--db", url("warned"), "--strict"); code != 1 {
			t.Errorf("--strict: exit %d, want 1", code)
		}
	})

	t.Run("errors exit 1, json", func(t *testing.T) {
		out, _, code := runIamc(t, "lint", "--db", url("broken"), "--format", "json", "--schemas", "app")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		var got []lint.Finding
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("stdout is not a JSON array of findings: %v\n%s", err, out)
		}
		var ids []string
		for _, f := range got {
			ids = append(ids, f.Rule+" "+string(f.Level)+" "+f.Object)
			if f.Message == "" || f.Remediation == "" || f.Name == "" {
				t.Errorf("incomplete finding %+v", f)
			}
		}
		want := "IAM006 info app.pub,IAM007 error app.open"
		if strings.Join(ids, ",") != want {
			t.Errorf("findings %q, want %q", strings.Join(ids, ","), want)
		}
		if !strings.Contains(out, `"remediation": "alter table app.open enable row level security;`) {
			t.Errorf("JSON without the remediation field:\n%s", out)
		}
	})

	t.Run("other role names", func(t *testing.T) {
		out, errOut, code := runIamc(t, "lint", "--db", url("broken"), "--authenticated", "nobody_here", "--anonymous", "web_user")
		if code != 1 || !strings.Contains(out, "IAM006 info app.open: web_user can read every row of this table: row-level security is off (not reachable yet") {
			t.Errorf("exit %d, stdout:\n%s", code, out)
		}
		if !strings.Contains(errOut, "note: role nobody_here does not exist") {
			t.Errorf("stderr %q lacks the note", errOut)
		}
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "")
		t.Setenv("PGHOST", "")
		t.Setenv("PGDATABASE", "")
		t.Setenv("PGSERVICE", "")
		for _, args := range [][]string{
			{"lint"}, // no database
			{"lint", "--db", url("clean"), "--format", "yaml"},
			{"lint", "--db", url("clean"), "--no-such-flag"},
			{"lint", "--db", url("clean"), "extra"},
			{"lint", "--db", url("clean"), "--schemas", "app,nope"},
			{"lint", "--db", url("clean"), "--authenticated", "web_anon"},
			{"lint", "--db", s.URL("no_such_db", "postgres")},
		} {
			if _, errOut, code := runIamc(t, args...); code != 2 {
				t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, errOut)
			}
		}
	})

	t.Run("rules", func(t *testing.T) {
		out, _, code := runIamc(t, "lint", "--rules")
		if code != 0 || strings.Count(out, "\n") != 9 || !strings.HasPrefix(out, "IAM001 error ") {
			t.Errorf("exit %d, stdout:\n%s", code, out)
		}
	})
}
