// Command iamc compiles .iam policy files into PostgreSQL row-level
// security for PostgREST APIs. The commands are thin: the work is in lang
// (text) and compiler (SQL).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "iamc: "+err.Error())
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "iamc",
		Short: "Compile .iam policy files into PostgreSQL row-level security for PostgREST",
		Long: `iamc compiles declarative .iam policy files into PostgreSQL row-level security:
policies, grants, an owner trigger and the indexes the policies need, plus the
small iam runtime they call. The output is one SQL script you apply with psql.

  iamc build policies/ -o iam.sql      compile every .iam file in policies/
  psql -v ON_ERROR_STOP=1 -f iam.sql   apply it (all-or-nothing, safe to re-run)
  iamc explain todos                   show the SQL for one table
  iamc explain todos --as SUB --row 2  may that user read, insert, update, delete it, and why
  iamc explain --matrix                who may do what, per table
  iamc check --db "$DATABASE_URL"      validate files, and against a live database
  iamc check --format sarif            the same for CI (codes: docs/diagnostics.md)
  iamc test                            run policies/*.iamtest against a throwaway PostgreSQL
  iamc fmt -w policies/                rewrite files in canonical form

The language is described in SPEC.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(newBuildCmd(), newExplainCmd(), newCheckCmd(), newFmtCmd(), newVersionCmd(), newLintCmd(), newPlanCmd(), newApplyCmd(), newBenchCmd(), newTestCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the iamc version and the runtime version it installs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return nil
		},
	}
}

func versionLine() string {
	return fmt.Sprintf("iamc %s (iam runtime version %d)", version, runtimeVersion())
}
