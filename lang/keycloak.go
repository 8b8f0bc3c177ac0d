package lang

import (
	"fmt"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// What Keycloak's tokens carry besides the user id, as rules and resources
// use it: roles (realm and client roles), claims matched against a column
// (`keeper = claim 'user_type'`), tenants (`tenant column org_id from claim
// 'org_id'`), and the roles block's single-role mode. The syntax is in
// ast.go; this file is the checked meaning.

// KeycloakRole is `role 'moderator'` or `role 'editor' of client 'todo-app'`
// as written.
type KeycloakRole struct {
	Pos    lexer.Position
	Name   *String `parser:"@@"`
	Client *String `parser:"( 'of' 'client' @@ )?"`
}

// ClaimMatch is `keeper = claim 'user_type'` as written.
type ClaimMatch struct {
	Pos    lexer.Position
	Column *Ident  `parser:"@@ '='"`
	Claim  *String `parser:"'claim' @@"`
}

// Tenant is `tenant column org_id from claim 'org_id'` as written.
type Tenant struct {
	Pos    lexer.Position
	Column *Ident  `parser:"'tenant' 'column' @@"`
	Claim  *String `parser:"'from' 'claim' @@"`
}

// RoleSubject is a caller whose token lists a Keycloak role: a realm role
// (realm_access.roles) when Client is "", else a role of that client
// (resource_access.<client>.roles). Keycloak expands composite roles into
// the token, so a composite that includes the role counts.
type RoleSubject struct {
	Client string
	Name   string
}

// ClaimSubject is a caller whose token's claim equals the row's column:
// `keeper = claim 'user_type'`.
type ClaimSubject struct {
	Column string
	Claim  string // as written: Keycloak's claim name, dots nest (ClaimPath)
}

// TenantModel is a resource's tenant column: every rule applies only to
// rows whose column equals the caller's claim, inserts take it from the
// token, and no request moves a row to another tenant.
type TenantModel struct {
	Column   string
	Claim    string // as written (ClaimPath splits it)
	Pos      Pos    // the column
	ClaimPos Pos
}

func (s RoleSubject) String() string {
	if s.Client != "" {
		return fmt.Sprintf("role %s of client %s", quoteString(s.Name), quoteString(s.Client))
	}
	return "role " + quoteString(s.Name)
}

func (s ClaimSubject) String() string {
	return fmt.Sprintf("%s = claim %s", quoteForHint(s.Column), quoteString(s.Claim))
}

func (RoleSubject) Anonymous() bool  { return false }
func (ClaimSubject) Anonymous() bool { return false }

func (RoleSubject) OnlyRead() string { return "" }
func (ClaimSubject) OnlyRead() string {
	return "a claim says which rows a caller may see, not which they own; let owner or role rules grant changes"
}

func (s RoleSubject) ReadsFor(other Subject) bool  { return other == Subject(s) }
func (s ClaimSubject) ReadsFor(other Subject) bool { return other == Subject(s) }

func (s RoleSubject) ReadHint() string { return "grant read to " + s.String() }
func (ClaimSubject) ReadHint() string  { return "add read" }

// ClaimPath splits a claim name as Keycloak's mappers write it ("Token
// Claim Name"): a dot nests (org.id is {"org": {"id": ...}}), and \. is a
// dot inside a name.
func ClaimPath(claim string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(claim); i++ {
		switch {
		case claim[i] == '\\' && i+1 < len(claim) && claim[i+1] == '.':
			cur.WriteByte('.')
			i++
		case claim[i] == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(claim[i])
		}
	}
	return append(parts, cur.String())
}

// nonStringClaims are claims of a Keycloak access token that never hold a
// string: a rule comparing a column with one would match nothing.
var nonStringClaims = map[string]string{
	"exp":             "a number (when the token expires)",
	"iat":             "a number (when the token was issued)",
	"nbf":             "a number (the token's not-before time)",
	"auth_time":       "a number (when the user signed in)",
	"aud":             "an array in Keycloak's tokens (the audiences)",
	"realm_access":    "an object: the realm roles are in realm_access.roles (grant by them with `role 'name' can ...`)",
	"resource_access": "an object: the client roles are in resource_access.<client>.roles (grant by them with `role 'name' of client 'client' can ...`)",
}

// claim checks a claim a column is compared with, and returns it (or ""
// when it is unusable, already reported).
func (c *checker) claim(s *String, what string) string {
	claim := c.literal(s, "claim")
	if claim == "" {
		c.errs.add(s.Pos, "the %s claim is empty: name the JWT claim whose string value the column holds, e.g. claim 'org_id'", what)
		return ""
	}
	path := ClaimPath(claim)
	for _, p := range path {
		if p == "" {
			c.errs.add(s.Pos, "bad claim %s: an empty name between dots (Keycloak nests claims at dots, as org.id; write \\. for a dot inside a name)", s.Raw)
			return ""
		}
	}
	if why, ok := nonStringClaims[path[0]]; ok {
		c.errs.add(s.Pos, "claim %s is never a string: %s is %s; a column compared with it would match no row", s.Raw, path[0], why)
		return ""
	}
	c.stringClaims = append(c.stringClaims, claimUse{claim, s.Pos})
	return claim
}

// claimUse is a claim a rule or tenant compares a column with, checked
// against the groups claim once every file is read.
type claimUse struct {
	claim string
	pos   lexer.Position
}

// claimsAreStrings reports claims that the groups block says hold a list.
func (c *checker) claimsAreStrings() {
	g := c.model.Groups.TokenClaim
	for _, u := range c.stringClaims {
		if g != "" && len(ClaimPath(u.claim)) == 1 && u.claim == g {
			c.errs.add(u.pos, "claim '%s' is never a string: the groups block reads it as the token's list of groups; a column compared with it would match no row", u.claim)
		}
	}
}

// keycloakSubject is the meaning of `role '...' [of client '...']`.
func (c *checker) keycloakSubject(k *KeycloakRole) (Subject, bool) {
	name := c.literal(k.Name, "role name")
	ok := true
	if name == "" {
		c.errs.add(k.Name.Pos, "the role name is empty: name a Keycloak role, e.g. role 'moderator'")
		ok = false
	}
	client := ""
	if k.Client != nil {
		client = c.literal(k.Client, "client")
		if client == "" {
			c.errs.add(k.Client.Pos, "the client is empty: name the Keycloak client (its clientId, the key under resource_access), e.g. role 'editor' of client 'todo-app'")
			ok = false
		}
	}
	return RoleSubject{Client: client, Name: name}, ok
}

// claimSubject is the meaning of `column = claim '...'`.
func (c *checker) claimSubject(m *ClaimMatch) (Subject, bool) {
	if !c.ident(m.Column, "column name") {
		return nil, false
	}
	claim := c.claim(m.Claim, "matched")
	if claim == "" {
		return nil, false
	}
	return ClaimSubject{Column: m.Column.Name(), Claim: claim}, true
}

// tenant reads a resource's `tenant column c from claim '...'`.
func (c *checker) tenant(res *ResourceModel, t *Tenant, itemPos lexer.Position, name []string) {
	if res.Tenant != nil {
		c.errs.add(itemPos, "tenant column is declared twice in %s (first at %s)", displayName(name), whereAt(res.Tenant.Pos))
		return
	}
	if !c.ident(t.Column, "column name") {
		return
	}
	claim := c.claim(t.Claim, "tenant")
	if claim == "" {
		return
	}
	res.Tenant = &TenantModel{Column: t.Column.Name(), Claim: claim, Pos: posOf(t.Column.Pos), ClaimPos: posOf(t.Claim.Pos)}
}

// tenantRules checks what a tenant column rules out, once the resource's
// items are all read.
func (c *checker) tenantRules(res *ResourceModel, name []string) {
	t := res.Tenant
	if t == nil {
		return
	}
	for col, what := range map[string]string{res.OwnerColumn: "owner", res.GroupColumn: "group", res.PageKey: "page key"} {
		if col != "" && col == t.Column {
			c.errs.addAt(t.Pos, "the tenant column of %s cannot also be its %s column", displayName(name), what)
		}
	}
	for _, rule := range res.Rules {
		if rule.Subject == (AnonymousSubject{}) {
			c.errs.addAt(rule.Pos, "anonymous can read in %s: a request without a token has no tenant claim, so it could read no row of a resource with a tenant column; remove the rule (or the tenant column)", displayName(name))
		}
	}
}

// singleRole reads `single role r`: requests run as r with a token and
// without one (PostgREST's db-anon-role is r too, or a pooler allows one
// role); who is signed in comes only from the claims.
func (c *checker) singleRole(it *RoleItem, seen map[string]lexer.Position) {
	if !c.once(seen, "single role", it.Pos) || !c.roleName(it.Single) {
		return
	}
	for _, slot := range []string{"authenticated", "anonymous"} {
		if prev, ok := seen[slot]; ok {
			c.errs.add(it.Pos, "single role names the role of every request; the %s role is set too (at %s): keep one of them", slot, where(prev))
			return
		}
	}
	c.model.Roles.Authenticated = it.Single.Name()
	c.model.Roles.Anonymous = it.Single.Name()
	c.model.Roles.Single = true
}
