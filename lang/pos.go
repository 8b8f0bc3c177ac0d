package lang

import (
	"fmt"

	"github.com/alecthomas/participle/v2/lexer"
)

// Pos is a place in a policy file: what the model, errors and the catalog
// check's findings point at. The parser's own position type stays inside
// the AST.
type Pos struct {
	Filename string
	Offset   int // bytes from the start of the file
	Line     int // from 1; 0 for no position
	Column   int // from 1, in characters
}

// String is file:line:col, as editors and CI annotations read it.
func (p Pos) String() string {
	if p.Filename == "" {
		return fmt.Sprintf("%d:%d", p.Line, p.Column)
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// IsValid reports whether p points somewhere (line 1 or later).
func (p Pos) IsValid() bool { return p.Line > 0 }

func posOf(p lexer.Position) Pos {
	return Pos{Filename: p.Filename, Offset: p.Offset, Line: p.Line, Column: p.Column}
}
