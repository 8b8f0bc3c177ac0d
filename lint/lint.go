// Package lint is a security lint of a live PostgreSQL database served by
// PostgREST: any database, not only tables iamc manages. It reads the
// catalog in a read-only transaction and reports what a runtime role (the
// role PostgREST switches to for a request) could abuse or what makes row
// security slow: SECURITY DEFINER functions that can be hijacked or called by
// anyone, row-level security that the table owner escapes or that is off,
// policies that call a function for every row, policies that let a role
// change every row, tables the anonymous role can read, and partitions
// that a direct query reaches past their parent's row-level security.
//
// One rule per file (iam001_*.go, ...). Each rule has an id, a default
// level and a one-line description; each finding names the object it is
// about and says how to fix it.
package lint

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Level is how bad a finding is. Errors are holes (someone can read or do
// what they should not); warnings are weaknesses or slow policies; info is
// worth knowing.
type Level string

const (
	Error   Level = "error"
	Warning Level = "warning"
	Info    Level = "info"
)

// rank orders levels, most severe first.
func (l Level) rank() int {
	switch l {
	case Error:
		return 0
	case Warning:
		return 1
	default:
		return 2
	}
}

// Finding is one problem with one database object.
type Finding struct {
	Rule        string `json:"rule"`        // IAM001 ...
	Name        string `json:"name"`        // the rule's short name
	Level       Level  `json:"level"`       // error, warning, info
	Object      string `json:"object"`      // app.todos, app.f(uuid), app.todos policy "p"
	Message     string `json:"message"`     // what is wrong, in one line
	Remediation string `json:"remediation"` // SQL to run, or what to do
}

// String is the one-line text form:
//
//	IAM004 warning app.todos policy "x": calls ... for every row; hint: ...
func (f Finding) String() string {
	s := fmt.Sprintf("%s %s %s: %s", f.Rule, f.Level, f.Object, f.Message)
	if f.Remediation != "" {
		s += "; hint: " + f.Remediation
	}
	return s
}

// Config says which roles requests run as and which schemas are served.
type Config struct {
	// Authenticated is the role requests with a valid JWT run as.
	Authenticated string
	// Anonymous is the role requests without a JWT run as (db-anon-role).
	Anonymous string
	// Schemas are the schemas PostgREST exposes (db-schemas). Empty means
	// every non-system schema. Only the exposure rules (IAM006, IAM007) are
	// limited to them, and IAM008 looks outside them; the others look at
	// every non-system schema.
	Schemas []string
}

// DefaultConfig is the PostgREST set-up of SPEC.md: web_user and web_anon.
func DefaultConfig() Config {
	return Config{Authenticated: "web_user", Anonymous: "web_anon"}
}

// Rule is one check.
type Rule struct {
	ID          string // IAM001
	Name        string // security_definer_search_path
	Level       Level  // the most severe level it reports
	Description string // one line
	check       func(ctx context.Context, e *env) ([]Finding, error)
}

// Rules returns every rule, in id order.
func Rules() []Rule {
	rules := []Rule{
		ruleDefinerSearchPath,
		ruleDefinerPublicExecute,
		ruleRLSNotForced,
		rulePolicyPerRowCall,
		rulePolicyAlwaysTrue,
		ruleAnonReadable,
		ruleRLSDisabled,
		ruleDefinerRuntimeExecute,
		rulePartitionOpen,
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	return rules
}

// Report is the result of a lint run.
type Report struct {
	Findings []Finding
	// Notes are things the run could not check (a runtime role that does
	// not exist, for instance); they are not findings.
	Notes []string
}

// Count returns how many findings are at level l.
func (r *Report) Count(l Level) int {
	n := 0
	for _, f := range r.Findings {
		if f.Level == l {
			n++
		}
	}
	return n
}

// Beginner is what Run needs from a connection: *pgx.Conn and
// *pgxpool.Pool both qualify.
type Beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// env is what a rule sees: the transaction and the resolved configuration.
type env struct {
	tx  pgx.Tx
	cfg Config
	// runtime lists the runtime roles that exist, authenticated first.
	runtime []string
	// anonymous is cfg.Anonymous if that role exists, else "".
	anonymous string
	// exposed are the schemas served (cfg.Schemas, or every non-system schema).
	exposed []string
}

// Run lints the database. It reads only: everything runs in a READ ONLY
// transaction that is rolled back, with search_path empty so that every
// name the catalog prints is schema-qualified.
func Run(ctx context.Context, db Beginner, cfg Config) (*Report, error) {
	if cfg.Authenticated == "" || cfg.Anonymous == "" {
		return nil, fmt.Errorf("lint: the authenticated and anonymous role names must not be empty")
	}
	if cfg.Authenticated == cfg.Anonymous {
		return nil, fmt.Errorf("lint: the authenticated and anonymous roles must differ (both are %s)", cfg.Authenticated)
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("lint: starting a read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "set local search_path = ''"); err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("set local statement_timeout = %d", (60*time.Second).Milliseconds())); err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}

	e := &env{tx: tx, cfg: cfg}
	rep := &Report{}
	for _, role := range []string{cfg.Authenticated, cfg.Anonymous} {
		var exists bool
		if err := tx.QueryRow(ctx, "select exists (select from pg_catalog.pg_roles where rolname = $1)", role).Scan(&exists); err != nil {
			return nil, fmt.Errorf("lint: looking up role %s: %w", role, err)
		}
		if !exists {
			rep.Notes = append(rep.Notes, fmt.Sprintf("role %s does not exist: the rules that need it only consider PUBLIC", role))
			continue
		}
		e.runtime = append(e.runtime, role)
		if role == cfg.Anonymous {
			e.anonymous = role
		}
	}
	if e.exposed, err = exposedSchemas(ctx, tx, cfg.Schemas); err != nil {
		return nil, err
	}

	for _, r := range Rules() {
		found, err := r.check(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("lint: rule %s (%s): %w", r.ID, r.Name, err)
		}
		for i := range found {
			found[i].Rule, found[i].Name = r.ID, r.Name
			if found[i].Level == "" {
				found[i].Level = r.Level
			}
		}
		rep.Findings = append(rep.Findings, found...)
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Object < b.Object
	})
	return rep, nil
}

// userSchemas is the SQL condition for "not a system schema", on n.nspname.
const userSchemas = `n.nspname <> 'information_schema' and n.nspname !~ '^pg_'`

// notExtensionMember is the SQL condition for "not created by an
// extension", on an object of catalog cat with oid expression oid.
func notExtensionMember(cat, oid string) string {
	return fmt.Sprintf(`not exists (select from pg_catalog.pg_depend d
      where d.classid = '%s'::pg_catalog.regclass and d.objid = %s and d.deptype = 'e')`, cat, oid)
}

func exposedSchemas(ctx context.Context, tx pgx.Tx, asked []string) ([]string, error) {
	if len(asked) == 0 {
		rows, err := tx.Query(ctx, `select n.nspname from pg_catalog.pg_namespace n where `+userSchemas+` order by 1`)
		if err != nil {
			return nil, fmt.Errorf("lint: listing schemas: %w", err)
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	var missing []string
	for _, s := range asked {
		var exists bool
		if err := tx.QueryRow(ctx, "select exists (select from pg_catalog.pg_namespace where nspname = $1)", s).Scan(&exists); err != nil {
			return nil, fmt.Errorf("lint: looking up schema %s: %w", s, err)
		}
		if !exists {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, &ConfigError{fmt.Sprintf("schema %s does not exist", strings.Join(missing, ", "))}
	}
	return asked, nil
}

// ConfigError is a problem with what was asked (a schema that does not
// exist), as opposed to a database error.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return "lint: " + e.msg }

// privileges returns which of SELECT, INSERT, UPDATE, DELETE role has on a
// relation, directly, through role membership or through PUBLIC (role
// "public" means the PUBLIC pseudo-role itself). A privilege on some
// columns counts for SELECT, INSERT and UPDATE.
func privileges(ctx context.Context, tx pgx.Tx, role string, rel uint32) ([]string, error) {
	var sel, ins, upd, del bool
	err := tx.QueryRow(ctx, `
select pg_catalog.has_any_column_privilege($1, $2::pg_catalog.oid, 'SELECT'),
       pg_catalog.has_any_column_privilege($1, $2::pg_catalog.oid, 'INSERT'),
       pg_catalog.has_any_column_privilege($1, $2::pg_catalog.oid, 'UPDATE'),
       pg_catalog.has_table_privilege($1, $2::pg_catalog.oid, 'DELETE')`, role, rel).Scan(&sel, &ins, &upd, &del)
	if err != nil {
		return nil, fmt.Errorf("privileges of %s: %w", role, err)
	}
	var out []string
	for _, p := range []struct {
		name string
		has  bool
	}{{"select", sel}, {"insert", ins}, {"update", upd}, {"delete", del}} {
		if p.has {
			out = append(out, p.name)
		}
	}
	return out, nil
}

// commaAnd joins words as "a, b and c".
func commaAnd(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// quoteIdent quotes a role name for a remediation when it needs quoting
// ("public" stays bare: it is the PUBLIC pseudo-role in GRANT and REVOKE).
func quoteIdent(name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
