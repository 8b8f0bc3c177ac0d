package compiler

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/lang"
)

// TestTenantRestrict: each shape of arm, held to the caller's tenant; a
// claim path with a dot inside a name is passed as its parts.
func TestTenantRestrict(t *testing.T) {
	r := &lang.ResourceModel{Schema: "app", Table: "notes", Tenant: &lang.TenantModel{Column: "org_id", Claim: `org.id\.v2`}}
	c := &ruleContext{r: r, alias: "t", tenant: newTenant(r)}
	const tenant = `t.org_id = (select iam.claim_text('org', 'id.v2'))`
	for _, tt := range []struct {
		name string
		arm  Expr
		want string
	}{
		{"everyone", True, tenant},
		{"a role", Once{hasRealmRole("org-admin")},
			tenant + ` and t.org_id = (select case when iam.has_realm_role('org-admin') then iam.claim_text('org', 'id.v2') end)`},
		{"two roles", Once{Or{hasRealmRole("a"), hasClientRole("app", "b")}},
			tenant + ` and t.org_id = (select case when iam.has_realm_role('a') or iam.has_client_role('app', 'b') then iam.claim_text('org', 'id.v2') end)`},
		{"an index key", Eq{L: c.col("owner_id"), R: Once{Raw("me")}}, tenant + ` and t.owner_id = (select me)`},
		{"an and", And{Raw("a"), Raw("b")}, tenant + ` and a and b`},
		{"an and in parentheses", Paren{And{Raw("a"), Raw("b")}}, tenant + ` and a and b`},
		{"an or in parentheses", Paren{Or{Raw("a"), Raw("b")}}, tenant + ` and (a or b)`},
	} {
		if diff := cmp.Diff(tt.want, String(c.tenant.restrict(c, tt.arm))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	if diff := cmp.Diff([]string{`'org_id'`, `'{"org","id.v2"}'`}, c.tenant.guardArgs()); diff != "" {
		t.Errorf("the row guard's arguments (-want +got):\n%s", diff)
	}
}

// TestAdminRoleIsARealmRole: the groups block's admin role compiles to the
// test a `role` rule of the same realm role compiles to.
func TestAdminRoleIsARealmRole(t *testing.T) {
	m := &lang.Model{Groups: lang.GroupSettings{AdminRole: "iam-admin"}}
	r := &lang.ResourceModel{Schema: "app", Table: "t", Rules: []lang.RuleModel{{Subject: lang.RoleSubject{Name: "iam-admin"}, Perms: []lang.Perm{lang.Read}}}}
	c := newRuleContext(m, r, "")
	var role, adminArm Expr
	for _, k := range c.kinds {
		switch k.(type) {
		case keycloakRoles:
			role = k.arm(c, audienceAuthenticated, lang.Read)
		case admin:
			adminArm = k.arm(c, audienceAuthenticated, lang.Read)
		}
	}
	if role == nil || adminArm == nil || String(role) != String(adminArm) {
		t.Errorf("role rule %v, admin role %v: want the same test", role, adminArm)
	}
	if got := String(adminArm); got != "(select iam.has_realm_role('iam-admin'))" {
		t.Errorf("admin arm %s", got)
	}
}
