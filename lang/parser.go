package lang

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Extension is the file extension of policy files.
const Extension = ".iam"

var iamLexer = lexer.MustSimple(tokenRules)

// tokenRules are the tokens of .iam files; test files (.iamtest) read the
// same tokens, with two more punctuation marks (testfile.go).
var tokenRules = []lexer.SimpleRule{
	{Name: "Comment", Pattern: `#[^\r\n]*`},
	{Name: "String", Pattern: `'(?:[^'\n]|'')*'`},
	{Name: "QIdent", Pattern: `"(?:[^"\n]|"")*"`},
	{Name: "Ident", Pattern: `[A-Za-z_][A-Za-z0-9_$]*`},
	// Numbers are lexed as words so that `app.2todos` is reported by the
	// checker as a bad identifier instead of as unreadable text.
	{Name: "Number", Pattern: `[0-9][A-Za-z0-9_$]*`},
	{Name: "Punct", Pattern: `[{},.=<()]`},
	{Name: "Whitespace", Pattern: `[ \t\r\n]+`},
}

var parser = participle.MustBuild[File](
	participle.Lexer(iamLexer),
	participle.Elide("Whitespace"),
	participle.UseLookahead(3),
)

// ParseFile parses one file's text. name is used in positions and errors.
func ParseFile(name string, src []byte) (*File, error) {
	f, err := parser.ParseBytes(name, src)
	if err != nil {
		return nil, parseError(name, src, err)
	}
	f.Name = name
	return f, nil
}

// ParseDir parses every *.iam file directly inside dir, in name order.
// A path to a single file is accepted too.
func ParseDir(dir string) ([]*File, error) {
	paths, err := policyFiles(dir)
	if err != nil {
		return nil, err
	}
	var files []*File
	var errs ErrorList
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading policy file: %w", err)
		}
		f, err := ParseFile(p, src)
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

func policyFiles(dir string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("policy path: %w", err)
	}
	if !info.IsDir() {
		return []string{dir}, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading policy directory: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), Extension) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, fmt.Errorf("no %s files in %s", Extension, dir)
	}
	return paths, nil
}

// parseError turns participle's error into our positioned form, with the
// expectation spelled out for a human.
func parseError(name string, src []byte, err error) error {
	var perr participle.Error
	if !errors.As(err, &perr) {
		return fmt.Errorf("%s: %w", name, err)
	}
	pos := perr.Position()
	pos.Filename = name
	msg := perr.Message()
	var unexpected *participle.UnexpectedTokenError
	var lexErr *lexer.Error
	switch {
	case errors.As(err, &unexpected):
		msg = describeUnexpected(unexpected, perr.Message())
	case errors.As(err, &lexErr):
		msg = describeLexError(src, pos)
	}
	return ErrorList{{Pos: posOf(pos), Msg: msg, Code: syntaxCode(msg), Level: LevelError}}
}

// describeLexError names the character the lexer could not read, instead
// of participle's "invalid input text" and the rest of the file.
func describeLexError(src []byte, pos lexer.Position) string {
	if pos.Offset >= len(src) {
		return "unexpected end of file"
	}
	switch c := src[pos.Offset]; c {
	case '"':
		return "unterminated quoted identifier: a \" must be closed on the same line (write \"\" for a quote inside)"
	case '\'':
		return "unterminated string: a ' must be closed on the same line (write '' for a quote inside)"
	default:
		r := []rune(string(src[pos.Offset:min(len(src), pos.Offset+4)]))
		msg := fmt.Sprintf("unexpected character %q", r[0])
		if r[0] >= utf8.RuneSelf && unicode.IsPrint(r[0]) && !unicode.IsSpace(r[0]) {
			// PostgreSQL takes bare non-ASCII letters; .iam asks for quotes,
			// so that what is a name is plain to see.
			msg += fmt.Sprintf(": a bare name holds only ASCII letters, digits, _ and $; double-quote a name with other characters, e.g. %s", quoteWord(src, pos.Offset))
		}
		return msg
	}
}

// quoteWord is the word around offset (name characters and any non-ASCII
// bytes), double-quoted, for a hint.
func quoteWord(src []byte, offset int) string {
	inWord := func(c byte) bool {
		return c >= utf8.RuneSelf || c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	start, end := offset, offset
	for start > 0 && inWord(src[start-1]) {
		start--
	}
	for end < len(src) && inWord(src[end]) {
		end++
	}
	word := strings.ToValidUTF8(string(src[start:end]), "")
	return `"` + strings.ReplaceAll(word, `"`, `""`) + `"`
}

var expectedSuffix = regexp.MustCompile(`\(expected (.*)\)$`)

func describeUnexpected(e *participle.UnexpectedTokenError, message string) string {
	got := fmt.Sprintf("%q", e.Unexpected.Value)
	if e.Unexpected.EOF() {
		got = "end of file"
	}
	// participle v2 keeps the expectation out of the exported field and
	// only renders it in the message: "... (expected X)".
	expect := e.Expect
	if m := expectedSuffix.FindStringSubmatch(message); expect == "" && m != nil {
		expect = m[1]
	}
	switch {
	case expect == "":
		return "unexpected " + got
	case strings.Contains(expect, `"}"`) && !strings.Contains(expect, "Ident"):
		// Inside a block the only structural expectation participle can
		// name is the closing brace; say what else would have been valid.
		return fmt.Sprintf("unexpected %s: expected an item of this block or %q (see SPEC.md for what each block holds)", got, "}")
	default:
		return fmt.Sprintf("unexpected %s: expected %s", got, humanExpect(expect))
	}
}

// humanExpect turns participle's token type names into words.
func humanExpect(expect string) string {
	words := map[string]string{
		"ident":  "an identifier",
		"qident": "a quoted identifier",
		"string": "a quoted string such as 'sub'",
		"number": "a number",
	}
	return tokenName.ReplaceAllStringFunc(expect, func(w string) string {
		if h, ok := words[strings.ToLower(strings.Trim(w, "<>"))]; ok {
			return h
		}
		return w
	})
}

var tokenName = regexp.MustCompile(`<?\b(?i:ident|qident|string|number)\b>?`)
