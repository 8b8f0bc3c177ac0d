package lang

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// MaxIdentLen is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// by the server, which would silently protect a different object.
const MaxIdentLen = 63

var bareIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// Check validates parsed files together and returns the model they mean.
// All problems are reported at once, each with its position.
func Check(files []*File) (*Model, error) {
	c := &checker{
		model:     &Model{Identity: DefaultIdentity, Roles: DefaultRoles, Timeouts: DefaultTimeouts, Groups: GroupSettings{Limits: DefaultGroupLimits, Profile: DefaultProfileClaims}},
		resources: map[string]*ResourceModel{},
	}
	for _, f := range files {
		for _, e := range f.Entries {
			switch {
			case e.Identity != nil:
				c.identity(e.Identity)
			case e.Roles != nil:
				c.roles(e.Roles)
			case e.Groups != nil:
				c.groups(e.Groups)
			case e.Resource != nil:
				c.resource(e.Resource)
			}
		}
	}
	c.groupOrder()
	c.parents()
	c.groupsNeeded()
	c.transfers()
	c.sharesAcrossResources()
	c.claimsAreStrings()
	if r := c.model.Roles; r.Authenticated == r.Anonymous && !r.Single {
		c.errs.add(c.rolesPos, "the authenticated and anonymous roles must differ (both are %q); for one role with and without a token, write `single role %s`", r.Anonymous, quoteForHint(r.Anonymous))
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	c.model.Warnings, c.model.Suppressions = c.warningsOf(files)
	sort.Slice(c.model.Resources, func(i, j int) bool {
		a, b := c.model.Resources[i], c.model.Resources[j]
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		return a.Table < b.Table
	})
	return c.model, nil
}

type checker struct {
	model       *Model
	errs        ErrorList
	identityPos *lexer.Position
	rolesPos    lexer.Position
	rolesSeen   bool
	resources   map[string]*ResourceModel
	// apiSchemaGiven: the groups block names an api schema, even a bad one
	// (already reported), so "needs api schema" would be a second error.
	apiSchemaGiven bool
	// stringClaims are the claims columns are compared with (keycloak.go).
	stringClaims []claimUse
	// roles: what names a group role, checked once every file is read
	// (grouproles.go): the order may be declared after the rules.
	groupRoleChecks roleChecks
}

func (c *checker) identity(id *Identity) {
	if c.identityPos != nil {
		c.errs.add(id.Pos, "identity is declared twice (first at %s): declare it once per policy directory", where(*c.identityPos))
		return
	}
	c.identityPos = &id.Pos
	seen := map[string]lexer.Position{}
	for _, it := range id.Items {
		switch {
		case it.Claim != nil:
			if c.once(seen, "claim", it.Pos) {
				claim := c.literal(it.Claim, "claim")
				if claim == "" {
					c.errs.add(it.Claim.Pos, "the identity claim is empty: name the JWT claim holding the user id, e.g. claim 'sub'")
				}
				c.model.Identity.Claim = claim
			}
		case it.Type != nil:
			if c.once(seen, "type", it.Pos) {
				switch t := IdentityType(it.Type.Name()); t {
				case UUID, Text:
					c.model.Identity.Type = t
				default:
					c.errs.add(it.Type.Pos, "unknown identity type %q: expected uuid or text", it.Type.Raw)
				}
			}
		case it.Audience != nil:
			if c.once(seen, "audience", it.Pos) {
				aud := c.literal(it.Audience, "audience")
				if aud == "" {
					c.errs.add(it.Audience.Pos, "the audience is empty: name the value tokens must carry in aud (PostgREST's jwt-aud), e.g. audience 'todo-api'")
				}
				c.model.Identity.Audience = aud
			}
		case it.Expiry != nil:
			if c.once(seen, "expiry", it.Pos) {
				switch it.Expiry.Name() {
				case "required":
					c.model.Identity.ExpiryOptional = false
				case "optional":
					c.model.Identity.ExpiryOptional = true
				default:
					c.errs.add(it.Expiry.Pos, "unknown expiry %q: expected required (the default: tokens must carry exp) or optional", it.Expiry.Raw)
				}
			}
		}
	}
}

func (c *checker) roles(r *Roles) {
	if c.rolesSeen {
		c.errs.add(r.Pos, "roles are declared twice (first at %s): declare them once per policy directory", where(c.rolesPos))
		return
	}
	c.rolesSeen, c.rolesPos = true, r.Pos
	c.model.RolesPos = posOf(r.Pos)
	seen := map[string]lexer.Position{}
	for _, it := range r.Items {
		if it.Timeout != nil {
			c.timeout(it.Timeout, seen)
			continue
		}
		if it.Single != nil {
			c.singleRole(it, seen)
			continue
		}
		if it.Slot == nil {
			continue
		}
		slot := it.Slot.Name()
		if prev, single := seen["single role"]; single && (slot == "authenticated" || slot == "anonymous") {
			c.errs.add(it.Pos, "single role names the role of every request (at %s); the %s role cannot be set too: keep one of them", where(prev), slot)
			continue
		}
		var target *string
		switch slot {
		case "authenticated":
			target = &c.model.Roles.Authenticated
		case "anonymous":
			target = &c.model.Roles.Anonymous
		case "owner":
			target = &c.model.Roles.Owner
		default:
			c.errs.add(it.Slot.Pos, "unknown role slot %q: expected authenticated, anonymous or owner", it.Slot.Raw)
			continue
		}
		if c.once(seen, slot, it.Pos) && c.roleName(it.Role) {
			*target = it.Role.Name()
		}
	}
}

func (c *checker) resource(r *Resource) {
	name, ok := c.qualifiedName(r.Name)
	if !ok {
		return
	}
	key := name[0] + "." + name[1]
	if prev, dup := c.resources[key]; dup {
		c.errs.add(r.Name.Pos, "resource %s is declared twice (first at %s)", displayName(name), whereAt(prev.Pos))
		return
	}
	res := &ResourceModel{
		Schema: name[0], Table: name[1], Pos: posOf(r.Pos),
	}
	c.resources[key] = res
	c.model.Resources = append(c.model.Resources, res)

	var ownerColPos, shareLimitPos *lexer.Position
	granted := map[string]map[Perm]lexer.Position{}
	shareLimits := map[string]lexer.Position{}
	shares := declaresShares(r)
	for _, it := range r.Items {
		switch {
		case it.Share != nil:
			c.share(res, it, name)
		case it.ShareLimit != nil:
			if shareLimitPos == nil {
				shareLimitPos = &it.Pos
			}
			c.shareLimit(res, it.ShareLimit, it.Pos, shareLimits)
		case it.OwnerColumn != nil:
			if ownerColPos != nil {
				c.errs.add(it.Pos, "owner column is declared twice in %s (first at %s)", displayName(name), where(*ownerColPos))
				continue
			}
			ownerColPos = &it.Pos
			if c.ident(it.OwnerColumn, "column name") {
				res.OwnerColumn = it.OwnerColumn.Name()
				res.OwnerPos = posOf(it.OwnerColumn.Pos)
			}
		case it.GroupColumn != nil:
			if res.GroupColumn != "" {
				c.errs.add(it.Pos, "group column is declared twice in %s (first at %s)", displayName(name), whereAt(res.GroupPos))
				continue
			}
			if c.ident(it.GroupColumn.Column, "column name") {
				res.GroupColumn = it.GroupColumn.Column.Name()
				res.GroupRequired = it.GroupColumn.Required
				res.GroupPos = posOf(it.GroupColumn.Column.Pos)
				if res.GroupColumn == res.OwnerColumn {
					c.errs.add(it.GroupColumn.Column.Pos, "the group column cannot also be the owner column")
				}
			}
		case it.PageBy != nil:
			if res.PageKey != "" {
				c.errs.add(it.Pos, "page by is declared twice in %s (first at %s)", displayName(name), whereAt(res.PagePos))
				continue
			}
			if c.ident(it.PageBy, "column name") {
				res.PageKey = it.PageBy.Name()
				res.PagePos = posOf(it.PageBy.Pos)
			}
		case it.Parent != nil:
			c.parentItem(res, it, name)
		case it.Tenant != nil:
			c.tenant(res, it.Tenant, it.Pos, name)
		case it.Rule != nil:
			c.rule(res, it.Rule, granted, shares)
		}
	}
	c.pageKey(res, name)
	c.tenantRules(res, name)
	if len(res.Grants(OwnerSubject{})) > 0 && ownerColPos == nil {
		c.errs.add(r.Pos, "resource %s has owner rules but no owner column: add `owner column owner_id` (the column holding the creator's user id)", displayName(name))
	}
	// What ranks group roles waits for the order (groupOrder).
	c.groupRoleChecks.resources = append(c.groupRoleChecks.resources, pendingResource{res: res, name: name, granted: granted})
	c.shareRules(res, name, granted, shareLimitPos)
}

// pageKey checks what a page function needs: a key that is neither the
// owner nor the group column (pages are ordered by it) and rows somebody
// may read.
func (c *checker) pageKey(res *ResourceModel, name []string) {
	if res.PageKey == "" {
		return
	}
	if res.PageKey == res.OwnerColumn || res.PageKey == res.GroupColumn {
		c.errs.addAt(res.PagePos, "page by %s in %s: pages are ordered by a unique key such as the primary key, not by the owner or group column", res.PageKey, displayName(name))
	}
	if res.GroupColumn == "before" || res.GroupColumn == "page_size" {
		c.errs.addAt(res.GroupPos, "group column %s in %s: the page function has a parameter of that name; rename the column or remove page by", res.GroupColumn, displayName(name))
	}
	if !res.anyoneCan(Read) {
		c.errs.addAt(res.PagePos, "page by in %s: nobody can read its rows, so a page would always be empty; add a read rule or remove page by", displayName(name))
	}
}

// groupRules checks what only makes sense with the group column and the
// role order in view.
func (c *checker) groupRules(res *ResourceModel, name []string, granted map[string]map[Perm]lexer.Position) {
	if res.HasGroupRules() && res.GroupColumn == "" {
		for _, role := range res.Roles() {
			for _, p := range append(AllPerms, Share) {
				if pos, ok := granted["group "+string(role)][p]; ok {
					c.errs.add(pos, "group rules need a group column in %s: add `group column group_id`", displayName(name))
					return
				}
			}
		}
	}
	if createRole := res.GroupMinRole(Create); createRole != "" && !res.Can(OwnerSubject{}, Create) {
		c.errs.add(granted["group "+string(createRole)][Create], "group %s can create needs owner can create in %s: whoever puts a row into a group creates it and owns it", createRole, displayName(name))
	}
	if res.GroupRequired && res.Can(OwnerSubject{}, Create) && res.GroupMinRole(Create) == "" {
		c.errs.addAt(res.GroupPos, "the group column of %s is required, but no group role can create: nobody could insert a row; add e.g. `group member can create`", displayName(name))
	}
}

func (c *checker) groups(g *Groups) {
	if c.model.Groups.Declared {
		c.errs.add(g.Pos, "groups are declared twice (first at %s): declare them once per policy directory", whereAt(c.model.Groups.Pos))
		return
	}
	c.model.Groups.Declared, c.model.Groups.Pos = true, posOf(g.Pos)
	seen := map[string]lexer.Position{}
	for _, it := range g.Items {
		switch {
		case it.Limit != nil:
			c.limit(it.Limit, it.Pos, seen)
		case it.APISchema != nil:
			c.apiSchemaGiven = true
			if c.once(seen, "api schema", it.Pos) && c.ident(it.APISchema, "schema name") {
				c.model.Groups.APISchema = it.APISchema.Name()
			}
		case it.TokenClaim != nil:
			if !c.once(seen, "token claim", it.Pos) {
				continue
			}
			claim := c.literal(it.TokenClaim.Claim, "claim")
			if claim == "" {
				c.errs.add(it.TokenClaim.Claim.Pos, "the token groups claim is empty: name the claim holding the groups, e.g. token claim 'groups' as member")
			}
			c.groupRoleChecks.ref(it.TokenClaim.As, func(role GroupRole) { c.model.Groups.TokenRole = role })
			c.model.Groups.TokenClaim = claim
		case it.Profile != nil:
			c.profileClaim(it.Profile, it.Pos, seen)
		case it.MembersSeeEmail:
			c.membersSeeEmail(it.Pos, seen)
		case it.AdminRole != nil:
			if c.once(seen, "admin role", it.Pos) {
				role := c.literal(it.AdminRole, "admin role")
				if role == "" {
					c.errs.add(it.AdminRole.Pos, "the admin role is empty: name a Keycloak realm role, e.g. admin role 'iam-admin'")
				}
				c.model.Groups.AdminRole = role
			}
		default:
			c.groupRolesItem(it, seen)
		}
	}
}

// durationPattern is a PostgreSQL duration iamc accepts: a whole number
// with a unit (0 alone turns the timeout off).
var durationPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,8}(us|ms|s|min|h|d))$`)

func (c *checker) timeout(t *Timeout, seen map[string]lexer.Position) {
	key := t.Kind + " timeout"
	v := strings.TrimSpace(t.Value.Value())
	if !durationPattern.MatchString(v) {
		c.errs.add(t.Value.Pos, "bad %s %s: write a whole number and a unit (ms, s, min, h), e.g. %s 5s, or 0 for none", key, t.Value.Raw, key)
		return
	}
	if !c.once(seen, key, t.Pos) {
		return
	}
	if t.Kind == "statement" {
		c.model.Timeouts.Statement = v
	} else {
		c.model.Timeouts.Lock = v
	}
}

// maxLimit keeps quotas within an integer column and within reason.
const maxLimit = 1000000

func (c *checker) limit(l *Limit, pos lexer.Position, seen map[string]lexer.Position) {
	phrase := l.Phrase()
	field, ok := limitPhrases[phrase]
	if !ok {
		c.errs.add(l.Pos, "unknown limit %q: expected max groups created per user N, max groups per user N, max members per group N or max invitations per group N", "max "+phrase)
		return
	}
	if !c.once(seen, "max "+phrase, pos) {
		return
	}
	n, err := strconv.Atoi(l.Value.Raw)
	if err != nil || n < 1 || n > maxLimit {
		c.errs.add(l.Value.Pos, "bad limit %s: max %s takes a whole number from 1 to %d", l.Value.Raw, phrase, maxLimit)
		return
	}
	*field(&c.model.Groups.Limits) = n
}

// groupsNeeded reports group columns without the groups block that says
// where the group API lives.
func (c *checker) groupsNeeded() {
	if c.model.Groups.Declared && c.model.Groups.APISchema == "" && !c.apiSchemaGiven {
		c.errs.addAt(c.model.Groups.Pos, "the groups block needs `api schema NAME`: the schema PostgREST serves, where the group functions and views are created")
		return
	}
	if c.model.Groups.Declared {
		return
	}
	for _, r := range c.model.Resources {
		if r.GroupColumn != "" {
			c.errs.addAt(r.GroupPos, "%s has a group column but no groups block declares the group API: add `groups { api schema %s }` (the schema PostgREST serves)", r.QualifiedName(), quoteForHint(r.Schema))
			return
		}
	}
}

func quoteForHint(name string) string {
	if bareIdent.MatchString(name) && strings.ToLower(name) == name {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func (c *checker) rule(res *ResourceModel, r *Rule, granted map[string]map[Perm]lexer.Position, shares bool) {
	subject, ok := c.subject(r.Subject)
	if !ok {
		return
	}
	key := subject.String()
	if granted[key] == nil {
		granted[key] = map[Perm]lexer.Position{}
	}
	var perms []Perm
	var columns map[Perm][]ColumnRef
	for _, item := range r.Perms {
		id := item.Name
		p := Perm(id.Name())
		if p == Transfer {
			if !c.transferPerm(subject, id) {
				continue
			}
		} else if !isPerm(p) && p != Share {
			c.errs.add(id.Pos, "unknown permission %q: expected %s%s", id.Raw, permList(shares), suggest(id.Name()))
			continue
		}
		if prev, dup := granted[key][p]; dup {
			c.errs.add(id.Pos, "%s is already granted %s (at %s)", key, p, where(prev))
			continue
		}
		if why := subject.OnlyRead(); why != "" && p != Read {
			c.errs.add(id.Pos, "%s callers can only be granted read: %s", key, why)
			continue
		}
		granted[key][p] = id.Pos
		if p == Transfer {
			res.TransferPos = posOf(id.Pos)
		}
		perms = append(perms, p)
		if item.Columns != nil {
			if columns == nil {
				columns = map[Perm][]ColumnRef{}
			}
			columns[p] = c.columnList(item)
		}
	}
	res.Rules = append(res.Rules, RuleModel{Subject: subject, Perms: perms, Columns: columns, Pos: posOf(r.Pos)})
	if len(r.Perms) > 0 {
		// Where a group role is named, to check it against the order.
		switch {
		case r.Subject.Role != nil:
			c.groupRoleChecks.rule(res, r.Subject.Role, posOf(r.Pos))
		case r.Subject.Parent != nil && r.Subject.Parent.Role != nil:
			c.groupRoleChecks.rule(res, r.Subject.Parent.Role, posOf(r.Pos))
		}
	}
}

// subject is the meaning of a rule's subject as written.
func (c *checker) subject(s *RuleSubject) (Subject, bool) {
	switch s.Kind() {
	case "group":
		// The role is checked against the order once it is known.
		return GroupSubject{GroupRole(s.Role.Name())}, true
	case "parent":
		p := s.Parent
		switch {
		case p.Role != nil:
			return ParentSubject{GroupSubject{GroupRole(p.Role.Name())}}, true
		case p.Who == "owner":
			return ParentSubject{OwnerSubject{}}, true
		default:
			return ParentSubject{ParentAudience{parentAudiences[p.Who]}}, true
		}
	case "role":
		return c.keycloakSubject(s.Keycloak)
	case "claim":
		return c.claimSubject(s.Match)
	case "owner":
		return OwnerSubject{}, true
	case "authenticated":
		return AuthenticatedSubject{}, true
	case "shared":
		return SharedSubject{}, true
	default:
		return AnonymousSubject{}, true
	}
}

// parentItem records a resource's parent item; the parent is found once
// every file is read (it may be declared later).
func (c *checker) parentItem(res *ResourceModel, it *ResourceItem, name []string) {
	p := it.Parent
	if res.Parent != nil {
		c.errs.add(it.Pos, "parent is declared twice in %s (first at %s): a row takes access from one parent", displayName(name), whereAt(res.Parent.Pos))
		return
	}
	parent, ok := c.qualifiedName(p.Table)
	ok = c.ident(p.Column, "column name") && ok
	key := "id"
	if p.Key != nil {
		if ok = c.ident(p.Key, "column name") && ok; ok {
			key = p.Key.Name()
		}
	}
	if !ok {
		return
	}
	res.Parent = &ParentLink{Schema: parent[0], Table: parent[1], Column: p.Column.Name(), Key: key, Pos: posOf(it.Pos)}
}

// parents finds every resource's parent and checks the parent rules: the
// parent is a declared resource, no chain of parents comes back to where it
// started, and what a rule names on the parent exists there.
func (c *checker) parents() {
	for _, res := range c.model.Resources {
		if p := res.Parent; p != nil {
			key := p.Schema + "." + p.Table
			p.Resource = c.resources[key]
			switch {
			case p.Resource == nil:
				c.errs.addAt(p.Pos, "parent %s of %s is not a resource: declare `resource %s { ... }` with its rules, or name another parent", key, res.QualifiedName(), key)
			case p.Resource == res:
				c.errs.addAt(p.Pos, "%s cannot be its own parent", res.QualifiedName())
				p.Resource = nil
			case p.Column == res.OwnerColumn || p.Column == res.GroupColumn:
				c.errs.addAt(p.Pos, "the parent column %s of %s is also its owner or group column", p.Column, res.QualifiedName())
			}
		}
	}
	for _, res := range c.model.Resources {
		if cycle := parentCycle(res); cycle != "" {
			c.errs.addAt(res.Parent.Pos, "parents of %s go round in a cycle (%s): a row's access must come from somewhere else in the end", res.QualifiedName(), cycle)
			res.Parent.Resource = nil
		}
	}
	for _, res := range c.model.Resources {
		for _, rule := range res.Rules {
			ps, ok := rule.Subject.(ParentSubject)
			if !ok {
				continue
			}
			switch {
			case res.Parent == nil:
				c.errs.addAt(rule.Pos, "%s: %s has no parent: add `parent schema.table via column` (the foreign key column pointing at the parent)", ps, res.QualifiedName())
			case res.Parent.Resource == nil:
				// reported above
			case ps.Of == OwnerSubject{} && res.Parent.Resource.OwnerColumn == "":
				c.errs.addAt(rule.Pos, "%s: the parent %s has no owner column", ps, res.Parent.Resource.QualifiedName())
			default:
				if _, group := ps.Of.(GroupSubject); group && res.Parent.Resource.GroupColumn == "" {
					c.errs.addAt(rule.Pos, "%s: the parent %s has no group column", ps, res.Parent.Resource.QualifiedName())
				}
			}
		}
	}
}

// parentCycle is the chain of parents from res back to res ("a -> b -> a"),
// or "" when the chain ends.
func parentCycle(res *ResourceModel) string {
	names := []string{res.QualifiedName()}
	seen := map[*ResourceModel]bool{res: true}
	for r := res; r.Parent != nil && r.Parent.Resource != nil; r = r.Parent.Resource {
		next := r.Parent.Resource
		names = append(names, next.QualifiedName())
		if next == res {
			return strings.Join(names, " -> ")
		}
		if seen[next] {
			return "" // a cycle further up, reported for its own members
		}
		seen[next] = true
	}
	return ""
}

// writesNeedReads: PostgreSQL lets UPDATE and DELETE reach only the rows
// the caller can read, so a subject granted write or delete needs a read
// that covers it (its own, a lower group role's, or everyone's).
func (c *checker) writesNeedReads(res *ResourceModel, name []string, granted map[string]map[Perm]lexer.Position) {
	for _, rule := range res.Rules {
		s := rule.Subject
		reads := false
		for _, other := range res.Rules {
			if res.ReadCovers(other.Subject, s) && res.Can(other.Subject, Read) {
				reads = true
				break
			}
		}
		if reads {
			continue
		}
		for _, p := range rule.Perms {
			switch p {
			case Write, Delete:
				c.errs.add(granted[s.String()][p], "%s can %s but not read in %s: PostgreSQL only lets UPDATE and DELETE reach rows the caller can read; %s",
					s, p, displayName(name), s.ReadHint())
			case Share:
				c.errs.add(granted[s.String()][p], "%s can share but not read in %s: one shares rows one can read; %s",
					s, displayName(name), s.ReadHint())
			}
		}
	}
}

// anyoneCan reports whether some rule grants perm to anyone.
func (r *ResourceModel) anyoneCan(perm Perm) bool {
	for _, rule := range r.Rules {
		if r.Can(rule.Subject, perm) {
			return true
		}
	}
	return false
}

// once records key as seen and reports a duplicate item in a block.
func (c *checker) once(seen map[string]lexer.Position, key string, pos lexer.Position) bool {
	if prev, dup := seen[key]; dup {
		c.errs.add(pos, "%s is set twice (first at %s)", key, where(prev))
		return false
	}
	seen[key] = pos
	return true
}

func (c *checker) qualifiedName(q *QualifiedName) ([]string, bool) {
	if len(q.Parts) != 2 {
		c.errs.add(q.Pos, "resource name must be schema.table (e.g. app.todos), got %d part(s)", len(q.Parts))
		return nil, false
	}
	ok := c.ident(q.Parts[0], "schema name")
	ok = c.ident(q.Parts[1], "table name") && ok
	if !ok {
		return nil, false
	}
	return []string{q.Parts[0].Name(), q.Parts[1].Name()}, true
}

// ident validates an identifier the way PostgreSQL would read it.
func (c *checker) ident(id *Ident, what string) bool {
	switch {
	case id.Quoted() && id.Name() == "":
		c.errs.add(id.Pos, "bad %s: a quoted identifier cannot be empty", what)
	case !printable(id.Name()):
		c.errs.add(id.Pos, "bad %s %s: names may not contain control characters or invalid UTF-8", what, strconv.Quote(id.Name()))
	case !id.Quoted() && !bareIdent.MatchString(id.Raw):
		c.errs.add(id.Pos, "bad %s %s: an unquoted identifier starts with a letter or _ (quote it as %q if the name really is that)", what, id.Raw, id.Raw)
	case len(id.Name()) > MaxIdentLen:
		// PostgreSQL would cut the name (NAMEDATALEN) with only a NOTICE,
		// and the policies would protect some other table or column.
		size := fmt.Sprintf("%d bytes", len(id.Name()))
		if n := utf8.RuneCountInString(id.Name()); n != len(id.Name()) {
			size += fmt.Sprintf(" (%d characters in UTF-8)", n)
		}
		c.errs.add(id.Pos, "bad %s: %s is longer than PostgreSQL's limit of %d; PostgreSQL would silently cut it to %d bytes, so shorten it", what, size, MaxIdentLen, MaxIdentLen)
	default:
		return true
	}
	return false
}

// printable reports whether s is valid UTF-8 without control characters:
// names and strings end up in SQL and in SQL comments, where a carriage
// return would end a comment early.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// literal validates a quoted string value.
func (c *checker) literal(str *String, what string) string {
	v := str.Value()
	if !printable(v) {
		c.errs.add(str.Pos, "bad %s %s: control characters and invalid UTF-8 are not allowed", what, strconv.Quote(v))
	}
	return v
}

// reservedRoles are names PostgreSQL will not take as a role: public means
// every role (even quoted), the others are special words.
var reservedRoles = map[string]string{
	"public":       "PostgreSQL reads it as PUBLIC, every role",
	"none":         "it is a reserved word for roles",
	"current_user": "it is a reserved word for roles",
	"current_role": "it is a reserved word for roles",
	"session_user": "it is a reserved word for roles",
}

func (c *checker) roleName(id *Ident) bool {
	if !c.ident(id, "role name") {
		return false
	}
	name := id.Name()
	if why, bad := reservedRoles[name]; bad {
		c.errs.add(id.Pos, "bad role name %s: %s", name, why)
		return false
	}
	if strings.HasPrefix(name, "pg_") {
		c.errs.add(id.Pos, "bad role name %s: names starting with pg_ are PostgreSQL's own roles", name)
		return false
	}
	return true
}

func isPerm(p Perm) bool {
	for _, q := range AllPerms {
		if p == q {
			return true
		}
	}
	return false
}

// suggest names the closest permission when a typo is likely.
func suggest(word string) string {
	best, bestDist := "", 3
	for _, p := range AllPerms {
		if d := editDistance(word, string(p)); d < bestDist {
			best, bestDist = string(p), d
		}
	}
	synonyms := map[string]Perm{"select": Read, "insert": Create, "update": Write, "modify": Write, "remove": Delete}
	if p, ok := synonyms[word]; ok {
		best = string(p)
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func where(p lexer.Position) string { return whereAt(posOf(p)) }

// whereAt is where for a position the model recorded.
func whereAt(p Pos) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

func displayName(parts []string) string { return strings.Join(parts, ".") }
