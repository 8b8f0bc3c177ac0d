package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/lang"
)

// TypicalRequest is one request whose plan `iamc explain --plan` shows.
type TypicalRequest struct {
	Name string // e.g. "list page"
	HTTP string // as PostgREST receives it
	SQL  string // what PostgREST runs for it (simplified)
}

// TypicalRequests are the reads a PostgREST client makes most, for a table
// whose primary key is pk: a list page, a read by id, a count, and with
// `page by` the page function's first page.
func TypicalRequests(r *lang.ResourceModel, pk string, id int64) []TypicalRequest {
	table := compiler.Qualify(r.Schema, r.Table)
	path := "/" + r.Table
	out := []TypicalRequest{
		{"list page", fmt.Sprintf("GET %s?order=%s.desc&limit=50", path, pk),
			fmt.Sprintf("select * from %s order by %s desc limit 50", table, compiler.QuoteIdent(pk))},
		{"read one", fmt.Sprintf("GET %s?%s=eq.%d", path, pk, id),
			fmt.Sprintf("select * from %s where %s = %d", table, compiler.QuoteIdent(pk), id)},
		{"count", fmt.Sprintf("HEAD %s (Prefer: count=exact)", path),
			fmt.Sprintf("select count(*) from %s", table)},
	}
	if r.PageKey != "" {
		fn := compiler.PageFunctionName(r)
		out = append(out, TypicalRequest{"page function", fmt.Sprintf("GET /rpc/%s", fn),
			fmt.Sprintf("select * from %s()", compiler.Qualify(r.Schema, fn))})
	}
	return out
}

// PlanReport is the plan of one typical request, and what to notice in it.
type PlanReport struct {
	Request TypicalRequest
	Plan    string   // EXPLAIN (ANALYZE, BUFFERS) text
	Notes   []string // index use, InitPlans, per-row SubPlans
}

// ExplainPlans runs the typical requests of a resource the way PostgREST
// would for the given claims (READ ONLY, role and claims set per request)
// and returns their plans. The database must have the policies applied.
func ExplainPlans(ctx context.Context, db pgrest.Beginner, m *lang.Model, r *lang.ResourceModel, claims map[string]any) ([]PlanReport, error) {
	var pk string
	var id int64
	err := pgrest.Do(ctx, db, pgrest.Request{Method: "GET", Path: "/" + r.Table, Role: m.Roles.Authenticated, Claims: claims}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
select a.attname from pg_catalog.pg_index i
join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
where i.indrelid = $1::regclass and i.indisprimary and i.indnatts = 1`, compiler.Qualify(r.Schema, r.Table)).Scan(&pk); err != nil {
			return fmt.Errorf("%s needs a one-column primary key for the typical requests: %w", r.QualifiedName(), err)
		}
		// A row the caller can see, so that "read one" reads something.
		err := tx.QueryRow(ctx, fmt.Sprintf("select %s::bigint from %s limit 1", compiler.QuoteIdent(pk), compiler.Qualify(r.Schema, r.Table))).Scan(&id)
		if err == pgx.ErrNoRows {
			id = 1
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []PlanReport
	for _, req := range TypicalRequests(r, pk, id) {
		rep := PlanReport{Request: req}
		err := pgrest.Do(ctx, db, pgrest.Request{Method: "GET", Path: "/" + r.Table, Role: m.Roles.Authenticated, Claims: claims}, func(tx pgx.Tx) error {
			var doc []byte
			if err := tx.QueryRow(ctx, "explain (format json) "+req.SQL).Scan(&doc); err != nil {
				return err
			}
			rep.Notes = planNotes(doc)
			rows, err := tx.Query(ctx, "explain (analyze, buffers) "+req.SQL)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			rep.Plan = strings.Join(lines, "\n")
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req.Name, err)
		}
		out = append(out, rep)
	}
	return out, nil
}

// planNotes says what matters in a plan for RLS: which indexes are read,
// whether the caller's id and groups are computed once (InitPlans), and
// whether anything runs per row (SubPlans, sequential scans).
func planNotes(doc []byte) []string {
	var plans []struct{ Plan map[string]any }
	if json.Unmarshal(doc, &plans) != nil || len(plans) == 0 {
		return []string{"could not read the plan"}
	}
	var indexes []string
	initPlans, subPlans, seqScans, functions := 0, 0, 0, 0
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if name, ok := n["Index Name"].(string); ok {
			indexes = append(indexes, name)
		}
		switch rel, _ := n["Parent Relationship"].(string); rel {
		case "InitPlan":
			initPlans++
		case "SubPlan":
			subPlans++
		}
		switch n["Node Type"] {
		case "Seq Scan":
			seqScans++
		case "Function Scan":
			functions++
		}
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				walk(m)
			}
		}
	}
	walk(plans[0].Plan)
	notes := []string{fmt.Sprintf("indexes read: %s", strings.Join(indexes, ", "))}
	if len(indexes) == 0 {
		notes[0] = "indexes read: none"
	}
	if functions > 0 {
		notes = append(notes, "a function: EXPLAIN shows its call, not its statements; the Buffers line counts the pages they read")
	}
	notes = append(notes, fmt.Sprintf("computed once per statement (InitPlans): %d", initPlans))
	if subPlans > 0 {
		notes = append(notes, fmt.Sprintf("WARNING: %d SubPlan(s) run per row", subPlans))
	}
	if seqScans > 0 {
		notes = append(notes, fmt.Sprintf("WARNING: %d sequential scan(s): every row is read", seqScans))
	}
	return notes
}
