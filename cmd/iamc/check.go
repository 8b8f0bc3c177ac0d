package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

func newCheckCmd() *cobra.Command {
	var (
		dbURL   string
		format  string
		offline bool
		strict  bool
		opts    = catalog.CatalogOptions{Authenticator: catalog.DefaultAuthenticator}
	)
	cmd := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Validate the .iam files, and against a live database when one is given",
		Long: `Parse and validate every .iam file in DIR (default policies/).

With --db URL, or when DATABASE_URL or PGHOST/PGDATABASE/PGSERVICE is set, the
resources are also checked against the live catalog (read-only). Errors:
a declared role or the authenticator does not exist, the authenticator cannot
become the runtime roles, the authenticated or anonymous role is a superuser or
has BYPASSRLS, the groups API schema is missing, a table is missing, not a
table or not owned by the owner role, an owner or group column is missing or of
the wrong type. Warnings: row-level security off, no index for the owner or
group column, no foreign key from a group column to iam.groups (these three are
expected before the first iamc build), no primary key, triggers or policies
iamc did not write, a superuser or BYPASSRLS authenticator, a runtime role that
is or can become the owner role, a table of an exposed schema (--schemas) with
no resource.

Each finding is printed as file:line:col: error|warning CODE: message, with
an indented hint; --format json prints a JSON array of
{file, line, col, code, level, message, hint} instead, --format sarif a SARIF
2.1.0 log for GitHub code scanning, --format github workflow annotations.
Every finding has a stable code (docs/diagnostics.md). The files' warnings
(IAM180-IAM199) are reported too; a comment "# iamc:ignore CODE reason" on a
warning's line (or alone on the line above) suppresses it, and is itself
reported when it suppresses nothing.

--offline never connects: syntax and semantics only (the pre-commit hook).

Exit code: 0 when there is no error (with --strict: no warning either); 1 when
there is, in the .iam files or against the database; 2 on a usage error or
when the database cannot be reached or read.`,
		Example: `  iamc check --offline
  iamc check policies/ --db "$DATABASE_URL"
  iamc check --db postgres://postgres@localhost/app --schemas app,api --format json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError(fmt.Errorf("check takes one policy directory, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if offline && dbURL != "" {
				return usageError(errors.New("--offline and --db contradict each other"))
			}
			dir := dirArg(args)
			opts.Dir = dir
			out := cmd.OutOrStdout()

			model, err := checkFiles(dir)
			if err != nil {
				var list lang.ErrorList
				if !errors.As(err, &list) {
					return err
				}
				found := langFindings(list)
				if werr := writeFindings(out, format, dir, found); werr != nil {
					return werr
				}
				return &exitError{code: 1, err: fmt.Errorf("%s in the .iam files", countWords(found))}
			}
			findings := langFindings(model.Warnings)

			url := dbURL
			if url == "" && !offline {
				url = envDatabaseURL()
			}
			if url != "" {
				found, err := checkDatabase(cmd.Context(), url, model, opts)
				if err != nil {
					return usageError(err)
				}
				// iamc:ignore comments apply to the catalog check's
				// warnings too; one that names a catalog code and
				// suppressed nothing is reported now that it was checked.
				for _, f := range found {
					if !model.Suppressions.Suppressed(f.Pos, f.Code, f.Level) {
						findings = append(findings, f)
					}
				}
				findings = append(findings, langFindings(model.Suppressions.Unused(catalog.IsCode))...)
				sortFindings(findings)
			}
			if err := writeFindings(out, format, dir, findings); err != nil {
				return err
			}
			errs, warnings := catalog.CountFindings(findings)
			where := "in the .iam files"
			if url != "" {
				where = "in the .iam files and against the database"
			}
			summary := fmt.Sprintf("%d error(s), %d warning(s) %s", errs, warnings, where)
			if errs > 0 || strict && warnings > 0 {
				return &exitError{code: 1, err: errors.New(summary)}
			}
			if format == "text" {
				ok := fmt.Sprintf("ok: %d resources in %s (offline: syntax and semantics only)", len(model.Resources), dir)
				if url != "" {
					ok = fmt.Sprintf("ok: %d resources in %s match the database", len(model.Resources), dir)
				}
				if warnings > 0 {
					ok += fmt.Sprintf(" (%d warning(s))", warnings)
				}
				fmt.Fprintln(out, ok)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&dbURL, "db", "", "database URL (default: DATABASE_URL, or the PG* variables)")
	f.BoolVar(&offline, "offline", false, "never connect to a database: syntax and semantics only")
	f.StringVar(&format, "format", "text", "output format: text, json, sarif (GitHub code scanning) or github (workflow annotations)")
	f.BoolVar(&strict, "strict", false, "exit 1 on warnings too")
	f.StringVar(&opts.Authenticator, "authenticator", opts.Authenticator, "the role PostgREST logs in as; it must be able to become the runtime roles (\"\" skips its checks)")
	f.StringSliceVar(&opts.Schemas, "schemas", nil, "the schemas PostgREST exposes, comma-separated (default: the resources' schemas and the groups API schema)")
	return cmd
}

// checkFiles parses and checks the policy directory, and builds it (a
// compiler bug stops here too). A directory that cannot be read is a usage
// error; problems in the files are a lang.ErrorList.
func checkFiles(dir string) (*lang.Model, error) {
	files, err := lang.ParseDir(dir)
	if err != nil {
		if _, ok := catalog.ErrorFindings(err); ok {
			return nil, err
		}
		return nil, usageError(err)
	}
	out, err := compiler.CompileFiles(files)
	if err != nil {
		return nil, err
	}
	return out.Model, nil
}

// checkDatabase runs the catalog check in a read-only transaction.
func checkDatabase(ctx context.Context, url string, model *lang.Model, opts catalog.CatalogOptions) ([]catalog.Finding, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := connectDB(ctx, url, "check")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("starting a read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	findings, err := catalog.CheckCatalog(ctx, tx, model, opts)
	if err != nil {
		var schemaErr *catalog.SchemaError
		if errors.As(err, &schemaErr) {
			return nil, err
		}
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	return findings, nil
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
