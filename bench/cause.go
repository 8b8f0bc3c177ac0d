package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
)

// A Cause is what a missed target's extra time is made of, measured: the
// RLS statement and the floor's, each run with EXPLAIN ANALYZE in the
// request's own envelope (role, claims, READ ONLY for reads; writes rolled
// back) for the same user and row, after a warm-up. The policies' helpers
// (the caller's context, the shared rows) run as the plan's InitPlans and
// the row guard as a trigger, so their time is read off the plan.
type Cause struct {
	Target  string  `json:"target"`
	User    string  `json:"user"`
	ExtraMS float64 `json:"extra_ms"` // median RLS - median floor, client side (the worse clients value)
	// Server side, one EXPLAIN ANALYZE each.
	RLSExecMS   float64 `json:"rls_exec_ms"`
	FloorExecMS float64 `json:"floor_exec_ms"`
	HelpersMS   float64 `json:"helpers_ms"` // InitPlans and triggers of the RLS statement
	RLSPlan     string  `json:"rls_plan"`
	FloorPlan   string  `json:"floor_plan"`
	Verdict     string  `json:"verdict"`
}

// explained is one EXPLAIN ANALYZE: execution time, the time in InitPlans
// and triggers, and the plan's shape.
type explained struct {
	execMS, helpersMS float64
	shape             string
}

type analyzedNode struct {
	planNode
	ActualTotal float64        `json:"Actual Total Time"`
	Loops       float64        `json:"Actual Loops"`
	Kids        []analyzedNode `json:"Plans"`
}

// plan is the node as planNode, children included (Kids holds them: the
// embedded planNode's Plans is shadowed by Kids' JSON key).
func (n analyzedNode) plan() planNode {
	p := n.planNode
	p.Plans = nil
	for _, k := range n.Kids {
		p.Plans = append(p.Plans, k.plan())
	}
	return p
}

// initPlanMS sums the InitPlans' times (each runs once: total time x loops).
func (n analyzedNode) initPlanMS() float64 {
	var ms float64
	for _, k := range n.Kids {
		if k.Parent == "InitPlan" {
			ms += k.ActualTotal * max(k.Loops, 1)
			continue
		}
		ms += k.initPlanMS()
	}
	return ms
}

func explainIn(ctx context.Context, db pgrest.Beginner, q *Query, s side, j *job) (explained, error) {
	var e explained
	req := pgrest.Request{Method: q.Method, Path: q.Path, Role: s.role, Claims: j.user.Claims, PreRequest: s.preRequest}
	err := pgrest.Do(ctx, db, req, func(tx pgx.Tx) error {
		// Warm the session's plans and caches the way the timed runs did;
		// writes are undone each time.
		run := func(sql string, out *[]byte) error {
			if _, err := tx.Exec(ctx, "savepoint bench_cause"); err != nil {
				return err
			}
			var err error
			if out != nil {
				err = tx.QueryRow(ctx, sql, s.args(j)...).Scan(out)
			} else {
				_, err = tx.Exec(ctx, sql, s.args(j)...)
			}
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "rollback to savepoint bench_cause")
			return err
		}
		for range 3 {
			if err := run(s.sql, nil); err != nil {
				return err
			}
		}
		var raw []byte
		if err := run("explain (analyze, format json) "+s.sql, &raw); err != nil {
			return err
		}
		var doc []struct {
			Plan     analyzedNode `json:"Plan"`
			Exec     float64      `json:"Execution Time"`
			Triggers []struct {
				Time float64 `json:"Time"`
			} `json:"Triggers"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("reading EXPLAIN: %w", err)
		}
		if len(doc) != 1 {
			return fmt.Errorf("unexpected EXPLAIN output: %s", raw)
		}
		e.execMS = doc[0].Exec
		e.helpersMS = doc[0].Plan.initPlanMS()
		for _, t := range doc[0].Triggers {
			e.helpersMS += t.Time
		}
		e.shape = doc[0].Plan.plan().shape()
		return nil
	})
	return e, err
}

// ExplainMisses measures the cause of each missed target of one
// configuration: for each (request, user) with a miss, one EXPLAIN ANALYZE
// of each side.
func ExplainMisses(ctx context.Context, p *pools, ds *Dataset, queries []*Query, results []*Result, checks []Check, seed uint64) ([]Cause, error) {
	byKey := map[string]*Query{}
	for _, q := range queries {
		byKey[q.Key] = q
	}
	type cell struct{ key, user string }
	done := map[cell]bool{}
	var out []Cause
	for _, c := range checks {
		if c.Met {
			continue
		}
		var res *Result
		var extra float64
		for _, r := range results {
			if r.Key == c.Key && string(r.User) == c.User {
				if d := r.RLS.MedianMS - r.FloorS.MedianMS; res == nil || d > extra {
					res, extra = r, d
				}
			}
		}
		k := cell{c.Key, c.User}
		if res == nil || done[k] {
			continue
		}
		done[k] = true
		q := byKey[c.Key]
		if q == nil {
			continue
		}
		floor, ok := q.floorNamed(res.Floor)
		if !ok {
			continue
		}
		r := rand.New(rand.NewPCG(seed, 23))
		draw := q
		if q.Kind == kindDelete {
			// A delete's row is inserted for it; a row the user can read
			// shows the same plan and helpers (and is put back).
			draw = &Query{Kind: kindReadByID}
		}
		j := ds.newJob(r, draw, UserClass(c.User))
		rls, err := explainIn(ctx, p.rls, q, rlsSide(q, p.preRequest), j)
		if err != nil {
			return out, fmt.Errorf("explaining %s for %s: %w", q.Key, c.User, err)
		}
		fl, err := explainIn(ctx, p.floor, q, floorSide(floor), j)
		if err != nil {
			return out, fmt.Errorf("explaining the floor of %s for %s: %w", q.Key, c.User, err)
		}
		cause := Cause{
			Target: c.Target, User: c.User, ExtraMS: extra,
			RLSExecMS: rls.execMS, FloorExecMS: fl.execMS, HelpersMS: rls.helpersMS,
			RLSPlan: rls.shape, FloorPlan: fl.shape,
		}
		cause.Verdict = verdict(cause)
		out = append(out, cause)
	}
	return out, nil
}

// verdict names the larger part of the extra time.
func verdict(c Cause) string {
	serverExtra := c.RLSExecMS - c.FloorExecMS
	switch {
	case strings.HasPrefix(c.RLSPlan, "Function Scan"):
		return fmt.Sprintf("the page function: %.3f ms inside it (its statements, their policies' helpers, its SET clauses) against the floor's %.3f ms", c.RLSExecMS, c.FloorExecMS)
	case c.RLSPlan != c.FloorPlan && serverExtra > 2*c.HelpersMS:
		return fmt.Sprintf("the plan: %.3f ms more in execution than the floor's plan, %.3f ms of it not the helpers", serverExtra, serverExtra-c.HelpersMS)
	case c.HelpersMS >= serverExtra/2:
		return fmt.Sprintf("the helpers (InitPlans, row guard): %.3f ms of %.3f ms more in execution", c.HelpersMS, serverExtra)
	}
	return fmt.Sprintf("outside the statement's plan (%.3f ms of the %.3f ms extra is execution, %.3f ms of that the helpers): planning, the envelope, variance", serverExtra, c.ExtraMS, c.HelpersMS)
}

// floorNamed is the floor candidate of that name.
func (q *Query) floorNamed(name string) (Floor, bool) {
	for _, f := range q.Floors {
		if f.Name == name {
			return f, true
		}
	}
	return Floor{}, false
}

func printCauses(w io.Writer, title string, causes []Cause) {
	if len(causes) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n\n", title)
	t := &table{head: []string{"target", "user", "extra ms", "RLS exec ms", "floor exec ms", "helpers ms", "cause"}, right: map[int]bool{2: true, 3: true, 4: true, 5: true}}
	for _, c := range causes {
		t.add(c.Target, c.User, fmt.Sprintf("%.3f", c.ExtraMS), fmt.Sprintf("%.3f", c.RLSExecMS), fmt.Sprintf("%.3f", c.FloorExecMS), fmt.Sprintf("%.3f", c.HelpersMS), c.Verdict)
	}
	t.write(w)
}
