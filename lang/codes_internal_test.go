package lang

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryMessageHasACode reads the checker's source: every message
// format it reports (add, addAt) has a code in codes.go, and every format
// codes.go lists is still reported somewhere.
func TestEveryMessageHasACode(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	used := map[string]bool{}
	consts := map[string]string{}
	var parsed []*ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
							consts[id.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
			return true
		})
	}
	for _, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "add" && sel.Sel.Name != "addAt" || len(call.Args) < 2 {
				return true
			}
			if _, isDecl := n.(*ast.FuncDecl); isDecl {
				return true
			}
			var format string
			switch a := call.Args[1].(type) {
			case *ast.BasicLit:
				format, _ = strconv.Unquote(a.Value)
			case *ast.Ident:
				format = consts[a.Name]
				if format == "" && a.Name == "format" {
					return true // the helpers themselves
				}
			}
			if format == "" {
				t.Errorf("%s: a message whose format is not a literal or constant: give it one, with a code in codes.go", fset.Position(call.Pos()))
				return true
			}
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
}

// TestCodes: codes are unique, in order, errors below IAM180 and warnings
// from IAM180 (to IAM199), each with a title and an example.
func TestCodes(t *testing.T) {
	prev := ""
	for _, c := range Codes() {
		if c.ID <= prev {
			t.Errorf("%s after %s: keep codes unique and in order", c.ID, prev)
		}
		prev = c.ID
		if want := map[bool]string{true: LevelError, false: LevelWarning}[c.ID < "IAM180"]; c.Level != want {
			t.Errorf("%s is a %s; codes below IAM180 are errors, IAM180-IAM199 warnings", c.ID, c.Level)
		}
		if c.Title == "" || c.Example == "" {
			t.Errorf("%s needs a title and an example", c.ID)
		}
	}
}
