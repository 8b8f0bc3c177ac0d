package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// group: `group <role> can ...`, the members of the row's group with that
// role or a higher one. Present whenever the resource declares a group
// column: the column is indexed and refers to iam.groups even before a
// group rule uses it, and the owner's arms ask which groups a row may
// enter (groupEntry).
type group struct{ column string }

func groupKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	if r.GroupColumn == "" {
		return nil
	}
	return group{r.GroupColumn}
}

// member is group_id = any(<the caller's groups with role>).
func (g group) member(c *ruleContext, role lang.GroupRole) Expr {
	arm := inGroups(c.col(g.column), role)
	if c.r.GroupRequired {
		return arm
	}
	// Implied by the = any, so it changes no answer; but the planner,
	// which guesses that an array it cannot see holds 10 groups, scales
	// that guess by the share of rows in a group at all. That keeps the
	// estimate near a typical caller's rows, so a list page reads the
	// owner and group indexes instead of walking the primary key and
	// filtering until it finds 50 rows.
	return Paren{And{arm, NotNull{c.col(g.column)}}}
}

// arm: creating is the owner's (groupEntry says into which groups).
func (g group) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	role := c.r.GroupMinRole(perm)
	if audience != audienceAuthenticated || perm == lang.Create || role == "" {
		return nil
	}
	return g.member(c, role)
}

// groupEntry is the part of the insert check that says which group a new
// row may be put into, or nil when rows have no group.
func groupEntry(c *ruleContext) Expr {
	r := c.r
	if r.GroupColumn == "" {
		return nil
	}
	col := c.col(r.GroupColumn)
	role := r.GroupMinRole(lang.Create)
	switch {
	case role == "":
		return IsNull{col}
	case r.GroupRequired:
		return inGroups(col, role)
	default:
		return Paren{Or{IsNull{col}, inGroups(col, role)}}
	}
}

func (g group) columns(c *ruleContext) []ColumnNeed {
	why := fmt.Sprintf("The group arm is %s = any(<caller's groups>): this index serves it (a BitmapOr with the owner index)", g.column)
	if c.r.GroupRequired {
		why += "."
	} else {
		why += "; rows in no group are left out of it."
	}
	return []ColumnNeed{{
		Column: g.column, Pos: c.r.GroupPos,
		Type: "bigint", TypeOK: func(t string) bool { return t == "bigint" },
		TypeWhy: "group ids (iam.groups.id) are bigint", TypeHint: "alter the column to bigint",
		Index: true, Partial: !c.r.GroupRequired, IndexWhy: why,
		LookupWhy:       "the policies look rows up by the caller's groups, and deleting a group looks up its rows",
		GroupForeignKey: true,
	}}
}

// page: a page of the group arm is the newest rows of all the caller's
// groups. Walking a page of every group reads groups x page rows, each
// checked by the policy against every group: a user in 2,000 groups read
// 100,000 rows (294 ms). With at least a page of groups, the page-th
// newest of the groups' newest rows is a floor: at least a page of rows is
// at or above it, so no row below it is on the page. One row per group
// finds it; then only groups with rows above it are walked, and only down
// to it. Rows of earlier arms (the caller's own) are left out.
func (g group) page(c *pageContext) *pageArm {
	role := c.r.GroupMinRole(lang.Read)
	if role == "" {
		return nil
	}
	col := String(c.col(g.column))
	callerGroups := String(groupIDs(role))
	return &pageArm{
		// Rows of the caller's groups are this arm's: later arms (rows
		// shared with the caller) leave them out.
		exclude: fmt.Sprintf("not coalesce(%s = any (page.caller_groups), false)", col),
		reader:  fmt.Sprintf("%s = any (%s)", c.groupParam, callerGroups),
		decls:   []string{"caller_groups bigint[];", "floor_key bigint;"},
		setup: func(earlier []string) block {
			b := block{fmt.Sprintf("page.caller_groups := coalesce(%s, '{}');", callerGroups)}
			b.add("page.floor_key := %d;", int64(-maxBigint-1))
			b.addIf("cardinality(page.caller_groups) >= "+c.size, block{fmt.Sprintf(`select case when count(*) >= %s then min(h.k) else page.floor_key end into page.floor_key
from (
    select h.k from (select distinct unnest(page.caller_groups) as id) g
    cross join lateral (
        select t.%s as k from %s t
        where %s = g.id%s
          and %s
        order by t.%s desc
        limit 1) h
    order by h.k desc
    limit %s) h;`, c.size, c.key, c.table, col, andEach(earlier, "          "), c.cursor, c.key, c.size)}, nil)
			return b
		},
		query: func(earlier []string) string {
			return fmt.Sprintf("select t.* from (select distinct unnest(page.caller_groups) as id) g\n"+
				"cross join lateral (\n    select t.* from %s t\n    where %s = g.id%s\n      and %s\n      and t.%s >= page.floor_key\n    order by t.%s desc\n    limit %s) t",
				c.table, col, andEach(earlier, "      "), c.cursor, c.key, c.key, c.size)
		},
	}
}

func (group) cites(*ruleContext, string, lang.Perm) []string { return nil }
