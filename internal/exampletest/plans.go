package exampletest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// ---------------------------------------------------------------------------
// Plans: the shape of an EXPLAIN (FORMAT JSON) plan, without timings.
// ---------------------------------------------------------------------------

// TodosArms are the indexes the arms of the todos policies read: the
// owner's, the group's, and the primary key for the rows shared with the
// caller (id = any(<shared ids>), share by id); TodosInitPlans are the
// values a statement computes once: the caller's id, groups and shared ids.
var TodosArms = []string{"todos_owner_id_id_iam_idx", "todos_group_id_id_iam_idx", "todos_pkey"}

const TodosInitPlans = 3

// PlanShape is what matters in a plan of a policy-filtered query.
type PlanShape struct {
	Nodes     []string // node types, depth first
	Indexes   []string // indexes read by Index Scan, Index Only Scan, Bitmap Index Scan
	Walks     []string // indexes walked by Index Scan, Index Only Scan (not a bitmap)
	SeqScans  []string // relations read by Seq Scan (every row of the table)
	InitPlans int      // subplans run once per statement
	SubPlans  int      // subplans run per row
	Filters   []string // every Filter expression
}

type planNode struct {
	NodeType           string     `json:"Node Type"`
	ParentRelationship string     `json:"Parent Relationship"`
	RelationName       string     `json:"Relation Name"`
	IndexName          string     `json:"Index Name"`
	Filter             string     `json:"Filter"`
	Plans              []planNode `json:"Plans"`
}

// WalkPlan reads the output of EXPLAIN (FORMAT JSON).
func WalkPlan(explain []byte) (PlanShape, error) {
	var doc []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(explain, &doc); err != nil {
		return PlanShape{}, fmt.Errorf("reading EXPLAIN (FORMAT JSON): %w", err)
	}
	if len(doc) != 1 {
		return PlanShape{}, fmt.Errorf("EXPLAIN returned %d plans, want 1", len(doc))
	}
	var shape PlanShape
	var walk func(n planNode)
	walk = func(n planNode) {
		shape.Nodes = append(shape.Nodes, n.NodeType)
		switch n.ParentRelationship {
		case "InitPlan":
			shape.InitPlans++
		case "SubPlan":
			shape.SubPlans++
		}
		switch n.NodeType {
		case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
			shape.Indexes = append(shape.Indexes, n.IndexName)
			if n.NodeType != "Bitmap Index Scan" {
				shape.Walks = append(shape.Walks, n.IndexName)
			}
		case "Seq Scan":
			shape.SeqScans = append(shape.SeqScans, n.RelationName)
		}
		if n.Filter != "" {
			shape.Filters = append(shape.Filters, n.Filter)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return shape, nil
}

// functionCall spots a function call in a plan expression ("f(x)", "s.f(x)").
// "ANY ($1)" is an operator on an InitPlan's result, not a call: the space
// keeps it out.
var functionCall = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_.]*\(`)

// PlanProblems says why a plan of a policy-filtered query would not scale:
// one of the indexes the policy's arms need is unused (an owner-only policy
// needs the owner index; an owner-or-group policy a BitmapOr of the owner
// and group indexes), a table read row by row (Seq Scan), the caller's id
// and groups not computed once each in initPlans InitPlans, a SubPlan or a
// function called per row.
func PlanProblems(p PlanShape, initPlans int, indexes ...string) []string {
	var problems []string
	for _, index := range indexes {
		if !slices.Contains(p.Indexes, index) {
			problems = append(problems, fmt.Sprintf("the index %s is not used (indexes used: %v)", index, p.Indexes))
		}
	}
	for _, rel := range p.SeqScans {
		problems = append(problems, "a Seq Scan reads every row of "+rel)
	}
	if p.InitPlans != initPlans {
		problems = append(problems, fmt.Sprintf("want exactly %d InitPlans computing the caller's id (and groups) once, got %d", initPlans, p.InitPlans))
	}
	if p.SubPlans != 0 {
		problems = append(problems, fmt.Sprintf("%d SubPlans run per row", p.SubPlans))
	}
	for _, f := range p.Filters {
		if functionCall.MatchString(f) {
			problems = append(problems, "a function is called per row in Filter: "+f)
		}
	}
	return problems
}

// ExplainWith returns the shape of EXPLAIN (FORMAT JSON) for sql, and the
// text of EXPLAIN (ANALYZE, BUFFERS), run as who in a GET request (READ
// ONLY) after setting (e.g. "set local random_page_cost = 1.1"; "" for
// none).
func ExplainWith(t *testing.T, db *Database, who Person, setting, sql string) (PlanShape, string) {
	t.Helper()
	var doc []byte
	var text []string
	err := Requester{T: t, DB: db, Who: who, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		if setting != "" {
			if _, err := tx.Exec(t.Context(), setting); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(t.Context(), "explain (format json) "+sql).Scan(&doc); err != nil {
			return err
		}
		rows, err := tx.Query(t.Context(), "explain (analyze, buffers) "+sql)
		if err != nil {
			return err
		}
		text, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	NoError(t, err)
	plan, err := WalkPlan(doc)
	NoError(t, err)
	return plan, strings.Join(text, "\n")
}

// PlanLoad is the data of the plan checks (the example's, and the same on
// a standby): 300 groups of 10 in 3,000 memberships,
// 300,000 todos of 2,000 users, every 10th in a group; user 1 is in 5
// groups. It writes the tables directly, skipping the row guard (replica
// mode), to load fast.
const PlanLoad = `
		create function pg_temp.uid(k int) returns text language sql immutable
		    as $$ select format('00000000-0000-4000-8000-%s', lpad(k::text, 12, '0')) $$;
		insert into iam.groups (id, name, created_by)
		select g, 'group ' || g, pg_temp.uid(g % 2000) from generate_series(1, 300) g;
		insert into iam.group_members (group_id, user_id, role, added_by)
		select g, pg_temp.uid((g + 200 * j) % 2000), case j when 0 then 'owner' else 'member' end, pg_temp.uid(g % 2000)
		from generate_series(1, 300) g, generate_series(0, 9) j;
		insert into iam.group_members (group_id, user_id, role)
		select g, pg_temp.uid(1), 'member' from unnest(array[50, 100, 150]) g
		on conflict do nothing;
		set session_replication_role = replica;
		insert into app.todos (title, done, owner_id, group_id)
		select 'todo ' || i, i % 3 = 0, pg_temp.uid(i % 2000)::uuid,
		       case when i % 10 = 0 then (i / 10) % 300 + 1 end
		from generate_series(1, 300000) i;
		reset session_replication_role;
		analyze app.todos;
		analyze iam.groups;
		analyze iam.group_members;`
