// Package policytest runs the .iamtest files of a policy directory against
// a real PostgreSQL (`iamc test`, SPEC §17): it compiles the policies,
// applies them in one transaction, loads each file's fixtures as a
// superuser, and makes every expectation's request the way PostgREST makes
// it (internal/pgrest: the role, the token's claims, READ ONLY for reads,
// return=minimal for writes), then checks as the superuser whether the row
// did or did not change. Every request is rolled back, and so is the whole
// transaction at the end: a database given with --db is left as it was.
package policytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgserver"
	"github.com/iamc/iamc/lang"
)

// DefaultPreRequest is the db-pre-request of the shipped postgrest.conf.
const DefaultPreRequest = "iam.check_request"

// Options say what to test and where.
type Options struct {
	Dir       string   // the policy directory: its .iam files are compiled
	TestFiles []string // the .iamtest files; default: those directly in Dir
	// DatabaseURL is a database to test in, inside one transaction that is
	// rolled back; "" starts a throwaway server (pgserver) and runs the test
	// files' setup scripts there first.
	DatabaseURL string
	// PreRequest is called in every request after the claims are set, as
	// PostgREST's db-pre-request; "" calls none.
	PreRequest string
	// FailFast stops at the first expectation that fails, in file order
	// (iamc test --fail-fast).
	FailFast bool
}

// SetupError means nothing could be tested: the database could not be
// started, reached or prepared (iamc test exits 2).
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// ErrNoTests is returned when the directory holds no test file.
var ErrNoTests = errors.New("no " + lang.TestExtension + " files")

// Report is what a run found.
type Report struct {
	Files   []string
	Results []Result // one per expectation, in file and position order
	Notes   []string // what the run did not do (setup scripts skipped with --db)
	NotRun  int      // expectations left when FailFast stopped the run
	// Server is how long starting the throwaway server took (0 with --db);
	// Elapsed is the whole run, the server's start and stop included.
	Server, Elapsed time.Duration
}

// Result is one expectation and what the database answered.
type Result struct {
	Expectation *lang.Expectation
	Actual      Outcome
	Passed      bool
}

// Failed lists the results that did not pass.
func (r *Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if !res.Passed {
			out = append(out, res)
		}
	}
	return out
}

// Run runs the test files of opts.Dir. A problem in the .iam or .iamtest
// files is a lang.ErrorList (exit 1, like iamc check); a database that
// cannot be used is a *SetupError (exit 2). Failed expectations are in the
// report, not an error.
func Run(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	out, err := compiler.Compile(opts.Dir)
	if err != nil {
		return nil, err
	}
	paths := opts.TestFiles
	if paths == nil {
		if paths, err = lang.TestFiles(opts.Dir); err != nil {
			return nil, err
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoTests, opts.Dir)
	}
	parsed, err := lang.ParseTestFiles(paths)
	if err != nil {
		return nil, err
	}
	var suites []*lang.Tests
	var errs lang.ErrorList
	for _, f := range parsed {
		t, err := lang.CheckTests(out.Model, f)
		if err != nil {
			var list lang.ErrorList
			if !errors.As(err, &list) {
				return nil, err
			}
			errs = append(errs, list...)
			continue
		}
		suites = append(suites, t)
	}
	if len(errs) > 0 {
		return nil, errs
	}

	report := &Report{Files: paths}
	url := opts.DatabaseURL
	ephemeral := url == ""
	var server *pgserver.Server
	if ephemeral {
		serverStart := time.Now()
		s, err := pgserver.Start(ctx)
		if err != nil {
			return nil, &SetupError{err}
		}
		defer s.Stop() //nolint:errcheck // a throwaway server; its directory goes with it
		report.Server = time.Since(serverStart)
		server = s
		url = s.URL("postgres", "postgres")
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, &SetupError{fmt.Errorf("connecting to the database: %w", err)}
	}
	// Nearly every statement of a run is new (its key, its values): one
	// round trip each, without preparing and caching them first.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &SetupError{fmt.Errorf("connecting to the database: %w", err)}
	}
	defer conn.Close(context.WithoutCancel(ctx))

	e := &engine{conn: conn, model: out.Model, preRequest: opts.PreRequest, failFast: opts.FailFast, tables: map[*lang.ResourceModel]*table{}}
	if err := e.begin(ctx); err != nil {
		return nil, err
	}
	defer e.tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the end of every run

	if ephemeral {
		if err := e.setup(ctx, suites); err != nil {
			return nil, err
		}
	} else if hasSetup(suites) {
		report.Notes = append(report.Notes, "the setup scripts of the test files were not run: --db names a database that already holds the tables")
	}
	if err := e.apply(ctx, out); err != nil {
		return nil, err
	}
	for i, t := range suites {
		if e.failFast && len(report.Failed()) > 0 {
			for _, rest := range suites[i:] {
				report.NotRun += len(rest.Expectations)
			}
			break
		}
		results, notRun, err := e.runSuite(ctx, t)
		report.NotRun += notRun
		if err != nil {
			var list lang.ErrorList
			if errors.As(err, &list) {
				errs = append(errs, list...)
				continue
			}
			return nil, err
		}
		report.Results = append(report.Results, results...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// Undo everything, and stop the server, before the clock stops.
	if err := e.tx.Rollback(ctx); err != nil {
		return nil, &SetupError{fmt.Errorf("rolling back: %w", err)}
	}
	if server != nil {
		conn.Close(ctx) //nolint:errcheck // the server goes next
		if err := server.Stop(); err != nil {
			return nil, &SetupError{err}
		}
	}
	report.Elapsed = time.Since(start)
	return report, nil
}

func hasSetup(suites []*lang.Tests) bool {
	for _, t := range suites {
		if len(t.Setup) > 0 {
			return true
		}
	}
	return false
}

// engine is one connection and its transaction, in which everything runs.
type engine struct {
	conn       *pgx.Conn
	tx         pgx.Tx
	model      *lang.Model
	preRequest string
	failFast   bool
	tables     map[*lang.ResourceModel]*table
}

// begin opens the transaction, after checking the connection can do what
// a run needs: bypass row-level security to load fixtures and to look at
// rows after a request.
func (e *engine) begin(ctx context.Context) error {
	var user string
	var bypass bool
	if err := e.conn.QueryRow(ctx, `select current_user::text, r.rolsuper or r.rolbypassrls from pg_catalog.pg_roles r where r.rolname = current_user`).Scan(&user, &bypass); err != nil {
		return &SetupError{fmt.Errorf("reading the connection's role: %w", err)}
	}
	if !bypass {
		return &SetupError{fmt.Errorf("iamc test connects as %s, which is not a superuser and has no BYPASSRLS: it loads fixtures and checks rows past row-level security (connect as a superuser, e.g. postgres)", user)}
	}
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		return &SetupError{fmt.Errorf("beginning the transaction: %w", err)}
	}
	e.tx = tx
	// Literals are written with standard quoting; a lock held by someone
	// else makes the run give up instead of waiting forever.
	if _, err := tx.Exec(ctx, "set local standard_conforming_strings = on; set local lock_timeout = '10s'"); err != nil {
		return &SetupError{fmt.Errorf("setting up the transaction: %w", err)}
	}
	return nil
}

// setup runs the test files' setup scripts, each once, in file order.
func (e *engine) setup(ctx context.Context, suites []*lang.Tests) error {
	seen := map[string]bool{}
	for _, t := range suites {
		for _, f := range t.Setup {
			if seen[f.Path] {
				continue
			}
			seen[f.Path] = true
			sql, err := os.ReadFile(f.Path)
			if err != nil {
				return &SetupError{fmt.Errorf("%s: setup: %w", f.Pos, err)}
			}
			if err := e.script(ctx, string(sql)); err != nil {
				return &SetupError{fmt.Errorf("%s: setup %s: %w", f.Pos, f.Path, err)}
			}
		}
	}
	return nil
}

// apply runs the build as iamc plan and apply do: the preamble and every
// section, in the run's transaction (the script's own begin and commit
// left out), then back to the connection's role.
func (e *engine) apply(ctx context.Context, out *compiler.Output) error {
	var b strings.Builder
	for _, st := range out.Preamble() {
		b.WriteString(st.SQL + "\n")
	}
	for _, sec := range out.Sections {
		for _, st := range sec.Statements {
			b.WriteString(st.SQL + "\n")
		}
	}
	b.WriteString("reset role;\n")
	if err := e.script(ctx, b.String()); err != nil {
		return &SetupError{fmt.Errorf("applying the build of %s: %w", strings.Join(out.Sources, ", "), err)}
	}
	return nil
}

// script runs SQL text of many statements (the simple protocol).
func (e *engine) script(ctx context.Context, sql string) error {
	_, err := e.tx.Conn().PgConn().Exec(ctx, sql).ReadAll()
	return err
}

// savepoint is a subtransaction of the run's transaction that is always
// rolled back and released, so that savepoints do not pile up.
type savepoint struct {
	pgx.Tx // the run's transaction: statements go to the same connection
	name   string
	done   bool
}

func (e *engine) savepoint(ctx context.Context, name string, readOnly bool) (*savepoint, error) {
	sql := "savepoint " + name
	if readOnly {
		// PostgREST runs GET and HEAD in READ ONLY transactions; a
		// subtransaction can be made read-only, and its end undoes it.
		sql += "; set transaction read only"
	}
	if _, err := e.tx.Conn().PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		return nil, err
	}
	return &savepoint{Tx: e.tx, name: name}, nil
}

// Rollback undoes everything since the savepoint and forgets it.
func (s *savepoint) Rollback(ctx context.Context) error {
	if s.done {
		return nil
	}
	s.done = true
	_, err := s.Tx.Conn().PgConn().Exec(ctx, "rollback to savepoint "+s.name+"; release savepoint "+s.name).ReadAll()
	return err
}

// Commit never commits: a request of a test is always undone.
func (s *savepoint) Commit(ctx context.Context) error { return s.Rollback(ctx) }

// requests opens the savepoint pgrest.Do runs a request in.
type requests struct {
	e *engine
}

func (r requests) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return r.e.savepoint(ctx, "iamc_request", opts.AccessMode == pgx.ReadOnly)
}
