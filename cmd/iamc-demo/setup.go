package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgserver"
	"github.com/iamc/iamc/lang"
)

const (
	dbName     = "demo"
	appSchema  = "app"
	policyDir  = "policies"
	modulePath = "github.com/iamc/iamc"
)

// demo is the running set-up: the server, the compiled policies and what the
// catalog says was applied.
type demo struct {
	server  *pgserver.Server
	out     *compiler.Output
	version string // server_version
	applied struct {
		statements int // statements in the compiled script (sections)
		policies   int // rows of pg_policies in schema app
		rlsTables  int // tables of schema app with RLS enabled and forced
		triggers   int // iam_guard_owner triggers
	}
}

// repoRoot walks up from the working directory, then from this source file,
// to the directory whose go.mod declares the iamc module.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				strings.Contains(string(mod), "module "+modulePath+"\n") {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find the iamc repository (a go.mod declaring " + modulePath + ") above the working directory")
}

// setUp starts PostgreSQL, loads the example schema, compiles policies/ and
// applies the script with psql. When it returns a non-nil demo, the caller
// must stop its server, even if err is not nil.
func setUp(ctx context.Context, root string) (*demo, error) {
	dir := filepath.Join(root, policyDir)
	out, err := compile(dir)
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", dir, err)
	}

	fmt.Println("Starting a throwaway PostgreSQL ...")
	s, err := pgserver.Start(ctx)
	if err != nil {
		return nil, err
	}
	d := &demo{server: s, out: out}
	if err := s.CreateDatabase(ctx, dbName); err != nil {
		return d, err
	}
	for _, name := range []string{"roles.sql", "schema.sql"} {
		if _, err := s.Psql(ctx, dbName, "-q", "-f", filepath.Join(dir, name)); err != nil {
			return d, fmt.Errorf("loading %s: %w", name, err)
		}
	}

	script, err := os.CreateTemp("", "iamc-demo-*.sql")
	if err != nil {
		return d, err
	}
	defer os.Remove(script.Name())
	if _, err := io.WriteString(script, out.Script()); err != nil {
		script.Close()
		return d, err
	}
	if err := script.Close(); err != nil {
		return d, err
	}
	if _, err := s.Psql(ctx, dbName, "-q", "-f", script.Name()); err != nil {
		return d, fmt.Errorf("applying the compiled script: %w", err)
	}

	for _, sec := range out.Sections {
		d.applied.statements += len(sec.Statements)
	}
	return d, d.readCatalog(ctx)
}

// compile is `iamc build`, in process.
func compile(dir string) (*compiler.Output, error) {
	files, err := lang.ParseDir(dir)
	if err != nil {
		return nil, err
	}
	// The script's header names the files as a reader finds them.
	for _, f := range files {
		f.Name = filepath.Join(policyDir, filepath.Base(f.Name))
	}
	return compiler.CompileFiles(files)
}

// readCatalog counts what the script left in the database.
func (d *demo) readCatalog(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.server.URL(dbName, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, `select
  current_setting('server_version'),
  (select count(*) from pg_policies where schemaname = $1),
  (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and c.relkind = 'r' and c.relrowsecurity and c.relforcerowsecurity),
  (select count(*) from pg_trigger t join pg_class c on c.oid = t.tgrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and t.tgname = 'iam_guard_owner')`, appSchema).
		Scan(&d.version, &d.applied.policies, &d.applied.rlsTables, &d.applied.triggers)
}

func (d *demo) printHeader(w io.Writer) {
	var resources []string
	for _, r := range d.out.Model.Resources {
		resources = append(resources, r.QualifiedName())
	}
	fmt.Fprintf(w, "PostgreSQL %s (%s), database %q\n", d.version, d.server.BinDir, dbName)
	fmt.Fprintf(w, "Loaded   policies/roles.sql, policies/schema.sql\n")
	fmt.Fprintf(w, "Compiled %s -> %d statements for %s\n",
		strings.Join(d.out.Sources, ", "), d.applied.statements, strings.Join(resources, ", "))
	fmt.Fprintf(w, "Applied  with psql: %d policies in schema %s, RLS enabled and forced on %d tables, %d owner triggers\n",
		d.applied.policies, appSchema, d.applied.rlsTables, d.applied.triggers)

	fmt.Fprintf(w, "\n$ iamc explain todos   # the policies only\n")
	if sec, err := d.out.Find("todos"); err == nil {
		for _, st := range sec.Statements {
			if strings.HasPrefix(st.SQL, "create policy") {
				fmt.Fprintln(w, "  "+strings.ReplaceAll(st.SQL, "\n", "\n  "))
			}
		}
	} else {
		fmt.Fprintln(w, "  "+err.Error())
	}
}
