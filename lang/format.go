package lang

import (
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Format prints a file in canonical form: two-space indentation, one item
// per line, a blank line between top-level blocks, keywords in lower case,
// identifiers as written (quoted ones stay quoted), comments kept in place.
// A comment written at the end of an item's line stays on that line.
func Format(f *File) string {
	var b strings.Builder
	var prevEnd int
	for i, e := range f.Entries {
		if e.Comment != nil {
			if i > 0 && e.Comment.Pos.Line == prevEnd {
				trimNewline(&b)
				b.WriteString("  " + e.Comment.Text + "\n")
				continue
			}
			if i > 0 && f.Entries[i-1].Comment == nil {
				b.WriteString("\n")
			}
			b.WriteString(e.Comment.Text + "\n")
			prevEnd = e.Comment.Pos.Line
			continue
		}
		if i > 0 && f.Entries[i-1].Comment == nil {
			b.WriteString("\n")
		}
		switch {
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
	}
	return b.String()
}

// line is one formatted item: text, or a comment, with the source line it
// started on and whether it is a comment.
type line struct {
	text      string
	startLine int
	comment   bool
}

func block(b *strings.Builder, head string, lines []line) {
	b.WriteString(head + " {\n")
	prevLine := -1
	for _, l := range lines {
		if l.comment && l.startLine == prevLine {
			trimNewline(b)
			b.WriteString("  " + l.text + "\n")
			continue
		}
		b.WriteString("  " + l.text + "\n")
		prevLine = l.startLine
	}
	b.WriteString("}\n")
}

func trimNewline(b *strings.Builder) {
	s := strings.TrimSuffix(b.String(), "\n")
	b.Reset()
	b.WriteString(s)
}

func commentLine(c *Comment) line {
	return line{text: c.Text, startLine: c.Pos.Line, comment: true}
}

func itemLine(pos lexer.Position, text string) line {
	return line{text: text, startLine: pos.Line}
}

func identityLines(id *Identity) []line {
	var out []line
	for _, it := range id.Items {
		switch {
		case it.Comment != nil:
			out = append(out, commentLine(it.Comment))
		case it.Claim != nil:
			out = append(out, itemLine(it.Pos, "claim "+it.Claim.Raw))
		case it.Type != nil:
			out = append(out, itemLine(it.Pos, "type "+ident(it.Type)))
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
		out = append(out, itemLine(it.Pos, ident(it.Slot)+" "+ident(it.Role)))
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
			out = append(out, itemLine(it.Pos, "api schema "+ident(it.APISchema)))
		case it.TokenClaim != nil:
			out = append(out, itemLine(it.Pos, "token claim "+it.TokenClaim.Claim.Raw+" as "+ident(it.TokenClaim.As)))
		case it.AdminRole != nil:
			out = append(out, itemLine(it.Pos, "admin role "+it.AdminRole.Raw))
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
			out = append(out, itemLine(it.Pos, "owner column "+ident(it.OwnerColumn)))
		case it.GroupColumn != nil:
			text := "group column " + ident(it.GroupColumn.Column)
			if it.GroupColumn.Required {
				text += " required"
			}
			out = append(out, itemLine(it.Pos, text))
		case it.Rule != nil:
			out = append(out, itemLine(it.Pos, ruleText(it.Rule)))
		}
	}
	return out
}

func ruleText(r *Rule) string {
	subject := r.Subject.Kind()
	if r.Subject.Role != nil {
		subject += " " + ident(r.Subject.Role)
	}
	perms := make([]string, len(r.Perms))
	for i, p := range r.Perms {
		perms[i] = ident(p)
	}
	return subject + " can " + strings.Join(perms, ", ")
}

// ident prints an identifier canonically: bare ones in lower case (their
// meaning), quoted ones exactly as written.
func ident(i *Ident) string {
	if i.Quoted() {
		return i.Raw
	}
	return strings.ToLower(i.Raw)
}

func qualified(q *QualifiedName) string {
	parts := make([]string, len(q.Parts))
	for i, p := range q.Parts {
		parts[i] = ident(p)
	}
	return strings.Join(parts, ".")
}
