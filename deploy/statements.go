package deploy

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/iamc/iamc/compiler"
)

// step is one statement plan and apply run, with where it comes from (for
// error messages).
type step struct {
	section string // "preamble", "iam runtime ...", "resource app.todos (...)", ...
	sql     string
	index   *indexStmt // set for a build's create index statements
}

// indexStmt is a `create index if not exists` of the build.
type indexStmt struct {
	schema, table, name string
	sql                 string
	normal              string // the statement deparsed in a normal form, to compare with pg_get_indexdef
}

// qualifiedName is a schema and a name, exactly as stored in the catalog.
type qualifiedName struct{ schema, name string }

// analysis is what plan and apply learn from the build's statements (each
// says what it creates: compiler.Object): which functions, views and
// indexes the build manages.
type analysis struct {
	steps     []step
	indexes   []*indexStmt
	functions []qualifiedName
	views     []qualifiedName
	tables    []qualifiedName // tables the build creates for resources: share tables (compiler.ObjectTable)
	schemas   []string        // schemas whose grants iamc manages: iam, the API schema, the resources' schemas
}

// analyze lists the statements of a build (the script without its begin
// and commit) and what they manage.
func analyze(out *compiler.Output) (*analysis, error) {
	a := &analysis{}
	for _, st := range out.Preamble() {
		a.steps = append(a.steps, step{section: "preamble", sql: st.SQL})
	}
	schemas := map[string]bool{"iam": true}
	a.schemas = []string{"iam"}
	addSchema := func(s string) {
		if !schemas[s] {
			schemas[s] = true
			a.schemas = append(a.schemas, s)
		}
	}
	if out.Model.Groups.Declared {
		addSchema(out.Model.Groups.APISchema)
	}
	for _, r := range out.Model.Resources {
		addSchema(r.Schema)
	}
	for _, sec := range out.Sections {
		header := ""
		if len(sec.Header) > 0 {
			header = sec.Header[0]
		}
		for _, st := range sec.Statements {
			s := step{section: header, sql: st.SQL}
			if o := st.Object; o != nil {
				switch o.Kind {
				case compiler.ObjectIndex:
					ix := &indexStmt{schema: o.Schema, table: o.Table, name: o.Name, sql: st.SQL}
					var err error
					if ix.normal, err = normalIndex(st.SQL); err != nil {
						return nil, err
					}
					s.index = ix
					a.indexes = append(a.indexes, ix)
				case compiler.ObjectFunction:
					a.functions = append(a.functions, qualifiedName{o.Schema, o.Name})
				case compiler.ObjectView:
					a.views = append(a.views, qualifiedName{o.Schema, o.Name})
				case compiler.ObjectTable:
					// The runtime's own tables are its business (stdlib);
					// a resource's section creates its share table.
					if sec.Resource != nil {
						a.tables = append(a.tables, qualifiedName{o.Schema, o.Name})
					}
				}
			}
			a.steps = append(a.steps, s)
		}
	}
	return a, nil
}

// normalIndex deparses a create index statement, or pg_get_indexdef's
// output, in one form: no IF NOT EXISTS, no CONCURRENTLY, no ONLY. Two definitions
// of the same index deparse the same.
func normalIndex(sql string) (string, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetIndexStmt() == nil {
		return "", fmt.Errorf("not an index definition (%v): %s", err, firstLine(sql))
	}
	is := tree.Stmts[0].Stmt.GetIndexStmt()
	is.IfNotExists, is.Concurrent = false, false
	// pg_get_indexdef says ON ONLY for the index of a partitioned table
	// (it covers the partitions through their own, attached, indexes).
	is.Relation.Inh = true
	if is.AccessMethod == "" {
		is.AccessMethod = "btree"
	}
	return pg_query.Deparse(tree)
}

// concurrently is the statement that builds ix without blocking writes.
func (ix *indexStmt) concurrently() (string, error) {
	tree, err := pg_query.Parse(ix.sql)
	if err != nil {
		return "", err
	}
	is := tree.Stmts[0].Stmt.GetIndexStmt()
	is.Concurrent, is.IfNotExists = true, true
	return pg_query.Deparse(tree)
}

func (ix *indexStmt) qualified() string { return ident(ix.schema) + "." + ident(ix.name) }

// ident quotes a name for SQL that deploy writes itself (always quoted:
// these statements are run, not shown).
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func qualify(schema, name string) string { return ident(schema) + "." + ident(name) }

func firstLine(sql string) string {
	line, _, more := strings.Cut(strings.TrimSpace(sql), "\n")
	if more {
		line += " ..."
	}
	return line
}

// splitNames returns the schemas and the names of qs as two arrays, for
// unnest($1::text[], $2::text[]).
func splitNames(qs []qualifiedName) ([]string, []string) {
	s, n := make([]string, len(qs)), make([]string, len(qs))
	for i, q := range qs {
		s[i], n[i] = q.schema, q.name
	}
	return s, n
}
