package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// admin: the groups block's `admin role`, a Keycloak realm role that
// bypasses the rules of every resource for signed-in callers.
type admin struct{ role string }

func adminKind(m *lang.Model, _ *lang.ResourceModel) subjectKind {
	if m.Groups.AdminRole == "" {
		return nil
	}
	return admin{m.Groups.AdminRole}
}

func (a admin) arm(_ *ruleContext, audience string, _ lang.Perm) Expr {
	if audience != audienceAuthenticated {
		return nil
	}
	return Once{hasRealmRole(a.role)}
}

func (admin) columns(*ruleContext) []ColumnNeed { return nil }

// page: an admin reads every row, one walk of the key.
func (a admin) page(*pageContext) *pageArm {
	return &pageArm{bypass: String(Once{hasRealmRole(a.role)})}
}

func (a admin) cites(c *ruleContext, audience string, _ lang.Perm) []string {
	if audience != audienceAuthenticated {
		return nil
	}
	g := c.m.Groups.Pos
	return []string{fmt.Sprintf("admin role %s bypasses the rules (%s:%d)", a.role, g.Filename, g.Line)}
}
