package lang

// Test files (*.iamtest): fixtures and expectations that `iamc test` runs
// against a real PostgreSQL (SPEC §17). This file is their syntax: the
// tokens of .iam files plus [ and ], the same positions and the same error
// form. testcheck.go gives them meaning against a checked Model.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// TestExtension is the file extension of test files.
const TestExtension = ".iamtest"

// testLexer reads the tokens of .iam files, and [ ] around a row's name.
var testLexer = lexer.MustSimple(testTokenRules())

func testTokenRules() []lexer.SimpleRule {
	rules := make([]lexer.SimpleRule, len(tokenRules))
	copy(rules, tokenRules)
	for i := range rules {
		if rules[i].Name == "Punct" {
			rules[i].Pattern = `[{},.\[\]]`
		}
	}
	return rules
}

var testParser = participle.MustBuild[TestFile](
	participle.Lexer(testLexer),
	participle.Elide("Whitespace"),
	participle.UseLookahead(3),
)

// TestFile is one parsed .iamtest file.
type TestFile struct {
	Name    string       `parser:""`
	Entries []*TestEntry `parser:"@@*"`
}

// TestEntry is one top-level item of a test file. An expectation is tried
// first: it is the only item that starts with a name followed by can or
// cannot.
type TestEntry struct {
	Pos     lexer.Position
	Comment *Comment    `parser:"  @@"`
	Expect  *TestExpect `parser:"| @@"`
	Setup   *TestSetup  `parser:"| @@"`
	User    *TestUser   `parser:"| @@"`
	Group   *TestGroup  `parser:"| @@"`
	Row     *TestRow    `parser:"| @@"`
	Access  *TestAccess `parser:"| @@"`
}

// TestSetup names SQL files run on the throwaway database before the build:
//
//	setup 'roles.sql', 'schema.sql'
type TestSetup struct {
	Pos   lexer.Position
	Files []*String `parser:"'setup' @@ (',' @@)*"`
}

// TestUser declares a signed-in user and the claims of their token:
//
//	user alice
//	user tina { claim 'groups' '["/team"]' }
type TestUser struct {
	Pos   lexer.Position
	Name  *Ident          `parser:"'user' @@"`
	Items []*TestUserItem `parser:"( '{' @@* '}' )?"`
}

// TestUserItem is one line of a user block.
type TestUserItem struct {
	Pos     lexer.Position
	Comment *Comment   `parser:"  @@"`
	ID      *String    `parser:"| 'id' @@"`
	Claim   *TestClaim `parser:"| 'claim' @@"`
}

// TestClaim is a JWT claim and its value, as JSON: claim 'groups' '["/team"]'.
type TestClaim struct {
	Pos   lexer.Position
	Name  *String `parser:"@@"`
	Value *String `parser:"@@"`
}

// TestGroup declares a group and its memberships:
//
//	group team { token '/team'  owner olivia  admin adam  member mia, alice }
type TestGroup struct {
	Pos   lexer.Position
	Name  *Ident           `parser:"'group' @@"`
	Items []*TestGroupItem `parser:"'{' @@* '}'"`
}

// TestGroupItem is one line of a group block: a token name, or a
// membership role and the users who have it.
type TestGroupItem struct {
	Pos     lexer.Position
	Comment *Comment `parser:"  @@"`
	Token   *String  `parser:"| 'token' @@"`
	Role    *Ident   `parser:"| @@"`
	Users   []*Ident `parser:"  @@ (',' @@)*"`
}

// TestRow declares a row of a resource:
//
//	row todos[t2] { owner alice  group team  title 'shared' }
type TestRow struct {
	Pos   lexer.Position
	Ref   *RowRef        `parser:"'row' @@"`
	Items []*TestRowItem `parser:"'{' @@* '}'"`
}

// TestRowItem is one value of a row, or a comment.
type TestRowItem struct {
	Pos     lexer.Position
	Comment *Comment    `parser:"  @@"`
	Value   *TestAssign `parser:"| @@"`
}

// TestAssign is a column and its value: owner alice, group team,
// title 'shared', done true, note null.
type TestAssign struct {
	Pos    lexer.Position
	Column *Ident       `parser:"@@"`
	Value  *TestLiteral `parser:"@@"`
}

// TestLiteral is a value: a 'string', a number, or a word (a user or group
// name, none, null, true, false).
type TestLiteral struct {
	Pos lexer.Position
	Raw string `parser:"@(String | Number | Ident | QIdent)"`
}

// RowRef names a fixture row: todos[t1], app.todos[t1].
type RowRef struct {
	Pos      lexer.Position
	Resource *QualifiedName `parser:"@@"`
	Row      *Ident         `parser:"'[' @@ ']'"`
}

// TestExpect is an expectation:
//
//	alice can read, write todos[t1]
//	bob cannot delete todos[t1]
//	alice can write todos[t2] set group none
type TestExpect struct {
	Pos   lexer.Position
	Who   *Ident        `parser:"@@"`
	Can   string        `parser:"@('can' | 'cannot')"`
	Perms []*Ident      `parser:"@@ (',' @@)*"`
	Row   *RowRef       `parser:"@@"`
	Set   []*TestAssign `parser:"( 'set' @@ (',' @@)* )?"`
}

// TestAccess is the exhaustive listing of one resource: for each of its
// fixture rows, who can do what; everyone and everything not listed cannot.
//
//	access todos {
//	  t1 { alice read, create, write, delete }
//	  t2 {
//	    alice read, create, write, delete
//	    mia   read, write
//	  }
//	}
type TestAccess struct {
	Pos      lexer.Position
	EndPos   lexer.Position
	Resource *QualifiedName   `parser:"'access' @@"`
	Rows     []*TestAccessRow `parser:"'{' @@* '}'"`
}

// TestAccessRow lists who can do what with one row.
type TestAccessRow struct {
	Pos     lexer.Position
	Comment *Comment     `parser:"  @@"`
	Row     *Ident       `parser:"| @@"`
	Grants  []*TestGrant `parser:"  '{' @@* '}'"`
}

// TestGrant is one user's line in a listing: mia read, write.
type TestGrant struct {
	Pos     lexer.Position
	Comment *Comment `parser:"  @@"`
	Who     *Ident   `parser:"| @@"`
	Perms   []*Ident `parser:"  @@ (',' @@)*"`
}

// ParseTestFile parses one test file's text. name is used in positions
// and errors.
func ParseTestFile(name string, src []byte) (*TestFile, error) {
	f, err := testParser.ParseBytes(name, src)
	if err != nil {
		err = parseError(name, src, err)
		var list ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				e.Code, e.Level = CodeTestSyntax, LevelError
			}
		}
		return nil, err
	}
	f.Name = name
	return f, nil
}

// TestFiles lists the *.iamtest files directly inside dir, in name order
// (none is not an error here: the caller decides).
func TestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the policy directory: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), TestExtension) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// ParseTestFiles parses each file, reporting every file's syntax errors at
// once.
func ParseTestFiles(paths []string) ([]*TestFile, error) {
	var files []*TestFile
	var errs ErrorList
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading test file: %w", err)
		}
		f, err := ParseTestFile(p, src)
		if err != nil {
			var list ErrorList
			if errors.As(err, &list) {
				errs = append(errs, list...)
				continue
			}
			return nil, err
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return files, nil
}
