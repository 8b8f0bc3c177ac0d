package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgserver"
)

// DatabaseName is the database an ephemeral server holds the benchmark in.
const DatabaseName = "bench"

// Ephemeral is a throwaway PostgreSQL server (pgserver) with the example
// set up exactly as a deployment would be: policies/roles.sql and
// policies/schema.sql loaded with psql, then `iamc build policies/` applied
// with psql.
type Ephemeral struct {
	Server *pgserver.Server
	URL    string // superuser URL of DatabaseName
}

// StartEphemeral starts the server and sets it up from policyDir. When it
// returns a non-nil Ephemeral, the caller must Stop it, even with an error.
func StartEphemeral(ctx context.Context, policyDir string, log io.Writer) (*Ephemeral, error) {
	script, err := BuildScript(policyDir)
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", policyDir, err)
	}
	s, err := pgserver.Start(ctx)
	if err != nil {
		return nil, err
	}
	e := &Ephemeral{Server: s, URL: s.URL(DatabaseName, "postgres")}
	fmt.Fprintf(log, "PostgreSQL started (%s, port %d)\n", s.BinDir, s.Port)
	if err := s.CreateDatabase(ctx, DatabaseName); err != nil {
		return e, err
	}
	for _, name := range []string{"roles.sql", "schema.sql"} {
		if _, err := s.Psql(ctx, DatabaseName, "-q", "-f", filepath.Join(policyDir, name)); err != nil {
			return e, fmt.Errorf("loading %s: %w", name, err)
		}
	}
	f, err := os.CreateTemp("", "iamc-bench-*.sql")
	if err != nil {
		return e, err
	}
	defer os.Remove(f.Name())
	if _, err := io.WriteString(f, script); err != nil {
		f.Close()
		return e, err
	}
	if err := f.Close(); err != nil {
		return e, err
	}
	if _, err := s.Psql(ctx, DatabaseName, "-q", "-f", f.Name()); err != nil {
		return e, fmt.Errorf("applying `iamc build %s`: %w", policyDir, err)
	}
	fmt.Fprintf(log, "loaded %s/roles.sql, %s/schema.sql; applied `iamc build %s` with psql\n", policyDir, policyDir, policyDir)
	return e, nil
}

// Stop stops the server and removes its files.
func (e *Ephemeral) Stop() error { return e.Server.Stop() }

// BuildScript is `iamc build dir`, in process.
func BuildScript(dir string) (string, error) {
	out, err := compiler.Compile(dir)
	if err != nil {
		return "", err
	}
	return out.Script(), nil
}
