package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

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
				return filesFailed(cmd.ErrOrStderr(), err)
			}
			if err := warningsText(cmd.ErrOrStderr(), out.Model); err != nil {
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
