package lang

import (
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Custom group roles: the groups block may declare the membership roles
// and their order (`roles viewer < editor < admin < owner`), which role
// manages members (`members managed by editor`), which Keycloak subgroup
// confers which role (`token subgroup 'managers' as manager`), and where
// the memberships of a role no longer declared go (`role member becomes
// viewer`). Rules may name a role before the groups block is read (files
// are read in name order), so every name of a role is checked once all
// files are: groupOrder.

// The message formats of the group roles' errors (codes.go gives each its code).
const (
	formatRoleTwice        = "group role %s is declared twice in the order (first at %s)"
	formatRoleNotOwnerLast = "the highest group role is owner (a group's creator, the role it always keeps, the only one that makes owners and deletes the group): end the order with `< owner`"
	formatSubgroupBad      = "bad token subgroup %s: name one Keycloak subgroup, without slashes (token subgroup 'managers' as manager: /campus/chicago/managers confers manager in the group /campus/chicago)"
	formatSubgroupTwice    = "token subgroup %s is declared twice (first at %s)"
	formatMoveTwice        = "role %s becomes one role (first at %s)"
	formatRoleQuoted       = "bad group role %s: a group role is a bare name (letters, digits and _), e.g. editor"
	formatRoleReserved     = "bad group role %s: it reads as part of a rule (group %s ...); pick another name"
	formatUnknownGroupRole = "unknown group role %q: expected %s"
	formatSubgroupNoClaim  = "token subgroup needs `token claim 'groups' as ROLE`: the claim that lists the Keycloak group paths"
	formatMoveDeclared     = "role %s becomes %s, but %s is declared: a role that becomes another is one the files no longer declare"
)

// roleChecks collects what names a group role until the order is known.
type roleChecks struct {
	refs      []roleRef
	rules     []ruleRoleRef
	resources []pendingResource
}

// roleRef is a name of the groups block that must be a declared role, and
// what to do with it once it is.
type roleRef struct {
	id  *Ident
	set func(GroupRole)
}

// ruleRoleRef is a rule naming a group role (group R, parent group R).
type ruleRoleRef struct {
	res *ResourceModel
	id  *Ident
	pos Pos // the rule's
}

// pendingResource is a resource whose checks rank group roles.
type pendingResource struct {
	res     *ResourceModel
	name    []string
	granted map[string]map[Perm]lexer.Position
}

func (r *roleChecks) ref(id *Ident, set func(GroupRole)) {
	r.refs = append(r.refs, roleRef{id, set})
}

func (r *roleChecks) rule(res *ResourceModel, id *Ident, pos Pos) {
	r.rules = append(r.rules, ruleRoleRef{res, id, pos})
}

// reservedGroupRoles are words a role cannot be named: they would read as
// another item of a resource (`group column x`) or of the rule.
var reservedGroupRoles = map[string]bool{"column": true, "can": true}

// groupRolesItem reads the items of the groups block about roles.
func (c *checker) groupRolesItem(it *GroupsItem, seen map[string]lexer.Position) {
	g := &c.model.Groups
	switch {
	case it.RoleOrder != nil:
		if !c.once(seen, "roles", it.Pos) {
			return
		}
		g.RolesPos = posOf(it.RoleOrder.Pos)
		order := RoleOrder{}
		at := map[GroupRole]lexer.Position{}
		ok := true
		for _, id := range it.RoleOrder.Roles {
			if !c.groupRoleName(id) {
				ok = false
				continue
			}
			role := GroupRole(id.Name())
			if prev, dup := at[role]; dup {
				c.errs.add(id.Pos, formatRoleTwice, role, where(prev))
				ok = false
				continue
			}
			at[role] = id.Pos
			order = append(order, role)
		}
		if !ok {
			return
		}
		if order[len(order)-1] != GroupOwner {
			c.errs.add(it.RoleOrder.Pos, formatRoleNotOwnerLast)
			return
		}
		g.Roles = order
	case it.ManagedBy != nil:
		if c.once(seen, "members managed by", it.Pos) {
			g.ManagedByPos = posOf(it.ManagedBy.Pos)
			c.groupRoleChecks.ref(it.ManagedBy, func(role GroupRole) { g.ManagedBy = role })
		}
	case it.Subgroup != nil:
		name := c.literal(it.Subgroup.Name, "subgroup")
		switch {
		case name == "" || strings.Contains(name, "/"):
			c.errs.add(it.Subgroup.Name.Pos, formatSubgroupBad, it.Subgroup.Name.Raw)
			return
		}
		for _, prev := range g.TokenSubgroups {
			if prev.Name == name {
				c.errs.add(it.Pos, formatSubgroupTwice, it.Subgroup.Name.Raw, whereAt(prev.Pos))
				return
			}
		}
		g.TokenSubgroups = append(g.TokenSubgroups, TokenSubgroupModel{Name: name, Pos: posOf(it.Pos)})
		i := len(g.TokenSubgroups) - 1
		c.groupRoleChecks.ref(it.Subgroup.As, func(role GroupRole) { g.TokenSubgroups[i].Role = role })
	case it.RoleMove != nil:
		m := it.RoleMove
		if !c.groupRoleName(m.From) {
			return
		}
		from := GroupRole(m.From.Name())
		for _, prev := range g.RoleMoves {
			if prev.From == from {
				c.errs.add(m.From.Pos, formatMoveTwice, from, whereAt(prev.Pos))
				return
			}
		}
		g.RoleMoves = append(g.RoleMoves, RoleMoveModel{From: from, Pos: posOf(it.Pos)})
		i := len(g.RoleMoves) - 1
		c.groupRoleChecks.ref(m.To, func(role GroupRole) { g.RoleMoves[i].To = role })
	}
}

// roleName checks the name of a group role: a bare word, as roles are
// written in messages and hints ("a group role is member, admin or owner").
func (c *checker) groupRoleName(id *Ident) bool {
	if !c.ident(id, "group role") {
		return false
	}
	switch name := id.Name(); {
	case id.Quoted():
		c.errs.add(id.Pos, formatRoleQuoted, id.Raw)
	case reservedGroupRoles[name]:
		c.errs.add(id.Pos, formatRoleReserved, name, name)
	default:
		return true
	}
	return false
}

// groupOrder settles the order of the group roles, then checks every name
// of a role against it and runs the checks that rank roles.
func (c *checker) groupOrder() {
	g := &c.model.Groups
	if g.Roles == nil {
		g.Roles = GroupRoles
	}
	order := g.Roles
	known := func(id *Ident) (GroupRole, bool) {
		role := GroupRole(id.Name())
		if order.Rank(role) == 0 {
			c.errs.add(id.Pos, formatUnknownGroupRole, id.Raw, orList(order))
			return "", false
		}
		return role, true
	}
	for _, ref := range c.groupRoleChecks.refs {
		if role, ok := known(ref.id); ok {
			ref.set(role)
		}
	}
	if g.ManagedBy == "" {
		g.ManagedBy = GroupOwner
		if order.Rank(Admin) > 0 {
			g.ManagedBy = Admin
		}
	}
	if len(g.TokenSubgroups) > 0 && g.TokenClaim == "" {
		c.errs.addAt(g.TokenSubgroups[0].Pos, formatSubgroupNoClaim)
	}
	for _, m := range g.RoleMoves {
		if order.Rank(m.From) > 0 {
			c.errs.addAt(m.Pos, formatMoveDeclared, m.From, m.To, m.From)
		}
	}

	// Rules naming an unknown role are reported and left out, so that
	// nothing else is said about them.
	bad := map[*ResourceModel]map[Pos]bool{}
	for _, ref := range c.groupRoleChecks.rules {
		if _, ok := known(ref.id); !ok {
			if bad[ref.res] == nil {
				bad[ref.res] = map[Pos]bool{}
			}
			bad[ref.res][ref.pos] = true
		}
	}
	for _, p := range c.groupRoleChecks.resources {
		res := p.res
		res.GroupRoles = order
		if drop := bad[res]; drop != nil {
			kept := res.Rules[:0]
			for _, rule := range res.Rules {
				if !drop[rule.Pos] {
					kept = append(kept, rule)
				}
			}
			res.Rules = kept
		}
		c.writesNeedReads(res, p.name, p.granted)
		c.groupRules(res, p.name, p.granted)
		c.columnRules(res, p.name)
	}
}

// orList is "member, admin or owner".
func orList(order RoleOrder) string {
	names := make([]string, len(order))
	for i, r := range order {
		names[i] = string(r)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Order is the order of the membership roles in force: the declared one,
// or GroupRoles (also in a model built by hand).
func (g GroupSettings) Order() RoleOrder {
	if g.Roles == nil {
		return GroupRoles
	}
	return g.Roles
}

// Manager is the lowest role that manages members: the declared one, or
// admin when the order has it, else owner.
func (g GroupSettings) Manager() GroupRole {
	switch {
	case g.ManagedBy != "":
		return g.ManagedBy
	case g.Order().Rank(Admin) > 0:
		return Admin
	}
	return GroupOwner
}

// ManagerRoles are the roles that manage members, highest first (they
// are "owners and admins" in the group API's messages).
func (g GroupSettings) ManagerRoles() []GroupRole {
	order := g.Order()
	var out []GroupRole
	for i := len(order) - 1; i >= 0 && i+1 >= order.Rank(g.Manager()); i-- {
		out = append(out, order[i])
	}
	return out
}

// ManagerByDefault reports whether the roles that manage members are
// those the runtime finds without being told: admin and above when admin
// is declared, else owners.
func (g GroupSettings) ManagerByDefault() bool {
	def := GroupOwner
	if g.Order().Rank(Admin) > 0 {
		def = Admin
	}
	return g.Manager() == def
}
