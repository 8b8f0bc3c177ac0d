package compiler

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"
	"google.golang.org/protobuf/proto"
)

// RoundTrip checks one generated statement with PostgreSQL's own parser:
// it must parse as exactly one statement, deparse, and parse back to the
// same tree. PL/pgSQL function bodies are parsed too. A failure means the
// compiler emitted SQL it did not mean to.
func RoundTrip(sql string) error {
	first, err := parser.ParseToProtobuf(sql)
	if err != nil {
		return fmt.Errorf("parse %q: %w", abbreviate(sql), err)
	}
	n, ok := countStatements(first)
	if !ok {
		return fmt.Errorf("parse %q: the parser's output does not decode", abbreviate(sql))
	}
	if n != 1 {
		return fmt.Errorf("%q holds %d statements, want exactly 1", abbreviate(sql), n)
	}
	deparsed, err := parser.DeparseFromProtobuf(first)
	if err != nil {
		return fmt.Errorf("deparse %q: %w", abbreviate(sql), err)
	}
	second, err := parser.ParseToProtobuf(deparsed)
	if err != nil {
		return fmt.Errorf("re-parse of deparsed %q: %w", abbreviate(deparsed), err)
	}
	if !parseResultSchema().sameWire(first, second) {
		return fmt.Errorf("%q does not survive a round-trip: deparsed as %q", abbreviate(sql), abbreviate(deparsed))
	}
	// Only a function can have a PL/pgSQL body; decoding the tree to look
	// is worth it only when the text says so.
	if strings.Contains(strings.ToLower(sql), "plpgsql") {
		tree := &pg_query.ParseResult{}
		if err := proto.Unmarshal(first, tree); err != nil {
			return fmt.Errorf("decode %q: %w", abbreviate(sql), err)
		}
		if isPlpgsqlFunction(tree) {
			if _, err := pg_query.ParsePlPgSqlToJSON(sql); err != nil {
				return fmt.Errorf("PL/pgSQL body of %q: %w", abbreviate(sql), err)
			}
		}
	}
	return nil
}

func isPlpgsqlFunction(tree *pg_query.ParseResult) bool {
	fn := tree.Stmts[0].Stmt.GetCreateFunctionStmt()
	if fn == nil {
		return false
	}
	for _, opt := range fn.Options {
		d := opt.GetDefElem()
		if d != nil && d.Defname == "language" && d.Arg.GetString_().GetSval() == "plpgsql" {
			return true
		}
	}
	return false
}

func abbreviate(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 120 {
		return sql[:117] + "..."
	}
	return sql
}

// splitStatements cuts a script into statements with PostgreSQL's parser,
// each ending in ';'. Comments before a statement stay with it.
func splitStatements(script string) []string {
	parts, err := pg_query.SplitWithParser(script, true)
	if err != nil {
		panic(fmt.Sprintf("embedded runtime SQL does not parse: %v", err))
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		out = append(out, p+";")
	}
	return out
}
