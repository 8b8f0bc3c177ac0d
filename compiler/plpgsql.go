package compiler

import (
	"fmt"
	"strings"
)

// block is the one indenting writer of generated PL/pgSQL: a list of
// statements, each written from column 0 (its continuation lines indented
// relative to its first), and indented as deep as the block is nested
// when printed. Nothing else in the compiler counts spaces.
type block []string

// add appends a statement.
func (b *block) add(format string, args ...any) {
	*b = append(*b, fmt.Sprintf(format, args...))
}

// addIf appends if cond then <then> [else <otherwise>] end if.
func (b *block) addIf(cond string, then, otherwise block) {
	s := "if " + cond + " then\n" + then.text(1)
	if otherwise != nil {
		s += "\nelse\n" + otherwise.text(1)
	}
	*b = append(*b, s+"\nend if;")
}

// text prints the block depth levels deep (4 spaces a level).
func (b block) text(depth int) string {
	lines := make([]string, len(b))
	for i, s := range b {
		lines[i] = indentBy(s, depth)
	}
	return strings.Join(lines, "\n")
}

// indentBy indents every line of s by depth levels.
func indentBy(s string, depth int) string {
	pad := strings.Repeat("    ", depth)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}
