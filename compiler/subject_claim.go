package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// claimMatches: `keeper = claim 'user_type' can read`, the rows whose column
// equals a string claim of the caller's token (a serverless set-up's
// keeper, a department, a region). Only read (lang says why). The arm is
// column = (select iam.claim_match('user_type')): the claim read once per
// statement, an index key of the column; a token without the claim, or
// with anything but a non-empty string there, matches no row.
type claimMatches struct{ subjects []lang.ClaimSubject }

func claimKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	var k claimMatches
	seen := map[lang.ClaimSubject]bool{}
	for _, rule := range r.Rules {
		if s, ok := rule.Subject.(lang.ClaimSubject); ok && !seen[s] {
			seen[s] = true
			k.subjects = append(k.subjects, s)
		}
	}
	if len(k.subjects) == 0 {
		return nil
	}
	return k
}

// reading are the matches granted perm, in rule order.
func (k claimMatches) reading(r *lang.ResourceModel, perm lang.Perm) []lang.ClaimSubject {
	var out []lang.ClaimSubject
	for _, s := range k.subjects {
		if r.Can(s, perm) {
			out = append(out, s)
		}
	}
	return out
}

func (k claimMatches) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	if audience != audienceAuthenticated {
		return nil
	}
	var arms Or
	for _, s := range k.reading(c.r, perm) {
		arms = append(arms, Eq{L: c.col(s.Column), R: Once{claimMatch(lang.ClaimPath(s.Claim))}})
	}
	switch len(arms) {
	case 0:
		return nil
	case 1:
		return arms[0]
	}
	return Paren{arms}
}

func (k claimMatches) columns(c *ruleContext) []ColumnNeed {
	var out []ColumnNeed
	seen := map[string]bool{}
	for _, s := range k.subjects {
		if seen[s.Column] {
			continue
		}
		seen[s.Column] = true
		out = append(out, ColumnNeed{
			Column: s.Column, Pos: claimPos(c.r, s),
			Type: "text", TypeOK: isTextType,
			TypeWhy:   "it is compared with a claim of the token, a string",
			TypeHint:  "alter the column to text",
			Index:     true,
			IndexWhy:  fmt.Sprintf("The claim arm is %s = <the token's %s>: this index makes it an index scan.", s.Column, s.Claim),
			LookupWhy: "the policies compare it with a claim of the token",
		})
	}
	return out
}

// claimPos is where the rule of s was written (the column's position is
// not kept apart from the rule's).
func claimPos(r *lang.ResourceModel, s lang.ClaimSubject) lang.Pos {
	for _, rule := range r.Rules {
		if rule.Subject == lang.Subject(s) {
			return rule.Pos
		}
	}
	return r.Pos
}

// isTextType: a claim is a string, so the column is text or varchar (a
// text = varchar comparison still uses the column's index).
func isTextType(t string) bool {
	return t == "text" || t == "character varying" || strings.HasPrefix(t, "character varying(")
}

// page: the rows of each match, one walk of its (column, key) index for
// the claim; later walks leave out earlier ones. In one group, the group's
// rows walked under the policies (groupFilter): a match's rows in a group
// have no index of their own.
func (k claimMatches) page(c *pageContext) *pageArm {
	subjects := k.reading(c.r, lang.Read)
	if len(subjects) == 0 {
		return nil
	}
	arm := &pageArm{groupFilter: true, ordered: len(subjects) == 1}
	var setup block
	var excludes []string
	for i, s := range subjects {
		v := fmt.Sprintf("page.claim_%d", i+1)
		arm.decls = append(arm.decls, fmt.Sprintf("claim_%d text;", i+1))
		setup.add("%s := %s;", v, String(claimMatch(lang.ClaimPath(s.Claim))))
		// The rows of this walk, left out of later ones: those whose column
		// equals the claim (none when the token has no such claim).
		excludes = append(excludes, fmt.Sprintf("(%s is null or %s is distinct from %s)", v, String(c.col(s.Column)), v))
	}
	arm.setup = func([]string) block { return setup }
	arm.exclude = strings.Join(excludes, " and ")
	arm.query = func(earlier []string) string {
		var walks []string
		for i, s := range subjects {
			walk := fmt.Sprintf("select t.* from %s t\nwhere %s = page.claim_%d%s\n  and %s\norder by t.%s desc\nlimit %s",
				c.table, String(c.col(s.Column)), i+1, andEach(append(append([]string{}, earlier...), excludes[:i]...), "  "), c.cursor, c.key, c.size)
			walks = append(walks, walk)
		}
		if len(walks) == 1 {
			return walks[0]
		}
		return "(" + strings.Join(walks, ")\nunion all\n(") + ")"
	}
	return arm
}

func (claimMatches) cites(*ruleContext, string, lang.Perm) []string { return nil }
