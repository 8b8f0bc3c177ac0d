package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/iamc/iamc/deploy"
)

func newPlanCmd() *cobra.Command {
	var (
		dbURL       string
		lockTimeout time.Duration
		detailed    bool
	)
	cmd := &cobra.Command{
		Use:   "plan [DIR] --db URL",
		Short: "Show what apply would change in a database, read from its catalog, and what drifted",
		Long: `Compare the .iam files in DIR (default policies/) with a live database and print
what iamc apply would change: create, replace or drop, per policy, function,
view, trigger, grant, index, foreign key and row level security flag.

The plan is read from the catalog, not from a local file: iamc reads the state
of every object it manages, runs the build in a transaction that is always
rolled back, reads the state again and compares. Changes made by hand since the
last apply (recorded in iam.applied) are marked as drift, and drift apply does
not repair (a grant to a role iamc does not manage, a policy it did not write)
is listed apart.

Plan takes the locks apply takes, for a moment: --lock-timeout (default 2s)
makes it fail rather than queue behind a long transaction. It needs the rights
apply needs (a superuser, or the owner role).

Exit code: 0 on success; with --detailed-exitcode, 0 when the database matches
the files, 2 when apply would change something, 1 on error.`,
		Example: `  iamc plan --db "$DATABASE_URL"
  iamc plan policies/ --db postgres://postgres@localhost/app --detailed-exitcode`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			_, out, err := compile(dir)
			if err != nil {
				return err
			}
			conn, err := connectDB(cmd.Context(), dbURL, "plan")
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(cmd.Context()))
			p, err := deploy.PlanChanges(cmd.Context(), conn, deploy.Input{Output: out, Label: dir, IamcVersion: version},
				deploy.Options{LockTimeout: lockTimeout})
			if err != nil {
				return err
			}
			if err := p.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			if detailed && p.HasChanges() {
				return &exitError{code: 2, err: fmt.Errorf("%d change(s) pending (exit code 2: --detailed-exitcode)", len(p.Changes))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dbURL, "db", "", "database URL (default: DATABASE_URL, or the PG* variables)")
	f.DurationVar(&lockTimeout, "lock-timeout", deploy.DefaultPlanLockTimeout, "give up when a lock is not granted within this time")
	f.BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when there is nothing to change, 2 when there is, 1 on error")
	return cmd
}

// connectDB connects to --db, or to the database the environment names:
// every command that reads a database connects through it.
func connectDB(ctx context.Context, url, command string) (*pgx.Conn, error) {
	if url == "" {
		url = envDatabaseURL()
	}
	if url == "" {
		return nil, errors.New(command + " needs a database: --db URL (or DATABASE_URL, or the PG* variables)")
	}
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(connectCtx, url)
	if err != nil {
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	return conn, nil
}
