package lang

import (
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Format prints a file in canonical form: two-space indentation, one item
// per line, identifiers and strings as written, comments kept in place. Blank lines are kept (at most one in
// a row), and two blocks are always separated by one. A comment written at
// the end of an item's line stays on that line.
func Format(f *File) string {
	var b strings.Builder
	prevEnd := 0
	prevWasBlock := false
	for i, e := range f.Entries {
		start := e.Pos.Line
		if e.Comment != nil {
			start = e.Comment.Pos.Line
		}
		if i > 0 && e.Comment != nil && start == prevEnd {
			trimNewline(&b)
			b.WriteString("  " + e.Comment.Text + "\n")
			continue
		}
		if i > 0 && (start > prevEnd+1 || prevWasBlock) {
			b.WriteString("\n")
		}
		switch {
		case e.Comment != nil:
			b.WriteString(e.Comment.Text + "\n")
		case e.Identity != nil:
			block(&b, "identity", identityLines(e.Identity))
		case e.Roles != nil:
			block(&b, "roles", roleLines(e.Roles))
		case e.Groups != nil:
			block(&b, "groups", groupsLines(e.Groups))
		case e.Resource != nil:
			block(&b, "resource "+qualified(e.Resource.Name), resourceLines(e.Resource))
		}
		prevEnd = e.EndPos.Line
		if e.Comment != nil {
			prevEnd = start
		}
		prevWasBlock = e.Comment == nil
	}
	return b.String()
}

// line is one formatted item: text, or a comment, with the source line it
// started on and whether it is a comment.
type line struct {
	text      string
	startLine int
	endLine   int
	comment   bool
}

func block(b *strings.Builder, head string, lines []line) {
	b.WriteString(head + " {\n")
	prevEnd := -1
	for i, l := range lines {
		if l.comment && l.startLine == prevEnd {
			trimNewline(b)
			b.WriteString("  " + l.text + "\n")
			continue
		}
		if i > 0 && l.startLine > prevEnd+1 {
			b.WriteString("\n")
		}
		b.WriteString("  " + l.text + "\n")
		prevEnd = l.endLine
	}
	b.WriteString("}\n")
}

func trimNewline(b *strings.Builder) {
	s := strings.TrimSuffix(b.String(), "\n")
	b.Reset()
	b.WriteString(s)
}

func commentLine(c *Comment) line {
	return line{text: c.Text, startLine: c.Pos.Line, endLine: c.Pos.Line, comment: true}
}

func itemLine(pos, end lexer.Position, text string) line {
	return line{text: text, startLine: pos.Line, endLine: end.Line}
}

func identityLines(id *Identity) []line {
	var out []line
	for _, it := range id.Items {
		switch {
		case it.Comment != nil:
			out = append(out, commentLine(it.Comment))
		case it.Claim != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "claim "+it.Claim.Raw))
		case it.Type != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "type "+ident(it.Type)))
		case it.Audience != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "audience "+it.Audience.Raw))
		case it.Expiry != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "expiry "+ident(it.Expiry)))
		}
	}
	return out
}

func roleLines(r *Roles) []line {
	var out []line
	for _, it := range r.Items {
		if it.Comment != nil {
			out = append(out, commentLine(it.Comment))
			continue
		}
		if it.Timeout != nil {
			out = append(out, itemLine(it.Pos, it.EndPos, it.Timeout.Kind+" timeout "+it.Timeout.Value.Raw))
			continue
		}
		if it.Single != nil {
			out = append(out, itemLine(it.Pos, it.EndPos, "single role "+ident(it.Single)))
			continue
		}
		out = append(out, itemLine(it.Pos, it.EndPos, ident(it.Slot)+" "+ident(it.Role)))
	}
	return out
}

func groupsLines(g *Groups) []line {
	var out []line
	for _, it := range g.Items {
		switch {
		case it.Comment != nil:
			out = append(out, commentLine(it.Comment))
		case it.APISchema != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "api schema "+ident(it.APISchema)))
		case it.TokenClaim != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "token claim "+it.TokenClaim.Claim.Raw+" as "+ident(it.TokenClaim.As)))
		case it.AdminRole != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "admin role "+it.AdminRole.Raw))
		case it.Limit != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "max "+it.Limit.Phrase()+" "+it.Limit.Value.Raw))
		case it.RoleOrder != nil:
			names := make([]string, len(it.RoleOrder.Roles))
			for i, r := range it.RoleOrder.Roles {
				names[i] = ident(r)
			}
			out = append(out, itemLine(it.Pos, it.EndPos, "roles "+strings.Join(names, " < ")))
		case it.ManagedBy != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "members managed by "+ident(it.ManagedBy)))
		case it.Subgroup != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "token subgroup "+it.Subgroup.Name.Raw+" as "+ident(it.Subgroup.As)))
		case it.RoleMove != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "role "+ident(it.RoleMove.From)+" becomes "+ident(it.RoleMove.To)))
		case it.Profile != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, it.Profile.Text()))
		case it.MembersSeeEmail:
			out = append(out, itemLine(it.Pos, it.EndPos, "members see email"))
		}
	}
	return out
}

func resourceLines(r *Resource) []line {
	var out []line
	for _, it := range r.Items {
		switch {
		case it.Comment != nil:
			out = append(out, commentLine(it.Comment))
		case it.OwnerColumn != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "owner column "+ident(it.OwnerColumn)))
		case it.GroupColumn != nil:
			text := "group column " + ident(it.GroupColumn.Column)
			if it.GroupColumn.Required {
				text += " required"
			}
			out = append(out, itemLine(it.Pos, it.EndPos, text))
		case it.PageBy != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "page by "+ident(it.PageBy)))
		case it.Parent != nil:
			text := "parent " + qualified(it.Parent.Table) + " via " + ident(it.Parent.Column)
			if it.Parent.Key != nil {
				text += " references " + ident(it.Parent.Key)
			}
			out = append(out, itemLine(it.Pos, it.EndPos, text))
		case it.Tenant != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "tenant column "+ident(it.Tenant.Column)+" from claim "+it.Tenant.Claim.Raw))
		case it.Share != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, shareText(it.Share)))
		case it.ShareLimit != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, "max "+it.ShareLimit.Phrase()+" "+it.ShareLimit.Value.Raw))
		case it.Rule != nil:
			out = append(out, itemLine(it.Pos, it.EndPos, ruleText(it.Rule)))
		}
	}
	return out
}

func ruleText(r *Rule) string {
	subject := r.Subject.Kind()
	switch s := r.Subject; {
	case s.Parent != nil && s.Parent.Role != nil:
		subject += " group " + ident(s.Parent.Role)
	case s.Parent != nil:
		subject += " " + s.Parent.Who
	case s.Role != nil:
		subject += " " + ident(s.Role)
	case s.Keycloak != nil:
		subject += " " + s.Keycloak.Name.Raw
		if s.Keycloak.Client != nil {
			subject += " of client " + s.Keycloak.Client.Raw
		}
	case s.Match != nil:
		subject = ident(s.Match.Column) + " = claim " + s.Match.Claim.Raw
	}
	perms := make([]string, len(r.Perms))
	for i, p := range r.Perms {
		perms[i] = ident(p.Name)
		if p.Columns != nil {
			cols := make([]string, len(p.Columns))
			for j, c := range p.Columns {
				cols[j] = ident(c)
			}
			perms[i] += " (" + strings.Join(cols, ", ") + ")"
		}
	}
	return subject + " can " + strings.Join(perms, ", ")
}

// ident prints an identifier exactly as written. (Lower-casing bare ones
// would not change their meaning, but could turn a name such as Column into
// a keyword of the position it stands in.)
func ident(i *Ident) string {
	return i.Raw
}

func qualified(q *QualifiedName) string {
	parts := make([]string, len(q.Parts))
	for i, p := range q.Parts {
		parts[i] = ident(p)
	}
	return strings.Join(parts, ".")
}
