package compiler

import "github.com/iamc/iamc/lang"

// A subjectKind is how one kind of subject compiles: the condition its
// rules add to each policy, the columns (and indexes) that condition reads,
// its arm of the page function and what cites it beyond its rules. Each
// kind is one file (subject_*.go); a new kind is a new file that adds
// itself to subjectKinds, plus its tests. The policies, grants, indexes,
// catalog checks and page functions are built from the kinds alone.
type subjectKind interface {
	// arm is the condition under which requests of audience have perm on
	// a row (columns of c's alias), or nil when the kind grants none.
	arm(c *ruleContext, audience string, perm lang.Perm) Expr
	// columns are the columns its conditions read: each to be checked in
	// the catalog, and indexed when it is an arm's key.
	columns(c *ruleContext) []ColumnNeed
	// page is its part of the page function, or nil when it reads no rows.
	page(c *pageContext) *pageArm
	// cites are the reasons a policy has besides the rules as written.
	cites(c *ruleContext, audience string, perm lang.Perm) []string
}

// subjectKinds make the kinds present on a resource, in the order their
// arms appear in a policy; each returns nil when absent from r.
var subjectKinds = []func(m *lang.Model, r *lang.ResourceModel) subjectKind{
	everyoneKind,
	ownerKind,
	groupKind,
	parentKind,
	roleKind,
	claimKind,
	sharedKind,
	adminKind,
}

// ruleContext is one resource as a condition sees it: its columns under
// an alias ("" in a policy, t in a page function's queries).
type ruleContext struct {
	m     *lang.Model
	r     *lang.ResourceModel
	alias string
	depth int // how many parents up from the resource a policy protects
	kinds []subjectKind
	// tenant restricts every arm to the caller's tenant (tenant.go), or is
	// nil.
	tenant *tenant
}

func newRuleContext(m *lang.Model, r *lang.ResourceModel, alias string) *ruleContext {
	c := &ruleContext{m: m, r: r, alias: alias, tenant: newTenant(r)}
	for _, make := range subjectKinds {
		if k := make(m, r); k != nil {
			c.kinds = append(c.kinds, k)
		}
	}
	return c
}

// col is a column of the resource under the context's alias.
func (c *ruleContext) col(name string) Col { return Col{Alias: c.alias, Name: name} }

// caller is the caller's user id, once per statement.
func (c *ruleContext) caller() Expr { return Once{userID(c.m.Identity)} }

// arms is the condition of each kind for audience and perm, in order,
// each held to the caller's tenant when the resource has one.
func (c *ruleContext) arms(audience string, perm lang.Perm) []Expr {
	var arms []Expr
	for _, k := range c.kinds {
		if a := k.arm(c, audience, perm); a != nil {
			if c.tenant != nil {
				a = c.tenant.restrict(c, a)
			}
			arms = append(arms, a)
		}
	}
	return arms
}

// ColumnNeed is what the rules need of one column of a resource's table:
// checked against the live catalog by iamc check, indexed by iamc build.
type ColumnNeed struct {
	Column   string
	Pos      lang.Pos
	Type     string            // the SQL type it should have, for a hint
	TypeOK   func(string) bool // accepts the column's format_type
	TypeWhy  string            // why that type, when the column has another
	TypeHint string            // how to fix another type
	// Index: the policies compare the column; the build creates an index
	// leading with it (after Lead, then the page key), partial (column is
	// not null) when Partial.
	Index     bool
	Lead      string // the tenant column, which every arm compares first; "" for none
	Partial   bool
	IndexWhy  string // the build's comment on the index
	LookupWhy string // the catalog check's reason it needs one
	// GroupForeignKey: the column refers to iam.groups(id).
	GroupForeignKey bool
	// References: the column is a foreign key to this column (the key of
	// a parent resource's table).
	References *Reference
}

// Reference is a column of another table a foreign key points at.
type Reference struct{ Schema, Table, Column string }

// Columns lists what the rules of r need of its table's columns, for the
// catalog check (every kind present on r, in order).
func Columns(m *lang.Model, r *lang.ResourceModel) []ColumnNeed {
	c := newRuleContext(m, r, "")
	var out []ColumnNeed
	seen := map[string]bool{}
	for _, k := range c.kinds {
		for _, need := range k.columns(c) {
			seen[need.Column] = true
			out = append(out, need)
		}
	}
	// The columns the rules list (column rules), unless a kind needs them.
	for _, need := range columnNeeds(r) {
		if !seen[need.Column] {
			out = append(out, need)
		}
	}
	if c.tenant != nil {
		out = c.tenant.columns(c, out)
	}
	return out
}

// IndexColumns are the columns of the index the build makes for need, in
// order: the tenant, the column, the page key.
func (need ColumnNeed) IndexColumns(r *lang.ResourceModel) []string {
	var cols []string
	if need.Lead != "" {
		cols = append(cols, need.Lead)
	}
	cols = append(cols, need.Column)
	if r.PageKey != "" {
		cols = append(cols, r.PageKey)
	}
	return cols
}
