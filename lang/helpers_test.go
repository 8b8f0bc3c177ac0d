package lang_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	_ "github.com/iamc/iamc/internal/goldenfile" // -update in every test binary
	"github.com/iamc/iamc/lang"
)

// regressed fails a test that guards a bug found and fixed earlier: the
// message says what came back.
func regressed(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Fatalf("regression of a fixed bug: "+format, args...)
}

// src is one named policy file.
type src struct{ name, text string }

func parseAll(t *testing.T, files ...src) ([]*lang.File, error) {
	t.Helper()
	var out []*lang.File
	for _, f := range files {
		parsed, err := lang.ParseFile(f.name, []byte(f.text))
		if err != nil {
			return nil, err
		}
		out = append(out, parsed)
	}
	return out, nil
}

func mustParse(t *testing.T, name, text string) *lang.File {
	t.Helper()
	f, err := lang.ParseFile(name, []byte(text))
	if err != nil {
		t.Fatalf("ParseFile(%q):\n%s\nerror: %v", name, text, err)
	}
	return f
}

// astOptions compare syntax trees as Format preserves them: positions
// ignored, a bare identifier equal to its lower-case spelling.
var astOptions = cmp.Options{
	cmpopts.IgnoreTypes(lexer.Position{}, lang.Pos{}),
	cmp.Comparer(func(a, b lang.Ident) bool { return canonIdent(a) == canonIdent(b) }),
}

func canonIdent(i lang.Ident) string {
	if i.Quoted() {
		return i.Raw
	}
	return strings.ToLower(i.Raw)
}

// comments lists every comment of a file in order.
func comments(f *lang.File) []string {
	var out []string
	add := func(c *lang.Comment) {
		if c != nil {
			out = append(out, c.Text)
		}
	}
	for _, e := range f.Entries {
		add(e.Comment)
		switch {
		case e.Identity != nil:
			for _, it := range e.Identity.Items {
				add(it.Comment)
			}
		case e.Roles != nil:
			for _, it := range e.Roles.Items {
				add(it.Comment)
			}
		case e.Groups != nil:
			for _, it := range e.Groups.Items {
				add(it.Comment)
			}
		case e.Resource != nil:
			for _, it := range e.Resource.Items {
				add(it.Comment)
			}
		}
	}
	return out
}

// corpus is every .iam file of the repository's examples and goldens.
func corpus(t testing.TB) []string {
	t.Helper()
	var paths []string
	for _, pattern := range []string{"../policies/*.iam", "../golden/*/policies/*.iam"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) < 20 {
		t.Fatalf("only %d .iam files found for the corpus", len(paths))
	}
	return paths
}

func pos(p lexer.Position) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}
