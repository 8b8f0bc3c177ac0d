package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// shared: `shared can ...`, the callers a row is shared with (a user a
// share names, or a member of a group one names), each with what their
// share grants. Present whenever the resource declares shares (share.go
// builds the share table, its helpers and the share API).
type shared struct{ shares lang.Shares }

func sharedKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	if !r.Shares.Declared {
		return nil
	}
	return shared{r.Shares}
}

// sharedIDs is `key = any(<the rows shared with the caller granting perm>)`:
// the caller's shared row ids, read once per statement (an InitPlan) from
// the share table's (principal, row) indexes by a definer helper.
func (s shared) sharedIDs(c *ruleContext, perm lang.Perm) Expr {
	return AnyOf{L: c.col(s.shares.Key), Array: Cast{E: Once{sharedCall(c.r, perm)}, Type: "bigint[]"}}
}

// arm: a share grants read, and write or delete when the share says so
// and a rule lets shares carry them. Re-sharing (`shared can share`) is
// for whoever holds any share of the row. Nobody creates through a share.
func (s shared) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	if audience != audienceAuthenticated || perm == lang.Create || !c.r.Can(lang.SharedSubject{}, perm) {
		return nil
	}
	if perm == lang.Share {
		perm = lang.Read
	}
	return s.sharedIDs(c, perm)
}

func (s shared) columns(c *ruleContext) []ColumnNeed {
	return []ColumnNeed{{
		Column: s.shares.Key, Pos: s.shares.KeyPos,
		Type: "bigint", TypeOK: isIntegerType,
		TypeWhy:  fmt.Sprintf("shares point at rows by it (%s.row_id is bigint)", qualify(shareSchema, ShareTableName(c.r))),
		TypeHint: "share by an integer key (an identity or serial primary key)",
		// The primary key (or the unique index the catalog check asks for)
		// serves key = any(<shared ids>): nothing to build.
	}}
}

// isIntegerType: smallint, integer or bigint, as format_type prints them.
func isIntegerType(t string) bool { return t == "smallint" || t == "integer" || t == "bigint" }

// page: the rows shared with the caller, newest first. A definer helper
// reads the newest page of shared ids below the cursor from the share
// table's (principal, row) indexes (the caller's own, and each of their
// groups'), when pages are ordered by the share key; otherwise every
// shared id (at most max shares per recipient per principal). Rows of the
// arms before (the caller's own, their groups') are left out: disjoint
// arms.
func (s shared) page(c *pageContext) *pageArm {
	if !c.r.Can(lang.SharedSubject{}, lang.Read) {
		return nil
	}
	key := quoteIdent(s.shares.Key)
	fill := block{fmt.Sprintf("page.shared_ids := %s;", String(sharedCall(c.r, lang.Read)))}
	var teardown block
	if s.shares.Key == c.r.PageKey {
		// The page's shared rows are these: the policies' shared arm need
		// not read every share of the caller to check them (the hint only
		// narrows; it is cleared after the page's query).
		hint := quoteLiteral(ShareHintSetting(c.r))
		fill = block{
			fmt.Sprintf("page.shared_ids := %s(page.before_key, %s);", qualify(shareSchema, SharedPageFunctionName(c.r)), c.size),
			fmt.Sprintf("perform pg_catalog.set_config(%s, page.shared_ids::text, true);", hint),
		}
		teardown = block{fmt.Sprintf("perform pg_catalog.set_config(%s, '', true);", hint)}
	}
	all := fmt.Sprintf("page.shared_ids := %s;", String(sharedCall(c.r, lang.Read)))
	query := func(where string) func([]string) string {
		return func(earlier []string) string {
			return fmt.Sprintf("select t.* from %s t\nwhere t.%s = any (page.shared_ids)%s%s\n  and %s\norder by t.%s desc\nlimit %s",
				c.table, key, where, andEach(earlier, "  "), c.cursor, c.key, c.size)
		}
	}
	arm := &pageArm{
		decls:    []string{"shared_ids bigint[];"},
		setup:    func([]string) block { return fill },
		teardown: teardown,
		query:    query(""),
		ordered:  true,
	}
	if g := c.r.GroupColumn; g != "" {
		// In one group: the shared rows in it, among every shared id (the
		// newest shared rows need not be in the group).
		inGroup := query(fmt.Sprintf("\n  and %s is not distinct from %s", String(c.col(g)), c.groupParam))
		arm.groupSetup = block{all}
		arm.groupQuery = inGroup
		arm.inGroup = block{all, "return query\n" + indentBy(inGroup(nil), 1) + ";"}
	}
	return arm
}

func (shared) cites(*ruleContext, string, lang.Perm) []string { return nil }
