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
	formatRedundant    = "%s can %s in %s is redundant: %s (at %s) already grants it"
	formatClaimUnused  = "token claim %s: no resource has a group rule, so the groups it names grant nothing"
	formatUnreachable  = "no rule grants anything on %s: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served"
	formatUnusedIgnore = "unused iamc:ignore %s: no %s warning on this line"
	formatBadIgnore    = "iamc:ignore needs a warning code and a reason, e.g. # iamc:ignore IAM163 not served yet: %s"
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
// resource uses, a resource no request can reach. They are read from the
// files (for the positions of the permissions) once the checker found no
// error, so every name and subject in them is valid.
func (c *checker) warnings(files []*File) ErrorList {
	var w ErrorList
	for _, f := range files {
		for _, e := range f.Entries {
			if e.Resource == nil || len(e.Resource.Name.Parts) != 2 {
				continue
			}
			parts := e.Resource.Name.Parts
			res := c.resources[parts[0].Name()+"."+parts[1].Name()]
			if res == nil || posOf(e.Resource.Pos) != res.Pos {
				continue
			}
			c.resourceWarnings(&w, res, grantsOf(e.Resource))
		}
	}
	if g := c.model.Groups; g.TokenClaim != "" {
		used := false
		for _, r := range c.model.Resources {
			used = used || r.GroupColumn != "" && r.HasGroupRules()
		}
		if !used {
			w.add(tokenClaimPos(files), formatClaimUnused, quoteString(g.TokenClaim))
		}
	}
	return w
}

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// grantsOf lists a resource's grants as written, first occurrence only.
func grantsOf(r *Resource) []grant {
	var out []grant
	seen := map[string]bool{}
	for _, it := range r.Items {
		if it.Rule == nil {
			continue
		}
		var s Subject
		switch it.Rule.Subject.Kind() {
		case "group":
			s = GroupSubject{GroupRole(it.Rule.Subject.Role.Name())}
		case "owner":
			s = OwnerSubject{}
		case "authenticated":
			s = AuthenticatedSubject{}
		default:
			s = AnonymousSubject{}
		}
		for _, id := range it.Rule.Perms {
			key := s.String() + " " + id.Name()
			if !seen[key] {
				seen[key] = true
				out = append(out, grant{subject: s, perm: Perm(id.Name()), pos: id.Pos, rule: it.Rule.Pos})
			}
		}
	}
	return out
}

func (c *checker) resourceWarnings(w *ErrorList, res *ResourceModel, grants []grant) {
	name := res.QualifiedName()
	if len(res.Rules) == 0 && c.model.Groups.AdminRole == "" {
		w.addAt(res.Pos, formatUnreachable, name)
	}
	// Rows enter a group only through an insert or a move by a caller with
	// the create role there; with none, group rules reach no API row.
	if res.GroupColumn != "" && res.GroupMinRole(Create) == "" {
		for _, rule := range res.Rules {
			if g, ok := rule.Subject.(GroupSubject); ok {
				perms := make([]string, len(rule.Perms))
				for i, p := range rule.Perms {
					perms[i] = string(p)
				}
				w.addAt(rule.Pos, formatNeverApplies, fmt.Sprintf("%s can %s", g, strings.Join(perms, ", ")), name)
			}
		}
	}
	at := func(s Subject, p Perm) (lexer.Position, bool) {
		for _, g := range grants {
			if g.subject == s && g.perm == p {
				return g.pos, true
			}
		}
		return lexer.Position{}, false
	}
	for _, g := range grants {
		var by Subject
		switch s := g.subject.(type) {
		case GroupSubject:
			for _, lower := range GroupRoles[:rank(s.Role)] {
				if res.Can(GroupSubject{lower}, g.perm) {
					by = GroupSubject{lower}
					break
				}
			}
		case AuthenticatedSubject:
			if g.perm == Read && res.Can(AnonymousSubject{}, Read) {
				by = AnonymousSubject{}
			}
		case OwnerSubject:
		}
		if _, isGroup := g.subject.(GroupSubject); (isGroup || g.subject == Subject(OwnerSubject{})) && by == nil && g.perm == Read {
			switch {
			case res.Can(AnonymousSubject{}, Read):
				by = AnonymousSubject{}
			case res.Can(AuthenticatedSubject{}, Read):
				by = AuthenticatedSubject{}
			}
		}
		if by == nil {
			continue
		}
		pos, _ := at(by, g.perm)
		w.add(g.pos, formatRedundant, g.subject, g.perm, name, fmt.Sprintf("%s can %s", by, g.perm), where(pos))
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
