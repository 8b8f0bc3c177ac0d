package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgtest"
)

// TestExplainPlans applies the example and asks for the plans of the
// typical todos requests as a user, the way `iamc explain todos --plan`
// does: four reports (the last the page function's, whose statements
// EXPLAIN cannot show, and says so), each a real EXPLAIN ANALYZE, with the caller's id and
// groups computed in InitPlans and nothing per row; and a table scanned
// whole is called out.
func TestExplainPlans(t *testing.T) {
	ctx := context.Background()
	s := pgtest.New(t)
	root := filepath.Join("..", "policies")
	for _, f := range []string{"roles.sql", "schema.sql"} {
		sql, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Exec(ctx, "postgres", string(sql)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := compiler.Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	m := out.Model
	if err := s.Exec(ctx, "postgres", out.Script()); err != nil {
		t.Fatal(err)
	}
	const alice = "a1ce0000-0000-4000-8000-00000000a11c"
	if err := s.Exec(ctx, "postgres", `
set session_replication_role = replica;
insert into app.todos (title, owner_id) select 'todo ' || i, case when i % 2 = 0 then '`+alice+`'::uuid else gen_random_uuid() end from generate_series(1, 2000) i;
reset session_replication_role;
analyze app.todos;`); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres", "authenticator"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	section, err := out.Find("todos")
	if err != nil {
		t.Fatal(err)
	}
	reports, err := catalog.ExplainPlans(ctx, conn, m, section.Resource, map[string]any{"sub": alice, "role": "web_user"})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 4 {
		t.Fatalf("%d reports, want list page, read one, count, page function", len(reports))
	}
	page := reports[3]
	if page.Request.HTTP != "GET /rpc/todos_page" || !strings.Contains(page.Plan, "Function Scan on todos_page") ||
		!strings.Contains(strings.Join(page.Notes, "\n"), "a function: EXPLAIN shows its call") {
		t.Errorf("page function report: %+v", page)
	}
	for _, r := range reports[:3] {
		notes := strings.Join(r.Notes, "\n")
		if !strings.Contains(r.Plan, "actual time=") {
			t.Errorf("%s: not an EXPLAIN ANALYZE:\n%s", r.Request.Name, r.Plan)
		}
		if !strings.Contains(notes, "computed once per statement (InitPlans): 3") { // the caller's id, groups and shared ids
			t.Errorf("%s: the user id, groups and shared ids are not InitPlans:\n%s\n%s", r.Request.Name, notes, r.Plan)
		}
		if strings.Contains(notes, "SubPlan") {
			t.Errorf("%s: something runs per row:\n%s", r.Request.Name, notes)
		}
		if strings.Contains(r.Plan, "Seq Scan") != strings.Contains(notes, "sequential scan") {
			t.Errorf("%s: a sequential scan is not called out (or one is invented):\n%s\n%s", r.Request.Name, notes, r.Plan)
		}
	}
	if !strings.Contains(reports[1].Request.SQL, "where id = ") {
		t.Errorf("read one: %s", reports[1].Request.SQL)
	}
}
