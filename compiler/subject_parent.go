package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// parent: `parent owner can ...`, `parent group admin can ...`, `parent
// writers can ...`: access that follows the row's foreign key to its
// parent (the resource the parent item names). The arm is
// fk = any (array(select p1.key from parent p1 where <who, on the parent>)):
// the parent keys are read once per statement (an InitPlan, itself under
// the parent's row security) and the child's rows come from its index on
// the foreign key, never a per-row look at the parent.
type parent struct{ link *lang.ParentLink }

func parentKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	if r.Parent == nil || r.Parent.Resource == nil {
		return nil
	}
	return parent{r.Parent}
}

// on is the context of the parent row: its table under the next alias.
func (k parent) on(c *ruleContext) *ruleContext {
	pc := newRuleContext(c.m, k.link.Resource, fmt.Sprintf("p%d", c.depth+1))
	pc.depth = c.depth + 1
	return pc
}

// who is the condition on the parent row of the parent rules that give
// perm, or nil when none does; True when every parent row qualifies.
func (k parent) who(c *ruleContext, perm lang.Perm) Expr {
	pc := k.on(c)
	p := k.link.Resource
	var conds []Expr
	groupDone := false
	for _, rule := range c.r.Rules {
		ps, ok := rule.Subject.(lang.ParentSubject)
		if !ok || !c.r.Can(ps, perm) {
			continue
		}
		switch of := ps.Of.(type) {
		case lang.OwnerSubject:
			conds = append(conds, Eq{L: pc.col(p.OwnerColumn), R: pc.caller()})
		case lang.GroupSubject:
			// The lowest role granted perm covers the roles above it.
			if !groupDone {
				groupDone = true
				conds = append(conds, inGroups(pc.col(p.GroupColumn), parentGroupMinRole(c.r, perm)))
			}
		case lang.ParentAudience:
			arms := pc.arms(audienceAuthenticated, of.Perm)
			if anyTrue(arms) {
				return True
			}
			for _, a := range arms {
				if and, ok := a.(And); ok && len(arms) > 1 {
					a = Paren{and}
				}
				conds = append(conds, a)
			}
		}
	}
	switch len(conds) {
	case 0:
		return nil
	case 1:
		return conds[0]
	}
	return Or(conds)
}

// parentGroupMinRole is the lowest role of the parent's group a parent
// rule gives perm.
func parentGroupMinRole(r *lang.ResourceModel, perm lang.Perm) lang.GroupRole {
	for _, role := range r.Roles() {
		if r.Can(lang.ParentSubject{Of: lang.GroupSubject{Role: role}}, perm) {
			return role
		}
	}
	return ""
}

// keys is the subquery of the parent keys where cond holds.
func (k parent) keys(c *ruleContext, cond Expr) Keys {
	pc := k.on(c)
	p := k.link.Resource
	return Keys{Table: qualify(p.Schema, p.Table), Alias: pc.alias, Key: k.link.Key, Where: cond}
}

func (k parent) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	if audience != audienceAuthenticated {
		return nil
	}
	cond := k.who(c, perm)
	switch {
	case cond == nil:
		return nil
	case cond == True:
		// Every parent row: every row that has a parent.
		return NotNull{c.col(k.link.Column)}
	}
	return AnyOf{L: c.col(k.link.Column), Array: ArrayOf{k.keys(c, cond)}}
}

func (k parent) columns(c *ruleContext) []ColumnNeed {
	p := k.link.Resource
	return []ColumnNeed{{
		Column: k.link.Column, Pos: k.link.Pos,
		Index:      true,
		IndexWhy:   fmt.Sprintf("The parent arm is %s = any(<the keys of the %s rows the caller may use>): this index serves it.", k.link.Column, p.Table),
		LookupWhy:  "the policies look rows up by their parent",
		References: &Reference{Schema: p.Schema, Table: p.Table, Column: k.link.Key},
	}}
}

// page: for each parent row the caller reads children through, a walk of
// the (fk, key) index, as the group arm walks each group.
func (k parent) page(c *pageContext) *pageArm {
	cond := k.who(c.ruleContext, lang.Read)
	if cond == nil {
		return nil
	}
	col := String(c.col(k.link.Column))
	if cond == True {
		return &pageArm{
			query: func(earlier []string) string {
				return fmt.Sprintf("select t.* from %s t\nwhere %s is not null%s\n  and %s\norder by t.%s desc\nlimit %s",
					c.table, col, andEach(earlier, "  "), c.cursor, c.key, c.size)
			},
			ordered: true,
			exclude: col + " is null",
		}
	}
	parents := String(k.keys(c.ruleContext, cond))
	return &pageArm{
		query: func(earlier []string) string {
			return fmt.Sprintf("select t.* from (%s) g(id)\ncross join lateral (\n    select t.* from %s t\n    where %s = g.id%s\n      and %s\n    order by t.%s desc\n    limit %s) t",
				parents, c.table, col, andEach(earlier, "      "), c.cursor, c.key, c.size)
		},
		exclude: fmt.Sprintf("not exists (select from (%s) g(id) where g.id = %s)", parents, col),
	}
}

func (parent) cites(*ruleContext, string, lang.Perm) []string { return nil }
