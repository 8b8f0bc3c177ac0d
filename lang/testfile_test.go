package lang_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/iamc/iamc/lang"
)

// testModel is the example's policies, checked.
func testModel(t *testing.T) *lang.Model {
	t.Helper()
	files, err := lang.ParseDir("../policies")
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkTests parses and checks one test file's text against m.
func checkTests(t *testing.T, m *lang.Model, text string) (*lang.Tests, error) {
	t.Helper()
	f, err := lang.ParseTestFile("t.iamtest", []byte(text))
	if err != nil {
		return nil, err
	}
	return lang.CheckTests(m, f)
}

// TestExampleTestFile: the shipped test file reads and expands into one
// expectation per row, user and permission of its listings, plus its
// explicit expectations.
func TestExampleTestFile(t *testing.T) {
	m := testModel(t)
	src, err := os.ReadFile("../policies/access.iamtest")
	if err != nil {
		t.Fatal(err)
	}
	f, err := lang.ParseTestFile("policies/access.iamtest", src)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := lang.CheckTests(m, f)
	if err != nil {
		t.Fatal(err)
	}
	explicit, cells := 0, 0
	for _, x := range tests.Expectations {
		if x.Listing {
			cells++
		} else {
			explicit++
		}
	}
	users := len(tests.Users) // anonymous included
	if want := len(tests.Rows) * users * len(lang.AllPerms); cells != want {
		t.Errorf("%d listing cells, want rows x users x permissions = %d", cells, want)
	}
	if explicit == 0 {
		t.Error("no explicit expectations")
	}
	if tests.Users[len(tests.Users)-1].Name != "anonymous" {
		t.Errorf("the last user is %s, want anonymous", tests.Users[len(tests.Users)-1].Name)
	}
}

const testUsers = `
user alice
user bob { id 'B0B00000-0000-4000-8000-00000000000B' }
user tina { claim 'groups' '["/team"]' }
group team { token '/team'  owner alice  member bob }
`

// TestTestFileMeaning: what a small file means, item by item.
func TestTestFileMeaning(t *testing.T) {
	m := testModel(t)
	tests, err := checkTests(t, m, testUsers+`
row todos[t1] { owner alice  group team  title 'it''s'  done true }
row app.chats[c1] { owner bob  group team }
alice can read, update todos[t1]
bob cannot delete todos[t1]
alice can write todos[t1] set group none, title 'x'
anonymous cannot select chats[c1]
`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range tests.Expectations {
		got = append(got, x.Pos.String()+" "+x.String()+" "+x.FailureCode())
	}
	want := []string{
		"t.iamtest:9:1 alice can read todos[t1] IAM201",
		"t.iamtest:9:1 alice can write todos[t1] IAM201",
		"t.iamtest:10:1 bob cannot delete todos[t1] IAM202",
		"t.iamtest:11:1 alice can write todos[t1] set group none, title 'x' IAM201",
		"t.iamtest:12:1 anonymous cannot read chats[c1] IAM202",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("expectations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ids := map[string]string{}
	for _, u := range tests.Users {
		ids[u.Name] = u.ID
	}
	if ids["bob"] != "b0b00000-0000-4000-8000-00000000000b" {
		t.Errorf("bob's id is %q, want the uuid in canonical form", ids["bob"])
	}
	if len(ids["alice"]) != 36 || ids["alice"][14] != '4' {
		t.Errorf("alice's id %q is not a version 4 uuid", ids["alice"])
	}
	again, err := checkTests(t, m, testUsers)
	if err != nil {
		t.Fatal(err)
	}
	if again.Users[0].ID != ids["alice"] {
		t.Error("a user's default id differs between two reads")
	}
	row := tests.Rows[0]
	var values []string
	for _, v := range row.Values {
		values = append(values, v.Column+"="+v.String())
	}
	if got, want := strings.Join(values, " "), "owner_id=alice group_id=team title='it''s' done=true"; got != want {
		t.Errorf("row values %s, want %s", got, want)
	}
	if g := tests.Groups[0]; g.Token != "/team" || len(g.Members) != 2 || g.Members[0].Role != lang.GroupOwner {
		t.Errorf("group team: %+v", g)
	}
}

// TestAccessListing: a listing expands into every user x permission of
// every row; what a user's line leaves out fails at that line, anyone not
// listed at the row's line.
func TestAccessListing(t *testing.T) {
	m := testModel(t)
	tests, err := checkTests(t, m, testUsers+`
row todos[t1] { owner alice }
row todos[t2] { owner bob  group team }
access todos {
  t1 { alice read, create, write, delete }
  t2 {
    bob   read, create, write, delete
    alice read, write, delete
    tina  none
  }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	byCell := map[string]*lang.Expectation{}
	for _, x := range tests.Expectations {
		byCell[x.String()+" "+x.Pos.String()] = x
	}
	for _, want := range []string{
		"alice can read todos[t1] t.iamtest:10:8",
		"bob cannot read todos[t1] t.iamtest:10:3",         // not listed: the row's line
		"anonymous cannot read todos[t1] t.iamtest:10:3",   // anonymous is always there
		"alice cannot create todos[t2] t.iamtest:13:5",     // left out of her line
		"tina cannot write todos[t2] t.iamtest:14:5",       // none
		"anonymous cannot delete todos[t2] t.iamtest:11:3", // not listed
	} {
		if byCell[want] == nil {
			t.Errorf("no expectation %q", want)
		}
	}
	if got, want := len(tests.Expectations), 2*4*4; got != want {
		t.Errorf("%d expectations, want %d (2 rows x 4 users x 4 permissions)", got, want)
	}
	for _, x := range tests.Expectations {
		if !x.Listing {
			t.Errorf("%s is not marked as a listing cell", x)
		}
	}
}

// TestTestFileErrors: every problem in a test file is reported at its
// position with its code, all at once.
func TestTestFileErrors(t *testing.T) {
	m := testModel(t)
	cases := []struct {
		name, text string
		want       []string // "line:col: CODE fragment"
	}{
		{"syntax", "user alice {\n  idd 'x'\n}\n", []string{`2:3: IAM210 unexpected "idd"`}},
		{"missing bracket", "row todos t1 { }\n", []string{`1:11: IAM210 unexpected "t1"`}},
		{"unknown user", testUsers + "row todos[t1] { owner alise }\n", []string{`6:23: IAM211 unknown user alise: declare it with ` + "`user alise`" + ` (did you mean alice?)`}},
		{"unknown group", testUsers + "row todos[t1] { owner alice  group tema }\n", []string{`6:36: IAM211 unknown group tema`, `(did you mean team?)`}},
		{"unknown resource", testUsers + "row todo[t1] { owner alice }\n", []string{`6:5: IAM211 unknown resource todo: the .iam files declare app.chats, app.notes, app.products, app.stores, app.todos (did you mean todos?)`}},
		{"unknown row", testUsers + "alice can read todos[t9]\n", []string{`6:22: IAM211 unknown row todos[t9]`}},
		{"unknown permission", testUsers + "row todos[t1] { owner alice }\nalice can wirte todos[t1]\n", []string{`7:11: IAM211 unknown permission "wirte": expected read, create, write or delete (did you mean write?)`}},
		{"unknown role", "user a\ngroup g { membr a }\n", []string{`2:11: IAM211 unknown membership role "membr"`, `(did you mean member?)`}},
		{"user twice", "user a\nuser a\n", []string{`2:6: IAM212 user a is declared twice (first at t.iamtest:1:1)`}},
		{"same id", "user a { id 'x' }\n", []string{`1:13: IAM213 bad id for user a: "x" is not a uuid`}},
		{"two users one id", "user a { id '00000000-0000-4000-8000-000000000001' }\nuser b { id '00000000-0000-4000-8000-000000000001' }\n", []string{`2:13: IAM212 users a and b have the same id`}},
		{"anonymous user", "user anonymous\n", []string{`1:6: IAM213 a user cannot be called anonymous`}},
		{"identity claim", "user a { claim 'sub' '\"x\"' }\n", []string{`1:16: IAM213 sub is the identity claim: give the user's id with id '...'`}},
		{"bad claim json", "user a { claim 'groups' '[oops' }\n", []string{`1:25: IAM213 the value of claim groups is not JSON`}},
		{"row twice", testUsers + "row todos[t1] { owner alice }\nrow todos[t1] { owner bob }\n", []string{`7:11: IAM212 row todos[t1] is declared twice (first at t.iamtest:6:1)`}},
		{"owner column by name", testUsers + "row todos[t1] { owner_id 'x' }\n", []string{`6:17: IAM213 owner_id is the owner column of app.todos: write owner NAME`}},
		{"parent column by name", testUsers + "row stores[s1] { owner alice }\nrow products[p1] { store_id 1 }\n", []string{`7:20: IAM213 store_id is the parent column of app.products: write parent NAME (a row of the parent of this file)`}},
		{"unknown parent row", testUsers + "row products[p1] { parent s9 }\n", []string{`6:27: IAM211 unknown row stores[s9]`}},
		{"parent of a resource without one", testUsers + "row todos[t1] { parent t2 }\n", []string{`6:17: IAM213 app.todos has no parent`}},
		{"bare word value", testUsers + "row todos[t1] { owner alice  title hello }\n", []string{`6:36: IAM213 the value of title must be a 'quoted string', a number, true, false or null, not hello`}},
		{"anonymous owner", testUsers + "row todos[t1] { owner anonymous }\n", []string{`6:23: IAM213 anonymous cannot own a row`}},
		{"set with read", testUsers + "row todos[t1] { owner alice }\nalice can read todos[t1] set title 'x'\n", []string{`7:30: IAM213 set says what a write changes: it goes with write alone`}},
		{"listing leaves a row out", testUsers + "row todos[t1] { owner alice }\nrow todos[t2] { owner alice }\naccess todos {\n  t1 { alice read }\n}\n", []string{`8:1: IAM214 the access listing of app.todos leaves out t2`}},
		{"listing twice", testUsers + "row todos[t1] { owner alice }\naccess todos { t1 { } }\naccess todos { t1 { } }\n", []string{`8:8: IAM212 app.todos has two access listings`}},
		{"user twice in a row", testUsers + "row todos[t1] { owner alice }\naccess todos { t1 { alice read  alice write } }\n", []string{`7:33: IAM212 alice is listed twice for todos[t1]`}},
		{"none with others", testUsers + "row todos[t1] { owner alice }\naccess todos { t1 { alice none, read } }\n", []string{`7:21: IAM213 none means no permission: it stands alone`}},
		{"member twice", "user a\ngroup g { owner a  member a }\n", []string{`2:27: IAM212 a is a member of group g twice`}},
		{"errors together", "user a\nuser a\nrow todos[t1] { owner b }\n", []string{`2:6: IAM212`, `3:23: IAM211 unknown user b`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkTests(t, m, c.text)
			var list lang.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("got %v, want errors %q", err, c.want)
			}
			text := withCodes(list)
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("errors:\n%s\nwant one containing %q", text, w)
				}
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Code, "IAM2") {
					t.Errorf("%v has code %q, want an IAM2xx code", e, e.Code)
				}
			}
		})
	}
}

// TestTestFileTextIdentity: with type text, a user's id is their name
// unless the file gives one, and any text is an id.
func TestTestFileTextIdentity(t *testing.T) {
	files, err := lang.ParseDir("../policies")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for _, e := range f.Entries {
			if e.Identity != nil {
				for _, it := range e.Identity.Items {
					if it.Type != nil {
						it.Type.Raw = "text"
					}
				}
			}
		}
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := checkTests(t, m, "user alice\nuser bob { id 'f:ldap:bob' }\n")
	if err != nil {
		t.Fatal(err)
	}
	if tests.Users[0].ID != "alice" || tests.Users[1].ID != "f:ldap:bob" {
		t.Errorf("ids %q, %q", tests.Users[0].ID, tests.Users[1].ID)
	}
}

// withCodes is an error list as lines of file:line:col: CODE message.
func withCodes(list lang.ErrorList) string {
	lines := make([]string, len(list))
	for i, e := range list {
		lines[i] = e.Pos.String() + ": " + e.Code + " " + e.Msg
	}
	return strings.Join(lines, "\n")
}

// FuzzParseTestFile feeds any bytes to the test file parser and checker
// (against the example's policies): neither may panic, and every error is
// a positioned lang error inside the input with an IAM2xx code. Seeds: the
// example's test file and the cases of TestTestFileErrors' kind; to fuzz:
//
//	go test -run '^$' -fuzz '^FuzzParseTestFile$' -fuzztime 5m -parallel 1 ./lang/
func FuzzParseTestFile(f *testing.F) {
	f.Add(readFile(f, "../policies/access.iamtest"))
	f.Add([]byte(testUsers + "row todos[t1] { owner alice  group team  title 'x' }\nalice can write todos[t1] set group none\naccess todos { t1 { alice read, create } }\n"))
	f.Add([]byte("row app.\"to dos\"[\"t 1\"] { \"owner\" 'x' }\n"))
	files, err := lang.ParseDir("../policies")
	if err != nil {
		f.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		const name = "fuzz/t.iamtest"
		file, err := lang.ParseTestFile(name, src)
		if err == nil {
			_, err = lang.CheckTests(m, file)
		}
		if err == nil {
			return
		}
		checkPositioned(t, name, src, err)
		var list lang.ErrorList
		errors.As(err, &list)
		for _, e := range list {
			if !strings.HasPrefix(e.Code, "IAM2") {
				t.Fatalf("error %q has code %q, want IAM2xx\ninput: %q", e.Error(), e.Code, src)
			}
		}
	})
}

// TestParentRows: a child row names its parent row with parent, before or
// after the parent is declared; a write may move it (set parent).
func TestParentRows(t *testing.T) {
	m := testModel(t)
	tests, err := checkTests(t, m, testUsers+`row products[p1] { parent s1  name 'soap' }
row stores[s1] { owner alice }
row stores[s2] { owner bob }
alice cannot write products[p1] set parent s2
`)
	if err != nil {
		t.Fatal(err)
	}
	p1 := tests.Rows[0]
	if v := p1.Values[0]; v.Kind != lang.RowKey || v.Column != "store_id" || v.Key != "id" || v.Row != tests.Rows[1] {
		t.Errorf("parent value %+v", v)
	}
	if got := tests.Expectations[0].String(); got != "alice cannot write products[p1] set parent s2" {
		t.Errorf("expectation %q", got)
	}
}

// TestTestCodeExamples: the example docs/diagnostics.md shows for each code
// of a test file's text (IAM210-IAM214) gets that code against the
// example's policies.
func TestTestCodeExamples(t *testing.T) {
	m := testModel(t)
	for _, c := range lang.TestFileCodes() {
		if c.ID < lang.CodeTestSyntax || c.ID > lang.CodeTestIncomplete {
			continue // an expectation's outcome, or the database's answer
		}
		_, err := checkTests(t, m, c.Example)
		var list lang.ErrorList
		if !errors.As(err, &list) || list[0].Code != c.ID {
			t.Errorf("%s's example gets %v, want %s:\n%s", c.ID, err, c.ID, c.Example)
		}
	}
}
