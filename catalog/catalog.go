package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// Levels of a finding: an error breaks the API or its protection (iamc
// check exits 1); a warning is what will hurt at scale or may leak.
const (
	LevelError   = "error"
	LevelWarning = "warning"
)

// Finding is one problem the catalog check found, at the .iam position
// that it concerns.
type Finding struct {
	Pos   lang.Pos
	Code  string // the stable diagnostic code (IAM300 ..., or the language's for .iam problems)
	Level string // LevelError or LevelWarning
	Msg   string
	Hint  string
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s:%d:%d: %s: %s", f.Pos.Filename, f.Pos.Line, f.Pos.Column, f.Level, f.Msg)
	if f.Pos.Line == 0 { // a default, or a table no .iam file declares
		s = fmt.Sprintf("%s: %s: %s", f.Pos.Filename, f.Level, f.Msg)
	}
	if f.Hint != "" {
		s += "\n  hint: " + f.Hint
	}
	return s
}

// Querier is what the catalog check needs from a connection: *pgx.Conn
// and pgx.Tx both qualify. It only reads.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DefaultAuthenticator is the role PostgREST logs in as in the usual
// set-up (policies/roles.sql).
const DefaultAuthenticator = "authenticator"

// CatalogOptions says what the catalog check cannot read from the .iam
// files.
type CatalogOptions struct {
	// Dir is the policy directory. Findings that no .iam line declares
	// (default roles, tables without a resource) are reported at it.
	Dir string
	// Authenticator is the login role PostgREST connects as (db-uri); it
	// must be able to become the runtime roles. "" skips its checks.
	Authenticator string
	// Schemas are the schemas PostgREST exposes (db-schemas). Empty means
	// the schemas of the resources and the groups API schema.
	Schemas []string
}

// SchemaError says that a schema named in CatalogOptions.Schemas does not
// exist: a mistake in what was asked, not a finding.
type SchemaError struct{ Schemas []string }

func (e *SchemaError) Error() string {
	return fmt.Sprintf("schema %s (--schemas) does not exist", strings.Join(e.Schemas, ", "))
}

// CheckCatalog compares a model with a live database and reports, at the
// .iam positions concerned:
//
// errors (the API or its protection is broken): a declared role, or the
// authenticator, does not exist; the authenticator cannot become the
// runtime roles; the authenticated or anonymous role is a superuser or has
// BYPASSRLS (every request skips row-level security); the groups API schema does not exist or the owner role cannot create in it;
// a resource's table does not exist, is not a table, or is not owned by
// the owner role; an owner or group column is missing or of the wrong type.
//
// warnings (what will hurt at scale, or may leak): a resource's table has
// row-level security off, no primary key, no index leading with a column
// the policies look rows up by, a group column without its foreign key to
// iam.groups, or triggers or policies iamc did not write; the
// authenticator is a superuser or has BYPASSRLS; a runtime role is, or can
// become, the owner role; a table of an exposed schema has no resource.
//
// Several of the warnings (row-level security, indexes, foreign keys) are
// expected before the first `iamc build` is applied; their hints say so.
func CheckCatalog(ctx context.Context, db Querier, m *lang.Model, opts CatalogOptions) ([]Finding, error) {
	c := &catalogCheck{ctx: ctx, db: db, m: m, opts: opts}
	if err := db.QueryRow(ctx, "select pg_catalog.current_setting('server_version_num')::int").Scan(&c.version); err != nil {
		return nil, fmt.Errorf("reading the server version: %w", err)
	}
	steps := []func() error{c.checkRoles, c.checkGroupsSchema}
	for _, r := range m.Resources {
		steps = append(steps, func() error { return c.checkResource(r) })
	}
	steps = append(steps, c.checkExposed)
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	for i := range c.out {
		if c.out[i].Pos.Filename == "" {
			c.out[i].Pos.Filename = opts.Dir
		}
	}
	sortFindings(c.out)
	return c.out, nil
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool { return lang.PosLess(fs[i].Pos, fs[j].Pos) })
}

// catalogCheck is one run of CheckCatalog.
type catalogCheck struct {
	ctx     context.Context
	db      Querier
	m       *lang.Model
	opts    CatalogOptions
	version int // server_version_num
	out     []Finding
}

func (c *catalogCheck) add(pos lang.Pos, level, hint, format string, args ...any) {
	c.out = append(c.out, Finding{Pos: pos, Code: codeOf[format], Level: level, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// tableFacts is what the checks need to know about one relation.
type tableFacts struct {
	OID   uint32
	Kind  string // relkind
	Owner string
	RLS   bool
	HasPK bool
	Root  string // the partitioned table it is a partition of (its root), "" for none
}

func (c *catalogCheck) table(schema, name string) (*tableFacts, error) {
	var t tableFacts
	err := c.db.QueryRow(c.ctx, `
select c.oid, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner), c.relrowsecurity,
       exists (select from pg_catalog.pg_constraint k where k.conrelid = c.oid and k.contype = 'p'),
       case when c.relispartition then (select pg_catalog.format('%I.%I', rn.nspname, r.relname) from pg_catalog.pg_class r
            join pg_catalog.pg_namespace rn on rn.oid = r.relnamespace where r.oid = pg_catalog.pg_partition_root(c.oid)) else '' end
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2`, schema, name).Scan(&t.OID, &t.Kind, &t.Owner, &t.RLS, &t.HasPK, &t.Root)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up table %s.%s: %w", schema, name, err)
	}
	return &t, nil
}

func (c *catalogCheck) checkResource(r *lang.ResourceModel) error {
	m, table := c.m, compiler.Qualify(r.Schema, r.Table)
	t, err := c.table(r.Schema, r.Table)
	if err != nil {
		return err
	}
	if t == nil {
		c.add(r.Pos, LevelError, "create the table before applying policies, or fix the resource name",
			"table %s does not exist", r.QualifiedName())
		return nil
	}
	isTable := t.Kind == "r" || t.Kind == "p"
	if !isTable {
		hint := "protect the underlying table; views should be security_invoker"
		if c.version < 150000 {
			// No security_invoker before PostgreSQL 15: a view always reads
			// its tables with its owner's rights.
			hint = "protect the underlying table; views read it as their owner (security_invoker views need PostgreSQL 15)"
		}
		c.add(r.Pos, LevelError, hint,
			"%s is not a table (relkind %s): row-level security applies to tables only", r.QualifiedName(), t.Kind)
	}
	if t.Root != "" {
		c.add(r.Pos, LevelError, "declare "+t.Root+" as the resource instead: its policies apply to the rows of every partition read or written through it, and iamc locks its partitions down",
			"%s is a partition of %s: requests through %s never meet the policies of a partition, and iamc locks every partition of a resource down", r.QualifiedName(), t.Root, t.Root)
	}
	if t.Owner != m.Roles.Owner {
		c.add(r.Pos, LevelError, fmt.Sprintf("alter table %s owner to %s;", table, compiler.QuoteIdent(m.Roles.Owner)),
			"table %s is owned by %s, not by the owner role %s", r.QualifiedName(), t.Owner, m.Roles.Owner)
	}
	if isTable {
		if err := c.checkTable(r, t); err != nil {
			return err
		}
	}
	if t.Kind == "p" {
		if err := c.checkPartitions(r); err != nil {
			return err
		}
	}
	if r.PageKey != "" && isTable {
		if err := c.checkPageKey(r, t); err != nil {
			return err
		}
	}
	if r.Shares.Declared && isTable {
		if err := c.checkShareKey(r, t.OID); err != nil {
			return err
		}
	}
	// What the rules need of each column (compiler.Columns: every kind of
	// subject says what its conditions read).
	for _, need := range compiler.Columns(m, r) {
		ok, err := c.checkColumn(r, t.OID, need.Column, need.Pos, need.Type, need.TypeOK, need.TypeWhy, need.TypeHint)
		if err != nil {
			return err
		}
		if !ok || !isTable {
			continue
		}
		if need.Index {
			if err := c.checkIndex(r, t.OID, need); err != nil {
				return err
			}
		}
		if need.GroupForeignKey {
			if err := c.checkGroupForeignKey(r, t.OID); err != nil {
				return err
			}
		}
		if need.References != nil {
			if err := c.checkReference(r, t.OID, need); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkColumn reports a missing column, or one whose type ok refuses; it
// reports whether the column is fine.
func (c *catalogCheck) checkColumn(r *lang.ResourceModel, rel uint32, column string, pos lang.Pos,
	wantType string, ok func(string) bool, why, hint string) (bool, error) {
	var colType string
	err := c.db.QueryRow(c.ctx, `
select pg_catalog.format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_attribute a
where a.attrelid = $1 and a.attname = $2 and a.attnum > 0 and not a.attisdropped`, rel, column).Scan(&colType)
	if errors.Is(err, pgx.ErrNoRows) {
		fix := fmt.Sprintf("alter table %s add column %s %s;", compiler.Qualify(r.Schema, r.Table), compiler.QuoteIdent(column), wantType)
		if wantType == "" {
			// A column a rule lists (column rules): any type will do, so
			// the fix is more likely a typo.
			var names string
			if err := c.db.QueryRow(c.ctx, `
select coalesce(string_agg(pg_catalog.quote_ident(a.attname), ', ' order by a.attnum), '')
from pg_catalog.pg_attribute a
where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped`, rel).Scan(&names); err != nil {
				return false, fmt.Errorf("listing the columns of %s: %w", r.QualifiedName(), err)
			}
			fix = fmt.Sprintf("name a column of %s: %s", compiler.Qualify(r.Schema, r.Table), names)
		}
		c.add(pos, LevelError, fix, "column %s does not exist in %s", column, r.QualifiedName())
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up column %s.%s: %w", r.QualifiedName(), column, err)
	}
	if ok != nil && !ok(colType) {
		c.add(pos, LevelError, hint, "column %s.%s is %s, but %s", r.QualifiedName(), column, colType, why)
		return false, nil
	}
	return true, nil
}
