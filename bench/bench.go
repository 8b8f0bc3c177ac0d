// Package bench measures what iamc's row-level security costs at scale.
//
// It builds a data set (users, groups, todos and chats) in a database where
// the example policies are applied, then times each request twice,
// interleaved: as PostgREST runs it (pgrest.Do: a transaction, role
// web_user, the Keycloak claims, READ ONLY for reads), and as the "floor":
// the best hand-written query for the same user with RLS off (role
// bench_floor, BYPASSRLS, the user id as a parameter and the user's groups
// looked up from iam.group_members in the same statement). Before timing,
// every floor is checked to return exactly what RLS returns for a sample of
// users; a disagreement aborts the run.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options are the command line of `iamc bench`.
type Options struct {
	Target
	Rows        []int         // data set sizes, in order
	OtherRows   int           // rows of chats, notes, products and the insert floors' copies: min(rows, OtherRows); 0: rows
	Clients     []int         // concurrent clients
	Duration    time.Duration // per (query, user class, clients) run
	Seed        int64
	Setup       SetupMode
	Investigate bool     // also compare plan options for the list page
	Only        []string // keys of the queries to run (Query.Key); all when empty
	// HTTP: time the requests through a real PostgREST (PostgREST, or
	// postgrest on PATH, configured from PostgRESTConf) instead of in
	// process; only the default configuration, no plan options.
	HTTP          bool
	PostgREST     string
	PostgRESTConf string
	JSON          string // write the report as JSON here
	SVG           string // write the ratio-vs-size plot here (several sizes)
	Out           io.Writer
	Log           io.Writer
}

// Report is everything measured, as written to --json.
type Report struct {
	Started  time.Time     `json:"started"`
	Server   string        `json:"server"`
	Duration string        `json:"duration"`
	Clients  []int         `json:"clients"`
	Seed     int64         `json:"seed"`
	Sizes    []*SizeReport `json:"sizes"`
	Growth   []Check       `json:"growth,omitempty"` // Q1 between sizes ten times apart
	Scale    []Check       `json:"scale,omitempty"`  // the page functions, read and writes between sizes 100 times apart (1M, 100M)
	Build    *BuildBench   `json:"build_benchmark,omitempty"`
}

// SizeReport is one data set size.
type SizeReport struct {
	Rows          int             `json:"rows"`
	OtherRows     int             `json:"other_rows"` // chats, notes, products and the insert floors' copy tables
	Dataset       string          `json:"dataset"`
	Build         BuildInfo       `json:"build"`
	Configs       []*ConfigReport `json:"configs"`
	Investigation *Investigation  `json:"investigation,omitempty"`
	HTTP          *HTTPReport     `json:"http,omitempty"` // --http
}

// ConfigReport is one planner configuration at one size.
type ConfigReport struct {
	Config
	Shown        map[string]string `json:"shown"`
	PreRequest   bool              `json:"pre_request"` // the RLS side ran db-pre-request
	Verified     int               `json:"verified_requests"`
	Calibrations []*Calibration    `json:"floor_calibration,omitempty"`
	Results      []*Result         `json:"results"`
	Targets      []Check           `json:"targets"`          // CheckGoals(Results)
	Causes       []Cause           `json:"causes,omitempty"` // ExplainMisses: what each miss is made of
}

// BuildBench is the compile-time benchmark (BenchmarkBuild1000Resources).
type BuildBench struct {
	Resources int     `json:"resources"`
	NsPerOp   float64 `json:"ns_per_op"`
}

// Run runs the whole benchmark and prints the tables as it goes.
func Run(ctx context.Context, o Options) (*Report, error) {
	if len(o.Rows) == 0 || len(o.Clients) == 0 {
		return nil, errors.New("need at least one --rows and one --clients value")
	}
	for _, n := range o.Rows {
		if n < 1000 {
			return nil, fmt.Errorf("--rows %d: at least 1000", n)
		}
	}
	if o.OtherRows != 0 && o.OtherRows < 1000 {
		return nil, fmt.Errorf("--other-rows %d: at least 1000", o.OtherRows)
	}
	for _, c := range o.Clients {
		if c < 1 || c > 32 {
			return nil, fmt.Errorf("--clients %d: between 1 and 32", c)
		}
	}
	if _, err := SelectQueries(o.Only); err != nil {
		return nil, fmt.Errorf("--queries: %w", err)
	}
	if o.HTTP {
		if _, _, err := FindPostgREST(o.PostgREST); err != nil {
			return nil, err
		}
		if o.PostgRESTConf == "" {
			return nil, errors.New("--http needs the PostgREST configuration to run (postgrest.conf)")
		}
	}
	if o.Setup == SetupNever && len(o.Rows) > 1 {
		return nil, errors.New("--reuse with several --rows sizes: a database holds one data set")
	}
	su, err := pgx.Connect(ctx, o.DB)
	if err != nil {
		return nil, fmt.Errorf("connecting to --db: %w", err)
	}
	defer su.Close(context.Background())

	rep := &Report{Started: time.Now().UTC(), Duration: o.Duration.String(), Clients: o.Clients, Seed: o.Seed}
	if err := su.QueryRow(ctx, `select version()`).Scan(&rep.Server); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "%s\n", rep.Server)
	for _, rows := range o.Rows {
		sr, err := runSize(ctx, o, su, rows)
		if sr != nil {
			rep.Sizes = append(rep.Sizes, sr)
		}
		if err != nil {
			return rep, err
		}
	}
	rep.Growth = CheckGrowth(rep.Sizes)
	printChecks(o.Out, "Growth target (the cost of a list page must follow the user's visible rows)", rep.Growth)
	rep.Scale = CheckScale(rep.Sizes)
	printChecks(o.Out, fmt.Sprintf("Scale target (at %d times the rows, the RLS medians of the page functions, read, update, insert and delete within %.1f times)", ScaleFactor, MaxScale), rep.Scale)
	if len(rep.Sizes) > 1 {
		if o.SVG != "" {
			if err := os.WriteFile(o.SVG, []byte(PlotSVG(rep)), 0o644); err != nil {
				return rep, err
			}
			fmt.Fprintf(o.Out, "\nwrote %s (ratio to floor vs table size)\n", o.SVG)
		} else {
			fmt.Fprintln(o.Out, "\n(several sizes: --svg FILE plots the ratio against the table size)")
		}
	}
	return rep, WriteJSON(o.JSON, rep)
}

// WriteJSON writes the report to path ("" writes nothing).
func WriteJSON(path string, rep *Report) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func runSize(ctx context.Context, o Options, su *pgx.Conn, rows int) (*SizeReport, error) {
	size := Size{Rows: rows, OtherRows: o.OtherRows}
	if size.Other() == rows {
		fmt.Fprintf(o.Out, "\n=== ROWS=%d ===\n", rows)
	} else {
		fmt.Fprintf(o.Out, "\n=== ROWS=%d (chats, notes, products and the insert floors' copies: %d) ===\n", rows, size.Other())
	}
	ds, err := PrepareSize(ctx, su, size, o.Seed, o.Setup, o.Log)
	if err != nil {
		return nil, err
	}
	sr := &SizeReport{Rows: rows, OtherRows: ds.OtherRows, Dataset: ds.Stats(), Build: ds.Build}
	fmt.Fprintf(o.Out, "data set: %s\n          %s\n", ds.Build, sr.Dataset)
	release, err := HoldAutovacuum(ctx, su)
	if err != nil {
		return sr, err
	}
	defer func() {
		if err := Cleanup(context.Background(), su); err != nil {
			fmt.Fprintf(o.Log, "warning: cleaning up: %v\n", err)
		}
		if err := release(); err != nil {
			fmt.Fprintf(o.Log, "warning: turning autovacuum back on: %v\n", err)
		}
	}()

	queries, err := SelectQueries(o.Only)
	if err != nil {
		return sr, err
	}
	if o.HTTP {
		sr.HTTP, err = runHTTP(ctx, o, su, ds, queries)
		if sr.HTTP != nil && err == nil {
			printHTTP(o.Out, rows, sr.HTTP)
		}
		return sr, err
	}
	maxClients := 0
	for _, c := range o.Clients {
		maxClients = max(maxClients, c)
	}
	warm := max(500*time.Millisecond, o.Duration/10)
	calDur := max(300*time.Millisecond, o.Duration/20)
	seed := uint64(o.Seed)

	for _, cfg := range Configs() {
		p, err := openPools(ctx, o.Target, cfg, maxClients)
		if err != nil {
			return sr, err
		}
		cr := &ConfigReport{Config: cfg, Shown: p.shown, PreRequest: p.preRequest}
		sr.Configs = append(sr.Configs, cr)
		err = func() error {
			defer p.close()
			n, err := Verify(ctx, p, ds, queries, verifyUsers(ds, 30, seed), seed)
			if err != nil {
				return err
			}
			cr.Verified = n
			if err := Cleanup(ctx, su); err != nil {
				return err
			}
			fmt.Fprintf(o.Log, "[%s] verified: %d requests, every floor returns what RLS returns\n", cfg.Name, n)
			type cell struct {
				q     *Query
				class UserClass
			}
			var cells []cell
			for _, q := range queries {
				cells = append(cells, cell{q, ClassRandom})
			}
			for _, class := range SpecialClasses {
				for _, q := range queries {
					if q.RunsFor(class) {
						cells = append(cells, cell{q, class})
					}
				}
			}
			for _, c := range cells {
				f, cal, err := calibrate(ctx, p, ds, c.q, c.class, calDur, seed)
				if err != nil {
					return err
				}
				if cal != nil {
					cr.Calibrations = append(cr.Calibrations, cal)
				}
				for _, clients := range o.Clients {
					fmt.Fprintf(o.Log, "[%s] %s, %s, %d client(s), floor %q ...\n", cfg.Name, c.q.Name, c.class, clients, f.Name)
					res, err := measure(ctx, p, ds, c.q, f, c.class, clients, warm, o.Duration, seed)
					if err != nil {
						return err
					}
					cr.Results = append(cr.Results, res)
				}
				if !c.q.ReadOnly() {
					// Writes leave rows and dead tuples behind: later runs
					// must see the table as built.
					if err := Cleanup(ctx, su); err != nil {
						return err
					}
				}
			}
			cr.Targets = CheckGoals(cr.Results, rows)
			// Each miss, measured: where its extra time goes.
			cr.Causes, err = ExplainMisses(ctx, p, ds, queries, cr.Results, cr.Targets, seed)
			return err
		}()
		if err != nil {
			return sr, err
		}
		printConfig(o.Out, rows, cr)
		printChecks(o.Out, fmt.Sprintf("ROWS=%d, config %s: targets", rows, cr.Name), cr.Targets)
		printCauses(o.Out, fmt.Sprintf("ROWS=%d, config %s: the measured cause of each missed target (EXPLAIN ANALYZE of both sides, same user and row, in the request's envelope)", rows, cr.Name), cr.Causes)
	}
	if o.Investigate {
		inv, err := Investigate(ctx, o.Target, su, ds, max(time.Second, o.Duration/2), o.Log)
		sr.Investigation = inv
		if err != nil {
			return sr, err
		}
		printInvestigation(o.Out, rows, inv)
	}
	return sr, nil
}
