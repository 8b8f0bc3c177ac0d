package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// tenant: a resource's `tenant column org_id from claim 'org_id'`. Not a
// subject but a restriction on all of them: every arm of every policy
// holds only on rows of the caller's tenant (the ruleContext ANDs it into
// each arm), inserts take the tenant from the token and no request moves a
// row to another tenant (the row guard, iam.guard_tenant), and every walk
// of the page function stays in the tenant. Its column leads the indexes
// of the arms, so each arm is still one index lookup: (org_id, owner_id),
// (org_id, group_id), and (org_id) for arms that read every row of the
// tenant (a role, authenticated can read).
//
// A token without the claim, or with anything but a non-empty string in
// it, has no tenant: org_id = NULL holds for no row, and the row guard
// creates nothing (28000). The admin role of the groups block is held to
// its tenant too; only roles that bypass RLS cross tenants.
type tenant struct {
	column string
	path   []string // the claim, split as Keycloak nests it
}

func newTenant(r *lang.ResourceModel) *tenant {
	if r.Tenant == nil {
		return nil
	}
	return &tenant{column: r.Tenant.Column, path: lang.ClaimPath(r.Tenant.Claim)}
}

// value is the caller's tenant: iam.claim_text('org_id').
func (t *tenant) value() Call { return claimText(t.path) }

// restrict is arm, on rows of the caller's tenant only:
//
//	true              org_id = (select <tenant>)
//	(select <test>)   org_id = (select <tenant>) and org_id = (select case when <test> then <tenant> end)
//	a and b           org_id = (select <tenant>) and a and b
//
// A per-statement test (a role) becomes the tenant as an index key, or
// NULL for callers who fail it: an arm that reads no column would keep the
// planner from looking the other arms up in their indexes (a BitmapOr), for
// every caller. Its first equality changes no answer; it is there for the
// planner, which counts each equality with a value it cannot see as a
// tenant's share of the rows: one alone makes the arm look like a whole
// tenant, and the table's list page a walk of the primary key for every
// caller (182 ms for a user of 1M notes of 100 organisations, against a
// BitmapOr of their few hundred rows with both).
func (t *tenant) restrict(c *ruleContext, arm Expr) Expr {
	col := c.col(t.column)
	mine := Eq{L: col, R: Once{t.value()}}
	switch a := arm.(type) {
	case Raw:
		if a == True {
			return mine
		}
	case Once:
		return And{mine, Eq{L: col, R: Once{CaseWhen{When: a.E, Then: t.value()}}}}
	case And:
		return append(And{mine}, a...)
	case Paren:
		if and, ok := a.E.(And); ok {
			return append(And{mine}, and...)
		}
	}
	return And{mine, arm}
}

// keyed reports whether some policy arm compares nothing but the tenant
// (a role, everyone, the admin role): then the build indexes the tenant
// column on its own, and the page function walks that index for them.
func (t *tenant) keyed(c *ruleContext) bool {
	for _, k := range c.kinds {
		for _, perm := range lang.AllPerms {
			switch a := k.arm(c, audienceAuthenticated, perm).(type) {
			case Once:
				return true
			case Raw:
				if a == True {
					return true
				}
			}
		}
	}
	return false
}

// columns makes the tenant lead the index of every arm's column, and adds
// the tenant column's own need.
func (t *tenant) columns(c *ruleContext, needs []ColumnNeed) []ColumnNeed {
	out := make([]ColumnNeed, 0, len(needs)+1)
	for _, n := range needs {
		if n.Index && n.Column != t.column {
			n.Lead = t.column
			n.IndexWhy += fmt.Sprintf(" It leads with the tenant column %s: every arm compares it first.", t.column)
			n.LookupWhy += " within the caller's tenant"
		}
		out = append(out, n)
	}
	tc := c.r.Tenant
	return append(out, ColumnNeed{
		Column: t.column, Pos: tc.Pos,
		Type: "text", TypeOK: isTextType,
		TypeWhy:   fmt.Sprintf("it is compared with the claim %s of the token, a string", tc.Claim),
		TypeHint:  "alter the column to text (a tenant claim is a string)",
		Index:     t.keyed(c),
		IndexWhy:  fmt.Sprintf("The arms that read every row of the caller's tenant are %s = <the token's %s>: this index serves them.", t.column, tc.Claim),
		LookupWhy: "the policies read every row of the caller's tenant for some rules",
	})
}

// guardArgs are the row guard's two extra arguments: the column and the
// claim's path as a text[] literal.
func (t *tenant) guardArgs() []string {
	elems := make([]string, len(t.path))
	for i, p := range t.path {
		elems[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	return []string{quoteLiteral(t.column), quoteLiteral("{" + strings.Join(elems, ",") + "}")}
}

// columnDefault fills the column from the token when a client leaves it
// out (PostgREST's OpenAPI then shows it); the row guard decides.
func (t *tenant) columnDefault(r *lang.ResourceModel, table string) Statement {
	return iamDefault(table, t.column, String(t.value()),
		"The tenant column defaults to the caller's tenant, which PostgREST's OpenAPI shows as its default: clients see they may leave it out (the row guard still decides). "+
			"A default the table already had, one that calls no iam function, is kept with a warning.",
		"iamc did not set its default (the caller''s tenant); the row guard still refuses a tenant other than the caller''s.")
}

// pageSetup is the page function's tenant, read once per call; every walk
// compares it (pageContext.cursor).
func (t *tenant) pageSetup() string {
	return fmt.Sprintf("page.tenant := %s;", String(t.value()))
}
