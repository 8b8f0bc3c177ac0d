package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// owner: `owner can ...`, the caller whose id is in the row's owner
// column. Present whenever the resource declares an owner column (its type
// is checked even without owner rules).
type owner struct{ column string }

func ownerKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	if r.OwnerColumn == "" {
		return nil
	}
	return owner{r.OwnerColumn}
}

// mine is owner_id = <caller>, an index key.
func (o owner) mine(c *ruleContext) Expr { return Eq{L: c.col(o.column), R: c.caller()} }

func (o owner) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	r := c.r
	if audience != audienceAuthenticated || !r.Can(lang.OwnerSubject{}, perm) {
		return nil
	}
	switch {
	case perm == lang.Create:
		// A new row is the caller's, in a group they may put rows into.
		if entry := groupEntry(c); entry != nil {
			return And{o.mine(c), entry}
		}
		return o.mine(c)
	case perm == lang.Write && r.GroupColumn != "" && r.GroupMinRole(perm) == r.Roles().Lowest():
		// Every member writes the group's rows already (the group arm), so
		// the owner arm need not ask for membership again: owner and (no
		// group or member), or member, is owner and no group, or member.
		// One look-up of the caller's groups per statement, not two (and
		// with a required group the member arm is all there is).
		if r.GroupRequired {
			return nil
		}
		return Paren{And{o.mine(c), IsNull{c.col(r.GroupColumn)}}}
	case perm == lang.Write && r.GroupColumn != "":
		// A row in a group is the owner's to change only while they are a
		// member of that group (any role, token groups included). A member
		// removed from a group no longer changes what its members see: they
		// still read and delete their rows there (the owner arms of select
		// and delete), but neither edit nor move them (SPEC §11).
		group := c.col(r.GroupColumn)
		member := inGroups(group, r.Roles().Lowest())
		if r.GroupRequired {
			return Paren{And{o.mine(c), member}}
		}
		return Paren{And{o.mine(c), Paren{Or{IsNull{group}, member}}}}
	default:
		return o.mine(c)
	}
}

func (o owner) columns(c *ruleContext) []ColumnNeed {
	id := c.m.Identity.Type
	return []ColumnNeed{{
		Column: o.column, Pos: c.r.OwnerPos,
		Type: string(id), TypeOK: func(t string) bool { return identityTypeMatches(id, t) },
		TypeWhy:  "the identity type is " + string(id),
		TypeHint: fmt.Sprintf("change the column to %s, or declare `identity { type ... }` to match", id),
		// The policies compare the owner column only when there are owner
		// rules; then the build creates its index.
		Index:     c.r.HasOwnerRules(),
		IndexWhy:  fmt.Sprintf("The owner arm of the policies is %s = <caller>: this index makes it an index scan instead of a scan of every row.", o.column),
		LookupWhy: "the policies compare it with the caller's id",
	}}
}

// identityTypeMatches: a uuid id needs a uuid column, a text id a text or
// varchar one.
func identityTypeMatches(id lang.IdentityType, colType string) bool {
	switch id {
	case lang.UUID:
		return colType == "uuid"
	default:
		return colType == "text" || colType == "character varying" || strings.HasPrefix(colType, "character varying(")
	}
}

// page: the caller's own rows, one walk of the (owner, key) index. Later
// arms leave them out, so the arms stay disjoint.
func (o owner) page(c *pageContext) *pageArm {
	if !c.r.Can(lang.OwnerSubject{}, lang.Read) {
		return nil
	}
	col := String(c.col(o.column))
	callerID := "page.caller_id := " + String(userID(c.m.Identity)) + ";"
	arm := &pageArm{
		decls:   []string{fmt.Sprintf("caller_id %s;", c.m.Identity.Type)},
		setup:   func([]string) block { return block{callerID} },
		exclude: col + " is distinct from page.caller_id",
		query: func([]string) string {
			return fmt.Sprintf("select t.* from %s t\nwhere %s = page.caller_id\n  and %s\norder by t.%s desc\nlimit %s",
				c.table, col, c.cursor, c.key, c.size)
		},
		ordered: true,
	}
	if g := c.r.GroupColumn; g != "" {
		// In one group, the caller's own rows there, from the same index.
		inGroup := fmt.Sprintf("%s = page.caller_id\n      and %s is not distinct from %s\n      and ", col, String(c.col(g)), c.groupParam)
		arm.inGroup = block{callerID, c.walk(inGroup)}
		arm.groupSetup = block{callerID}
		arm.groupQuery = func([]string) string {
			return fmt.Sprintf("select t.* from %s t\nwhere %s = page.caller_id\n  and %s is not distinct from %s\n  and %s\norder by t.%s desc\nlimit %s",
				c.table, col, String(c.col(g)), c.groupParam, c.cursor, c.key, c.size)
		}
	}
	return arm
}

func (owner) cites(*ruleContext, string, lang.Perm) []string { return nil }
