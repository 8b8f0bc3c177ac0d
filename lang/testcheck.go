package lang

// The meaning of a test file against the checked policies: who the users
// are, the groups and rows to load, and every expectation to run (SPEC §17).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// The stable codes of `iamc test`'s diagnostics (SPEC §17, "Diagnostics").
// IAM001-IAM0xx belong to iamc lint; IAM2xx to iamc test.
const (
	CodeCanFailed        = "IAM201" // `X can P R[r]`: X cannot
	CodeCannotFailed     = "IAM202" // `X cannot P R[r]`: X can
	CodeListedLost       = "IAM203" // an access listing states X can P R[r]: X cannot
	CodeUnlistedGained   = "IAM204" // an access listing does not state X can P R[r]: X can
	CodeTestSyntax       = "IAM210" // a test file cannot be parsed
	CodeTestUnknownName  = "IAM211" // an unknown user, group, resource, row, role or permission
	CodeTestDuplicate    = "IAM212" // a name, id, value or listing given twice
	CodeTestBadValue     = "IAM213" // a value, id, claim or `set` that cannot be used
	CodeTestIncomplete   = "IAM214" // an access listing that leaves out a row of its resource
	CodeFixtureRefused   = "IAM220" // the database refused to load a fixture (group, row)
	CodeExpectationError = "IAM221" // an expectation could not be run (no column to write)
)

// TestFileCodes lists iamc test's codes, in order, with an example each (a
// failed expectation, or a test file that gets the error), for
// docs/diagnostics.md.
func TestFileCodes() []Code {
	return []Code{
		{ID: CodeCanFailed, Level: LevelError, Title: "an expectation `X can P R[r]` that the database denies",
			Example: "alice can delete todos[t2]   # but no rule lets her"},
		{ID: CodeCannotFailed, Level: LevelError, Title: "an expectation `X cannot P R[r]` that the database allows",
			Example: "mia cannot delete todos[t2]   # but a rule lets her"},
		{ID: CodeListedLost, Level: LevelError, Title: "an access listing states X can P R[r]; the database denies it",
			Example: "access todos {\n  t2 { olivia read, write, delete }   # and she cannot delete\n}"},
		{ID: CodeUnlistedGained, Level: LevelError, Title: "the database allows X to P R[r], which the access listing does not state",
			Example: "access todos {\n  t2 { mia read }   # and she can write\n}"},
		{ID: CodeTestSyntax, Level: LevelError, Title: "a test file that cannot be parsed",
			Example: "user alice {\n  idd 'x'\n}"},
		{ID: CodeTestUnknownName, Level: LevelError, Title: "an unknown user, group, resource, row, membership role or permission",
			Example: "user alice\nrow todos[t1] { owner alise }"},
		{ID: CodeTestDuplicate, Level: LevelError, Title: "a user, group, row, id, claim, value, membership or listing given twice",
			Example: "user alice\nuser alice"},
		{ID: CodeTestBadValue, Level: LevelError, Title: "a value that cannot be used (an id not of the identity type, a claim that is not JSON, a column named instead of its keyword, set with read...)",
			Example: "user alice { id 'x' }   # type uuid"},
		{ID: CodeTestIncomplete, Level: LevelError, Title: "an access listing that leaves out a row of its resource",
			Example: "user alice\nrow todos[t1] { owner alice }\nrow todos[t2] { owner alice }\naccess todos {\n  t1 { alice read, create, write, delete }\n}"},
		{ID: CodeFixtureRefused, Level: LevelError, Title: "a group, membership or row the database refuses to load",
			Example: "user alice\nrow todos[t1] { owner alice  title null }   # title is NOT NULL"},
		{ID: CodeExpectationError, Level: LevelError, Title: "an expectation that cannot be made (a write without set on a table with no column to set)",
			Example: "alice can write tags[t1]   # app.tags has only its key, owner and group"},
	}
}

// Tests is one checked test file: its fixtures and every expectation.
type Tests struct {
	File         string
	Setup        []SetupFile
	Users        []*FixtureUser // as declared, then anonymous
	Groups       []*FixtureGroup
	Rows         []*FixtureRow
	Expectations []*Expectation // the explicit ones and every cell of the listings, in file order
}

// SetupFile is an SQL file run on the throwaway database before the build.
type SetupFile struct {
	Path string // relative paths are resolved against the test file's directory
	Pos  Pos
}

// FixtureUser is a caller: a signed-in user with a token, or anonymous.
type FixtureUser struct {
	Name      string
	Anonymous bool   // a request without a token (the anonymous role)
	ID        string // the identity claim's value, canonical (a uuid in lower case)
	// Claims are the token's claims besides the defaults (identity claim,
	// role, aud, exp, iat), as JSON, in the order written.
	Claims []Claim
	Pos    Pos
}

// Claim is one JWT claim with a JSON value.
type Claim struct {
	Name  string
	Value json.RawMessage
}

// FixtureGroup is a group, with its memberships.
type FixtureGroup struct {
	Name    string
	Token   string // token_name: the Keycloak group path; "" for none
	Members []Membership
	Pos     Pos
}

// Membership is a user's role in a group.
type Membership struct {
	User *FixtureUser
	Role GroupRole
	Pos  Pos
}

// FixtureRow is a row of a resource, loaded before the expectations run.
type FixtureRow struct {
	Resource *ResourceModel
	Name     string
	Ref      string // how it is shown: todos[t1] (schema.table[t1] when the table name is ambiguous)
	Values   []Value
	Pos      Pos
}

// ValueKind is what a Value holds.
type ValueKind int

// Value kinds.
const (
	Literal ValueKind = iota // a literal PostgreSQL casts to the column's type
	Null                     // SQL NULL
	UserID                   // the id of a user (the owner column)
	GroupID                  // the id of a group, or NULL for none (the group column)
	RowKey                   // the key of a parent row (the parent column)
)

// Value is a column of a fixture row, or a change a write expectation
// makes.
type Value struct {
	Column  string // the real column name
	Kind    ValueKind
	Literal string        // Kind Literal
	Bare    bool          // the literal was written without quotes (a number, true, false)
	User    *FixtureUser  // Kind UserID
	Group   *FixtureGroup // Kind GroupID; nil for none
	Row     *FixtureRow   // Kind RowKey: the parent row
	Key     string        // Kind RowKey: the parent's column the parent column references
	Pos     Pos
}

// String is the value as a test file writes it.
func (v Value) String() string {
	switch v.Kind {
	case Null:
		return "null"
	case UserID:
		return v.User.Name
	case GroupID:
		if v.Group == nil {
			return "none"
		}
		return v.Group.Name
	case RowKey:
		return v.Row.Name
	default:
		if v.Bare {
			return v.Literal
		}
		return "'" + strings.ReplaceAll(v.Literal, "'", "''") + "'"
	}
}

// Expectation is one check: can (or cannot) Who do Perm with Row.
type Expectation struct {
	Who     *FixtureUser
	Perm    Perm
	Row     *FixtureRow
	Set     []Value // write only: the change to make; none means a no-op update
	Can     bool
	Listing bool // a cell of an access listing
	Pos     Pos
}

// String is the expectation as a sentence: alice can write todos[t2] set group none.
func (e *Expectation) String() string {
	s := fmt.Sprintf("%s %s %s %s", e.Who.Name, canWord(e.Can), e.Perm, e.Row.Ref)
	if len(e.Set) > 0 {
		parts := make([]string, len(e.Set))
		for i, v := range e.Set {
			parts[i] = setColumnName(e.Row.Resource, v.Column) + " " + v.String()
		}
		s += " set " + strings.Join(parts, ", ")
	}
	return s
}

// FailureCode is the code of this expectation's failure.
func (e *Expectation) FailureCode() string {
	switch {
	case e.Listing && e.Can:
		return CodeListedLost
	case e.Listing:
		return CodeUnlistedGained
	case e.Can:
		return CodeCanFailed
	default:
		return CodeCannotFailed
	}
}

func canWord(can bool) string {
	if can {
		return "can"
	}
	return "cannot"
}

// setColumnName shows the owner, group and parent columns by their
// keyword.
func setColumnName(r *ResourceModel, column string) string {
	switch {
	case column == r.OwnerColumn:
		return "owner"
	case column == r.GroupColumn:
		return "group"
	case r.Parent != nil && column == r.Parent.Column:
		return "parent"
	}
	return column
}

// CheckTests gives a parsed test file its meaning against the policies.
// Names may be used before they are declared; every problem is reported.
func CheckTests(m *Model, f *TestFile) (*Tests, error) {
	c := &testChecker{
		m:      m,
		t:      &Tests{File: f.Name},
		users:  map[string]*FixtureUser{},
		groups: map[string]*FixtureGroup{},
		rows:   map[*ResourceModel]map[string]*FixtureRow{},
		byDecl: map[*TestRow]*FixtureRow{},
		ids:    map[string]string{},
	}
	// Declarations first, so that order does not matter.
	for _, e := range f.Entries {
		switch {
		case e.User != nil:
			c.user(e.User)
		case e.Group != nil:
			c.group(e.Group)
		}
	}
	anon := &FixtureUser{Name: "anonymous", Anonymous: true}
	c.users["anonymous"] = anon
	for _, e := range f.Entries {
		switch {
		case e.Setup != nil:
			for _, s := range e.Setup.Files {
				path := s.Value()
				if !filepath.IsAbs(path) {
					path = filepath.Join(filepath.Dir(f.Name), path)
				}
				c.t.Setup = append(c.t.Setup, SetupFile{Path: path, Pos: posOf(s.Pos)})
			}
		case e.Group != nil:
			c.members(e.Group)
		case e.Row != nil:
			c.row(e.Row)
		}
	}
	// Values after every row is known: a row names its parent row.
	for _, e := range f.Entries {
		if e.Row != nil {
			c.rowValues(e.Row)
		}
	}
	c.t.Users = append(c.t.Users, anon)
	listed := map[*ResourceModel]lexer.Position{}
	for _, e := range f.Entries {
		switch {
		case e.Expect != nil:
			c.expect(e.Expect)
		case e.Access != nil:
			c.access(e.Access, listed)
		}
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return c.t, nil
}

type testChecker struct {
	m      *Model
	t      *Tests
	users  map[string]*FixtureUser
	groups map[string]*FixtureGroup
	rows   map[*ResourceModel]map[string]*FixtureRow
	byDecl map[*TestRow]*FixtureRow
	ids    map[string]string // user id -> user name
	errs   ErrorList
}

func (c *testChecker) errorf(pos lexer.Position, code, format string, args ...any) {
	c.errs = append(c.errs, &Error{Pos: posOf(pos), Code: code, Level: LevelError, Msg: fmt.Sprintf(format, args...)})
}

// name is an identifier's value, refused when it holds a control character.
func (c *testChecker) name(id *Ident, what string) (string, bool) {
	n := id.Name()
	if n == "" || !printable(n) {
		c.errorf(id.Pos, CodeTestBadValue, "bad %s name %s: a name must not be empty or hold control characters", what, id.Raw)
		return "", false
	}
	return n, true
}

func (c *testChecker) user(u *TestUser) {
	name, ok := c.name(u.Name, "user")
	if !ok {
		return
	}
	if name == "anonymous" {
		c.errorf(u.Name.Pos, CodeTestBadValue, "a user cannot be called anonymous: anonymous is the caller without a token, always there")
		return
	}
	if prev, dup := c.users[name]; dup {
		c.errorf(u.Name.Pos, CodeTestDuplicate, "user %s is declared twice (first at %s)", name, whereAt(prev.Pos))
		return
	}
	fu := &FixtureUser{Name: name, Pos: posOf(u.Pos)}
	idPos := u.Name.Pos
	claims := map[string]lexer.Position{}
	for _, it := range u.Items {
		switch {
		case it.ID != nil:
			if fu.ID != "" {
				c.errorf(it.Pos, CodeTestDuplicate, "user %s has two ids", name)
				continue
			}
			id, err := canonicalID(c.m.Identity.Type, it.ID.Value())
			if err != nil {
				c.errorf(it.ID.Pos, CodeTestBadValue, "bad id for user %s: %v", name, err)
				continue
			}
			fu.ID, idPos = id, it.ID.Pos
		case it.Claim != nil:
			claim := it.Claim.Name.Value()
			switch {
			case claim == "" || !printable(claim):
				c.errorf(it.Claim.Name.Pos, CodeTestBadValue, "a claim needs a name without control characters")
				continue
			case claim == c.m.Identity.Claim:
				c.errorf(it.Claim.Name.Pos, CodeTestBadValue, "%s is the identity claim: give the user's id with id '...'", claim)
				continue
			case claim == "role":
				c.errorf(it.Claim.Name.Pos, CodeTestBadValue, "the role claim is not set by a test: users run as the authenticated role of the roles block (%s)", c.m.Roles.Authenticated)
				continue
			}
			if prev, dup := claims[claim]; dup {
				c.errorf(it.Claim.Name.Pos, CodeTestDuplicate, "claim %s of user %s is given twice (first at %s)", claim, name, where(prev))
				continue
			}
			claims[claim] = it.Claim.Name.Pos
			value := it.Claim.Value.Value()
			if !json.Valid([]byte(value)) {
				c.errorf(it.Claim.Value.Pos, CodeTestBadValue, "the value of claim %s is not JSON: write a JSON value in quotes, e.g. '[\"/team\"]' or '\"text\"'", claim)
				continue
			}
			fu.Claims = append(fu.Claims, Claim{Name: claim, Value: json.RawMessage(value)})
		}
	}
	if fu.ID == "" {
		fu.ID = defaultID(c.m.Identity.Type, name)
	}
	if other, dup := c.ids[fu.ID]; dup {
		c.errorf(idPos, CodeTestDuplicate, "users %s and %s have the same id %s", other, name, fu.ID)
	}
	c.ids[fu.ID] = name
	c.users[name] = fu
	c.t.Users = append(c.t.Users, fu)
}

var uuidHex = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// canonicalID is the id as the runtime stores and compares it: a uuid in
// its canonical lower-case form, or the text as written.
func canonicalID(t IdentityType, id string) (string, error) {
	if id == "" || !printable(id) {
		return "", fmt.Errorf("an id must not be empty or hold control characters")
	}
	if t != UUID {
		return id, nil
	}
	hex := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(id, "{"), "}"), "-", "")
	if !uuidHex.MatchString(hex) {
		return "", fmt.Errorf("%q is not a uuid (the identity block says type uuid)", id)
	}
	hex = strings.ToLower(hex)
	return hex[0:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:], nil
}

// defaultID is a user's id when the file gives none: the name for type
// text; for type uuid a version 4 uuid made from the name, the same in
// every run.
func defaultID(t IdentityType, name string) string {
	if t != UUID {
		return name
	}
	sum := sha256.Sum256([]byte("iamc test user " + name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (c *testChecker) group(g *TestGroup) {
	name, ok := c.name(g.Name, "group")
	if !ok {
		return
	}
	if name == "none" {
		c.errorf(g.Name.Pos, CodeTestBadValue, "a group cannot be called none: group none means no group")
		return
	}
	if prev, dup := c.groups[name]; dup {
		c.errorf(g.Name.Pos, CodeTestDuplicate, "group %s is declared twice (first at %s)", name, whereAt(prev.Pos))
		return
	}
	fg := &FixtureGroup{Name: name, Pos: posOf(g.Pos)}
	c.groups[name] = fg
	c.t.Groups = append(c.t.Groups, fg)
}

func (c *testChecker) members(g *TestGroup) {
	name, _ := c.name(g.Name, "group")
	fg := c.groups[name]
	if fg == nil || fg.Pos != posOf(g.Pos) {
		return // reported when declared
	}
	seen := map[string]lexer.Position{}
	for _, it := range g.Items {
		switch {
		case it.Token != nil:
			token := it.Token.Value()
			if fg.Token != "" {
				c.errorf(it.Token.Pos, CodeTestDuplicate, "group %s has two token names", name)
				continue
			}
			if token == "" || !printable(token) {
				c.errorf(it.Token.Pos, CodeTestBadValue, "a token name must not be empty or hold control characters")
				continue
			}
			for _, other := range c.t.Groups {
				if other.Token == token {
					c.errorf(it.Token.Pos, CodeTestDuplicate, "groups %s and %s have the same token name %q (token names are unique)", other.Name, name, token)
				}
			}
			fg.Token = token
			if !c.m.Groups.Declared || c.m.Groups.TokenClaim == "" {
				c.errorf(it.Token.Pos, CodeTestBadValue, "group %s has a token name, but the groups block declares no token claim: no token would make anyone a member", name)
			}
		case it.Role != nil:
			role := GroupRole(it.Role.Name())
			if !isGroupRole(role) {
				c.errorf(it.Role.Pos, CodeTestUnknownName, "unknown membership role %q: expected member, admin or owner (or token)%s", it.Role.Raw, nearest(it.Role.Name(), "member", "admin", "owner", "token"))
				continue
			}
			for _, u := range it.Users {
				fu := c.lookupUser(u)
				if fu == nil {
					continue
				}
				if fu.Anonymous {
					c.errorf(u.Pos, CodeTestBadValue, "anonymous cannot be a member of a group: it has no id")
					continue
				}
				if prev, dup := seen[fu.Name]; dup {
					c.errorf(u.Pos, CodeTestDuplicate, "%s is a member of group %s twice (first at %s): a user has one role in a group", fu.Name, name, where(prev))
					continue
				}
				seen[fu.Name] = u.Pos
				fg.Members = append(fg.Members, Membership{User: fu, Role: role, Pos: posOf(u.Pos)})
			}
		}
	}
}

func isGroupRole(r GroupRole) bool {
	for _, x := range GroupRoles {
		if x == r {
			return true
		}
	}
	return false
}

// lookupUser finds a declared user (or anonymous), reporting an unknown one.
func (c *testChecker) lookupUser(id *Ident) *FixtureUser {
	if u, ok := c.users[id.Name()]; ok {
		return u
	}
	names := make([]string, 0, len(c.users))
	for n := range c.users {
		names = append(names, n)
	}
	c.errorf(id.Pos, CodeTestUnknownName, "unknown user %s: declare it with `user %s`%s", id.Raw, id.Raw, nearest(id.Name(), names...))
	return nil
}

func (c *testChecker) lookupGroup(id *Ident) (*FixtureGroup, bool) {
	if id.Name() == "none" && !id.Quoted() {
		return nil, true
	}
	if g, ok := c.groups[id.Name()]; ok {
		return g, true
	}
	names := make([]string, 0, len(c.groups))
	for n := range c.groups {
		names = append(names, n)
	}
	c.errorf(id.Pos, CodeTestUnknownName, "unknown group %s: declare it with `group %s { ... }`, or write none for no group%s", id.Raw, id.Raw, nearest(id.Name(), names...))
	return nil, false
}

// resource finds the resource a test names: schema.table, or a table name
// that only one resource has.
func (c *testChecker) resource(q *QualifiedName) *ResourceModel {
	parts := make([]string, len(q.Parts))
	for i, p := range q.Parts {
		parts[i] = p.Name()
	}
	var found []*ResourceModel
	var names []string
	for _, r := range c.m.Resources {
		names = append(names, r.Table, r.QualifiedName())
		switch len(parts) {
		case 1:
			if r.Table == parts[0] {
				found = append(found, r)
			}
		case 2:
			if r.Schema == parts[0] && r.Table == parts[1] {
				found = append(found, r)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0]
	case len(found) > 1:
		c.errorf(q.Pos, CodeTestUnknownName, "%s names more than one resource: write schema.table", displayName(parts))
	default:
		c.errorf(q.Pos, CodeTestUnknownName, "unknown resource %s: the .iam files declare %s%s", displayName(parts), resourceList(c.m), nearest(displayName(parts), names...))
	}
	return nil
}

func resourceList(m *Model) string {
	if len(m.Resources) == 0 {
		return "none"
	}
	names := make([]string, len(m.Resources))
	for i, r := range m.Resources {
		names[i] = r.QualifiedName()
	}
	return strings.Join(names, ", ")
}

// refName shows a row of r: the table name, or schema.table when another
// resource has the same table name.
func (c *testChecker) refName(r *ResourceModel, row string) string {
	name := r.Table
	for _, other := range c.m.Resources {
		if other != r && other.Table == r.Table {
			name = r.QualifiedName()
		}
	}
	return name + "[" + row + "]"
}

func (c *testChecker) row(tr *TestRow) {
	r := c.resource(tr.Ref.Resource)
	if r == nil {
		return
	}
	name, ok := c.name(tr.Ref.Row, "row")
	if !ok {
		return
	}
	if c.rows[r] == nil {
		c.rows[r] = map[string]*FixtureRow{}
	}
	if prev, dup := c.rows[r][name]; dup {
		c.errorf(tr.Ref.Row.Pos, CodeTestDuplicate, "row %s is declared twice (first at %s)", prev.Ref, whereAt(prev.Pos))
		return
	}
	fr := &FixtureRow{Resource: r, Name: name, Ref: c.refName(r, name), Pos: posOf(tr.Pos)}
	c.rows[r][name] = fr
	c.byDecl[tr] = fr
	c.t.Rows = append(c.t.Rows, fr)
}

// rowValues reads a declared row's values.
func (c *testChecker) rowValues(tr *TestRow) {
	fr := c.byDecl[tr]
	if fr == nil {
		return // reported when declared
	}
	var assigns []*TestAssign
	for _, it := range tr.Items {
		if it.Value != nil {
			assigns = append(assigns, it.Value)
		}
	}
	fr.Values, _ = c.values(fr.Resource, assigns, fr.Ref)
}

// values reads a row's values, or a write's changes.
func (c *testChecker) values(r *ResourceModel, assigns []*TestAssign, ref string) ([]Value, bool) {
	var out []Value
	ok := true
	seen := map[string]lexer.Position{}
	for _, a := range assigns {
		v, good := c.value(r, a, ref)
		if !good {
			ok = false
			continue
		}
		if prev, dup := seen[v.Column]; dup {
			c.errorf(a.Column.Pos, CodeTestDuplicate, "%s is given twice for %s (first at %s)", setColumnName(r, v.Column), ref, where(prev))
			ok = false
			continue
		}
		seen[v.Column] = a.Column.Pos
		out = append(out, v)
	}
	return out, ok
}

func (c *testChecker) value(r *ResourceModel, a *TestAssign, ref string) (Value, bool) {
	v := Value{Pos: posOf(a.Column.Pos)}
	lit := a.Value
	word := !strings.HasPrefix(lit.Raw, "'") && !strings.HasPrefix(lit.Raw, `"`)
	column := a.Column.Name()
	switch {
	case !a.Column.Quoted() && column == "owner":
		if r.OwnerColumn == "" {
			c.errorf(a.Column.Pos, CodeTestBadValue, "%s has no owner column (the resource declares none)", r.QualifiedName())
			return v, false
		}
		v.Column, v.Kind = r.OwnerColumn, UserID
		u := c.lookupUser(&Ident{Pos: lit.Pos, Raw: lit.Raw})
		if u == nil {
			return v, false
		}
		if u.Anonymous {
			c.errorf(lit.Pos, CodeTestBadValue, "anonymous cannot own a row: it has no id")
			return v, false
		}
		v.User = u
		return v, true
	case !a.Column.Quoted() && column == "group":
		if r.GroupColumn == "" {
			c.errorf(a.Column.Pos, CodeTestBadValue, "%s has no group column (the resource declares none)", r.QualifiedName())
			return v, false
		}
		v.Column, v.Kind = r.GroupColumn, GroupID
		g, ok := c.lookupGroup(&Ident{Pos: lit.Pos, Raw: lit.Raw})
		v.Group = g
		return v, ok
	case !a.Column.Quoted() && column == "parent":
		if r.Parent == nil {
			c.errorf(a.Column.Pos, CodeTestBadValue, "%s has no parent (the resource declares none)", r.QualifiedName())
			return v, false
		}
		v.Column = r.Parent.Column
		if !word {
			c.errorf(lit.Pos, CodeTestBadValue, "parent takes the name of a row of %s (or none), not %s", r.Parent.Resource.QualifiedName(), lit.Raw)
			return v, false
		}
		if strings.EqualFold(lit.Raw, "none") {
			v.Kind = Null
			return v, true
		}
		row := c.lookupRow(r.Parent.Resource, &Ident{Pos: lit.Pos, Raw: lit.Raw})
		if row == nil {
			return v, false
		}
		v.Kind, v.Row, v.Key = RowKey, row, r.Parent.Key
		return v, true
	}
	name, ok := c.name(a.Column, "column")
	if !ok {
		return v, false
	}
	if kw := setColumnName(r, name); kw != name {
		what := map[string]string{"owner": "a user", "group": "a group", "parent": "a row of the parent"}[kw]
		c.errorf(a.Column.Pos, CodeTestBadValue, "%s is the %s column of %s: write %s NAME (%s of this file)", name, kw, r.QualifiedName(), kw, what)
		return v, false
	}
	v.Column = name
	switch {
	case strings.HasPrefix(lit.Raw, "'"):
		v.Kind, v.Literal = Literal, (&String{Raw: lit.Raw}).Value()
		if !printable(v.Literal) {
			c.errorf(lit.Pos, CodeTestBadValue, "a value must not hold control characters")
			return v, false
		}
	case word && strings.EqualFold(lit.Raw, "null"):
		v.Kind = Null
	case word && (strings.EqualFold(lit.Raw, "true") || strings.EqualFold(lit.Raw, "false")):
		v.Kind, v.Literal, v.Bare = Literal, strings.ToLower(lit.Raw), true
	case word && lit.Raw[0] >= '0' && lit.Raw[0] <= '9':
		v.Kind, v.Literal, v.Bare = Literal, lit.Raw, true
	default:
		c.errorf(lit.Pos, CodeTestBadValue, "the value of %s must be a 'quoted string', a number, true, false or null, not %s", name, lit.Raw)
		return v, false
	}
	return v, true
}

// perm reads a permission word: read, create, write, delete, or the SQL
// verb for it (select, insert, update).
func (c *testChecker) perm(id *Ident, allowNone bool) (Perm, bool) {
	w := id.Name()
	aliases := map[string]Perm{"select": Read, "insert": Create, "update": Write}
	if p, ok := aliases[w]; ok {
		return p, true
	}
	if isPerm(Perm(w)) {
		return Perm(w), true
	}
	if allowNone && w == "none" {
		return "", true
	}
	expect := "read, create, write or delete"
	if allowNone {
		expect += " (or none)"
	}
	c.errorf(id.Pos, CodeTestUnknownName, "unknown permission %q: expected %s%s", id.Raw, expect, nearest(w, "read", "create", "write", "delete", "select", "insert", "update"))
	return "", false
}

func (c *testChecker) rowRef(ref *RowRef) *FixtureRow {
	r := c.resource(ref.Resource)
	if r == nil {
		return nil
	}
	return c.lookupRow(r, ref.Row)
}

func (c *testChecker) lookupRow(r *ResourceModel, id *Ident) *FixtureRow {
	if fr, ok := c.rows[r][id.Name()]; ok {
		return fr
	}
	var names []string
	for n := range c.rows[r] {
		names = append(names, n)
	}
	c.errorf(id.Pos, CodeTestUnknownName, "unknown row %s: declare it with `row %s { ... }`%s", c.refName(r, id.Raw), c.refName(r, id.Raw), nearest(id.Name(), names...))
	return nil
}

func (c *testChecker) expect(e *TestExpect) {
	who := c.lookupUser(e.Who)
	var perms []Perm
	ok := who != nil
	for _, p := range e.Perms {
		perm, good := c.perm(p, false)
		ok = ok && good
		perms = append(perms, perm)
	}
	fr := c.rowRef(e.Row)
	if fr == nil || !ok {
		return
	}
	var set []Value
	if len(e.Set) > 0 {
		if len(perms) != 1 || perms[0] != Write {
			c.errorf(e.Set[0].Pos, CodeTestBadValue, "set says what a write changes: it goes with write alone (`%s %s write %s set ...`)", e.Who.Raw, e.Can, fr.Ref)
			return
		}
		if set, ok = c.values(fr.Resource, e.Set, fr.Ref); !ok {
			return
		}
	}
	for _, p := range perms {
		c.t.Expectations = append(c.t.Expectations, &Expectation{
			Who: who, Perm: p, Row: fr, Set: set, Can: e.Can == "can", Pos: posOf(e.Pos),
		})
	}
}

// access expands a listing into one expectation per row, user and
// permission: can where the listing says so, cannot everywhere else.
func (c *testChecker) access(a *TestAccess, listed map[*ResourceModel]lexer.Position) {
	r := c.resource(a.Resource)
	if r == nil {
		return
	}
	if prev, dup := listed[r]; dup {
		c.errorf(a.Resource.Pos, CodeTestDuplicate, "%s has two access listings (first at %s): one lists every row", r.QualifiedName(), where(prev))
		return
	}
	listed[r] = a.Pos
	rowsListed := map[*FixtureRow]bool{}
	var cells []*Expectation
	for _, ar := range a.Rows {
		if ar.Row == nil {
			continue
		}
		fr := c.lookupRow(r, ar.Row)
		if fr == nil {
			continue
		}
		if rowsListed[fr] {
			c.errorf(ar.Row.Pos, CodeTestDuplicate, "row %s is listed twice", fr.Ref)
			continue
		}
		rowsListed[fr] = true
		grants := map[*FixtureUser]map[Perm]Pos{}
		for _, g := range ar.Grants {
			if g.Who == nil {
				continue
			}
			u := c.lookupUser(g.Who)
			if u == nil {
				continue
			}
			if _, dup := grants[u]; dup {
				c.errorf(g.Who.Pos, CodeTestDuplicate, "%s is listed twice for %s: list every permission on one line", u.Name, fr.Ref)
				continue
			}
			perms := map[Perm]Pos{}
			none := false
			for _, p := range g.Perms {
				perm, ok := c.perm(p, true)
				switch {
				case !ok:
				case perm == "":
					none = true
				default:
					if _, dup := perms[perm]; dup {
						c.errorf(p.Pos, CodeTestDuplicate, "%s is listed twice", perm)
					}
					perms[perm] = posOf(g.Who.Pos)
				}
			}
			if none && len(perms) > 0 {
				c.errorf(g.Who.Pos, CodeTestBadValue, "none means no permission: it stands alone")
			}
			grants[u] = perms
		}
		for _, u := range c.t.Users {
			perms, onLine := grants[u]
			for _, p := range AllPerms {
				pos, can := perms[p]
				if !can {
					// A permission missing from a user's line fails at that
					// line; anyone not listed at the row.
					pos = posOf(ar.Row.Pos)
					if onLine {
						pos = grantPos(ar, u)
					}
				}
				cells = append(cells, &Expectation{Who: u, Perm: p, Row: fr, Can: can, Listing: true, Pos: pos})
			}
		}
	}
	var missing []string
	for _, fr := range c.t.Rows {
		if fr.Resource == r && !rowsListed[fr] {
			missing = append(missing, fr.Name)
		}
	}
	if len(missing) > 0 {
		c.errorf(a.Pos, CodeTestIncomplete, "the access listing of %s leaves out %s: it lists every row of the resource (write `%s { }` for a row nobody may touch)", r.QualifiedName(), strings.Join(missing, ", "), missing[0])
	}
	c.t.Expectations = append(c.t.Expectations, cells...)
}

func grantPos(ar *TestAccessRow, u *FixtureUser) Pos {
	for _, g := range ar.Grants {
		if g.Who != nil && g.Who.Name() == u.Name {
			return posOf(g.Who.Pos)
		}
	}
	return posOf(ar.Row.Pos)
}

// nearest suggests the closest of names when a typo is likely.
func nearest(word string, names ...string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(word, n); d < bestDist && d < len(n) {
			best, bestDist = n, d
		}
	}
	if best == "" || best == word {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}
