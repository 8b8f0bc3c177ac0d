package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// Arm is one arm of a policy as the build writes it: the condition under
// which one kind of subject grants a command, and the rules it comes
// from. iamc explain evaluates each arm in PostgreSQL, as a caller, to say
// which rule grants an access or why none does: the condition is the
// policy's own text, so the answer is the database's.
type Arm struct {
	// Kind names the kind of subject: everyone, owner, group, parent,
	// role (Keycloak roles), claim (claim matches), shared (row shares) or
	// admin.
	Kind string
	// Role is, for a group arm, the lowest membership role it accepts.
	Role lang.GroupRole
	// Rules are the rules the arm comes from, in file order (an admin
	// arm has none: Cites says where it comes from).
	Rules []lang.RuleModel
	// Cites are what else the arm comes from (the groups block's admin role).
	Cites []string
	// Cond is the condition, its columns unqualified or of the alias
	// given to PolicyArms.
	Cond string
}

// Command is an SQL command and the permission that grants it.
type Command struct {
	Perm lang.Perm
	SQL  string // select, insert, update, delete
}

// Commands lists the commands a policy can be for, in policy order.
func Commands() []Command {
	out := make([]Command, len(commands))
	for i, c := range commands {
		out[i] = Command{Perm: c.perm, SQL: c.cmd}
	}
	return out
}

// PolicyArms is the arms of the policy for perm on r, for requests of the
// anonymous role (anonymous) or of the authenticated one, in the order the
// policy lists them; nil when no rule grants perm to that role. alias
// qualifies the columns ("" for none, as in the policy).
func PolicyArms(m *lang.Model, r *lang.ResourceModel, anonymous bool, perm lang.Perm, alias string) []Arm {
	audience := audienceAuthenticated
	if anonymous {
		audience = audienceAnonymous
	}
	c := newRuleContext(m, r, alias)
	var arms []Arm
	for _, k := range c.kinds {
		cond := k.arm(c, audience, perm)
		if cond == nil {
			continue
		}
		if c.tenant != nil {
			// As the policy holds it: in the caller's tenant.
			cond = c.tenant.restrict(c, cond)
		}
		a := Arm{Cond: String(cond), Cites: k.cites(c, audience, perm)}
		switch k.(type) {
		case everyone:
			a.Kind = "everyone"
			for _, rule := range r.Rules {
				if rule.Subject == (lang.AnonymousSubject{}) || rule.Subject == (lang.AuthenticatedSubject{}) && !anonymous {
					a.Rules = appendGranting(a.Rules, rule, perm)
				}
			}
		case owner:
			a.Kind = "owner"
			for _, rule := range r.Rules {
				_, isGroup := rule.Subject.(lang.GroupSubject)
				// A new row in a group: the group rules with create say
				// which groups it may enter.
				if rule.Subject == (lang.OwnerSubject{}) || isGroup && perm == lang.Create {
					a.Rules = appendGranting(a.Rules, rule, perm)
				}
			}
		case group:
			a.Kind, a.Role = "group", r.GroupMinRole(perm)
			for _, rule := range r.Rules {
				if _, ok := rule.Subject.(lang.GroupSubject); ok {
					a.Rules = appendGranting(a.Rules, rule, perm)
				}
			}
		case parent:
			a.Kind = "parent"
			for _, rule := range r.Rules {
				if _, ok := rule.Subject.(lang.ParentSubject); ok {
					a.Rules = appendGranting(a.Rules, rule, perm)
				}
			}
		case keycloakRoles:
			a.Kind = "role"
			for _, rule := range r.Rules {
				if _, ok := rule.Subject.(lang.RoleSubject); ok {
					a.Rules = appendGranting(a.Rules, rule, perm)
				}
			}
		case claimMatches:
			a.Kind = "claim"
			for _, rule := range r.Rules {
				if _, ok := rule.Subject.(lang.ClaimSubject); ok {
					a.Rules = appendGranting(a.Rules, rule, perm)
				}
			}
		case shared:
			a.Kind = "shared"
			for _, rule := range r.Rules {
				if rule.Subject == (lang.SharedSubject{}) {
					a.Rules = appendGranting(a.Rules, rule, perm)
				}
			}
		case admin:
			a.Kind = "admin"
		default:
			a.Kind = fmt.Sprintf("%T", k)
		}
		arms = append(arms, a)
	}
	return arms
}

func appendGranting(rules []lang.RuleModel, rule lang.RuleModel, perm lang.Perm) []lang.RuleModel {
	for _, p := range rule.Perms {
		if p == perm {
			return append(rules, rule)
		}
	}
	return rules
}

// CallerIDSQL is the runtime's answer to "who is the caller", as the
// policies ask it: iam.user_id_uuid('sub') (an expression).
func CallerIDSQL(m *lang.Model) string { return String(userID(m.Identity)) }

// HasRealmRoleSQL is the runtime's answer to "does the token carry this
// realm role", as the admin arm asks it (an expression).
func HasRealmRoleSQL(role string) string { return String(hasRealmRole(role)) }
