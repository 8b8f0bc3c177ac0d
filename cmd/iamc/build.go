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
	files, err := lang.ParseDir(dir)
	if err != nil {
		return nil, nil, err
	}
	model, err := lang.Check(files)
	if err != nil {
		return nil, nil, err
	}
	sources := make([]string, len(files))
	for i, f := range files {
		sources[i] = f.Name
	}
	out, err := compiler.Build(model, sources)
	if err != nil {
		return nil, nil, err
	}
	return model, out, nil
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
	var dir string
	cmd := &cobra.Command{
		Use:   "explain TABLE",
		Short: "Print the SQL generated for one resource (table or schema.table)",
		Example: `  iamc explain todos
  iamc explain app.chats --dir policies/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, out, err := compile(dir)
			if err != nil {
				return err
			}
			section, err := out.Find(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), section.SQL())
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultDir, "the policy directory")
	return cmd
}
