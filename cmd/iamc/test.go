package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/policytest"
)

func newTestCmd() *cobra.Command {
	var (
		format  string
		verbose bool
		opts    = policytest.Options{PreRequest: policytest.DefaultPreRequest}
	)
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the .iamtest files beside the policies against a real PostgreSQL",
		Long: `Run the test files (*.iamtest) of DIR (default policies/): compile DIR's .iam
files, apply them in one transaction of a throwaway PostgreSQL (or of --db),
load each file's users, groups and rows, and make every expectation's request
as PostgREST would: the role, the token's claims, READ ONLY for reads,
return=minimal for writes, then a superuser look at whether the row changed.
Every request is rolled back, and so is the whole run. The syntax and what
"can read, create, write, delete" mean are in SPEC.md §17.

Each failure is printed as
  file:line:col: error CODE: expected: ...; actual: ...
with CODE IAM201 (can failed), IAM202 (cannot failed), IAM203 (an access the
listing states is lost), IAM204 (an access the listing does not state is
gained). Problems in the .iam and .iamtest files are printed as check prints
them (file:line:col: error CODE: message; the test files' codes are
IAM210-IAM221, docs/diagnostics.md). --format json prints one JSON object
with every result; --format junit prints JUnit XML for CI.

The throwaway server is found the way the tests find it (PG_BIN, pg_config,
/usr/lib/postgresql/*/bin; scripts/ensure-postgres.sh installs one), and the
test files' setup scripts run in it first. --db URL tests in that database
instead (it must hold the tables and roles; connect as a superuser); unlike
check, DATABASE_URL is never used: a test run names its database.

Exit code: 0 when every expectation holds; 1 when one fails, or on an error
in the .iam or .iamtest files (fixtures the database refuses included); 2 on a
usage error, or when the database cannot be started, reached or prepared.`,
		Example: `  iamc test
  iamc test policies/ --format junit > iamc-test.xml
  iamc test --db postgres://postgres@localhost/app_dev`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError(fmt.Errorf("test takes one policy directory, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(policytest.Formats, format) {
				return usageError(fmt.Errorf("--format must be %s, not %q", strings.Join(policytest.Formats, ", "), format))
			}
			opts.Dir = dirArg(args)
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			out := cmd.OutOrStdout()
			report, err := policytest.Run(ctx, opts)
			if err != nil {
				// Problems in the files exit 1, as in check; anything else
				// (a database that cannot be started, reached or set up; a
				// directory without test files) exits 2.
				var list lang.ErrorList
				if errors.As(err, &list) {
					switch format {
					case "json":
						if werr := policytest.WriteJSON(out, nil, list); werr != nil {
							return werr
						}
						return &exitError{code: 1, err: fmt.Errorf("%d error(s) in the policy and test files", len(list))}
					case "junit":
						if werr := policytest.WriteJUnit(out, nil, list); werr != nil {
							return werr
						}
						return &exitError{code: 1, err: fmt.Errorf("%d error(s) in the policy and test files", len(list))}
					}
					// As iamc check prints problems in the files:
					// file:line:col: error CODE: message.
					found := langFindings(list)
					if werr := writeFindings(out, "text", opts.Dir, found); werr != nil {
						return werr
					}
					return &exitError{code: 1, err: fmt.Errorf("%s in the policy and test files", countWords(found))}
				}
				return usageError(err)
			}
			switch format {
			case "json":
				err = policytest.WriteJSON(out, report, nil)
			case "junit":
				err = policytest.WriteJUnit(out, report, nil)
			default:
				err = policytest.WriteText(out, report, verbose)
			}
			if err != nil {
				return err
			}
			if failed := len(report.Failed()); failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d expectations failed", failed, len(report.Results))}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&opts.DatabaseURL, "db", "", "test in this database, in a transaction rolled back at the end (default: a throwaway server)")
	f.StringVar(&format, "format", "text", "output format: text, json or junit")
	f.BoolVarP(&verbose, "verbose", "v", false, "print every expectation, not only failures (text)")
	f.BoolVar(&opts.FailFast, "fail-fast", false, "stop at the first expectation that fails")
	f.StringVar(&opts.PreRequest, "pre-request", opts.PreRequest, "the db-pre-request every request calls, as PostgREST does (\"\" for none)")
	return cmd
}
