package policytest_test

// iamc test's engine against a real PostgreSQL: the example's tests pass
// (and say how long they took), a database given with --db is left as it
// was, and the tests fail, naming the expectation at its file:line, when a
// rule is taken from or added to a copy of the example: every permission
// of todos.iam and chats.iam is tested from both sides.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/policytest"
)

// example is policies/, relative to this package.
var example = exampletest.Dir

// The shared cluster of the example's tests (its roles), and a database
// with the example's tables (policies/schema.sql) for the runs that use
// --db, made once.
func TestMain(m *testing.M) {
	os.Exit(exampletest.Main(m))
}

var app struct {
	once sync.Once
	url  string
	err  error
}

// appURL is the database of the shared cluster that holds the example's
// tables, as the superuser.
func appURL(t *testing.T) string {
	t.Helper()
	s := exampletest.Server(t)
	app.once.Do(func() {
		_, app.err = exampletest.CreateDatabase(s, "app", "schema.sql")
		app.url = s.URL("app", "postgres")
	})
	if app.err != nil {
		t.Fatalf("creating the app database: %v", app.err)
	}
	return app.url
}

// copyExample copies the example's .iam, .sql and .iamtest files into a
// temporary directory, with edit applied to each file's text.
func copyExample(t *testing.T, edit func(name, text string) string) string {
	t.Helper()
	dir := t.TempDir()
	for _, pattern := range []string{"*.iam", "*.sql", "*.iamtest"} {
		paths, err := filepath.Glob(filepath.Join(example, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if edit != nil {
				text = edit(filepath.Base(p), text)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func run(t *testing.T, opts policytest.Options) *policytest.Report {
	t.Helper()
	if opts.PreRequest == "" {
		opts.PreRequest = policytest.DefaultPreRequest
	}
	report, err := policytest.Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("iamc test %s: %v", opts.Dir, err)
	}
	return report
}

// TestExample runs the example's test files as `iamc test policies/`
// does, on a throwaway server of its own: every expectation holds.
func TestExample(t *testing.T) {
	start := time.Now()
	report := run(t, policytest.Options{Dir: example})
	for _, f := range report.Failed() {
		t.Error(f.Line())
	}
	if len(report.Results) < 250 {
		t.Errorf("only %d expectations ran", len(report.Results))
	}
	t.Logf("%s (wall clock %.1fs)", report.Summary(), time.Since(start).Seconds())
}

// TestDatabaseIsLeftAsItWas: with --db the build, the fixtures and every
// request are rolled back: the database has no iam schema, no policy and
// no group afterwards, and its tables are as they were.
func TestDatabaseIsLeftAsItWas(t *testing.T) {
	url := appURL(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	state := func() string {
		var s string
		err := conn.QueryRow(t.Context(), `select format('schemas %s, policies %s, rls %s, todos %s, chats %s, role settings %s',
			(select string_agg(nspname, ',' order by nspname) from pg_namespace where nspname not like 'pg\_%' and nspname <> 'information_schema'),
			(select count(*) from pg_policies),
			(select string_agg(relname || ':' || relrowsecurity, ',' order by relname) from pg_class where relnamespace = 'app'::regnamespace and relkind = 'r'),
			(select count(*) from app.todos), (select count(*) from app.chats),
			(select count(*) from pg_db_role_setting))`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := state()
	report := run(t, policytest.Options{Dir: example, DatabaseURL: url})
	if failed := report.Failed(); len(failed) > 0 {
		t.Errorf("%d expectations failed with --db, first: %s", len(failed), failed[0].Line())
	}
	if len(report.Notes) != 1 || !strings.Contains(report.Notes[0], "setup scripts") {
		t.Errorf("notes %q, want one saying the setup scripts were not run", report.Notes)
	}
	if after := state(); after != before {
		t.Errorf("the database changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestNeedsASuperuser: a run past row-level security needs a role that
// bypasses it; any other is a SetupError (exit 2), before anything is
// applied.
func TestNeedsASuperuser(t *testing.T) {
	s := exampletest.Server(t)
	appURL(t)
	u := strings.Replace(s.URL("app", "authenticator"), "authenticator@", "authenticator:mypass@", 1)
	_, err := policytest.Run(t.Context(), policytest.Options{Dir: example, DatabaseURL: u})
	var setup *policytest.SetupError
	if !errors.As(err, &setup) || !strings.Contains(err.Error(), "not a superuser") {
		t.Fatalf("got %v, want a SetupError saying authenticator is not a superuser", err)
	}
}

// testFileLines is the example's test file, by line number.
func testFileLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(example, "access.iamtest"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{""}, strings.Split(string(b), "\n")...)
}

// TestRemovingARuleFails: without `group admin can delete` in todos.iam,
// exactly the deletes the listing gives to team's and club's admins and
// owners fail, each at the line of the listing that states it.
func TestRemovingARuleFails(t *testing.T) {
	dir := copyExample(t, func(name, text string) string {
		if name != "todos.iam" {
			return text
		}
		out := strings.Replace(text, "  group admin can delete\n", "", 1)
		if out == text {
			t.Fatal("todos.iam has no line `group admin can delete`")
		}
		return out
	})
	report := run(t, policytest.Options{Dir: dir, DatabaseURL: appURL(t)})
	lines := testFileLines(t)
	var got []string
	for _, f := range report.Failed() {
		x := f.Expectation
		got = append(got, x.String())
		if x.Pos.Filename != filepath.Join(dir, "access.iamtest") || x.FailureCode() != lang.CodeListedLost {
			t.Errorf("%s: want %s in access.iamtest", f.Line(), lang.CodeListedLost)
		}
		// The line named is the one that states it: the user's line of
		// the row's listing, which lists delete.
		if line := lines[x.Pos.Line]; !strings.HasPrefix(strings.TrimSpace(line), x.Who.Name+" ") || !strings.Contains(line, "delete") {
			t.Errorf("%s names line %d, %q, which does not state it", f.Line(), x.Pos.Line, line)
		}
		if !strings.Contains(f.Line(), "actual: cannot: 0 rows deleted") {
			t.Errorf("%s: want the actual outcome, 0 rows deleted", f.Line())
		}
	}
	want := []string{
		"olivia can delete todos[t2]", "adam can delete todos[t2]",
		"olivia can delete todos[t3]", "adam can delete todos[t3]",
		"otto can delete todos[t5]",
		"olivia can delete todos[t6]", "adam can delete todos[t6]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("failed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// ruleLine is a rule of a resource block: `  group member can read, create`,
// a permission perhaps with its columns (`read (id, name)`).
var ruleLine = regexp.MustCompile(`(?m)^(\s*)(owner|authenticated|anonymous|group (?:member|admin|owner)|parent owner|parent group (?:member|admin|owner)|parent (?:readers|writers|deleters)) can ([a-z_, ()]+)$`)

// rulePerms are the permissions of a rule as written, each with its
// column list: "read (id, name)", "write".
func rulePerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// permOf is the permission of an item of rulePerms: "read (id, name)" is read.
func permOf(item string) lang.Perm {
	name, _, _ := strings.Cut(item, " ")
	return lang.Perm(name)
}

// resourceBlock is a resource of a .iam file: `resource app.todos { ... }`
// (a resource block holds no braces).
var resourceBlock = regexp.MustCompile(`(?s)resource ([a-z_.]+) \{[^}]*\}`)

// mutant is the example with one permission taken away from, or given to,
// one subject of one resource.
type mutant struct {
	file, resource, subject string
	perm                    lang.Perm
	add                     bool
}

func (m mutant) String() string {
	verb := "without"
	if m.add {
		verb = "with"
	}
	return fmt.Sprintf("%s %s `%s can %s`", m.resource, verb, m.subject, m.perm)
}

// apply is the file's text with the mutation in the resource's block.
func (m mutant) apply(text string) string {
	return resourceBlock.ReplaceAllStringFunc(text, func(block string) string {
		if resourceBlock.FindStringSubmatch(block)[1] != m.resource {
			return block
		}
		if m.add {
			i := strings.LastIndex(block, "}")
			return block[:i] + "  " + m.subject + " can " + string(m.perm) + "\n" + block[i:]
		}
		return ruleLine.ReplaceAllStringFunc(block, func(line string) string {
			sub := ruleLine.FindStringSubmatch(line)
			if sub[2] != m.subject {
				return line
			}
			var keep []string
			for _, p := range rulePerms(sub[3]) {
				if permOf(p) != m.perm {
					keep = append(keep, p)
				}
			}
			if len(keep) == 0 {
				return sub[1] + "# (removed)"
			}
			return sub[1] + sub[2] + " can " + strings.Join(keep, ", ")
		})
	})
}

// mutants lists, for every resource of the example, each permission a
// subject has (to take away) and each it has not (to give): the subjects
// of its kinds of rules (owner, everyone, the group roles with a group
// column, the parent's owner and group roles with a parent, and the parent
// permissions it uses). Left out are the mutants that change no access,
// which no test could catch: a group role's permission a lower role of the
// same group already has, and read on a resource everyone signed in may
// read anyway.
func mutants(t *testing.T) []mutant {
	t.Helper()
	var out []mutant
	paths, err := filepath.Glob(filepath.Join(example, "*.iam"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, block := range resourceBlock.FindAllStringSubmatch(string(b), -1) {
			resource, body := block[1], block[0]
			granted := map[string]map[lang.Perm]bool{}
			for _, sub := range ruleLine.FindAllStringSubmatch(body, -1) {
				if granted[sub[2]] == nil {
					granted[sub[2]] = map[lang.Perm]bool{}
				}
				for _, p := range rulePerms(sub[3]) {
					granted[sub[2]][permOf(p)] = true
				}
			}
			subjects := []string{"owner", "authenticated", "anonymous"}
			if strings.Contains(body, "group column") {
				subjects = append(subjects, "group member", "group admin", "group owner")
			}
			if strings.Contains(body, "\n  parent ") {
				subjects = append(subjects, "parent owner", "parent group member", "parent group admin", "parent group owner")
				for _, s := range []string{"parent readers", "parent writers", "parent deleters"} {
					if granted[s] != nil {
						subjects = append(subjects, s)
					}
				}
			}
			everyoneReads := granted["authenticated"][lang.Read] || granted["anonymous"][lang.Read]
			lower := map[string][]string{
				"group admin": {"group member"}, "group owner": {"group member", "group admin"},
				"parent group admin": {"parent group member"}, "parent group owner": {"parent group member", "parent group admin"},
			}
			for _, subject := range subjects {
				for _, p := range lang.AllPerms {
					if p == lang.Read && everyoneReads && subject != "authenticated" && subject != "anonymous" {
						continue
					}
					if granted[subject][p] {
						out = append(out, mutant{file: filepath.Base(path), resource: resource, subject: subject, perm: p})
						continue
					}
					covered := false
					for _, l := range lower[subject] {
						covered = covered || granted[l][p]
					}
					if !covered {
						out = append(out, mutant{file: filepath.Base(path), resource: resource, subject: subject, perm: p, add: true})
					}
				}
			}
		}
	}
	return out
}

// TestEveryPermissionIsTestedFromBothSides: each mutant of the example
// that iamc check accepts makes iamc test fail: taking a permission away
// fails an expectation that says someone can, giving one fails an
// expectation that says someone cannot, both for that permission on that
// resource. The runs stop at the first failure (--fail-fast), which must
// be one of those: a rule changes only what its resource allows, and the
// file states a parent's rows before its children's.
func TestEveryPermissionIsTestedFromBothSides(t *testing.T) {
	url := appURL(t)
	ran, rejected := 0, 0
	for _, m := range mutants(t) {
		dir := copyExample(t, func(name, text string) string {
			if name == m.file {
				out := m.apply(text)
				if out == text {
					t.Fatalf("%s: the mutation changes nothing in %s", m, name)
				}
				return out
			}
			return text
		})
		// Without the db-pre-request: it is not what these runs are about,
		// and it is a round trip per request.
		report, err := policytest.Run(t.Context(), policytest.Options{Dir: dir, DatabaseURL: url, FailFast: true})
		var list lang.ErrorList
		if errors.As(err, &list) && strings.Contains(list.Error(), filepath.Join(dir, m.file)) {
			rejected++ // iamc check refuses it: no such policy can exist
			continue
		}
		ran++
		t.Run(m.String(), func(t *testing.T) {
			if err != nil {
				t.Fatal(err)
			}
			failed := report.Failed()
			if len(failed) != 1 {
				t.Fatalf("%d failures, want the first one only (fail fast)", len(failed))
			}
			if x := failed[0].Expectation; x.Row.Resource.QualifiedName() != m.resource || x.Perm != m.perm || x.Can == m.add {
				t.Errorf("the first failure is %s, want one about %s on %s that says %s", failed[0].Line(), m.perm, m.resource, map[bool]string{true: "cannot", false: "can"}[m.add])
			}
			if len(report.Results)+report.NotRun < 400 {
				t.Errorf("%d run and %d not run: the expectations are not all accounted for", len(report.Results), report.NotRun)
			}
		})
	}
	t.Logf("%d mutants ran, %d refused by iamc check", ran, rejected)
	if ran < 30 {
		t.Errorf("only %d mutants ran", ran)
	}
}

// TestFixtureRefused: a fixture the database refuses is an error of the
// test file at the row's position (IAM220), with PostgreSQL's message.
func TestFixtureRefused(t *testing.T) {
	dir := copyExample(t, func(name, text string) string {
		if name == "access.iamtest" {
			return strings.Replace(text, "row todos[t1] { owner alice }", "row todos[t1] { owner alice  title null }", 1)
		}
		return text
	})
	_, err := policytest.Run(t.Context(), policytest.Options{Dir: dir, DatabaseURL: appURL(t)})
	var list lang.ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Code != lang.CodeFixtureRefused {
		t.Fatalf("got %v, want one error, %s", err, lang.CodeFixtureRefused)
	}
	line := 0
	for i, l := range testFileLines(t) {
		if strings.HasPrefix(l, "row todos[t1]") {
			line = i
		}
	}
	want := fmt.Sprintf("access.iamtest:%d:1: the database refused row todos[t1]: null value in column \"title\"", line)
	if !strings.Contains(list.Error(), want) {
		t.Errorf("got %v, want %q", list, want)
	}
}

// TestAnotherProject: a project unlike the example: text user ids (one
// given, one the name), the admin realm role given by a claim, a text
// primary key, NOT NULL columns the fixtures leave out (filled by type),
// and a public table without owner; no db-pre-request. Its listing must
// hold as written.
func TestAnotherProject(t *testing.T) {
	s := exampletest.Server(t)
	ctx := t.Context()
	if err := s.CreateDatabase(ctx, "another"); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "another", `
create schema app authorization api_owner;
create table app.notes (id text primary key default gen_random_uuid()::text, body text not null,
    owner_id text not null, group_id bigint, created_at timestamptz not null, pinned boolean not null);
create table app.posts (id serial primary key, title text not null, score numeric not null, published date not null,
    author uuid not null);
alter table app.notes owner to api_owner;
alter table app.posts owner to api_owner;`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"iam.iam": `identity {
  claim 'sub'
  type text
}
groups {
  api schema app
  admin role 'iam-admin'
}
`,
		"notes.iam": `resource app.notes {
  owner column owner_id
  group column group_id
  owner can read, create, write, delete
  group member can read
}
resource app.posts {
  anonymous can read
}
`,
		"t.iamtest": `user alice { id 'f:ldap:alice' }
user bob
user root { claim 'realm_access' '{"roles": ["iam-admin"]}' }
user carol
group g { member bob, carol }
row notes[n1] { owner alice  body 'hi' }
row notes[n2] { owner bob  group g }
row posts[p1] { title 'hello' }
access notes {
  n1 {
    alice read, create, write, delete
    root  read, create, write, delete   # the admin realm role passes every rule
  }
  n2 {
    bob   read, write, delete           # no group create rule: nobody puts rows into g
    carol read
    root  read, create, write, delete
  }
}
access posts {
  p1 { alice read  bob read  carol read  anonymous read  root read, create, write, delete }
}
bob cannot write notes[n1] set body 'x'
alice can write notes[n1] set pinned true, body 'it''s mine'
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Without a db-pre-request (--pre-request ""): the tokens here carry
	// no audience the runtime would ask for anyway.
	report, err := policytest.Run(ctx, policytest.Options{Dir: dir, DatabaseURL: s.URL("another", "postgres")})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range report.Failed() {
		t.Error(f.Line())
	}
	if len(report.Results) != 3*5*4+2 {
		t.Errorf("%d results, want %d", len(report.Results), 3*5*4+2)
	}
}
