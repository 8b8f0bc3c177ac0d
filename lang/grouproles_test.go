package lang_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/lang"
)

// TestGroupRolesModel: the groups block's roles, in the model, and the
// rules that name them ranked by that order (a rule for a role applies to
// the roles above it), on a resource's group and on its parent's.
func TestGroupRolesModel(t *testing.T) {
	// The rules come first (files are read in name order): the order is
	// known only once every file is read.
	m := mustCheck(t,
		src{"p/a.iam", `resource app.docs {
  owner column owner_id
  group column group_id
  owner can read, create, write
  group viewer can read
  group editor can create, write
  group moderator can delete
}
resource app.notes {
  parent app.docs via doc_id
  parent group editor can read, write
}`},
		src{"p/z.iam", `groups {
  api schema app
  roles Viewer < editor < moderator < admin < owner
  members managed by moderator
  token claim 'groups' as viewer
  token subgroup 'managers' as admin
  token subgroup 'Eds' as editor
  role member becomes viewer
}`})
	g := m.Groups
	if got := g.Order().String(); got != "viewer < editor < moderator < admin < owner" {
		t.Errorf("order %q", got)
	}
	if g.Manager() != "moderator" || g.ManagerByDefault() {
		t.Errorf("managed by %q (default %v)", g.Manager(), g.ManagerByDefault())
	}
	if got := g.ManagerRoles(); !cmp.Equal(got, []lang.GroupRole{"owner", "admin", "moderator"}) {
		t.Errorf("manager roles %v", got)
	}
	if g.TokenRole != "viewer" {
		t.Errorf("token role %q", g.TokenRole)
	}
	var subs []string
	for _, s := range g.TokenSubgroups {
		subs = append(subs, s.Name+" as "+string(s.Role))
	}
	if got := strings.Join(subs, ", "); got != "managers as admin, Eds as editor" {
		t.Errorf("token subgroups %q (names as written: Keycloak's paths keep their case)", got)
	}
	if len(g.RoleMoves) != 1 || g.RoleMoves[0].From != "member" || g.RoleMoves[0].To != "viewer" {
		t.Errorf("role moves %+v", g.RoleMoves)
	}
	docs, notes := m.Resources[0], m.Resources[1]
	for perm, want := range map[lang.Perm]lang.GroupRole{lang.Read: "viewer", lang.Create: "editor", lang.Write: "editor", lang.Delete: "moderator"} {
		if got := docs.GroupMinRole(perm); got != want {
			t.Errorf("docs: lowest role with %s is %q, want %q", perm, got, want)
		}
	}
	// A rule for editor covers admin (above it), not viewer (below).
	if !docs.ReadCovers(lang.GroupSubject{Role: "editor"}, lang.GroupSubject{Role: "admin"}) ||
		docs.ReadCovers(lang.GroupSubject{Role: "editor"}, lang.GroupSubject{Role: "viewer"}) {
		t.Error("ReadCovers does not rank by the declared order")
	}
	if !notes.ReadCovers(lang.ParentSubject{Of: lang.GroupSubject{Role: "editor"}}, lang.ParentSubject{Of: lang.GroupSubject{Role: "moderator"}}) {
		t.Error("a parent group rule does not rank by the declared order")
	}
}

// TestGroupRolesDefault: without `roles`, the order is member < admin <
// owner, managed by admin: files of before custom roles mean what they
// meant. An order without admin is managed by owners.
func TestGroupRolesDefault(t *testing.T) {
	m := mustCheck(t, src{"p/a.iam", "groups {\n  api schema app\n}\n"})
	if got := m.Groups.Order().String(); got != "member < admin < owner" || !m.Groups.Order().IsDefault() {
		t.Errorf("default order %q", got)
	}
	if m.Groups.Manager() != lang.Admin || !m.Groups.ManagerByDefault() || len(m.Groups.TokenSubgroups)+len(m.Groups.RoleMoves) != 0 {
		t.Errorf("default groups %+v", m.Groups)
	}
	m = mustCheck(t, src{"p/a.iam", "groups {\n  api schema app\n  roles reader < owner\n}\n"})
	if m.Groups.Manager() != lang.GroupOwner || !m.Groups.ManagerByDefault() {
		t.Errorf("without admin, managed by %q", m.Groups.Manager())
	}
	if got := m.Groups.Order().Lowest(); got != "reader" {
		t.Errorf("lowest %q", got)
	}
}

// TestGroupRolesErrors: each problem at its file:line:col.
func TestGroupRolesErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		text string
		want []string
	}{
		{"the order ends with owner",
			"groups {\n  api schema app\n  roles member < admin\n}",
			[]string{"p/a.iam:3:9: the highest group role is owner (a group's creator, the role it always keeps, the only one that makes owners and deletes the group): end the order with `< owner`"}},
		{"roles set twice",
			"groups {\n  api schema app\n  roles a < owner\n  roles b < owner\n}",
			[]string{"p/a.iam:4:3: roles is set twice (first at p/a.iam:3:3)"}},
		{"names a rule would misread, or quoted",
			"groups {\n  api schema app\n  roles can < \"Lead\" < owner\n}",
			[]string{
				"p/a.iam:3:9: bad group role can: it reads as part of a rule (group can ...); pick another name",
				`p/a.iam:3:15: bad group role "Lead": a group role is a bare name (letters, digits and _), e.g. editor`,
			}},
		{"a rule, the token role, the manager, a subgroup and a move name undeclared roles",
			"groups {\n  api schema app\n  roles reader < owner\n  token claim 'g' as member\n  members managed by admin\n  token subgroup 'x' as boss\n  role old becomes new\n}\nresource app.t {\n  owner column o\n  group column g\n  owner can read\n  group member can read\n  parent group admin can read\n}",
			[]string{
				`p/a.iam:4:22: unknown group role "member": expected reader or owner`,
				`p/a.iam:5:22: unknown group role "admin": expected reader or owner`,
				`p/a.iam:6:25: unknown group role "boss": expected reader or owner`,
				`p/a.iam:7:20: unknown group role "new": expected reader or owner`,
				`p/a.iam:13:9: unknown group role "member": expected reader or owner`,
				`p/a.iam:14:16: unknown group role "admin": expected reader or owner`,
			}},
		{"a role that becomes another is no longer declared, and becomes one role",
			"groups {\n  api schema app\n  roles reader < owner\n  role reader becomes owner\n  role old becomes reader\n  role old becomes owner\n}",
			[]string{
				"p/a.iam:4:3: role reader becomes owner, but reader is declared: a role that becomes another is one the files no longer declare",
				"p/a.iam:6:8: role old becomes one role (first at p/a.iam:5:3)",
			}},
		{"subgroups need the token claim, a name without slashes, once each",
			"groups {\n  api schema app\n  token subgroup 'a' as member\n  token subgroup 'a' as admin\n  token subgroup '' as admin\n  token subgroup '/x/y' as admin\n}",
			[]string{
				"p/a.iam:3:3: token subgroup needs `token claim 'groups' as ROLE`: the claim that lists the Keycloak group paths",
				"p/a.iam:4:3: token subgroup 'a' is declared twice (first at p/a.iam:3:3)",
				"p/a.iam:5:18: bad token subgroup '': name one Keycloak subgroup, without slashes (token subgroup 'managers' as manager: /campus/chicago/managers confers manager in the group /campus/chicago)",
				"p/a.iam:6:18: bad token subgroup '/x/y': name one Keycloak subgroup, without slashes (token subgroup 'managers' as manager: /campus/chicago/managers confers manager in the group /campus/chicago)",
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			files, err := parseAll(t, src{"p/a.iam", tt.text})
			if err != nil {
				t.Fatal(err)
			}
			_, err = lang.Check(files)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestColumnRulesModel: what the column lists mean for the compiler.
func TestColumnRulesModel(t *testing.T) {
	m := mustCheck(t, src{"p/a.iam", `groups {
  api schema app
}
resource app.tasks {
  owner column owner_id
  group column group_id
  anonymous can read (id, "Title")
  owner can read, create, write, delete
  group member can read, write (done, note)
  group admin can write (review, note)
  authenticated can read
}
resource app.catalog {
  anonymous can read (id, name)
  authenticated can read (id, price)
}`})
	catalog, tasks := m.Resources[0], m.Resources[1]
	if !tasks.HasWriteColumns() || catalog.HasWriteColumns() {
		t.Error("HasWriteColumns")
	}
	if got := tasks.WriteColumns(); !cmp.Equal(got, []string{"done", "note", "review"}) {
		t.Errorf("write columns %v", got)
	}
	if got := tasks.FreeColumns(); !cmp.Equal(got, []string{"note"}) {
		t.Errorf("free columns (every writer's) %v, want the lists' intersection", got)
	}
	cols, limited := tasks.Columns(lang.GroupSubject{Role: "member"}, lang.Write)
	if !limited || len(cols) != 2 || cols[0].Name != "done" || cols[0].Pos.String() != "p/a.iam:9:33" {
		t.Errorf("member's write columns %+v (%v)", cols, limited)
	}
	if _, limited := tasks.Columns(lang.OwnerSubject{}, lang.Write); limited {
		t.Error("the owner's write is limited")
	}
	for _, c := range []struct {
		r         *lang.ResourceModel
		anonymous bool
		want      []string
		limited   bool
	}{
		{tasks, true, []string{"id", "Title"}, true},
		{tasks, false, nil, false}, // authenticated reads whole rows
		{catalog, true, []string{"id", "name"}, true},
		{catalog, false, []string{"id", "name", "price"}, true}, // an anonymous read opens the rows to signed-in callers
	} {
		got, limited := c.r.ReadColumns(c.anonymous)
		if !cmp.Equal(got, c.want) || limited != c.limited {
			t.Errorf("%s, anonymous %v: read columns %v (%v), want %v (%v)", c.r.QualifiedName(), c.anonymous, got, limited, c.want, c.limited)
		}
	}
}

// TestFormatRolesAndColumns: the new syntax in canonical form, and the
// formatting contract.
func TestFormatRolesAndColumns(t *testing.T) {
	in := "groups{api schema app roles viewer<editor  <  owner members managed   by editor\ntoken claim 'g' as viewer token subgroup 'leads' as editor role member becomes viewer}\n" +
		"resource app.t{owner column o owner can read,write(a ,\"B\"),delete anonymous can read( id )}"
	want := "groups {\n  api schema app\n  roles viewer < editor < owner\n  members managed by editor\n  token claim 'g' as viewer\n  token subgroup 'leads' as editor\n  role member becomes viewer\n}\n\n" +
		"resource app.t {\n  owner column o\n  owner can read, write (a, \"B\"), delete\n  anonymous can read (id)\n}\n"
	if got := lang.Format(mustParse(t, "p.iam", in)); got != want {
		t.Errorf("Format (-want +got):\n%s", cmp.Diff(want, got))
	}
	checkRoundTrip(t, in)
}

func mustCheck(t *testing.T, files ...src) *lang.Model {
	t.Helper()
	parsed, err := parseAll(t, files...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(parsed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestColumnReadsInSingleRoleMode: one role serves requests with and
// without a token, so a column read list cannot tell them apart.
func TestColumnReadsInSingleRoleMode(t *testing.T) {
	files, err := parseAll(t, src{"p/a.iam", "roles {\n  single role web_user\n}\nresource app.t {\n  anonymous can read (id, name)\n}\n"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lang.Check(files)
	want := "p/a.iam:5:23: anonymous can read (...): column reads are grants to a database role, and in single-role mode one role serves requests with and without a token, so a list cannot tell them apart; read whole rows, or declare the two roles"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
