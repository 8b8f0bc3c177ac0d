package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/iamc/iamc/deploy"
)

func newApplyCmd() *cobra.Command {
	var (
		dbURL       string
		lockTimeout time.Duration
		concurrent  bool
	)
	cmd := &cobra.Command{
		Use:   "apply [DIR] --db URL",
		Short: "Apply the .iam files to a database in one transaction, and record what was installed",
		Long: `Compile the .iam files in DIR (default policies/) and apply them to a live
database in one transaction, under the iamc advisory lock: it prints the plan
(see iamc plan), and commits it only when it changes something. With nothing to
change it commits nothing ("no changes").

Every apply that changes something is recorded in iam.applied: when, by whom,
the iamc and runtime versions, hashes of the .iam files and of the script, the
resources, and the catalog state it left (plan compares with it to report
drift). A resource removed from the files loses iamc's policies, row guard,
grants to the runtime roles, group foreign key and indexes; its row level
security stays enabled and forced (nobody but superusers and BYPASSRLS roles
sees its rows until you add policies or disable it), and no row is touched.

--lock-timeout (default 5s) bounds every wait for a lock: a table held by a
long transaction makes apply fail, changing nothing, instead of queueing (and
making every query behind it queue too).

--concurrent-indexes builds missing indexes with CREATE INDEX CONCURRENTLY
before the transaction: on a large table a plain CREATE INDEX blocks writes for
as long as it reads the table. The transaction then finds them built.

A database whose iam runtime is newer than this iamc's is refused.`,
		Example: `  iamc apply --db "$DATABASE_URL"
  iamc apply policies/ --db postgres://postgres@localhost/app --lock-timeout 2s --concurrent-indexes`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			_, out, err := compile(dir)
			if err != nil {
				return err
			}
			conn, err := connectDB(cmd.Context(), dbURL, "apply")
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(cmd.Context()))
			res, err := deploy.Apply(cmd.Context(), conn, deploy.Input{Output: out, Label: dir, IamcVersion: version},
				deploy.Options{LockTimeout: lockTimeout, ConcurrentIndexes: concurrent})
			if err != nil {
				// Indexes built concurrently before the failure stay: the
				// next apply finds them built.
				for _, ix := range res.Concurrent {
					fmt.Fprintf(cmd.ErrOrStderr(), "built index %s concurrently before the failure; it stays\n", ix)
				}
				return err
			}
			return res.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&dbURL, "db", "", "database URL (default: DATABASE_URL, or the PG* variables)")
	f.DurationVar(&lockTimeout, "lock-timeout", deploy.DefaultLockTimeout, "give up, changing nothing, when a lock is not granted within this time")
	f.BoolVar(&concurrent, "concurrent-indexes", false, "build missing indexes with CREATE INDEX CONCURRENTLY before the transaction")
	return cmd
}
