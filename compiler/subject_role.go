package compiler

import "github.com/iamc/iamc/lang"

// keycloakRoles: `role 'moderator' can ...` (a realm role) and `role
// 'editor' of client 'todo-app' can ...` (a client role), callers whose
// token lists the role. Keycloak expands composite roles into the token,
// so a test of the token is the whole test. The roles a permission is
// granted to make one arm, one test per statement: (select
// iam.has_realm_role('moderator') or ...), an InitPlan, never a call per
// row. The arm reads no column: on a resource with a tenant column it
// becomes an index key of the tenant (tenant.go); without one it is a
// condition the planner cannot look up in an index, so a list of the table
// reads it in key order (SPEC §5a: use the page function, where a role
// holder's page is one walk of the key).
type keycloakRoles struct{ roles []lang.RoleSubject }

func roleKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	var k keycloakRoles
	seen := map[lang.RoleSubject]bool{}
	for _, rule := range r.Rules {
		if s, ok := rule.Subject.(lang.RoleSubject); ok && !seen[s] {
			seen[s] = true
			k.roles = append(k.roles, s)
		}
	}
	if len(k.roles) == 0 {
		return nil
	}
	return k
}

// roleTest is whether the token lists the role: realm_access.roles, or
// resource_access.<client>.roles.
func roleTest(s lang.RoleSubject) Call {
	if s.Client != "" {
		return hasClientRole(s.Client, s.Name)
	}
	return hasRealmRole(s.Name)
}

// holds is one per-statement test of the roles granted perm, or nil.
func (k keycloakRoles) holds(r *lang.ResourceModel, perm lang.Perm) Expr {
	var tests Or
	for _, s := range k.roles {
		if r.Can(s, perm) {
			tests = append(tests, roleTest(s))
		}
	}
	switch len(tests) {
	case 0:
		return nil
	case 1:
		return Once{tests[0]}
	}
	return Once{tests}
}

func (k keycloakRoles) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	if audience != audienceAuthenticated {
		return nil
	}
	test := k.holds(c.r, perm)
	if test == nil {
		return nil
	}
	if perm == lang.Create {
		// As for the owner: a new row goes only into a group the caller
		// may put rows into (the row guard makes it the caller's).
		if entry := groupEntry(c); entry != nil {
			return And{test, entry}
		}
	}
	return test
}

func (keycloakRoles) columns(*ruleContext) []ColumnNeed { return nil }

// page: a role holder reads every row (of their tenant), one walk of the
// key. The test is a plain call there (PL/pgSQL evaluates it without a
// query: the function asks once anyway).
func (k keycloakRoles) page(c *pageContext) *pageArm {
	test := k.holds(c.r, lang.Read)
	if test == nil {
		return nil
	}
	return &pageArm{bypass: String(test.(Once).E)}
}

func (keycloakRoles) cites(*ruleContext, string, lang.Perm) []string { return nil }
