package exampletest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	. "github.com/iamc/iamc/internal/exampletest"
)

// TestPlanWalker pins walkPlan and planProblems on two plans PostgreSQL 15
// printed in TestOwnerQueriesUseTheOwnerIndex (costs trimmed): the list
// under the generated owner-or-group policy, and under the bad one.
func TestPlanWalker(t *testing.T) {
	const good = `[{"Plan": {"Node Type": "Limit", "Startup Cost": 379.16, "Total Cost": 379.28, "Plans": [
	  {"Node Type": "Result", "Parent Relationship": "InitPlan", "Subplan Name": "InitPlan 1 (returns $0)"},
	  {"Node Type": "Result", "Parent Relationship": "InitPlan", "Subplan Name": "InitPlan 2 (returns $1)"},
	  {"Node Type": "Sort", "Parent Relationship": "Outer", "Sort Key": ["todos.id DESC"], "Plans": [
	    {"Node Type": "Bitmap Heap Scan", "Parent Relationship": "Outer", "Relation Name": "todos",
	     "Recheck Cond": "((owner_id = $0) OR (group_id = ANY ($1)))", "Plans": [
	      {"Node Type": "BitmapOr", "Parent Relationship": "Outer", "Plans": [
	        {"Node Type": "Bitmap Index Scan", "Parent Relationship": "Member",
	         "Index Name": "todos_owner_id_iam_idx", "Index Cond": "(owner_id = $0)"},
	        {"Node Type": "Bitmap Index Scan", "Parent Relationship": "Member",
	         "Index Name": "todos_group_id_iam_idx", "Index Cond": "(group_id = ANY ($1))"}]}]}]}]}}]`
	const bad = `[{"Plan": {"Node Type": "Limit", "Startup Cost": 0.42, "Total Cost": 43.23, "Plans": [
	  {"Node Type": "Index Scan", "Parent Relationship": "Outer", "Scan Direction": "Backward",
	   "Index Name": "todos_pkey", "Relation Name": "todos", "Filter": "app_bad.is_mine(owner_id)"}]}}]`

	for _, c := range []struct {
		name         string
		plan         string
		wantShape    PlanShape
		wantProblems []string
	}{
		{
			name: "the generated policy's plan is a BitmapOr of the owner and group indexes, the user id and groups computed once",
			plan: good,
			wantShape: PlanShape{
				Nodes:     []string{"Limit", "Result", "Result", "Sort", "Bitmap Heap Scan", "BitmapOr", "Bitmap Index Scan", "Bitmap Index Scan"},
				Indexes:   []string{"todos_owner_id_iam_idx", "todos_group_id_iam_idx"},
				InitPlans: 2,
			},
		},
		{
			name: "a per-row function policy's plan fails on indexes, InitPlans and Filter",
			plan: bad,
			wantShape: PlanShape{
				Nodes:   []string{"Limit", "Index Scan"},
				Indexes: []string{"todos_pkey"},
				Walks:   []string{"todos_pkey"},
				Filters: []string{"app_bad.is_mine(owner_id)"},
			},
			wantProblems: []string{
				"the index todos_owner_id_iam_idx is not used (indexes used: [todos_pkey])",
				"the index todos_group_id_iam_idx is not used (indexes used: [todos_pkey])",
				"want exactly 2 InitPlans computing the caller's id (and groups) once, got 0",
				"a function is called per row in Filter: app_bad.is_mine(owner_id)",
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			shape, err := WalkPlan([]byte(c.plan))
			NoError(t, err)
			if diff := cmp.Diff(c.wantShape, shape); diff != "" {
				t.Errorf("walkPlan (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.wantProblems, PlanProblems(shape, 2, "todos_owner_id_iam_idx", "todos_group_id_iam_idx")); diff != "" {
				t.Errorf("planProblems (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a Seq Scan and a SubPlan are reported as reading every row", func(t *testing.T) {
		shape, err := WalkPlan([]byte(`[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "todos", "Filter": "(owner_id = (SubPlan 1))", "Plans": [
		  {"Node Type": "Result", "Parent Relationship": "SubPlan", "Subplan Name": "SubPlan 1"}]}}]`))
		NoError(t, err)
		want := []string{
			"a Seq Scan reads every row of todos",
			"want exactly 1 InitPlans computing the caller's id (and groups) once, got 0",
			"1 SubPlans run per row",
		}
		if diff := cmp.Diff(want, PlanProblems(shape, 1)); diff != "" {
			t.Errorf("planProblems (-want +got):\n%s", diff)
		}
	})
	t.Run("output that is not one EXPLAIN (FORMAT JSON) plan is an error", func(t *testing.T) {
		for _, doc := range []string{`Seq Scan on todos`, `[]`} {
			if _, err := WalkPlan([]byte(doc)); err == nil {
				t.Errorf("walkPlan(%q) succeeded", doc)
			}
		}
	})
}
