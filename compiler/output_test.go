package compiler

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/lang"
)

func TestFind(t *testing.T) {
	o := build(t, `
resource app.todos {}
resource shop.todos {}
resource app.chats {}
resource "Weird Schema"."to-dos" {}
resource public."user" {}`)
	found := []struct{ name, want string }{
		{"chats", "app.chats"},
		{"app.chats", "app.chats"},
		{"app.todos", "app.todos"},
		{"shop.todos", "shop.todos"},
		{"to-dos", "Weird Schema.to-dos"},
		{"Weird Schema.to-dos", "Weird Schema.to-dos"},
		{`"Weird Schema"."to-dos"`, "Weird Schema.to-dos"}, // as SQL writes it
		{"user", "public.user"},
		{`public."user"`, "public.user"},
	}
	for _, tt := range found {
		s, err := o.Find(tt.name)
		if err != nil {
			t.Errorf("Find(%q): %v", tt.name, err)
			continue
		}
		if got := s.Resource.QualifiedName(); got != tt.want {
			t.Errorf("Find(%q) = %s, want %s", tt.name, got, tt.want)
		}
		if !strings.Contains(s.SQL(), "-- resource "+qualify(s.Resource.Schema, s.Resource.Table)+" (") {
			t.Errorf("Find(%q).SQL() lacks its header", tt.name)
		}
	}

	_, err := o.Find("todos")
	if want := `"todos" is ambiguous: it names app.todos and shop.todos; write schema.table`; err == nil || err.Error() != want {
		t.Errorf("Find(todos) = %v, want %s", err, want)
	}
	_, err = o.Find("notes")
	if want := `no resource named "notes" (resources: Weird Schema.to-dos, app.chats, app.todos, public.user, shop.todos)`; err == nil || err.Error() != want {
		t.Errorf("Find(notes) = %v, want %s", err, want)
	}
	for _, name := range []string{"", "app", "app.", "iam", "app.todos.x"} {
		if s, err := o.Find(name); err == nil {
			t.Errorf("Find(%q) found %s", name, s.Resource.QualifiedName())
		}
	}
}

// TestFindRuntimeIsNotAResource: the runtime section has no resource and
// is never found.
func TestFindRuntimeIsNotAResource(t *testing.T) {
	o := build(t, "resource app.t {}")
	if _, err := o.Find("iam runtime"); err == nil {
		t.Error("found the runtime")
	}
	if _, err := build(t, "identity {}").Find("t"); err == nil || err.Error() != `no resource named "t" (resources: )` {
		t.Errorf("Find with no resources: %v", err)
	}
}

// fakeDB answers the catalog queries of CheckCatalog from maps.
type fakeDB struct {
	roles   map[string]bool
	tables  map[string][2]string // schema.table -> owner, relkind
	columns map[string]string    // schema.table.column -> type
}

type row struct {
	vals []any
	err  error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	for i, d := range dest {
		switch p := d.(type) {
		case *bool:
			*p = r.vals[i].(bool)
		case *string:
			*p = r.vals[i].(string)
		default:
			return errors.New("unexpected scan type")
		}
	}
	return nil
}

func (db fakeDB) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	switch {
	case strings.Contains(sql, "pg_roles"):
		return row{vals: []any{db.roles[args[0].(string)]}}
	case strings.Contains(sql, "pg_class"):
		t, ok := db.tables[args[0].(string)+"."+args[1].(string)]
		if !ok {
			return row{err: pgx.ErrNoRows}
		}
		return row{vals: []any{true, t[0], t[1]}}
	case strings.Contains(sql, "pg_attribute"):
		c, ok := db.columns[args[0].(string)+"."+args[1].(string)+"."+args[2].(string)]
		if !ok {
			return row{err: pgx.ErrNoRows}
		}
		return row{vals: []any{c}}
	}
	return row{err: errors.New("unexpected query")}
}

func TestCheckCatalog(t *testing.T) {
	files := []string{`roles { authenticated web_user anonymous web_anon owner api_owner }
resource app.ok { owner column owner_id  owner can read }
resource app.missing {}
resource app.foreign {}
resource app.view {}
resource app.nocol { owner column owner_id  owner can read }
resource app.wrongtype { owner column owner_id  owner can read }
`}
	f, err := lang.ParseFile("p/a.iam", []byte(files[0]))
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check([]*lang.File{f})
	if err != nil {
		t.Fatal(err)
	}
	db := fakeDB{
		roles: map[string]bool{"web_user": true, "api_owner": true},
		tables: map[string][2]string{
			"app.ok":        {"api_owner", "r"},
			"app.foreign":   {"postgres", "r"},
			"app.view":      {"api_owner", "v"},
			"app.nocol":     {"api_owner", "p"},
			"app.wrongtype": {"api_owner", "r"},
		},
		columns: map[string]string{
			"app.ok.owner_id":        "uuid",
			"app.wrongtype.owner_id": "text",
		},
	}
	findings, err := CheckCatalog(context.Background(), db, m)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.String())
	}
	want := []string{
		"p/a.iam:1:1: error: role web_anon does not exist\n  hint: create role web_anon nologin; (or name an existing role in the roles block)",
		"p/a.iam:3:1: error: table app.missing does not exist\n  hint: create the table before applying policies, or fix the resource name",
		"p/a.iam:4:1: error: table app.foreign is owned by postgres, not by the owner role api_owner\n  hint: alter table app.\"foreign\" owner to api_owner;",
		"p/a.iam:5:1: error: app.view is not a table (relkind v): row-level security applies to tables only\n  hint: protect the underlying table; views should be security_invoker",
		"p/a.iam:6:35: error: column owner_id does not exist in app.nocol\n  hint: alter table app.nocol add column owner_id uuid;",
		"p/a.iam:7:39: error: column app.wrongtype.owner_id is text, but the identity type is uuid\n  hint: change the column to uuid, or declare `identity { type ... }` to match",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Text identities accept text and varchar columns.
	for colType, ok := range map[string]bool{"text": true, "character varying": true, "character varying(64)": true, "uuid": false, "character(36)": false} {
		if typeMatches(lang.Text, colType) != ok {
			t.Errorf("typeMatches(text, %q) = %v", colType, !ok)
		}
	}
	if !typeMatches(lang.UUID, "uuid") || typeMatches(lang.UUID, "text") {
		t.Error("typeMatches(uuid, ...)")
	}
}

// TestPreambleAndSectionsAreTheScript: Script is exactly begin, Preamble,
// the sections' statements and commit, so a caller that runs Preamble and
// the sections in its own transaction (iamc plan, apply) runs the script.
func TestPreambleAndSectionsAreTheScript(t *testing.T) {
	o := build(t, `groups { api schema app }
resource app.todos {
  owner column owner_id
  group column group_id
  owner can read, create, write, delete
  group member can read
}`)
	var want []string
	for _, st := range o.Preamble() {
		if st.SQL == "begin;" || st.SQL == "commit;" {
			t.Errorf("Preamble holds %s", st.SQL)
		}
		want = append(want, st.SQL)
	}
	if len(want) == 0 || !strings.HasPrefix(want[len(want)-1], "set local role ") {
		t.Errorf("Preamble does not end by switching to the owner role: %q", want)
	}
	for _, s := range o.Sections {
		for _, st := range s.Statements {
			want = append(want, st.SQL)
		}
	}
	script := o.Script()
	rest := script
	for _, sql := range append(append([]string{"begin;"}, want...), "commit;") {
		i := strings.Index(rest, sql+"\n")
		if i < 0 {
			t.Fatalf("script lacks, in order, %q", sql)
		}
		between := rest[:i]
		for _, line := range strings.Split(between, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
				t.Fatalf("script runs %q, which is neither in Preamble nor in a section", l)
			}
		}
		rest = rest[i+len(sql)+1:]
	}
	if strings.TrimSpace(rest) != "" {
		t.Errorf("script goes on after commit: %q", rest)
	}
}

func TestPolicyNames(t *testing.T) {
	names := PolicyNames()
	if len(names) != 8 || names[0] != "iam: authenticated can select" || names[7] != "iam: anonymous can delete" {
		t.Errorf("PolicyNames() = %q", names)
	}
	// Every policy a resource section drops or creates is one of them.
	o := build(t, `resource app.posts {
  owner column owner_id
  owner can read, create, write, delete
  anonymous can read
}`)
	known := map[string]bool{}
	for _, n := range names {
		known[quoteIdent(n)] = true
	}
	found := 0
	for _, st := range o.Sections[len(o.Sections)-1].Statements {
		for _, prefix := range []string{"drop policy if exists ", "create policy "} {
			if rest, ok := strings.CutPrefix(st.SQL, prefix); ok {
				name := rest[:strings.Index(rest, " on ")]
				if !known[name] {
					t.Errorf("%s uses a policy name PolicyNames does not list", st.SQL)
				}
				found++
			}
		}
	}
	if found != 8+5 {
		t.Errorf("found %d policy statements, want 8 drops and 5 creates", found)
	}
}
