package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// Column rules (lang/columns.go): `write (stock)` limits a subject's
// updates to some columns, `read (id, name)` of anonymous or authenticated
// is a column grant to that role.
//
// A write list is checked per row without a query per row. The row guard
// (a BEFORE UPDATE trigger: RLS cannot see the old row) notes in a
// transaction-local setting which columns the update changes beyond those
// every writer may change; the update policy's WITH CHECK, which
// PostgreSQL evaluates right after the BEFORE triggers, passes it to
// iam.check_columns together with whether a wider write rule holds on the
// row and, for each listed column, whether a rule listing it does. Those
// conditions are the policy arms' own, so their sub-selects run once per
// statement (InitPlans); a refused column is 42501 naming it.

// CheckColumnsSignature is the runtime function the update policy of a
// resource with write lists calls, as the caller.
const CheckColumnsSignature = "iam.check_columns(regclass, boolean, text[], boolean[])"

// writeLimited reports whether a rule limits subject's writes to columns.
func writeLimited(r *lang.ResourceModel, subject lang.Subject) bool {
	_, limited := r.Columns(subject, lang.Write)
	return limited
}

// withWrites is r with write granted only by the rules keep accepts (every
// other permission as written): the arms of the kinds for such a resource
// are the conditions under which those rules let the caller write.
func withWrites(r *lang.ResourceModel, keep func(lang.RuleModel) bool) *lang.ResourceModel {
	cp := *r
	cp.Rules = nil
	for _, rule := range r.Rules {
		if !keep(rule) {
			var perms []lang.Perm
			for _, p := range rule.Perms {
				if p != lang.Write {
					perms = append(perms, p)
				}
			}
			rule.Perms = perms
		}
		cp.Rules = append(cp.Rules, rule)
	}
	return &cp
}

// writeArms is the condition under which the rules keep accepts let the
// caller change a row (false when none does).
func (b *resourceBuild) writeArms(keep func(lang.RuleModel) bool) Expr {
	c := newRuleContext(b.m, withWrites(b.r, keep), "")
	arms := c.arms(audienceAuthenticated, lang.Write)
	switch {
	case len(arms) == 0:
		return Raw("false")
	case anyTrue(arms):
		return True
	case len(arms) == 1:
		return arms[0]
	}
	for i, a := range arms {
		if and, ok := a.(And); ok {
			arms[i] = Paren{and}
		}
	}
	return Paren{Or(arms)}
}

// columnCheck is the call the update policy's WITH CHECK adds for a
// resource with write lists: iam.check_columns(table, <a rule without a
// list holds>, <the listed columns>, <for each, a rule listing it holds>).
func (b *resourceBuild) columnCheck() Expr {
	r := b.r
	wide := b.writeArms(func(rule lang.RuleModel) bool { _, limited := rule.Columns[lang.Write]; return !limited })
	free := map[string]bool{}
	for _, col := range r.FreeColumns() {
		free[col] = true
	}
	var names, allowed []string
	for _, col := range r.WriteColumns() {
		names = append(names, col)
		if free[col] {
			allowed = append(allowed, "true")
			continue
		}
		arm := b.writeArms(func(rule lang.RuleModel) bool {
			for _, c := range rule.Columns[lang.Write] {
				if c.Name == col {
					return true
				}
			}
			return false
		})
		allowed = append(allowed, String(arm))
	}
	return Call{Fn: "iam.check_columns", Args: []Expr{
		Cast{E: Raw(quoteLiteral(b.table)), Type: "regclass"},
		wide,
		Cast{E: Raw(quoteLiteral(textArray(names))), Type: "text[]"},
		Raw("array[" + strings.Join(allowed, ", ") + "]"),
	}}
}

// textArray is a text[] literal of names.
func textArray(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(n) + `"`
	}
	return "{" + strings.Join(quoted, ",") + "}"
}

// selectGrant is how a runtime role is granted select: on the table, or
// on the columns its read rules list.
func selectGrant(r *lang.ResourceModel, anonymous bool) string {
	cols, limited := r.ReadColumns(anonymous)
	if !limited {
		return "select"
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quoteIdent(c)
	}
	return "select (" + strings.Join(quoted, ", ") + ")"
}

// columnNeeds are the columns the rules list, to be found in the catalog.
func columnNeeds(r *lang.ResourceModel) []ColumnNeed {
	var out []ColumnNeed
	seen := map[string]bool{}
	for _, rule := range r.Rules {
		for _, p := range rule.Perms {
			for _, col := range rule.Columns[p] {
				if seen[col.Name] {
					continue
				}
				seen[col.Name] = true
				out = append(out, ColumnNeed{Column: col.Name, Pos: col.Pos,
					LookupWhy: fmt.Sprintf("%s can %s (...) names it", rule.Subject, p)})
			}
		}
	}
	return out
}
