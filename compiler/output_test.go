package compiler

import (
	"strings"
	"testing"
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
	if len(names) != 9 || names[0] != "iam: authenticated can select" || names[7] != "iam: anonymous can delete" || names[8] != "iam: authenticated can transfer" {
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
	if found != 9+5 {
		t.Errorf("found %d policy statements, want 9 drops and 5 creates", found)
	}
}
