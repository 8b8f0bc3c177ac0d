package lang_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/lang"
)

// TestCheckErrors: each input gives exactly these errors, in this order
// (the printed order: by file, line, column).
func TestCheckErrors(t *testing.T) {
	long := strings.Repeat("x", 64)
	tests := []struct {
		name  string
		files []src
		want  []string
	}{
		{"unknown permission suggests the close one",
			[]src{{"p/a.iam", "resource app.t {\n  owner column o\n  owner can read, wirte\n}"}},
			[]string{`p/a.iam:3:19: unknown permission "wirte": expected read, create, write or delete (did you mean "write"?)`}},
		{"SQL verbs suggest the permission",
			[]src{{"p/a.iam", "resource app.t {\n  owner column o\n  owner can select, insert, update, remove, modify\n}"}},
			[]string{
				`p/a.iam:3:13: unknown permission "select": expected read, create, write or delete (did you mean "read"?)`,
				`p/a.iam:3:21: unknown permission "insert": expected read, create, write or delete (did you mean "create"?)`,
				`p/a.iam:3:29: unknown permission "update": expected read, create, write or delete (did you mean "write"?)`,
				`p/a.iam:3:37: unknown permission "remove": expected read, create, write or delete (did you mean "delete"?)`,
				`p/a.iam:3:45: unknown permission "modify": expected read, create, write or delete (did you mean "write"?)`,
			}},
		{"page by: twice, on the owner column, nobody reads",
			[]src{{"p/a.iam", "resource app.t {\n  owner column o\n  page by o\n  page by id\n  owner can create\n}"}},
			[]string{
				`p/a.iam:3:11: page by o in app.t: pages are ordered by a unique key such as the primary key, not by the owner or group column`,
				`p/a.iam:3:11: page by in app.t: nobody can read its rows, so a page would always be empty; add a read rule or remove page by`,
				`p/a.iam:4:3: page by is declared twice in app.t (first at p/a.iam:3:11)`,
			}},
		{"page by: a group column named like a parameter of the page function",
			[]src{{"p/a.iam", "groups {\n  api schema app\n}\nresource app.t {\n  owner column o\n  group column before\n  page by id\n  owner can read\n}"}},
			[]string{`p/a.iam:6:16: group column before in app.t: the page function has a parameter of that name; rename the column or remove page by`}},
		{"timeouts: a duration needs a unit, and is set once",
			[]src{{"p/a.iam", "roles {\n  statement timeout '5 seconds'\n  lock timeout 10\n  statement timeout 5s\n  statement timeout 6s\n}"}},
			[]string{
				`p/a.iam:2:21: bad statement timeout '5 seconds': write a whole number and a unit (ms, s, min, h), e.g. statement timeout 5s, or 0 for none`,
				`p/a.iam:3:16: bad lock timeout 10: write a whole number and a unit (ms, s, min, h), e.g. lock timeout 5s, or 0 for none`,
				`p/a.iam:5:3: statement timeout is set twice (first at p/a.iam:4:3)`,
			}},
		{"quotas: a known limit, a whole number, set once",
			[]src{{"p/a.iam", "groups {\n  api schema app\n  max groups per group 5\n  max members per group 0\n  max groups per user x\n  max groups created per user 5\n  max groups created per user 6\n}"}},
			[]string{
				`p/a.iam:3:7: unknown limit "max groups per group": expected max groups created per user N, max groups per user N, max members per group N or max invitations per group N`,
				`p/a.iam:4:25: bad limit 0: max members per group takes a whole number from 1 to 1000000`,
				`p/a.iam:5:23: bad limit x: max groups per user takes a whole number from 1 to 1000000`,
				`p/a.iam:7:3: max groups created per user is set twice (first at p/a.iam:6:3)`,
			}},
		{"unknown permission far from any",
			[]src{{"p/a.iam", "resource app.t {\n  authenticated can fly\n}"}},
			[]string{`p/a.iam:2:21: unknown permission "fly": expected read, create, write or delete`}},
		{"permission in upper case folds like an identifier",
			[]src{{"p/a.iam", "resource app.t {\n  authenticated can READ, Read\n}"}},
			[]string{`p/a.iam:2:27: authenticated is already granted read (at p/a.iam:2:21)`}},
		{"quoted permission is not folded",
			[]src{{"p/a.iam", "resource app.t {\n  authenticated can \"READ\"\n}"}},
			[]string{`p/a.iam:2:21: unknown permission "\"READ\"": expected read, create, write or delete`}},
		{"permission granted twice across rules",
			[]src{{"p/a.iam", "resource app.t {\n  owner column o\n  owner can read\n  owner can write, read\n}"}},
			[]string{`p/a.iam:4:20: owner is already granted read (at p/a.iam:3:13)`}},
		{"write and delete without read",
			[]src{{"p/a.iam", "resource app.t {\n  owner column o\n  owner can create, write, delete\n}"}},
			[]string{
				`p/a.iam:3:21: owner can write but not read in app.t: PostgreSQL only lets UPDATE and DELETE reach rows the caller can read; add read`,
				`p/a.iam:3:28: owner can delete but not read in app.t: PostgreSQL only lets UPDATE and DELETE reach rows the caller can read; add read`,
			}},
		{"group write needs a group read at or below its role",
			[]src{{"p/a.iam", "groups {\n  api schema app\n}\nresource app.t {\n  owner column o\n  group column g\n  group admin can read\n  group member can write\n}"}},
			[]string{`p/a.iam:8:20: group member can write but not read in app.t: PostgreSQL only lets UPDATE and DELETE reach rows the caller can read; grant read to group member (or a lower role)`}},
		{"anonymous and authenticated only read",
			[]src{{"p/a.iam", "resource app.t {\n  anonymous can read, create, write, delete\n  authenticated can read, create\n}"}},
			[]string{
				`p/a.iam:2:23: anonymous callers can only be granted read: an anonymous request has no user id to own or answer for a row`,
				`p/a.iam:2:31: anonymous callers can only be granted read: an anonymous request has no user id to own or answer for a row`,
				`p/a.iam:2:38: anonymous callers can only be granted read: an anonymous request has no user id to own or answer for a row`,
				`p/a.iam:3:27: authenticated callers can only be granted read: letting every signed-in user change every row defeats ownership; grant write and delete to owner`,
			}},
		{"owner rules without owner column",
			[]src{{"p/a.iam", "# c\nresource app.t {\n  owner can read\n}"}},
			[]string{"p/a.iam:2:1: resource app.t has owner rules but no owner column: add `owner column owner_id` (the column holding the creator's user id)"}},
		{"owner column twice",
			[]src{{"p/a.iam", "resource app.t {\n  owner column a\n  owner column b\n}"}},
			[]string{`p/a.iam:3:3: owner column is declared twice in app.t (first at p/a.iam:2:3)`}},
		{"bad owner column (and no second error about a missing one)",
			[]src{{"p/a.iam", "resource app.t {\n  owner column 1st\n  owner can read\n}"}},
			[]string{
				`p/a.iam:2:16: bad column name 1st: an unquoted identifier starts with a letter or _ (quote it as "1st" if the name really is that)`,
			}},
		{"unqualified and over-qualified names",
			[]src{{"p/a.iam", "resource todos {}\nresource db.app.todos {}"}},
			[]string{
				`p/a.iam:1:10: resource name must be schema.table (e.g. app.todos), got 1 part(s)`,
				`p/a.iam:2:10: resource name must be schema.table (e.g. app.todos), got 3 part(s)`,
			}},
		{"bad schema and table names",
			[]src{{"p/a.iam", "resource 9app.2todos {}\nresource \"\".t {}\nresource app." + long + " {}\nresource app.\"" + long + "\" {}"}},
			[]string{
				`p/a.iam:1:10: bad schema name 9app: an unquoted identifier starts with a letter or _ (quote it as "9app" if the name really is that)`,
				`p/a.iam:1:15: bad table name 2todos: an unquoted identifier starts with a letter or _ (quote it as "2todos" if the name really is that)`,
				`p/a.iam:2:10: bad schema name: a quoted identifier cannot be empty`,
				`p/a.iam:3:14: bad table name: 64 bytes is longer than PostgreSQL's limit of 63; PostgreSQL would silently cut it to 63 bytes, so shorten it`,
				`p/a.iam:4:14: bad table name: 64 bytes is longer than PostgreSQL's limit of 63; PostgreSQL would silently cut it to 63 bytes, so shorten it`,
			}},
		{"duplicate resource across files, folded and quoted",
			[]src{
				{"p/a.iam", "resource app.todos {}"},
				{"p/b.iam", "resource App.TODOS {}\nresource \"app\".\"todos\" {}\nresource app.\"Todos\" {}"},
			},
			[]string{
				`p/b.iam:1:10: resource app.todos is declared twice (first at p/a.iam:1:1)`,
				`p/b.iam:2:10: resource app.todos is declared twice (first at p/a.iam:1:1)`,
			}},
		{"identity twice, claim and type twice",
			[]src{
				{"p/a.iam", "identity {\n  claim 'sub'\n  claim 'uid'\n  type uuid\n  type text\n}"},
				{"p/b.iam", "identity { type text }"},
			},
			[]string{
				`p/a.iam:3:3: claim is set twice (first at p/a.iam:2:3)`,
				`p/a.iam:5:3: type is set twice (first at p/a.iam:4:3)`,
				`p/b.iam:1:1: identity is declared twice (first at p/a.iam:1:1): declare it once per policy directory`,
			}},
		{"unknown identity type and empty claim",
			[]src{{"p/a.iam", "identity {\n  claim ''\n  type integer\n}"}},
			[]string{
				`p/a.iam:2:9: the identity claim is empty: name the JWT claim holding the user id, e.g. claim 'sub'`,
				`p/a.iam:3:8: unknown identity type "integer": expected uuid or text`,
			}},
		{"audience and expiry: empty, unknown, set twice",
			[]src{{"p/a.iam", "identity {\n  audience ''\n  audience 'b'\n  expiry never\n  expiry optional\n  expiry optional\n}"}},
			[]string{
				`p/a.iam:2:12: the audience is empty: name the value tokens must carry in aud (PostgREST's jwt-aud), e.g. audience 'todo-api'`,
				`p/a.iam:3:3: audience is set twice (first at p/a.iam:2:3)`,
				`p/a.iam:4:10: unknown expiry "never": expected required (the default: tokens must carry exp) or optional`,
				`p/a.iam:5:3: expiry is set twice (first at p/a.iam:4:3)`,
				`p/a.iam:6:3: expiry is set twice (first at p/a.iam:4:3)`,
			}},
		{"audience with a control character",
			[]src{{"p/a.iam", "identity { audience 'todo\tapi' }"}},
			[]string{`p/a.iam:1:21: bad audience "todo\tapi": control characters and invalid UTF-8 are not allowed`}},
		{"identity type in upper case folds",
			[]src{{"p/a.iam", "identity { type \"UUID\" }"}},
			[]string{`p/a.iam:1:17: unknown identity type "\"UUID\"": expected uuid or text`}},
		{"roles: unknown slot, slot twice, bad name, declared twice",
			[]src{
				{"p/a.iam", "roles {\n  admin x\n  owner a\n  owner b\n  anonymous \"\"\n}"},
				{"p/b.iam", "roles { owner c }"},
			},
			[]string{
				`p/a.iam:2:3: unknown role slot "admin": expected authenticated, anonymous or owner`,
				`p/a.iam:4:3: owner is set twice (first at p/a.iam:3:3)`,
				`p/a.iam:5:13: bad role name: a quoted identifier cannot be empty`,
				`p/b.iam:1:1: roles are declared twice (first at p/a.iam:1:1): declare them once per policy directory`,
			}},
		{"authenticated and anonymous roles must differ",
			[]src{{"p/a.iam", "\nroles {\n  anonymous web_user\n}"}},
			[]string{"p/a.iam:2:1: the authenticated and anonymous roles must differ (both are \"web_user\"); for one role with and without a token, write `single role web_user`"}},
		{"group rules need a group column and the groups block",
			[]src{{"p/a.iam", "resource app.t {\n  owner column o\n  owner can read\n  group member can read\n}\nresource app.u {\n  group column g\n}"}},
			[]string{
				"p/a.iam:4:20: group rules need a group column in app.t: add `group column group_id`",
				"p/a.iam:7:16: app.u has a group column but no groups block declares the group API: add `groups { api schema app }` (the schema PostgREST serves)",
			}},
		{"group create needs owner create, a required group needs a group create",
			[]src{{"p/a.iam", "groups {\n  api schema app\n}\nresource app.t {\n  owner column o\n  group column g\n  group member can read, create\n}\nresource app.u {\n  owner column o\n  group column g required\n  owner can read, create\n}"}},
			[]string{
				"p/a.iam:7:26: group member can create needs owner can create in app.t: whoever puts a row into a group creates it and owns it",
				"p/a.iam:11:16: the group column of app.u is required, but no group role can create: nobody could insert a row; add e.g. `group member can create`",
			}},
		{"unknown group roles",
			[]src{{"p/a.iam", "groups {\n  api schema app\n  token claim 'groups' as boss\n}\nresource app.t {\n  owner column o\n  group column g\n  group boss can read\n}"}},
			[]string{
				`p/a.iam:3:27: unknown group role "boss": expected member, admin or owner`,
				`p/a.iam:8:9: unknown group role "boss": expected member, admin or owner`,
			}},
		{"keycloak roles: empty names and clients, a write without the role's read",
			[]src{{"p/a.iam", "resource app.t {\n  role '' can read\n  role 'editor' of client '' can read\n  role 'mod' can delete\n  role 'mod' of client 'app' can read\n}"}},
			[]string{
				`p/a.iam:2:8: the role name is empty: name a Keycloak role, e.g. role 'moderator'`,
				`p/a.iam:3:27: the client is empty: name the Keycloak client (its clientId, the key under resource_access), e.g. role 'editor' of client 'todo-app'`,
				`p/a.iam:4:18: role 'mod' can delete but not read in app.t: PostgreSQL only lets UPDATE and DELETE reach rows the caller can read; grant read to role 'mod'`,
			}},
		{"claim matches: only read, claims that are never strings, empty names between dots",
			[]src{{"p/a.iam", "groups {\n  api schema app\n  token claim 'groups' as member\n}\nresource app.t {\n  keeper = claim 'user_type' can read, write\n  a = claim 'realm_access.roles' can read\n  b = claim 'exp' can read\n  c = claim 'org..id' can read\n  d = claim '' can read\n  e = claim 'groups' can read\n}"}},
			[]string{
				`p/a.iam:6:40: keeper = claim 'user_type' callers can only be granted read: a claim says which rows a caller may see, not which they own; let owner or role rules grant changes`,
				`p/a.iam:7:13: claim 'realm_access.roles' is never a string: realm_access is an object: the realm roles are in realm_access.roles (grant by them with ` + "`role 'name' can ...`" + `); a column compared with it would match no row`,
				`p/a.iam:8:13: claim 'exp' is never a string: exp is a number (when the token expires); a column compared with it would match no row`,
				`p/a.iam:9:13: bad claim 'org..id': an empty name between dots (Keycloak nests claims at dots, as org.id; write \. for a dot inside a name)`,
				`p/a.iam:10:13: the matched claim is empty: name the JWT claim whose string value the column holds, e.g. claim 'org_id'`,
				`p/a.iam:11:13: claim 'groups' is never a string: the groups block reads it as the token's list of groups; a column compared with it would match no row`,
			}},
		{"tenant: twice, on the owner column, anonymous readers, a claim that is an object",
			[]src{{"p/a.iam", "resource app.t {\n  tenant column o from claim 'org_id'\n  tenant column org from claim 'org'\n  owner column o\n  owner can read\n  anonymous can read\n}\nresource app.u {\n  tenant column org from claim 'resource_access'\n}"}},
			[]string{
				`p/a.iam:2:17: the tenant column of app.t cannot also be its owner column`,
				`p/a.iam:3:3: tenant column is declared twice in app.t (first at p/a.iam:2:17)`,
				`p/a.iam:6:3: anonymous can read in app.t: a request without a token has no tenant claim, so it could read no row of a resource with a tenant column; remove the rule (or the tenant column)`,
				`p/a.iam:9:32: claim 'resource_access' is never a string: resource_access is an object: the client roles are in resource_access.<client>.roles (grant by them with ` + "`role 'name' of client 'client' can ...`" + `); a column compared with it would match no row`,
			}},
		{"single role: with the authenticated or anonymous slot, twice; the same role twice without it",
			[]src{{"p/a.iam", "roles {\n  authenticated web_user\n  single role web_user\n  anonymous web_user\n  single role other\n}"}},
			[]string{
				`p/a.iam:3:3: single role names the role of every request; the authenticated role is set too (at p/a.iam:2:3): keep one of them`,
				`p/a.iam:4:3: single role names the role of every request (at p/a.iam:3:3); the anonymous role cannot be set too: keep one of them`,
				`p/a.iam:5:3: single role is set twice (first at p/a.iam:3:3)`,
			}},
		{"the same role for both slots says how to declare single-role mode",
			[]src{{"p/a.iam", "roles {\n  authenticated web_user\n  anonymous web_user\n}"}},
			[]string{"p/a.iam:1:1: the authenticated and anonymous roles must differ (both are \"web_user\"); for one role with and without a token, write `single role web_user`"}},
		{"groups block without api schema",
			[]src{{"p/a.iam", "groups {\n  admin role 'iam-admin'\n}"}},
			[]string{"p/a.iam:1:1: the groups block needs `api schema NAME`: the schema PostgREST serves, where the group functions and views are created"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := parseAll(t, tt.files...)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			m, err := lang.Check(files)
			if err == nil {
				t.Fatalf("Check succeeded with %d resources, want errors", len(m.Resources))
			}
			if m != nil {
				t.Errorf("Check returned a model with its errors")
			}
			got := strings.Split(err.Error(), "\n")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckDefaults(t *testing.T) {
	files, err := parseAll(t, src{"p/a.iam", "resource app.t {}"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	if m.Identity != lang.DefaultIdentity || m.Identity != (lang.Identities{Claim: "sub", Type: lang.UUID}) {
		t.Errorf("identity = %+v, want the default sub/uuid", m.Identity)
	}
	if m.Roles != (lang.RoleNames{Authenticated: "web_user", Anonymous: "web_anon", Owner: "api_owner"}) {
		t.Errorf("roles = %+v", m.Roles)
	}
	if m.RolesPos.Line != 0 {
		t.Errorf("RolesPos = %v without a roles block, want zero", m.RolesPos)
	}
	if m.Timeouts != lang.DefaultTimeouts || m.Groups.Limits != lang.DefaultGroupLimits {
		t.Errorf("timeouts %+v and limits %+v without roles and groups blocks, want the defaults %+v, %+v", m.Timeouts, m.Groups.Limits, lang.DefaultTimeouts, lang.DefaultGroupLimits)
	}
	r := m.Resources[0]
	if r.OwnerColumn != "" || len(r.Rules) != 0 {
		t.Errorf("a resource without rules grants something: %+v", r)
	}
}

func TestCheckModel(t *testing.T) {
	files, err := parseAll(t,
		src{"p/b.iam", `resource shop.zeta {
  owner column Owner_ID
  page by "Seq"
  owner can read
  owner can write, create
  authenticated can read
}
resource app."To Dos" {
  owner column "Owner Id"
  anonymous can read
}`},
		src{"p/a.iam", `identity {
  claim 'preferred_username'
  type TEXT
  audience 'Todo API'
  expiry OPTIONAL
}
roles {
  authenticated App_User
  anonymous "Guest"
  owner app_admin
}
resource app.alpha {}`},
	)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	if m.Identity != (lang.Identities{Claim: "preferred_username", Type: lang.Text, Audience: "Todo API", ExpiryOptional: true}) {
		t.Errorf("identity = %+v", m.Identity)
	}
	if m.Roles != (lang.RoleNames{Authenticated: "app_user", Anonymous: "Guest", Owner: "app_admin"}) {
		t.Errorf("roles = %+v (bare names fold, quoted ones do not)", m.Roles)
	}
	if m.RolesPos.String() != "p/a.iam:7:1" {
		t.Errorf("RolesPos = %s", m.RolesPos.String())
	}
	var order []string
	for _, r := range m.Resources {
		order = append(order, r.QualifiedName())
	}
	if got := strings.Join(order, " "); got != "app.To Dos app.alpha shop.zeta" {
		t.Errorf("resources in order %q, want sorted by schema then table (byte order)", got)
	}
	todos, zeta := m.Resources[0], m.Resources[2]
	if todos.Schema != "app" || todos.Table != "To Dos" || todos.OwnerColumn != "Owner Id" {
		t.Errorf("quoted names: %+v", todos)
	}
	if !todos.Can(lang.AnonymousSubject{}, lang.Read) || len(todos.Grants(lang.OwnerSubject{})) != 0 {
		t.Errorf("To Dos permissions: %+v", todos)
	}
	if zeta.OwnerColumn != "owner_id" || zeta.OwnerPos.String() != "p/b.iam:2:16" || zeta.Pos.String() != "p/b.iam:1:1" {
		t.Errorf("zeta: column %q at %s, resource at %s", zeta.OwnerColumn, zeta.OwnerPos.String(), zeta.Pos.String())
	}
	if zeta.PageKey != "Seq" || zeta.PagePos.String() != "p/b.iam:3:11" || todos.PageKey != "" {
		t.Errorf("page key: zeta %q at %s, To Dos %q", zeta.PageKey, zeta.PagePos.String(), todos.PageKey)
	}
	if got := zeta.Grants(lang.OwnerSubject{}).Sorted(); !cmp.Equal(got, []lang.Perm{lang.Read, lang.Create, lang.Write}) {
		t.Errorf("owner perms %v, want canonical order read, create, write", got)
	}
	wantRules := []lang.RuleModel{
		{Subject: lang.OwnerSubject{}, Perms: []lang.Perm{lang.Read}},
		{Subject: lang.OwnerSubject{}, Perms: []lang.Perm{lang.Write, lang.Create}},
		{Subject: lang.AuthenticatedSubject{}, Perms: []lang.Perm{lang.Read}},
	}
	var lines []int
	for i := range zeta.Rules {
		lines = append(lines, zeta.Rules[i].Pos.Line)
		zeta.Rules[i].Pos.Line, zeta.Rules[i].Pos.Column, zeta.Rules[i].Pos.Offset, zeta.Rules[i].Pos.Filename = 0, 0, 0, ""
	}
	if diff := cmp.Diff(wantRules, zeta.Rules); diff != "" {
		t.Errorf("rules as written (-want +got):\n%s", diff)
	}
	if !cmp.Equal(lines, []int{4, 5, 6}) {
		t.Errorf("rule lines %v", lines)
	}
}

// TestCheckKeycloakModel: roles, claim matches, tenants and single-role
// mode as the compiler gets them.
func TestCheckKeycloakModel(t *testing.T) {
	files, err := parseAll(t, src{"p/a.iam", `roles {
  single role "App User"
  owner api_owner
}
resource app.notes {
  tenant column Org_Id from claim 'org.id\.v2'
  owner column owner_id
  owner can read
  role 'org-admin' can read
  role 'editor' of client 'todo-app' can read, write
  role = claim 'user_type' can read
}`})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	if m.Roles != (lang.RoleNames{Authenticated: "App User", Anonymous: "App User", Owner: "api_owner", Single: true}) {
		t.Errorf("roles = %+v", m.Roles)
	}
	notes := m.Resources[0]
	if notes.Tenant == nil || *notes.Tenant != (lang.TenantModel{Column: "org_id", Claim: `org.id\.v2`,
		Pos: notes.Tenant.Pos, ClaimPos: notes.Tenant.ClaimPos}) || notes.Tenant.Pos.String() != "p/a.iam:6:17" || notes.Tenant.ClaimPos.String() != "p/a.iam:6:35" {
		t.Errorf("tenant = %+v", notes.Tenant)
	}
	if got := lang.ClaimPath(notes.Tenant.Claim); !cmp.Equal(got, []string{"org", "id.v2"}) {
		t.Errorf("claim path %q, want org and id.v2 (Keycloak nests at dots, \\. is a dot)", got)
	}
	var subjects []string
	for _, r := range notes.Rules {
		subjects = append(subjects, r.Subject.String())
	}
	want := []string{"owner", "role 'org-admin'", "role 'editor' of client 'todo-app'", "role = claim 'user_type'"}
	if diff := cmp.Diff(want, subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}
	if !notes.Can(lang.RoleSubject{Client: "todo-app", Name: "editor"}, lang.Write) || notes.Can(lang.RoleSubject{Name: "editor"}, lang.Read) {
		t.Errorf("a client role and the realm role of the same name are different subjects")
	}
	if !notes.Can(lang.ClaimSubject{Column: "role", Claim: "user_type"}, lang.Read) {
		t.Errorf("the claim match is not in the model")
	}
}

// TestCheckMaxIdentLen: 63 bytes is the limit, counted in bytes (UTF-8).
func TestCheckMaxIdentLen(t *testing.T) {
	ok63 := strings.Repeat("a", 63)
	utf8Over := `"` + strings.Repeat("ä", 32) + `"` // 64 bytes
	files, err := parseAll(t, src{"p/a.iam", "resource app." + ok63 + " {}\nresource app." + utf8Over + " {}"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lang.Check(files)
	want := `p/a.iam:2:14: bad table name: 64 bytes (32 characters in UTF-8) is longer than PostgreSQL's limit of 63; PostgreSQL would silently cut it to 63 bytes, so shorten it`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want only %s", err, want)
	}
}

// TestCheckRejectsNamesPostgresCannotTake: a quoted identifier may hold
// any character but a newline; PostgreSQL refuses NUL and invalid UTF-8,
// and a carriage return ends a -- comment in PostgreSQL's lexer (the
// compiler prints names in -- comments). The checker accepts all three,
// so the compiler fails later with "compiler bug ... please report it"
// (NUL, invalid UTF-8) or, for \r, emits SQL outside the statements it
// verifies (see compiler TestCommentsCannotCarrySQL).
func TestCheckRejectsNamesPostgresCannotTake(t *testing.T) {
	accepted := 0
	for _, name := range []string{"\"a\x00b\"", "\"a\xffb\"", "\"a\rb\""} {
		files, err := parseAll(t, src{"p/a.iam", "resource app." + name + " {}"})
		if err != nil {
			t.Logf("%q: parse error %v", name, err)
			continue
		}
		if _, err := lang.Check(files); err == nil {
			accepted++
			t.Logf("%q: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "p/a.iam:1:14: ") {
			t.Errorf("%q: error at the wrong place: %v", name, err)
		}
	}
	if accepted > 0 {
		regressed(t, "%d of 3 names with NUL, invalid UTF-8 or \\r are accepted by lang.Check; want a positioned error (bad table name: ...)", accepted)
	}
}

// TestCheckRejectsReservedRoleNames: PostgreSQL reads the role name public
// as PUBLIC (every role) even when quoted, and refuses none, current_user,
// session_user and current_role as role names. The checker accepts them:
// `roles { authenticated public }` compiles, offline, to
// `grant select ... to public` and `create policy ... to public`, which
// gives the anonymous role everything the authenticated one has (SPEC.md
// section 8, guarantee 4). `none` gets as far as the compiler's round-trip
// and is reported as a "compiler bug".
func TestCheckRejectsReservedRoleNames(t *testing.T) {
	accepted := []string{}
	for _, name := range []string{"public", `"public"`, "PUBLIC", "none", "current_user", "session_user", "current_role"} {
		for _, slot := range []string{"authenticated", "anonymous", "owner"} {
			files, err := parseAll(t, src{"p/a.iam", "roles {\n  " + slot + " " + name + "\n}"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lang.Check(files); err == nil {
				accepted = append(accepted, slot+" "+name)
			} else if !strings.HasPrefix(err.Error(), "p/a.iam:2:") {
				t.Errorf("%s %s: error at the wrong place: %v", slot, name, err)
			}
		}
	}
	if len(accepted) > 0 {
		regressed(t, "lang.Check accepts %d reserved role names (e.g. %s); want e.g. `p/a.iam:2:17: bad role name public: PostgreSQL reads it as PUBLIC, every role`", len(accepted), strings.Join(accepted[:3], ", "))
	}
}
