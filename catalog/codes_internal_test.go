package catalog

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryFindingHasACode reads the catalog check's source: every message
// format it reports has a code in codes.go, and every format there is
// still reported.
func TestEveryFindingHasACode(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	used := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "add" || len(call.Args) < 4 {
				return true
			}
			lit, ok := call.Args[3].(*ast.BasicLit)
			if !ok {
				t.Errorf("%s: a finding whose format is not a literal: give it one, with a code in codes.go", fset.Position(call.Pos()))
				return true
			}
			format, _ := strconv.Unquote(lit.Value)
			used[format] = true
			if codeOf[format] == "" {
				t.Errorf("%s: %q has no code: add it to a code in codes.go", fset.Position(call.Pos()), format)
			}
			return true
		})
	}
	for format, code := range codeOf {
		if !used[format] {
			t.Errorf("codes.go gives %s to %q, which nothing reports", code, format)
		}
	}
	prev := ""
	for _, c := range Codes() {
		if c.ID <= prev || c.ID < "IAM300" || c.ID >= "IAM400" || c.Title == "" || c.Example == "" {
			t.Errorf("code %s (after %s): keep IAM300-IAM399 unique, in order, each with a title and an example", c.ID, prev)
		}
		prev = c.ID
	}
}
