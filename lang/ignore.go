package lang

import (
	"regexp"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Ignore is one `# iamc:ignore IAMxxx reason` comment: the warning with
// that code on the comment's line is not reported (nor, when the comment
// stands alone on its line, on the next line).
type Ignore struct {
	Pos    Pos
	Code   string
	Reason string
	Lines  [2]int // the lines it applies to (0: none)
	Used   bool   // it suppressed a warning
}

// Suppressions are the ignore comments of a set of files, and which of
// them suppressed something.
type Suppressions struct {
	Ignores []*Ignore
}

var ignoreCode = regexp.MustCompile(`^IAM[0-9]{3}$`)

// NewSuppressions reads the iamc:ignore comments of files. A malformed
// one (no code, an unknown or error code, no reason) is a warning
// (IAM191) and ignores nothing.
func NewSuppressions(files []*File) (*Suppressions, ErrorList) {
	s := &Suppressions{}
	var bad ErrorList
	visit := func(c *Comment, prevLine int) {
		text := strings.TrimSpace(strings.TrimPrefix(c.Text, "#"))
		if !strings.HasPrefix(text, "iamc:ignore") {
			return
		}
		rest := strings.TrimSpace(strings.TrimPrefix(text, "iamc:ignore"))
		code, reason, _ := strings.Cut(rest, " ")
		reason = strings.TrimSpace(reason)
		var why string
		switch {
		case !ignoreCode.MatchString(code):
			why = "no code"
		case codeByID[code].Level == LevelError:
			why = code + " is an error, and only warnings can be ignored"
		case code < "IAM200" && code >= "IAM100" && codeByID[code].ID == "":
			why = code + " is not a code of the language"
		case reason == "":
			why = "no reason"
		}
		if why != "" {
			bad.add(c.Pos, formatBadIgnore, why)
			return
		}
		ig := &Ignore{Pos: posOf(c.Pos), Code: code, Reason: reason}
		ig.Lines[0] = c.Pos.Line
		if prevLine < c.Pos.Line {
			ig.Lines[1] = c.Pos.Line + 1 // alone on its line: the next one
		}
		s.Ignores = append(s.Ignores, ig)
	}
	for _, f := range files {
		prev := 0
		for _, e := range f.Entries {
			switch {
			case e.Comment != nil:
				visit(e.Comment, prev)
			case e.Identity != nil:
				walkItems(e.Identity.Pos, len(e.Identity.Items), func(i int) (*Comment, lexer.Position, lexer.Position) {
					it := e.Identity.Items[i]
					return it.Comment, it.Pos, it.EndPos
				}, visit)
			case e.Roles != nil:
				walkItems(e.Roles.Pos, len(e.Roles.Items), func(i int) (*Comment, lexer.Position, lexer.Position) {
					it := e.Roles.Items[i]
					return it.Comment, it.Pos, it.EndPos
				}, visit)
			case e.Groups != nil:
				walkItems(e.Groups.Pos, len(e.Groups.Items), func(i int) (*Comment, lexer.Position, lexer.Position) {
					it := e.Groups.Items[i]
					return it.Comment, it.Pos, it.EndPos
				}, visit)
			case e.Resource != nil:
				walkItems(e.Resource.Pos, len(e.Resource.Items), func(i int) (*Comment, lexer.Position, lexer.Position) {
					it := e.Resource.Items[i]
					return it.Comment, it.Pos, it.EndPos
				}, visit)
			}
			prev = e.EndPos.Line
			if e.EndPos.Column <= 1 && e.EndPos.Line > e.Pos.Line {
				// participle's end is the start of the next token.
				prev = e.EndPos.Line - 1
			}
		}
	}
	return s, bad
}

// walkItems visits the comments of a block's items, each with the line
// the item before it ends on (the block's opening line for the first).
func walkItems(open lexer.Position, n int, item func(int) (*Comment, lexer.Position, lexer.Position), visit func(*Comment, int)) {
	prev := open.Line
	for i := range n {
		c, pos, end := item(i)
		if c != nil {
			visit(c, prev)
		}
		prev = end.Line
		if end.Line > pos.Line && end.Column <= 1 {
			prev = end.Line - 1
		}
	}
}

// Suppressed reports whether an ignore comment names this warning on its
// line, and marks that comment used. Errors are never suppressed.
func (s *Suppressions) Suppressed(pos Pos, code, level string) bool {
	if s == nil || level != LevelWarning {
		return false
	}
	hit := false
	for _, ig := range s.Ignores {
		if ig.Code == code && ig.Pos.Filename == pos.Filename && (ig.Lines[0] == pos.Line || ig.Lines[1] == pos.Line) {
			ig.Used, hit = true, true
		}
	}
	return hit
}

// Filter drops the suppressed warnings of list.
func (s *Suppressions) Filter(list ErrorList) ErrorList {
	var out ErrorList
	for _, e := range list {
		if !s.Suppressed(e.Pos, e.Code, e.Level) {
			out = append(out, e)
		}
	}
	return out
}

// Unused is a warning (IAM190) for each ignore comment that suppressed
// nothing, among those whose code judged says was checked (an ignore of a
// catalog check's warning is judged only when a database was checked).
func (s *Suppressions) Unused(judged func(code string) bool) ErrorList {
	var out ErrorList
	if s == nil {
		return nil
	}
	for _, ig := range s.Ignores {
		if !ig.Used && judged(ig.Code) {
			out.addAt(ig.Pos, formatUnusedIgnore, ig.Code, ig.Code)
		}
	}
	return out
}

// IsLanguageCode reports whether code is one lang.Check reports.
func IsLanguageCode(code string) bool { _, ok := codeByID[code]; return ok }
