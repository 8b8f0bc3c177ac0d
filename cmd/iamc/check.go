package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/iamc/iamc/compiler"
)

func newCheckCmd() *cobra.Command {
	var (
		dbURL   string
		offline bool
	)
	cmd := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Validate the .iam files, and against a live database when one is given",
		Long: `Parse and validate every .iam file in DIR (default policies/). Problems are
printed as file:line:col: message, and the exit code is 1.

With --db URL, or when DATABASE_URL or PGHOST/PGDATABASE is set, the resources
are also checked against the live catalog: the roles exist, each table exists
and is owned by the owner role, and the owner column exists with the identity's
type. --offline skips the database even when those variables are set.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			model, out, err := compile(dir)
			if err != nil {
				return err
			}
			url := dbURL
			if url == "" && !offline {
				url = envDatabaseURL()
			}
			if url == "" || offline {
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %d resources in %s (offline: syntax and semantics only)\n", len(model.Resources), dir)
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return fmt.Errorf("connecting to the database: %w", err)
			}
			defer conn.Close(ctx)
			findings, err := compiler.CheckCatalog(ctx, conn, model)
			if err != nil {
				return err
			}
			errorsFound := 0
			for _, f := range findings {
				if f.Pos.Filename == "" {
					f.Pos.Filename = dir
				}
				fmt.Fprintln(cmd.ErrOrStderr(), f.String())
				if f.Level == "error" {
					errorsFound++
				}
			}
			if errorsFound > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d error(s) against the database", errorsFound)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d resources in %s match the database (%d sections generated)\n", len(model.Resources), dir, len(out.Sections))
			return nil
		},
	}
	cmd.Flags().StringVar(&dbURL, "db", "", "database URL (default: DATABASE_URL, or the PG* variables)")
	cmd.Flags().BoolVar(&offline, "offline", false, "never connect to a database")
	return cmd
}

// envDatabaseURL follows the usual conventions: DATABASE_URL, else the
// libpq PG* variables (pgx reads them itself from an empty URL).
func envDatabaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	if os.Getenv("PGHOST") != "" || os.Getenv("PGDATABASE") != "" || os.Getenv("PGSERVICE") != "" {
		return "postgres://"
	}
	return ""
}
