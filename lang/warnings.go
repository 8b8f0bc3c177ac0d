package lang

import (
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// The warnings' message formats (codes.go gives each its code).
const (
	formatNeverApplies = "%s in %s can never apply: no group role can create, so no request can put a row into a group (only the owner role can); add e.g. `group member can create`, or ignore this if rows enter groups that way"
	formatRedundant    = "%s in %s is redundant, already granted by %s"
	formatClaimUnused  = "token claim %s: no resource has a group rule, so the groups it names grant nothing"
	formatUnreachable  = "no rule grants anything on %s: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served"
	formatUnusedIgnore = "unused iamc:ignore %s: no %s warning on this line"
	formatBadIgnore    = "iamc:ignore needs a warning code and a reason, e.g. # iamc:ignore IAM183 not served yet: %s"
)

// warningsOf is the files' warnings, suppressed as their comments say,
// with the comments that are malformed or suppress nothing; and the
// suppressions, for warnings found later.
func (c *checker) warningsOf(files []*File) (ErrorList, *Suppressions) {
	sup, bad := NewSuppressions(files)
	warns := sup.Filter(c.warnings(files))
	warns = append(warns, bad...)
	warns = append(warns, sup.Unused(IsLanguageCode)...)
	sort.SliceStable(warns, func(i, j int) bool { return PosLess(warns[i].Pos, warns[j].Pos) })
	return warns, sup
}

// grant is where a rule grants a subject a permission.
type grant struct {
	subject Subject
	perm    Perm
	pos     lexer.Position
	rule    lexer.Position
}

// warnings are what a correct set of files still gets told: rules that
// can never apply or that other rules make redundant, a token claim no
// resource uses, a resource no request can reach. They are looked for
// once the checker found no error, so every name and subject is valid.
func (c *checker) warnings(files []*File) ErrorList {
	var w ErrorList
	for _, res := range c.model.Resources {
		c.resourceWarnings(&w, res)
	}
	if g := c.model.Groups; g.TokenClaim != "" {
		used := false
		for _, r := range c.model.Resources {
			for _, rule := range r.Rules {
				_, group := rule.Subject.(GroupSubject)
				if ps, ok := rule.Subject.(ParentSubject); ok {
					_, group = ps.Of.(GroupSubject)
				}
				used = used || group
			}
		}
		if !used {
			w.add(tokenClaimPos(files), formatClaimUnused, quoteString(g.TokenClaim))
		}
	}
	return w
}

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ruleWords is a rule as written: `group member can read, create`.
func ruleWords(rule RuleModel) string {
	perms := make([]string, len(rule.Perms))
	for i, p := range rule.Perms {
		perms[i] = string(p)
	}
	return fmt.Sprintf("%s can %s", rule.Subject, strings.Join(perms, ", "))
}

// covers reports whether a grant of p to other gives s p too: a read
// that reads for s (everyone's, a lower group role's), or any permission
// of a lower role of the same group (or of the parent's group), ranked by
// the resource's order of roles; and, with column lists, on at least the
// columns s's own grant names (a write of stock does not cover a write of
// every column).
func (r *ResourceModel) covers(other, s Subject, p Perm) bool {
	if other == s || !r.coversColumns(other, s, p) {
		return false
	}
	if p == Read && r.ReadCovers(other, s) {
		return true
	}
	order := r.Roles()
	lower := func(a, b Subject) bool {
		ga, ok1 := a.(GroupSubject)
		gb, ok2 := b.(GroupSubject)
		return ok1 && ok2 && order.Rank(ga.Role) < order.Rank(gb.Role)
	}
	if lower(other, s) {
		return true
	}
	po, ok1 := other.(ParentSubject)
	ps, ok2 := s.(ParentSubject)
	return ok1 && ok2 && lower(po.Of, ps.Of)
}

// coversColumns: other's grant of p names no columns, or every column s's
// grant names.
func (r *ResourceModel) coversColumns(other, s Subject, p Perm) bool {
	theirs, limited := r.Columns(other, p)
	if !limited {
		return true
	}
	mine, mineLimited := r.Columns(s, p)
	if !mineLimited {
		return false
	}
	have := map[string]bool{}
	for _, c := range theirs {
		have[c.Name] = true
	}
	for _, c := range mine {
		if !have[c.Name] {
			return false
		}
	}
	return true
}

func (c *checker) resourceWarnings(w *ErrorList, res *ResourceModel) {
	name := res.QualifiedName()
	if len(res.Rules) == 0 && c.model.Groups.AdminRole == "" {
		w.addAt(res.Pos, formatUnreachable, name)
	}
	// Rows enter a group only through an insert or a move by a caller with
	// the create role there; with none, group rules reach no API row.
	if res.GroupColumn != "" && res.GroupMinRole(Create) == "" {
		for _, rule := range res.Rules {
			if _, ok := rule.Subject.(GroupSubject); ok {
				w.addAt(rule.Pos, formatNeverApplies, ruleWords(rule), name)
			}
		}
	}
	// A rule is redundant when other rules already grant each of its
	// permissions (a permission of a rule that also grants others is not
	// reported: `owner can read, write` stays one line).
	for _, rule := range res.Rules {
		var by []string
		redundant := len(rule.Perms) > 0
		for _, p := range rule.Perms {
			found := ""
			for _, other := range res.Rules {
				if res.covers(other.Subject, rule.Subject, p) && res.Can(other.Subject, p) {
					found = fmt.Sprintf("%s can %s (at %s)", other.Subject, p, whereAt(other.Pos))
					break
				}
			}
			if found == "" {
				redundant = false
				break
			}
			by = append(by, found)
		}
		if redundant {
			w.addAt(rule.Pos, formatRedundant, ruleWords(rule), name, strings.Join(by, " and "))
		}
	}
}

// tokenClaimPos is where the groups block names its token claim.
func tokenClaimPos(files []*File) lexer.Position {
	for _, f := range files {
		for _, e := range f.Entries {
			if e.Groups == nil {
				continue
			}
			for _, it := range e.Groups.Items {
				if it.TokenClaim != nil {
					return it.Pos
				}
			}
		}
	}
	return lexer.Position{}
}
