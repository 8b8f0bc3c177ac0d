package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

var keywordCache sync.Map // string -> bool (needs quoting)

// quoteIdent quotes a name only when PostgreSQL would misread it bare:
// upper case, odd characters, or a keyword that cannot be a column name.
func quoteIdent(name string) string {
	if plainIdent.MatchString(name) && !isReservedWord(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// isReservedWord asks PostgreSQL's own scanner whether a word is a keyword
// that may not be used bare as an identifier.
func isReservedWord(word string) bool {
	if v, ok := keywordCache.Load(word); ok {
		return v.(bool)
	}
	reserved := false
	if res, err := pg_query.Scan(word); err == nil && len(res.Tokens) == 1 {
		kind := res.Tokens[0].KeywordKind
		reserved = kind != pg_query.KeywordKind_NO_KEYWORD && kind != pg_query.KeywordKind_UNRESERVED_KEYWORD
	}
	keywordCache.Store(word, reserved)
	return reserved
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func qualify(schema, name string) string {
	return quoteIdent(schema) + "." + quoteIdent(name)
}

// derivedName builds a name such as an index name from parts, keeping it
// within PostgreSQL's 63 bytes: a long name is cut and made unique again
// with a short hash of the full name.
func derivedName(parts ...string) string {
	name := strings.Join(parts, "_")
	if len(name) <= 63 {
		return name
	}
	suffix := "_" + hashSuffix(name)
	cut := name[:63-len(suffix)]
	for !validUTF8Prefix(cut) {
		cut = cut[:len(cut)-1]
	}
	return cut + suffix
}

func validUTF8Prefix(s string) bool {
	return strings.ToValidUTF8(s, "\x00") == s
}

// hashSuffix is a short, stable hash of s for making names unique.
func hashSuffix(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}
