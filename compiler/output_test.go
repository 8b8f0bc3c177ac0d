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
