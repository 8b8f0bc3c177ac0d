package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/stdlib"
)

const defaultDir = "policies"

func runtimeVersion() int { return stdlib.Version }

// compile parses, checks and builds a policy directory.
func compile(dir string) (*lang.Model, *compiler.Output, error) {
	out, err := compiler.Compile(dir)
	if err != nil {
		return nil, nil, err
	}
	return out.Model, out, nil
}

func dirArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return defaultDir
}

func newBuildCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Compile the .iam files in DIR (default policies/) into one SQL script",
		Long: `Compile every .iam file in DIR (default policies/) into one SQL script: the
iam runtime and, for every resource, its policies, grants, owner trigger and
index. Apply it with:

  psql -v ON_ERROR_STOP=1 -f FILE

as a superuser or as the owner role, on a database where the roles and tables
exist. The script is one transaction (all-or-nothing) and safe to run again.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, out, err := compile(dirArg(args))
			if err != nil {
				return err
			}
			script := out.Script()
			if output == "" || output == "-" {
				_, err = fmt.Fprint(cmd.OutOrStdout(), script)
				return err
			}
			if err := os.WriteFile(output, []byte(script), 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", output, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d resources)\n", output, len(out.Model.Resources))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the script to FILE instead of standard output")
	return cmd
}

func newExplainCmd() *cobra.Command {
	var (
		dir, dbURL, sub string
		plan            bool
	)
	cmd := &cobra.Command{
		Use:   "explain TABLE",
		Short: "Print the SQL generated for one resource; with --plan, the plans of its typical requests",
		Long: `Print the SQL generated for one resource (TABLE is a table name or schema.table).

With --plan, also run the typical requests a PostgREST client makes (a list
page, a read by id, a count) against a database where the policies are
applied, as PostgREST would for the user --sub (READ ONLY, role and JWT claims
set per request), and print their plans with what matters in them: which
indexes are read, what is computed once per statement, and anything that
runs per row.`,
		Example: `  iamc explain todos
  iamc explain app.chats --dir policies/
  iamc explain todos --plan --db "$DATABASE_URL" --sub 6f1c...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			model, out, err := compile(dir)
			if err != nil {
				return err
			}
			section, err := out.Find(args[0])
			if err != nil {
				return err
			}
			if _, err := fmt.Fprint(cmd.OutOrStdout(), section.SQL()); err != nil || !plan {
				return err
			}
			if dbURL == "" {
				dbURL = envDatabaseURL()
			}
			if dbURL == "" || sub == "" {
				return &exitError{code: 2, err: fmt.Errorf("--plan needs --db URL (or DATABASE_URL) and --sub USER_ID")}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			conn, err := connectDB(ctx, dbURL, "explain --plan")
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			claims := map[string]any{model.Identity.Claim: sub, "role": model.Roles.Authenticated}
			reports, err := catalog.ExplainPlans(ctx, conn, model, section.Resource, claims)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, r := range reports {
				fmt.Fprintf(w, "\n-- %s: %s\n--   %s\n", r.Request.Name, r.Request.HTTP, r.Request.SQL)
				for _, n := range r.Notes {
					fmt.Fprintf(w, "--   %s\n", n)
				}
				fmt.Fprintln(w, r.Plan)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultDir, "the policy directory")
	cmd.Flags().BoolVar(&plan, "plan", false, "also show the plans of the typical requests (needs --db and --sub)")
	cmd.Flags().StringVar(&dbURL, "db", "", "database URL for --plan (default: DATABASE_URL)")
	cmd.Flags().StringVar(&sub, "sub", "", "the user id (JWT identity claim) to run the requests as, for --plan")
	return cmd
}
