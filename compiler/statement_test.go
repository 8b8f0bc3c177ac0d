package compiler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// TestStatementsSayWhatTheyCreate: in the build of every golden case and
// of the example, each statement that creates an index, function, view,
// policy or trigger names it (plan and apply read Object instead of
// parsing), and the name is the one PostgreSQL's parser reads in its SQL.
func TestStatementsSayWhatTheyCreate(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("..", "golden", "*", "policies"))
	dirs = append(dirs, filepath.Join("..", "policies"))
	built := 0
	for _, dir := range dirs {
		if strings.Contains(dir, string(os.PathSeparator)+"err-") {
			continue
		}
		out, err := Compile(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		built++
		for _, sec := range out.Sections {
			for _, st := range sec.Statements {
				if diff := cmp.Diff(parsedObject(t, st.SQL, sec.Resource != nil), st.Object); diff != "" {
					t.Errorf("%s: %s\nObject (-parsed +said):\n%s", dir, firstLine(st.SQL), diff)
				}
			}
		}
	}
	if built < 10 {
		t.Fatalf("only %d policy directories built", built)
	}
}

// parsedObject is what a statement creates, read by PostgreSQL's parser;
// the foreign key iamc adds to a resource inside a DO block is read from
// its name. (The runtime's DO blocks, its steps, make tables and keys no
// plan lists: they say nothing.)
func parsedObject(t *testing.T, sql string, resource bool) *Object {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	if resource && tree.Stmts[0].Stmt.GetDoStmt() != nil && strings.Contains(sql, "add constraint") {
		return constraintInDo(t, sql)
	}
	return describe(sql)
}

// constraintInDo reads the alter table ... add constraint inside iamc's DO
// block.
func constraintInDo(t *testing.T, sql string) *Object {
	start := strings.Index(sql, "alter table ")
	end := strings.Index(sql[start:], ";")
	tree, err := pg_query.Parse(sql[start : start+end+1])
	if err != nil {
		t.Fatal(err)
	}
	at := tree.Stmts[0].Stmt.GetAlterTableStmt()
	def := at.Cmds[0].GetAlterTableCmd().Def.GetConstraint()
	return &Object{Kind: ObjectConstraint, Schema: at.Relation.Schemaname, Name: def.Conname, Table: at.Relation.Relname}
}

func firstLine(sql string) string { line, _, _ := strings.Cut(sql, "\n"); return line }
