package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/iamc/iamc/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		o                 bench.Options
		setup, reuse      bool
		ephemeral         bool
		policyDir         string
		rows, clientsList []int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure what the policies cost: each request with RLS against a hand-written floor",
		Long: `Build a data set (10,000 users, 2,000 groups, --rows todos, chats, notes and
products of --rows/100 stores) in a database where policies/ is applied, then
time each request the way PostgREST runs it (a transaction as web_user with
Keycloak claims, READ ONLY for reads) against the floor: the best
hand-written query for the same user with RLS off. Both run interleaved,
with the default planner settings and with random_page_cost = 1.1. Every
floor is checked to return exactly what RLS returns before anything is timed.

--db must connect as a superuser (the data set is loaded with
session_replication_role = replica); requests connect as --api-user.
A database holding other data in app.todos, app.chats or iam.groups is refused.
--ephemeral starts a throwaway PostgreSQL instead (make bench).

--http sends the requests through a real PostgREST (postgrest on PATH, or
--postgrest), started from <policies>/postgrest.conf with an RS256 key made
for the run: the RLS endpoint against the floor endpoint, unprotected views
in schema bench_open served by the same PostgREST, the floor's filter in the
query string.

--other-rows N keeps chats, notes, products (a store per 100) and the insert
floors' copy tables at N rows while app.todos holds --rows (make bench-100m: 100M todos, 1M of the others).
Before building, the data set's size on disk is estimated and the build is
refused when the data directory's file system has less than 1.2 times it free.`,
		Example: `  iamc bench --ephemeral --rows 100000,1000000 --json out/bench.json --svg out/bench.svg
  iamc bench --db postgres://postgres@localhost/bench --rows 1000000 --clients 1,2 --duration 10s
  iamc bench --ephemeral --http --rows 1000000 --duration 5s --json out/bench-http.json
  iamc bench --ephemeral --rows 1000000,100000000 --other-rows 1000000 --plans=false --queries q1-todos-page,q2-read`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case setup && reuse:
				return errors.New("--setup and --reuse exclude each other")
			case setup:
				o.Setup = bench.SetupAlways
			case reuse:
				o.Setup = bench.SetupNever
			}
			if (o.DB == "") == !ephemeral {
				return errors.New("give either --db URL or --ephemeral")
			}
			o.Rows, o.Clients = rows, clientsList
			if o.HTTP {
				if !cmd.Flags().Changed("clients") {
					o.Clients = []int{1, 2, 8}
				}
				// Before a server is started or a data set built.
				if _, _, err := bench.FindPostgREST(o.PostgREST); err != nil {
					return err
				}
				o.PostgRESTConf = filepath.Join(policyDir, "postgrest.conf")
			}
			if o.APIPassword == "" {
				o.APIPassword = envOr("IAMC_BENCH_API_PASSWORD", "mypass")
			}
			o.Out, o.Log = cmd.OutOrStdout(), cmd.ErrOrStderr()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if ephemeral {
				e, err := bench.StartEphemeral(ctx, policyDir, o.Log)
				if e != nil {
					defer func() {
						if err := e.Stop(); err != nil {
							fmt.Fprintln(o.Log, "warning: "+err.Error())
						} else {
							fmt.Fprintln(o.Log, "PostgreSQL stopped; its data directory is removed")
						}
					}()
				}
				if err != nil {
					return err
				}
				o.DB = e.URL
			}
			_, err := bench.Run(ctx, o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DB, "db", "", "superuser URL of a database with policies/ applied")
	f.BoolVar(&ephemeral, "ephemeral", false, "start a throwaway PostgreSQL (pgserver) and set it up from --policies")
	f.StringVar(&policyDir, "policies", defaultDir, "with --ephemeral: the directory holding roles.sql, schema.sql and the .iam files; with --http, its postgrest.conf configures PostgREST")
	f.StringVar(&o.APIUser, "api-user", "authenticator", "the login role requests connect as (PostgREST's db-uri user)")
	f.StringVar(&o.APIPassword, "api-password", "", "its password (default: $IAMC_BENCH_API_PASSWORD, else mypass as in policies/roles.sql)")
	f.BoolVar(&o.PreRequest, "pre-request", false, "also run the db-pre-request (iam.check_request) before every RLS request, as the shipped postgrest.conf does")
	f.IntSliceVar(&rows, "rows", []int{1000000}, "todos (and chats, notes and products, up to --other-rows) per table; several sizes, comma-separated, are run in turn")
	f.IntVar(&o.OtherRows, "other-rows", 0, "rows of chats, notes, products and the insert floors' copy tables: at most this many (default: as --rows); for a run at 100M todos")
	f.IntSliceVar(&clientsList, "clients", []int{1, 2}, "concurrent clients, comma-separated")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "timed run per query, user class and clients value")
	f.Int64Var(&o.Seed, "seed", 1, "data set and request seed")
	f.BoolVar(&setup, "setup", false, "rebuild the data set even when bench.meta matches")
	f.BoolVar(&reuse, "reuse", false, "never build: use the data set in the database (bench.meta must match)")
	f.StringSliceVar(&o.Only, "queries", nil, "run only these queries, by key (q1-todos, q1-todos-page, q4-count, q9-products-page, ...), comma-separated")
	f.BoolVar(&o.Investigate, "plans", true, "also compare plan options for the list pages (settings, extra indexes, statistics)")
	f.BoolVar(&o.HTTP, "http", false, "time the requests through a real PostgREST (on PATH, or --postgrest) instead of in process: the RLS endpoint against unprotected views with the floor's filter in the query string (default --clients 1,2,8)")
	f.StringVar(&o.PostgREST, "postgrest", "", "with --http: the postgrest binary (default: postgrest on PATH)")
	f.StringVar(&o.JSON, "json", "", "write the report as JSON to FILE")
	f.StringVar(&o.SVG, "svg", "", "with several --rows: write the plot of ratio vs table size to FILE")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
