package lang

import (
	"sort"
	"strings"
)

// Column rules: a permission may name the columns it covers.
//
//	parent group member can write (stock)   the staff change stock, nothing else
//	anonymous can read (id, name)           web_anon is granted select (id, name)
//
// A write list is enforced per row: the row guard notes which columns an
// UPDATE changes, and the update policy refuses a change of a column the
// caller may not write unless a wider write rule holds on the row. A read
// list is a column grant to the runtime role the subject runs as, so it is
// for anonymous and authenticated only (column privileges belong to a
// database role, not to a row).

// The message formats of the column rules' errors (codes.go gives each its code).
const (
	formatColumnTwice        = "column %s is listed twice"
	formatColumnsPerm        = "%s can %s (...): a column list goes with write (the columns a subject may change) or with read of anonymous and authenticated (column grants); %s takes whole rows"
	formatColumnsReadSubject = "%s can read (...): column reads are grants to a database role, and only anonymous and authenticated name one (the runtime roles); other subjects read whole rows, so list the columns on anonymous or authenticated instead"
	formatColumnsReadWhole   = "authenticated can read (...) in %s: column reads are grants to the authenticated role, and %s can read gives it whole rows, so every signed-in caller would read every column of every row; drop the list, or the whole-row read"
	formatColumnOwner        = "%s can write (... %s ...): the owner column never changes; leave it out of the list"
	formatColumnsAnonWhole   = "anonymous can read (...) in %s opens every row to signed-in callers too, and %s can read gives the authenticated role whole rows, so every signed-in caller would read every column of every row: column reads are per role, not per row; add `authenticated can read` if that is meant"
	formatColumnsSingle      = "%s can read (...): column reads are grants to a database role, and in single-role mode one role serves requests with and without a token, so a list cannot tell them apart; read whole rows, or declare the two roles"
	formatColumnsPage        = "page by in %s: every read rule lists columns, and the page function returns whole rows, so nobody could call it; remove page by (list with GET /%s?select=...&order=%s.desc)"
)

// columnList reads the columns of one permission.
func (c *checker) columnList(p *Permission) []ColumnRef {
	var out []ColumnRef
	seen := map[string]bool{}
	for _, id := range p.Columns {
		if !c.ident(id, "column name") {
			continue
		}
		name := id.Name()
		if seen[name] {
			c.errs.add(id.Pos, formatColumnTwice, name)
			continue
		}
		seen[name] = true
		out = append(out, ColumnRef{Name: name, Pos: posOf(id.Pos)})
	}
	return out
}

// columnRules checks what a column list may be on: write (any subject that
// may write), read of anonymous and authenticated.
func (c *checker) columnRules(res *ResourceModel, name []string) {
	c.columnPage(res, name)
	for _, rule := range res.Rules {
		for _, p := range rule.Perms {
			cols, listed := rule.Columns[p]
			if !listed {
				continue
			}
			if len(cols) == 0 {
				continue // every name was bad: reported
			}
			at := cols[0].Pos
			switch {
			case p == Create || p == Delete:
				c.errs.addAt(at, formatColumnsPerm, rule.Subject, p, p)
			case p == Read && c.model.Roles.Single:
				c.errs.addAt(at, formatColumnsSingle, rule.Subject)
			case p == Read && !runsAsRole(rule.Subject):
				c.errs.addAt(at, formatColumnsReadSubject, rule.Subject)
			case p == Read && rule.Subject == (AnonymousSubject{}) && !res.Can(AuthenticatedSubject{}, Read):
				// The anonymous rule opens every row to signed-in callers
				// too, who read them with the authenticated role's grant:
				// whole rows when another subject reads whole rows.
				if whole := res.wholeRowReader(); whole != nil {
					c.errs.addAt(at, formatColumnsAnonWhole, displayName(name), whole)
				}
			case p == Read && rule.Subject == (AuthenticatedSubject{}):
				if whole := res.wholeRowReader(); whole != nil {
					c.errs.addAt(at, formatColumnsReadWhole, displayName(name), whole)
				}
			case p == Write:
				for _, col := range cols {
					if col.Name == res.OwnerColumn {
						c.errs.addAt(col.Pos, formatColumnOwner, rule.Subject, col.Name)
					}
				}
			}
		}
	}
}

// columnPage: a page function returns whole rows, so some role must read
// them whole.
func (c *checker) columnPage(res *ResourceModel, name []string) {
	if res.PageKey == "" || !res.anyoneCan(Read) {
		return
	}
	_, userLimited := res.ReadColumns(false)
	_, anonLimited := res.ReadColumns(true)
	if userLimited && (anonLimited || !res.Can(AnonymousSubject{}, Read)) {
		c.errs.addAt(res.PagePos, formatColumnsPage, displayName(name), res.Table, res.PageKey)
	}
}

// runsAsRole reports whether a subject is a whole runtime role: its
// column grants are its own.
func runsAsRole(s Subject) bool {
	return s == (AnonymousSubject{}) || s == (AuthenticatedSubject{})
}

// wholeRowReader is a signed-in subject other than authenticated that
// reads whole rows (owner, a group role, ...), or anonymous without a
// list; nil when none.
func (r *ResourceModel) wholeRowReader() Subject {
	for _, rule := range r.Rules {
		if rule.Subject == (AuthenticatedSubject{}) || !r.Can(rule.Subject, Read) {
			continue
		}
		if _, limited := rule.Columns[Read]; limited {
			continue
		}
		for _, p := range rule.Perms {
			if p == Read {
				return rule.Subject
			}
		}
	}
	return nil
}

// Columns is the column list of the rule granting subject perm, and
// whether there is one (false: every column).
func (r *ResourceModel) Columns(subject Subject, perm Perm) ([]ColumnRef, bool) {
	for _, rule := range r.Rules {
		if rule.Subject != subject {
			continue
		}
		if cols, ok := rule.Columns[perm]; ok {
			return cols, true
		}
	}
	return nil, false
}

// HasWriteColumns reports whether some write rule of r names columns: the
// row guard then notes which columns an update changes.
func (r *ResourceModel) HasWriteColumns() bool {
	for _, rule := range r.Rules {
		if _, ok := rule.Columns[Write]; ok {
			return true
		}
	}
	return false
}

// WriteColumns are the columns some write rule names, sorted.
func (r *ResourceModel) WriteColumns() []string {
	seen := map[string]bool{}
	for _, rule := range r.Rules {
		for _, col := range rule.Columns[Write] {
			seen[col.Name] = true
		}
	}
	return sortedKeys(seen)
}

// FreeColumns are the columns every write rule covers (those of every
// list, when every write rule has one; nil when some write rule covers
// every column, since then it is the lists' intersection): a change of one
// of them needs no check beyond the policy's.
func (r *ResourceModel) FreeColumns() []string {
	var free map[string]bool
	for _, rule := range r.Rules {
		if !r.Can(rule.Subject, Write) {
			continue
		}
		cols, limited := rule.Columns[Write]
		if !limited {
			continue
		}
		these := map[string]bool{}
		for _, col := range cols {
			these[col.Name] = true
		}
		if free == nil {
			free = these
			continue
		}
		for k := range free {
			if !these[k] {
				delete(free, k)
			}
		}
	}
	return sortedKeys(free)
}

// ReadColumns are the columns a runtime role's read rules name (anonymous:
// the anonymous rule; authenticated: both, since an anonymous read opens
// the rows to signed-in callers too), and whether the role is limited to
// them; false when it reads whole rows.
func (r *ResourceModel) ReadColumns(anonymous bool) ([]string, bool) {
	limited := false
	seen := map[string]bool{}
	for _, rule := range r.Rules {
		if !r.Can(rule.Subject, Read) || anonymous && !rule.Subject.Anonymous() {
			continue
		}
		cols, ok := rule.Columns[Read]
		if !ok {
			return nil, false
		}
		limited = true
		for _, col := range cols {
			seen[col.Name] = true
		}
	}
	if !limited {
		return nil, false
	}
	return orderedColumns(r, seen), true
}

// orderedColumns lists the columns in the order the rules first name them.
func orderedColumns(r *ResourceModel, set map[string]bool) []string {
	var out []string
	done := map[string]bool{}
	for _, rule := range r.Rules {
		for _, p := range AllPerms {
			for _, col := range rule.Columns[p] {
				if set[col.Name] && !done[col.Name] {
					done[col.Name] = true
					out = append(out, col.Name)
				}
			}
		}
	}
	return out
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ColumnsText is a column list as the files write it: "(id, name)".
func ColumnsText(cols []string) string { return "(" + strings.Join(cols, ", ") + ")" }
