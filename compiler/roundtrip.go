package compiler

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// RoundTrip checks one generated statement with PostgreSQL's own parser:
// it must parse as exactly one statement, deparse, and parse back to the
// same tree. PL/pgSQL function bodies are parsed too. A failure means the
// compiler emitted SQL it did not mean to.
func RoundTrip(sql string) error {
	first, err := pg_query.Parse(sql)
	if err != nil {
		return fmt.Errorf("parse %q: %w", abbreviate(sql), err)
	}
	if n := len(first.Stmts); n != 1 {
		return fmt.Errorf("%q holds %d statements, want exactly 1", abbreviate(sql), n)
	}
	deparsed, err := pg_query.Deparse(first)
	if err != nil {
		return fmt.Errorf("deparse %q: %w", abbreviate(sql), err)
	}
	second, err := pg_query.Parse(deparsed)
	if err != nil {
		return fmt.Errorf("re-parse of deparsed %q: %w", abbreviate(deparsed), err)
	}
	if !sameTree(first, second) {
		return fmt.Errorf("%q does not survive a round-trip: deparsed as %q", abbreviate(sql), abbreviate(deparsed))
	}
	if isPlpgsqlFunction(first) {
		if _, err := pg_query.ParsePlPgSqlToJSON(sql); err != nil {
			return fmt.Errorf("PL/pgSQL body of %q: %w", abbreviate(sql), err)
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

// sameTree compares two parse trees ignoring source positions, which
// legitimately differ between the original and the deparsed text. The
// trees are compared as protocol buffers: cheaper than as JSON, and exact.
// It clears the positions of both trees in place.
func sameTree(a, b *pg_query.ParseResult) bool {
	clearPositions(a.ProtoReflect())
	clearPositions(b.ProtoReflect())
	return proto.Equal(a, b)
}

// clearPositions zeroes every location, stmt_location and stmt_len field.
func clearPositions(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "location" || fd.Name() == "stmt_location" || fd.Name() == "stmt_len":
			m.Clear(fd)
		case fd.IsList() && fd.Message() != nil:
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				clearPositions(list.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			clearPositions(v.Message())
		}
		return true
	})
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
