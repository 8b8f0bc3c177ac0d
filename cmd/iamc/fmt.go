package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iamc/iamc/lang"
)

func newFmtCmd() *cobra.Command {
	var write, list bool
	cmd := &cobra.Command{
		Use:   "fmt [DIR|FILE]...",
		Short: "Print .iam files in canonical form (-w rewrites them, -l lists the ones that differ)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{defaultDir}
			}
			paths, err := expandPaths(args)
			if err != nil {
				return err
			}
			differ := 0
			for _, p := range paths {
				src, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("reading %s: %w", p, err)
				}
				f, err := lang.ParseFile(p, src)
				if err != nil {
					return filesFailed(cmd.ErrOrStderr(), err)
				}
				formatted := []byte(lang.Format(f))
				same := bytes.Equal(src, formatted)
				if list && !same {
					differ++
					fmt.Fprintln(cmd.OutOrStdout(), p)
				}
				if write && !same {
					if err := os.WriteFile(p, formatted, 0o644); err != nil {
						return fmt.Errorf("writing %s: %w", p, err)
					}
				}
				switch {
				case list, write:
				default:
					if _, err := cmd.OutOrStdout().Write(formatted); err != nil {
						return err
					}
				}
			}
			if list && !write && differ > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%s %d file(s) not in canonical form: run iamc fmt -w", fmtCode, differ)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&write, "write", "w", false, "rewrite files in place")
	cmd.Flags().BoolVarP(&list, "list", "l", false, "list files whose formatting differs; exit 1 if any")
	return cmd
}

func expandPaths(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		info, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("fmt: %w", err)
		}
		if !info.IsDir() {
			out = append(out, a)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(a, "*"+lang.Extension))
		if err != nil {
			return nil, err
		}
		sort.Strings(matches)
		out = append(out, matches...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s files in %s", lang.Extension, strings.Join(args, ", "))
	}
	return out, nil
}
