package lang_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/iamc/iamc/lang"
)

// diagnose parses and checks one file: its errors, or its warnings.
func diagnose(t *testing.T, name, text string) lang.ErrorList {
	t.Helper()
	f, err := lang.ParseFile(name, []byte(text))
	if err == nil {
		var m *lang.Model
		if m, err = lang.Check([]*lang.File{f}); err == nil {
			return m.Warnings
		}
	}
	var list lang.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("%s: %v", name, err)
	}
	return list
}

// TestCodeExamples: each code's example, as docs/diagnostics.md shows it,
// gets that code, at the level the code has.
func TestCodeExamples(t *testing.T) {
	for _, c := range lang.Codes() {
		t.Run(c.ID, func(t *testing.T) {
			var got []string
			for _, e := range diagnose(t, "example.iam", c.Example) {
				got = append(got, fmt.Sprintf("%s %s %s", e.Code, e.Level, e))
				if e.Code == c.ID && e.Level == c.Level {
					return
				}
			}
			t.Errorf("the example of %s gets:\n%s\nexample:\n%s", c.ID, strings.Join(got, "\n"), c.Example)
		})
	}
}

// TestExampleHasNoWarnings: the shipped policies are warning-free.
func TestExampleHasNoWarnings(t *testing.T) {
	files, err := lang.ParseDir("../policies")
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) > 0 {
		t.Errorf("warnings in policies/:\n%v", m.Warnings)
	}
}

// TestWarnings: each new warning, at the place it is about.
func TestWarnings(t *testing.T) {
	const groups = "groups {\n  api schema app\n  token claim 'groups' as member\n}\n"
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"group rules with no group create",
			groups + "resource app.t {\n  owner column o\n  group column g\n  owner can read, create\n  group member can read\n  group admin can delete\n}\n",
			[]string{
				"IAM180 a.iam:9:3: group member can read in app.t can never apply: no group role can create, so no request can put a row into a group (only the owner role can); add e.g. `group member can create`, or ignore this if rows enter groups that way",
				"IAM180 a.iam:10:3: group admin can delete in app.t can never apply: no group role can create, so no request can put a row into a group (only the owner role can); add e.g. `group member can create`, or ignore this if rows enter groups that way",
			}},
		{"redundant: a higher group role, authenticated after anonymous; not a read in a rule that grants more",
			groups + "resource app.t {\n  owner column o\n  group column g\n  anonymous can read\n  authenticated can read\n  owner can read, create, write\n  group member can create\n  group admin can create, read\n}\n",
			[]string{
				"IAM181 a.iam:9:3: authenticated can read in app.t is redundant, already granted by anonymous can read (at a.iam:8:3)",
				"IAM181 a.iam:12:3: group admin can create, read in app.t is redundant, already granted by group member can create (at a.iam:11:3) and anonymous can read (at a.iam:8:3)",
			}},
		{"a token claim no resource uses",
			groups + "resource app.t {\n  owner column o\n  owner can read\n}\n",
			[]string{"IAM182 a.iam:3:3: token claim 'groups': no resource has a group rule, so the groups it names grant nothing"}},
		{"a resource nobody reaches",
			"resource app.t {\n}\n",
			[]string{"IAM183 a.iam:1:1: no rule grants anything on app.t: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served"}},
		{"an admin role reaches a resource without rules",
			"groups {\n  api schema app\n  admin role 'iam-admin'\n}\nresource app.t {\n}\n",
			nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range diagnose(t, "a.iam", tt.text) {
				got = append(got, e.Code+" "+e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestIgnoreComments: an ignore on the warning's line, or alone on the
// line above, suppresses it; one that suppresses nothing, or lacks a code
// or a reason, is a warning itself; errors cannot be ignored.
func TestIgnoreComments(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"on the line", "resource app.t {  # iamc:ignore IAM183 not served yet\n}\n", nil},
		{"alone on the line above", "# iamc:ignore IAM183 not served yet\nresource app.t {\n}\n", nil},
		{"two lines above is too far", "# iamc:ignore IAM183 not served yet\n\nresource app.t {\n}\n", []string{
			"IAM190 a.iam:1:1: unused iamc:ignore IAM183: no IAM183 warning on this line",
			"IAM183 a.iam:3:1: no rule grants anything on app.t: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served",
		}},
		{"a trailing comment does not reach the next line", "resource app.x {\n  owner column o\n  owner can read  # iamc:ignore IAM183 wrong line\n}\nresource app.t {\n}\n", []string{
			"IAM190 a.iam:3:19: unused iamc:ignore IAM183: no IAM183 warning on this line",
			"IAM183 a.iam:5:1: no rule grants anything on app.t: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served",
		}},
		{"another code", "resource app.t {  # iamc:ignore IAM181 wrong code\n}\n", []string{
			"IAM183 a.iam:1:1: no rule grants anything on app.t: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served",
			"IAM190 a.iam:1:19: unused iamc:ignore IAM181: no IAM181 warning on this line",
		}},
		{"no reason", "resource app.t {  # iamc:ignore IAM183\n}\n", []string{
			"IAM183 a.iam:1:1: no rule grants anything on app.t: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served",
			"IAM191 a.iam:1:19: iamc:ignore needs a warning code and a reason, e.g. # iamc:ignore IAM183 not served yet: no reason",
		}},
		{"an error code", "resource app.t {\n  owner column o\n  owner can read  # iamc:ignore IAM154 sure\n}\n", []string{
			"IAM191 a.iam:3:19: iamc:ignore needs a warning code and a reason, e.g. # iamc:ignore IAM183 not served yet: IAM154 is an error, and only warnings can be ignored",
		}},
		{"a catalog code is not judged without a database", "resource app.t {\n  owner column o\n  owner can read  # iamc:ignore IAM316 no key on purpose\n}\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range diagnose(t, "a.iam", tt.text) {
				got = append(got, e.Code+" "+e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestErrorsHaveCodes: parse and check errors carry their codes.
func TestErrorsHaveCodes(t *testing.T) {
	for text, code := range map[string]string{
		"resource app.t {\n  permit read\n}\n":                       "IAM100",
		"resource app.t {\n  owner can read\n}\n":                    "IAM143",
		"resource app.t {\n  owner column o\n  owner can wirte\n}\n": "IAM150",
		"identity {\n  claim 'sub\n}\n":                              "IAM102",
		"resource app.t {\n  owner column o\n  owner can read;\n}\n": "IAM101",
	} {
		list := diagnose(t, "a.iam", text)
		if len(list) == 0 || list[0].Code != code || list[0].Level != lang.LevelError {
			t.Errorf("%q: got %v (code %v), want %s", text, list, list, code)
		}
	}
}
