package lint

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// call is a function call found in a policy expression.
type call struct {
	Schema string // "" when not qualified (a pg_catalog function: the lint sets search_path to '')
	Name   string
	Args   int
	// PerRow: not under a scalar sub-select that PostgreSQL runs once per
	// statement (an InitPlan), so it is evaluated for every row.
	PerRow bool
	// RowArgs: an argument refers to a column, so no sub-select can hoist
	// the call out of the per-row part.
	RowArgs bool
	// InCheck: the call is in a WITH CHECK (set by IAM004).
	InCheck bool
}

// QualifiedName is schema.name, or name for a pg_catalog function.
func (c call) QualifiedName() string {
	if c.Schema == "" {
		return c.Name
	}
	return c.Schema + "." + c.Name
}

// policyCalls parses a policy expression (pg_policies.qual or with_check)
// with PostgreSQL's parser and returns its function calls in order.
//
// A call is per-row unless it sits inside a sub-select (SubLink) that is not
// correlated with the row: `(select f())` is an InitPlan, run once. A
// sub-select without FROM that names a column, such as `(select f(owner_id))`,
// is correlated (a SubPlan, run per row). A sub-select with FROM is treated as
// uncorrelated: telling its columns from the row's would need the catalog.
// The test expression of `x IN (select ...)` / `x = ANY (select ...)` is
// outside the sub-select and stays per-row.
func policyCalls(expr string) ([]call, error) {
	const prefix = "select "
	tree, err := pg_query.ParseToJSON(prefix + expr)
	if err != nil {
		return nil, fmt.Errorf("parsing policy expression %q: %w", expr, err)
	}
	var doc any
	if err := json.Unmarshal([]byte(tree), &doc); err != nil {
		return nil, fmt.Errorf("reading the parse tree of %q: %w", expr, err)
	}
	var out []call
	walkExpr(doc, true, &out)
	return out, nil
}

// walkExpr visits every node of a parse tree in JSON form.
func walkExpr(n any, perRow bool, out *[]call) {
	switch v := n.(type) {
	case []any:
		for _, x := range v {
			walkExpr(x, perRow, out)
		}
	case map[string]any:
		if fc, ok := v["FuncCall"].(map[string]any); ok {
			names := stringList(fc["funcname"])
			c := call{PerRow: perRow}
			switch len(names) {
			case 0:
			case 1:
				c.Name = names[0]
			default:
				c.Schema, c.Name = names[len(names)-2], names[len(names)-1]
			}
			if c.Schema == "pg_catalog" {
				c.Schema = ""
			}
			args, _ := fc["args"].([]any)
			c.Args = len(args)
			c.RowArgs = hasColumnRef(fc["args"])
			*out = append(*out, c)
			for _, k := range slices.Sorted(maps.Keys(fc)) { // a stable order of findings
				if k != "funcname" {
					walkExpr(fc[k], perRow, out)
				}
			}
			return
		}
		if sl, ok := v["SubLink"].(map[string]any); ok {
			walkExpr(sl["testexpr"], perRow, out)
			walkExpr(sl["subselect"], perRow && correlatedWithoutFrom(sl["subselect"]), out)
			return
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkExpr(v[k], perRow, out)
		}
	}
}

// correlatedWithoutFrom: a sub-select with no FROM clause that names a
// column can only mean a column of the row.
func correlatedWithoutFrom(subselect any) bool {
	m, _ := subselect.(map[string]any)
	sel, _ := m["SelectStmt"].(map[string]any)
	if sel == nil {
		return false
	}
	if from, _ := sel["fromClause"].([]any); len(from) > 0 {
		return false
	}
	return hasColumnRef(sel)
}

func hasColumnRef(n any) bool {
	switch v := n.(type) {
	case []any:
		for _, x := range v {
			if hasColumnRef(x) {
				return true
			}
		}
	case map[string]any:
		if _, ok := v["ColumnRef"]; ok {
			return true
		}
		for _, x := range v {
			if hasColumnRef(x) {
				return true
			}
		}
	}
	return false
}

// stringList reads a list of String nodes ([{"String":{"sval":"app"}}, ...]).
func stringList(n any) []string {
	list, _ := n.([]any)
	var out []string
	for _, x := range list {
		m, _ := x.(map[string]any)
		s, _ := m["String"].(map[string]any)
		if sv, ok := s["sval"].(string); ok {
			out = append(out, sv)
		}
	}
	return out
}

// isTrue reports whether a policy expression is the constant true.
func isTrue(expr string) bool {
	e := strings.TrimSpace(expr)
	for strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") {
		e = strings.TrimSpace(e[1 : len(e)-1])
	}
	return strings.EqualFold(e, "true")
}
