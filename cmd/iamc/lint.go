package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iamc/iamc/lint"
)

// usageError is exit code 2: the command was called wrongly, or could not
// look at the database at all. Exit code 1 always means findings.
func usageError(err error) error { return &exitError{code: 2, err: err} }

func newLintCmd() *cobra.Command {
	var (
		dbURL     string
		format    string
		location  string
		strict    bool
		listRules bool
		cfg       = lint.DefaultConfig()
	)
	cmd := &cobra.Command{
		Use:   "lint --db URL",
		Short: "Security lint of a live PostgreSQL database served by PostgREST (any database, not only iamc's tables)",
		Long: `Read the catalog of a live database (read-only) and report what a PostgREST
request could abuse, or what makes row-level security slow:

  IAM001 error    SECURITY DEFINER function without a pinned search_path
  IAM002 error    SECURITY DEFINER function executable by PUBLIC
  IAM003 error    RLS enabled but not forced (owner, or a role that can become it, skips the policies)
  IAM004 warning  policy calls a volatile or PL/pgSQL function for every row
  IAM005 error    write policy USING (true) / WITH CHECK (true) for a role holding the privilege
  IAM006 warning  table or view in an exposed schema readable by the anonymous role
  IAM007 error    table in an exposed schema without RLS that a runtime role can access
  IAM008 warning  SECURITY DEFINER helper outside the exposed schemas a runtime role can execute
  IAM009 error    partition of a table with RLS that a direct query reaches past the parent's policies

Each finding is one line: rule, level, object, what is wrong, and a hint (SQL
to run or what to do); --format json prints a JSON array of findings,
--format sarif a SARIF 2.1.0 log for GitHub code scanning (give --location),
--format github workflow annotations.

--schemas lists the schemas PostgREST serves (db-schemas; default: every
non-system schema); it limits IAM006, IAM007 and IAM009, and IAM008 looks
outside them. The other rules look at every non-system schema. --authenticated and --anonymous name the runtime roles.

Exit code: 0 when there is no error-level finding (with --strict: no warning
either), 1 when there is, 2 on a usage error or when the database cannot be
read.`,
		Example: `  iamc lint --db "$DATABASE_URL"
  iamc lint --db postgres://postgres@localhost/app --schemas app --format json
  iamc lint --rules`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("lint takes no arguments (got %s); give the database with --db", strings.Join(args, " ")))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listRules {
				return lint.WriteRules(cmd.OutOrStdout())
			}
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			conn, err := connectDB(ctx, dbURL, "lint")
			if err != nil {
				return usageError(err)
			}
			defer conn.Close(context.WithoutCancel(ctx))
			report, err := lint.Run(ctx, conn, cfg)
			if err != nil {
				return usageError(err)
			}
			for _, n := range report.Notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: "+n)
			}
			out := cmd.OutOrStdout()
			if err := writeLint(out, format, location, report.Findings); err != nil {
				return err
			}
			errs, warns, infos := report.Count(lint.Error), report.Count(lint.Warning), report.Count(lint.Info)
			summary := fmt.Sprintf("%d error(s), %d warning(s), %d info", errs, warns, infos)
			if format == "text" {
				if len(report.Findings) == 0 {
					fmt.Fprintf(out, "ok: no findings (%d rules)\n", len(lint.Rules()))
				} else {
					fmt.Fprintln(cmd.ErrOrStderr(), summary)
				}
			}
			if errs > 0 || strict && warns > 0 {
				return &exitError{code: 1, err: errors.New("lint: " + summary)}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&dbURL, "db", "", "database URL (default: DATABASE_URL, or the PG* variables)")
	f.StringVar(&format, "format", "text", "output format: text, json, sarif (GitHub code scanning) or github (workflow annotations)")
	f.StringVar(&location, "location", "", "sarif and github: the repository file the findings are shown at (line 1), e.g. the migration that creates the schema; lint's findings are about database objects, and GitHub code scanning shows only results in a file")
	f.StringSliceVar(&cfg.Schemas, "schemas", nil, "the schemas PostgREST exposes, comma-separated (default: every non-system schema)")
	f.StringVar(&cfg.Authenticated, "authenticated", cfg.Authenticated, "the role requests with a JWT run as")
	f.StringVar(&cfg.Anonymous, "anonymous", cfg.Anonymous, "the role requests without a JWT run as (db-anon-role)")
	f.BoolVar(&strict, "strict", false, "exit 1 on warnings too")
	f.BoolVar(&listRules, "rules", false, "list the rules and exit")
	return cmd
}
