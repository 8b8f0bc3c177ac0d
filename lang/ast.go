// Package lang reads .iam files: lexing, parsing into a positioned AST,
// canonical formatting and semantic checks that need no database.
// It knows text and never SQL.
package lang

import (
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// File is one parsed .iam file. Comments are kept as entries so that
// `iamc fmt` can put them back where they were.
type File struct {
	Name    string   `parser:""`
	Entries []*Entry `parser:"@@*"`
}

// Entry is one top-level item of a file.
type Entry struct {
	Pos      lexer.Position
	EndPos   lexer.Position
	Comment  *Comment  `parser:"  @@"`
	Identity *Identity `parser:"| @@"`
	Roles    *Roles    `parser:"| @@"`
	Groups   *Groups   `parser:"| @@"`
	Resource *Resource `parser:"| @@"`
}

// Comment is a `#` comment, kept verbatim (without the newline).
type Comment struct {
	Pos  lexer.Position
	Text string `parser:"@Comment"`
}

// Identity says which JWT claim holds the user id and its SQL type, and
// which tokens the runtime accepts.
//
//	identity { claim 'sub'  type uuid  audience 'todo-api'  expiry optional }
type Identity struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*IdentityItem `parser:"'identity' '{' @@* '}'"`
}

// IdentityItem is one line of an identity block.
type IdentityItem struct {
	Pos      lexer.Position
	EndPos   lexer.Position
	Comment  *Comment `parser:"  @@"`
	Claim    *String  `parser:"| 'claim' @@"`
	Type     *Ident   `parser:"| 'type' @@"`
	Audience *String  `parser:"| 'audience' @@"`
	Expiry   *Ident   `parser:"| 'expiry' @@"`
}

// Roles names the database roles the generated SQL is written for.
//
//	roles { authenticated web_user  anonymous web_anon  owner api_owner }
type Roles struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*RoleItem `parser:"'roles' '{' @@* '}'"`
}

// RoleItem binds one role slot to a role name, or sets a timeout of the
// runtime roles.
type RoleItem struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Comment *Comment `parser:"  @@"`
	Timeout *Timeout `parser:"| @@"`
	// Single is `single role web_user`: every request runs as that one
	// role, signed in or not (lang/keycloak.go).
	Single *Ident `parser:"| 'single' 'role' @@"`
	Slot   *Ident `parser:"| @@"`
	Role   *Ident `parser:"  @@"`
}

// Timeout caps every statement (or every lock wait) of the runtime roles:
//
//	statement timeout 5s
//	lock timeout '2s'
type Timeout struct {
	Pos   lexer.Position
	Kind  string `parser:"@('statement' | 'lock') 'timeout'"`
	Value *Word  `parser:"@@"`
}

// Word is a value written bare (5s) or single-quoted ('5s').
type Word struct {
	Pos lexer.Position
	Raw string `parser:"@(String | Number | Ident)"`
}

// Value is the word without quotes.
func (w *Word) Value() string {
	if strings.HasPrefix(w.Raw, "'") {
		return (&String{Raw: w.Raw}).Value()
	}
	return w.Raw
}

// Groups is the group settings block.
//
//	groups { api schema app  token claim 'groups' as member  admin role 'iam-admin' }
type Groups struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*GroupsItem `parser:"'groups' '{' @@* '}'"`
}

// GroupsItem is one line of a groups block.
type GroupsItem struct {
	Pos        lexer.Position
	EndPos     lexer.Position
	Comment    *Comment    `parser:"  @@"`
	APISchema  *Ident      `parser:"| 'api' 'schema' @@"`
	TokenClaim *TokenClaim `parser:"| 'token' 'claim' @@"`
	AdminRole  *String     `parser:"| 'admin' 'role' @@"`
	Limit      *Limit      `parser:"| 'max' @@"`
	// Custom group roles (groups_roles.go): the roles and their order,
	// who manages members, Keycloak subgroups conferring a role, and a
	// role the files no longer declare whose memberships move to another.
	RoleOrder *RoleList      `parser:"| 'roles' @@"`
	ManagedBy *Ident         `parser:"| 'members' 'managed' 'by' @@"`
	Subgroup  *TokenSubgroup `parser:"| 'token' 'subgroup' @@"`
	RoleMove  *RoleMove      `parser:"| 'role' @@"`
	// People (people.go): the user directory's claims, email visibility.
	Profile         *ProfileClaim `parser:"| @@"`
	MembersSeeEmail bool          `parser:"| @('members' 'see' 'email')"`
}

// Limit is a quota of the group API: `max groups per user 200`.
type Limit struct {
	Pos   lexer.Position
	What  []string `parser:"@('groups' | 'members' | 'created' | 'per' | 'user' | 'group' | 'invitations')+"`
	Value *Ident   `parser:"@@"`
}

// Phrase is the limit's words as written, single-spaced.
func (l *Limit) Phrase() string { return strings.Join(l.What, " ") }

// TokenClaim maps the groups named in a token claim to a membership role.
type TokenClaim struct {
	Pos   lexer.Position
	Claim *String `parser:"@@"`
	As    *Ident  `parser:"'as' @@"`
}

// Resource protects one table.
type Resource struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   *QualifiedName  `parser:"'resource' @@"`
	Items  []*ResourceItem `parser:"'{' @@* '}'"`
}

// ResourceItem is a column declaration, a page key, a rule or a comment.
type ResourceItem struct {
	Pos         lexer.Position
	EndPos      lexer.Position
	Comment     *Comment     `parser:"  @@"`
	OwnerColumn *Ident       `parser:"| 'owner' 'column' @@"`
	GroupColumn *GroupColumn `parser:"| 'group' 'column' @@"`
	PageBy      *Ident       `parser:"| 'page' 'by' @@"`
	Parent      *ParentDecl  `parser:"| 'parent' @@"`
	Tenant      *Tenant      `parser:"| @@"`
	Share       *ShareItem   `parser:"| 'share' @@"` // share.go
	ShareLimit  *ShareLimit  `parser:"| 'max' @@"`   // share.go
	Rule        *Rule        `parser:"| @@"`
}

// ParentDecl names the resource a row takes access from, and the foreign
// key column that points at it: `parent app.stores via store_id` (the
// parent's key is id unless `references <column>` says otherwise).
type ParentDecl struct {
	Pos    lexer.Position
	Table  *QualifiedName `parser:"@@"`
	Column *Ident         `parser:"'via' @@"`
	Key    *Ident         `parser:"('references' @@)?"`
}

// GroupColumn names the column holding a row's group.
type GroupColumn struct {
	Pos      lexer.Position
	Column   *Ident `parser:"@@"`
	Required bool   `parser:"@'required'?"`
}

// Rule grants permissions to a subject: `owner can read, write`.
type Rule struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Subject *RuleSubject  `parser:"@@ 'can'"`
	Perms   []*Permission `parser:"@@ (',' @@)*"`
}

// Permission is one permission of a rule, with the columns it is limited
// to when a list follows: `write (stock)`, `read (id, name)`.
type Permission struct {
	Pos     lexer.Position
	Name    *Ident   `parser:"@@"`
	Columns []*Ident `parser:"( '(' @@ (',' @@)* ')' )?"`
}

// RuleSubject is who a rule is about, as written (lang.Subject is its
// checked meaning).
type RuleSubject struct {
	Pos lexer.Position
	// Match is `keeper = claim 'user_type'` (lang/keycloak.go). First: a
	// column may be called owner, group or parent.
	Match *ClaimMatch `parser:"  @@"`
	// Parent is who, on the parent row, a rule about a child is for.
	Parent *ParentOf `parser:"| 'parent' @@"`
	// Role is the membership role of a group rule: member, admin or owner.
	Role *Ident `parser:"| 'group' @@"`
	// Keycloak is a Keycloak role: `role 'moderator'` (a realm role) or
	// `role 'editor' of client 'todo-app'` (lang/keycloak.go).
	Keycloak *KeycloakRole `parser:"| 'role' @@"`
	Who      string        `parser:"| @('owner' | 'authenticated' | 'anonymous' | 'shared')"`
}

// ParentOf is the subject of a parent rule, on the parent row: its owner,
// a role of its group, or everyone the parent's rules let read, write or
// delete it.
type ParentOf struct {
	Pos  lexer.Position
	Role *Ident `parser:"  'group' @@"`
	Who  string `parser:"| @('owner' | 'readers' | 'writers' | 'deleters')"`
}

// Kind is "group" for group rules, "parent" for parent rules, "role" for
// Keycloak roles, "claim" for claim matches, else the subject word.
func (s *RuleSubject) Kind() string {
	switch {
	case s.Parent != nil:
		return "parent"
	case s.Role != nil:
		return "group"
	case s.Keycloak != nil:
		return "role"
	case s.Match != nil:
		return "claim"
	}
	return s.Who
}

// QualifiedName is schema.table (schema required by the checker).
type QualifiedName struct {
	Pos   lexer.Position
	Parts []*Ident `parser:"@@ ('.' @@)*"`
}

// Ident is an identifier as written: bare (folded to lower case, as
// PostgreSQL does) or double-quoted (kept exactly).
type Ident struct {
	Pos lexer.Position
	Raw string `parser:"@(Ident | QIdent | Number)"`
}

// String is a single-quoted literal.
type String struct {
	Pos lexer.Position
	Raw string `parser:"@String"`
}

// Quoted reports whether the identifier was written in double quotes.
func (i *Ident) Quoted() bool { return strings.HasPrefix(i.Raw, `"`) }

// Name is the identifier's value: unquoted and unescaped, or folded to
// lower case when bare, exactly as PostgreSQL reads it.
func (i *Ident) Name() string {
	if i.Quoted() {
		return strings.ReplaceAll(i.Raw[1:len(i.Raw)-1], `""`, `"`)
	}
	return strings.ToLower(i.Raw)
}

// Value is the literal's value without quotes.
func (s *String) Value() string {
	return strings.ReplaceAll(s.Raw[1:len(s.Raw)-1], `''`, `'`)
}

// RoleList is the membership roles of the groups block, lowest first:
// `roles viewer < editor < admin < owner`.
type RoleList struct {
	Pos   lexer.Position
	Roles []*Ident `parser:"@@ ('<' @@)*"`
}

// TokenSubgroup says which role a Keycloak subgroup confers in the group
// above it: `token subgroup 'managers' as manager` makes a token listing
// /campus/chicago/managers a manager of the group whose token name is
// /campus/chicago.
type TokenSubgroup struct {
	Pos  lexer.Position
	Name *String `parser:"@@"`
	As   *Ident  `parser:"'as' @@"`
}

// RoleMove names a role the files no longer declare and the declared role
// its memberships take: `role member becomes viewer` (a rename, or the
// removal of a role members still hold).
type RoleMove struct {
	Pos  lexer.Position
	From *Ident `parser:"@@"`
	To   *Ident `parser:"'becomes' @@"`
}
