package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// admin: the groups block's `admin role`, a Keycloak realm role that
// bypasses the rules of every resource for signed-in callers: a realm role
// subject (subject_role.go) granted every permission on every resource,
// whose test it shares, and which the row guard lets set owners and move
// rows (iam.privileged). On a resource with a tenant column it is held to
// the caller's tenant like every arm (tenant.go).
type admin struct{ role lang.RoleSubject }

func adminKind(m *lang.Model, _ *lang.ResourceModel) subjectKind {
	if m.Groups.AdminRole == "" {
		return nil
	}
	return admin{lang.RoleSubject{Name: m.Groups.AdminRole}}
}

func (a admin) arm(_ *ruleContext, audience string, _ lang.Perm) Expr {
	if audience != audienceAuthenticated {
		return nil
	}
	return Once{roleTest(a.role)}
}

func (admin) columns(*ruleContext) []ColumnNeed { return nil }

// page: an admin reads every row, one walk of the key.
func (a admin) page(*pageContext) *pageArm {
	return &pageArm{bypass: String(Once{roleTest(a.role)})}
}

func (a admin) cites(c *ruleContext, audience string, _ lang.Perm) []string {
	if audience != audienceAuthenticated {
		return nil
	}
	g := c.m.Groups.Pos
	return []string{fmt.Sprintf("admin role %s bypasses the rules (%s:%d)", a.role.Name, g.Filename, g.Line)}
}
