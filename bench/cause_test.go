package bench

import (
	"encoding/json"
	"testing"
)

// TestAnalyzedPlanShape: the shape of an EXPLAIN ANALYZE plan names its
// children (not only the top node), so two different plans compare as
// different, and the InitPlans' times are summed.
func TestAnalyzedPlanShape(t *testing.T) {
	raw := `{"Node Type": "Limit", "Actual Total Time": 5, "Actual Loops": 1, "Plans": [
		{"Node Type": "Result", "Parent Relationship": "InitPlan", "Actual Total Time": 0.25, "Actual Loops": 1},
		{"Node Type": "Sort", "Parent Relationship": "Outer", "Actual Total Time": 4, "Actual Loops": 1, "Plans": [
			{"Node Type": "Bitmap Heap Scan", "Parent Relationship": "Outer", "Actual Total Time": 3, "Actual Loops": 1}]}]}`
	var n analyzedNode
	if err := json.Unmarshal([]byte(raw), &n); err != nil {
		t.Fatal(err)
	}
	if got, want := n.plan().shape(), "Limit > Sort > Bitmap Heap Scan"; got != want {
		t.Errorf("shape = %q, want %q", got, want)
	}
	if got := n.initPlanMS(); got != 0.25 {
		t.Errorf("InitPlans took %v ms, want 0.25", got)
	}
}
