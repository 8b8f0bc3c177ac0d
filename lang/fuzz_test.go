package lang_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/iamc/iamc/lang"
)

// FuzzParse feeds any bytes to the parser and the checker: neither may
// panic, every error must be a positioned lang error pointing inside the
// input, and whatever checks must mean the same after `iamc fmt`.
// The seeds in testdata/fuzz/FuzzParse run in every `go test`; to fuzz:
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 5m -parallel 1 ./lang/
//
// (compiling what checks is fuzzed by compiler.FuzzCompile: it is slower.)
func FuzzParse(f *testing.F) {
	for _, path := range corpus(f) {
		f.Add(readFile(f, path))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		const name = "fuzz/p.iam"
		file, err := lang.ParseFile(name, src)
		if err != nil {
			checkPositioned(t, name, src, err)
			return
		}
		m, err := lang.Check([]*lang.File{file})
		if err != nil {
			checkPositioned(t, name, src, err)
			return
		}
		formatted := lang.Format(file)
		again, err := lang.ParseFile(name, []byte(formatted))
		if err != nil {
			t.Fatalf("the formatted text of a valid file does not parse: %v\ninput: %q\nformatted: %q", err, src, formatted)
		}
		m2, err := lang.Check([]*lang.File{again})
		if err != nil {
			t.Fatalf("the formatted text of a valid file does not check: %v\ninput: %q\nformatted: %q", err, src, formatted)
		}
		// Positions move when formatting; the meaning must not.
		if diff := cmp.Diff(m, m2, cmpopts.IgnoreTypes(lexer.Position{}, lang.Pos{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("formatting changed the model (-input +formatted):\n%s\ninput: %q\nformatted: %q", diff, src, formatted)
		}
	})
}

// checkPositioned fails unless err is a non-empty lang.ErrorList whose
// every position names the file and lies inside src: the byte offset is
// within the text, and line and column (1-based, columns in runes as the
// lexer counts them) are the ones that offset has.
func checkPositioned(t *testing.T, name string, src []byte, err error) {
	t.Helper()
	var list lang.ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error without a position (%T): %v\ninput: %q", err, err, src)
	}
	for _, e := range list {
		p := e.Pos
		if p.Filename != name {
			t.Fatalf("error %q names file %q, want %q\ninput: %q", e.Error(), p.Filename, name, src)
		}
		if p.Offset < 0 || p.Offset > len(src) {
			t.Fatalf("error %q: offset %d outside the %d-byte input\ninput: %q", e.Error(), p.Offset, len(src), src)
		}
		before := src[:p.Offset]
		line := 1 + bytes.Count(before, []byte("\n"))
		col := 1 + utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:])
		if p.Line != line || p.Column != col {
			t.Fatalf("error %q is at %d:%d, but its offset %d is at %d:%d\ninput: %q", e.Error(), p.Line, p.Column, p.Offset, line, col, src)
		}
		if e.Msg == "" {
			t.Fatalf("error at %d:%d has no message\ninput: %q", p.Line, p.Column, src)
		}
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading a seed: %v", err)
	}
	return b
}
