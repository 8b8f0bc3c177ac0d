package lang

import (
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Error is one problem in a policy file, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.Filename, e.Pos.Line, e.Pos.Column, e.Msg)
}

// ErrorList is every problem found, sorted by position when printed.
type ErrorList []*Error

func (l ErrorList) Error() string {
	sorted := append(ErrorList(nil), l...)
	sort.SliceStable(sorted, func(i, j int) bool { return PosLess(sorted[i].Pos, sorted[j].Pos) })
	lines := make([]string, len(sorted))
	for i, e := range sorted {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// add reports a problem at a place in the AST.
func (l *ErrorList) add(pos lexer.Position, format string, args ...any) {
	l.addAt(posOf(pos), format, args...)
}

// addAt reports a problem at a place the model recorded.
func (l *ErrorList) addAt(pos Pos, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// PosLess orders positions by file, line and column: the order problems
// are reported in.
func PosLess(a, b Pos) bool {
	if a.Filename != b.Filename {
		return a.Filename < b.Filename
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
}
