package lang

import (
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Error is one problem in a policy file, at a position: an error (the
// files are refused) or a warning (lang.Check puts those in
// Model.Warnings).
type Error struct {
	Pos Pos
	Msg string
	// Code is the stable diagnostic code (IAM100 ...), one per kind of
	// problem, listed with an example each in docs/diagnostics.md.
	Code string
	// Level is LevelError or LevelWarning.
	Level string
}

// The levels of a diagnostic.
const (
	LevelError   = "error"
	LevelWarning = "warning"
)

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

// addAt reports a problem at a place the model recorded. Its code is the
// one codes.go gives the message's format: every format the checker uses
// has one (a test reads the checker's source to hold it so).
func (l *ErrorList) addAt(pos Pos, format string, args ...any) {
	code := codeOf[format]
	level := LevelError
	if c, ok := codeByID[code]; ok {
		level = c.Level
	}
	*l = append(*l, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Code: code, Level: level})
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
