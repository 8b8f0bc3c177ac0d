// Package explain answers "may this caller do that, and why" for one
// resource (iamc explain --as), and draws what the files declare (iamc
// explain --matrix, --graph).
//
// The answers come from PostgreSQL, never from re-implementing the rules
// in Go: every verdict is the real statement run as the caller (role and
// claims set as PostgREST sets them, in a transaction that is always
// rolled back), and every "why" is a policy arm the compiler writes
// (compiler.PolicyArms) evaluated as the caller, on the row's values, with
// the same runtime helpers the policies call. The database's own policies
// (pg_policies) are evaluated the same way, so that an applied build that
// differs from the files shows as a disagreement instead of a wrong answer.
package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/lang"
)

// Caller is who the question is asked as.
type Caller struct {
	// Anonymous is a request without a token: it runs as the anonymous
	// role with no claims but the role.
	Anonymous bool
	// Claims are the verified JWT claims of a signed-in caller, the
	// identity claim among them. The role claim defaults to the
	// authenticated role.
	Claims map[string]any
}

// NoGroup is the Question.Group that means "in no group".
const NoGroup = "none"

// Question is what explain is asked.
type Question struct {
	Resource *lang.ResourceModel
	Caller   Caller
	// Row is the primary key value of one row (a one-column key), or ""
	// for the whole table: what the caller sees, counted per arm.
	Row string
	// Group is a group id, or NoGroup: the group a new row is put into
	// (insert; by default the row's own group, or none), and, with Row,
	// where the row is moved (an extra update). "" when not given.
	Group string
}

// Report is the answer: the caller, the row, and one Answer per command
// (update may have two more: a move and an owner change).
type Report struct {
	Resource string `json:"resource"`
	Role     string `json:"role"` // the database role the requests run as
	Caller   Facts  `json:"caller"`
	Row      *Row   `json:"row,omitempty"`
	// Visible is, without a row, how many rows the caller sees.
	Visible  *int64   `json:"visible,omitempty"`
	Answers  []Answer `json:"answers"`
	Warnings []string `json:"warnings,omitempty"`
}

// Facts are what the runtime says about the caller, asked as the caller.
type Facts struct {
	Anonymous bool     `json:"anonymous"`
	ID        string   `json:"id,omitempty"`       // the user id the policies compare
	IDError   *Failure `json:"id_error,omitempty"` // why there is none
	// Admin: the token carries the groups block's admin realm role.
	Admin *bool `json:"admin,omitempty"`
	// GroupRole is the caller's role in the row's group ("" for none).
	GroupRole string `json:"group_role,omitempty"`
	// TargetRole is the caller's role in Question.Group.
	TargetRole string `json:"target_group_role,omitempty"`
}

// Row is the row asked about, as the superuser reads it.
type Row struct {
	Key     string  `json:"key"` // id=2
	Found   bool    `json:"found"`
	Owner   *string `json:"owner,omitempty"`
	Group   *string `json:"group,omitempty"`
	Visible bool    `json:"visible"` // the caller can read it
}

// Answer is one command (or one change of owner or group), allowed or not,
// and why.
type Answer struct {
	Command    string `json:"command"` // select, insert, update, delete
	Permission string `json:"permission"`
	// Change is "" for the command itself, "group" for a move to
	// Question.Group, "owner" for a change of owner.
	Change string `json:"change,omitempty"`
	Probe  string `json:"probe"` // what was run, in words
	// Allowed is the database's verdict: the statement reached the row
	// (or, without a row, reaches some row) without an error.
	Allowed   bool     `json:"allowed"`
	Privilege bool     `json:"privilege"`           // the role holds the table privilege
	Rows      *int64   `json:"rows,omitempty"`      // rows reached
	Error     *Failure `json:"error,omitempty"`     // the statement's error
	Policy    *bool    `json:"policy,omitempty"`    // the applied policies' condition on the row
	Arms      []Arm    `json:"arms"`                // the files' arms
	Why       string   `json:"why"`                 // one line
	Disagrees string   `json:"disagrees,omitempty"` // the files and the database differ
}

// Arm is one arm of the files' policy for the command, evaluated.
type Arm struct {
	Subject   string    `json:"subject"` // owner, group member, everyone, admin role 'x'
	Rules     []RuleRef `json:"rules"`
	Condition string    `json:"condition"`
	Holds     *bool     `json:"holds,omitempty"` // with a row
	Rows      *int64    `json:"rows,omitempty"`  // without: rows it grants of those visible
	Why       string    `json:"why"`
}

// RuleRef is a rule as written and where.
type RuleRef struct {
	Rule string `json:"rule"`
	At   string `json:"at"`
}

// Failure is an error PostgreSQL answered.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
}

func (f *Failure) String() string {
	s := f.Message + " (SQLSTATE " + f.Code + ")"
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// Querier is a connection (or pool) as a role that bypasses row-level
// security (a superuser, or BYPASSRLS with membership in the runtime
// roles): explain reads the row past the policies to say why the caller
// does not see it, and switches to the caller's role as PostgREST does.
type Querier interface {
	pgrest.Beginner
}

// errRollback ends a probe's transaction: every probe is rolled back.
var errRollback = errors.New("rollback")

// Ask answers q against the database db, where the build of m is applied.
func Ask(ctx context.Context, db Querier, m *lang.Model, q Question) (*Report, error) {
	a := &asker{ctx: ctx, db: db, m: m, q: q, r: q.Resource, table: compiler.Qualify(q.Resource.Schema, q.Resource.Table)}
	a.role = m.Roles.Authenticated
	if q.Caller.Anonymous {
		a.role = m.Roles.Anonymous
	}
	a.rep = &Report{Resource: q.Resource.QualifiedName(), Role: a.role, Caller: Facts{Anonymous: q.Caller.Anonymous}}
	if err := a.catalog(); err != nil {
		return nil, err
	}
	a.facts()
	if q.Row != "" {
		if err := a.row(); err != nil {
			return nil, err
		}
	} else if err := a.whole(); err != nil {
		return nil, err
	}
	return a.rep, nil
}

type asker struct {
	ctx   context.Context
	db    Querier
	m     *lang.Model
	q     Question
	r     *lang.ResourceModel
	table string // quoted schema.table
	role  string
	rep   *Report

	pk, pkType string               // the one-column primary key
	columns    []column             // the table's columns
	policies   map[string][2]string // command -> the applied USING and CHECK conditions for role
	privileges map[string]bool      // command -> the role holds it
}

type column struct {
	name       string
	generated  bool // generated, or an identity column
	hasDefault bool
}

// su runs fn in a read-only transaction as the connection's own role.
func (a *asker) su(fn func(pgx.Tx) error) error {
	tx, err := a.db.BeginTx(a.ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(a.ctx)) }()
	return fn(tx)
}

// caller runs fn as the caller, as PostgREST would run a request with
// method, and rolls back whatever it did. The error is fn's (a database
// error is the answer, not a failure of explain).
func (a *asker) caller(method string, fn func(pgx.Tx) error) error {
	req := pgrest.Request{Method: method, Path: "/" + a.r.Table, Role: a.role}
	if !a.q.Caller.Anonymous {
		claims := map[string]any{}
		for k, v := range a.q.Caller.Claims {
			claims[k] = v
		}
		if _, ok := claims["role"]; !ok {
			claims["role"] = a.role
		}
		req.Claims = claims
	}
	err := pgrest.Do(a.ctx, a.db, req, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

// failure is a database error as an answer, or nil for any other error.
func failure(err error) *Failure {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &Failure{Code: pgErr.Code, Message: pgErr.Message, Detail: pgErr.Detail}
	}
	return nil
}

// catalog reads, as the connection's role: that it bypasses row-level
// security, the table's key and columns, the role's privileges and the
// applied policies.
func (a *asker) catalog() error {
	return a.su(func(tx pgx.Tx) error {
		var bypass bool
		if err := tx.QueryRow(a.ctx, `select rolsuper or rolbypassrls from pg_catalog.pg_roles where rolname = current_user`).Scan(&bypass); err != nil {
			return fmt.Errorf("reading the connection's role: %w", err)
		}
		if !bypass {
			return errors.New("explain --as reads the row past row-level security to say why the caller does not see it: connect as a superuser (or a BYPASSRLS role that may SET ROLE to the runtime roles)")
		}
		var oid uint32
		var rls bool
		err := tx.QueryRow(a.ctx, `select c.oid, c.relrowsecurity from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2`, a.r.Schema, a.r.Table).Scan(&oid, &rls)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("table %s does not exist in this database", a.r.QualifiedName())
		}
		if err != nil {
			return fmt.Errorf("looking up %s: %w", a.r.QualifiedName(), err)
		}
		rows, err := tx.Query(a.ctx, `select a.attname, a.attgenerated <> '' or a.attidentity <> '', a.atthasdef
from pg_catalog.pg_attribute a where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum`, oid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c column
			if err := rows.Scan(&c.name, &c.generated, &c.hasDefault); err != nil {
				return err
			}
			a.columns = append(a.columns, c)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		err = tx.QueryRow(a.ctx, `select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_index i
join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
where i.indrelid = $1 and i.indisprimary and i.indnatts = 1`, oid).Scan(&a.pk, &a.pkType)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		a.privileges = map[string]bool{}
		for _, c := range compiler.Commands() {
			var has bool
			if err := tx.QueryRow(a.ctx, `select pg_catalog.has_table_privilege($1, $2::pg_catalog.oid, $3)`, a.role, oid, c.SQL).Scan(&has); err != nil {
				return fmt.Errorf("privileges of %s: %w", a.role, err)
			}
			a.privileges[c.SQL] = has
		}
		return a.readPolicies(tx, oid, rls)
	})
}

// readPolicies is the condition the applied policies put on each command
// for the role: the permissive ones or'ed, the restrictive ones and'ed
// (PostgreSQL's rule), as pg_policies prints them.
func (a *asker) readPolicies(tx pgx.Tx, oid uint32, rls bool) error {
	a.policies = map[string][2]string{}
	if !rls {
		for _, c := range compiler.Commands() {
			a.policies[c.SQL] = [2]string{"true", "true"}
		}
		return nil
	}
	rows, err := tx.Query(a.ctx, `
select lower(p.cmd), p.permissive = 'PERMISSIVE', coalesce(p.qual, ''), coalesce(p.with_check, '')
from pg_catalog.pg_policies p
where p.schemaname = $1 and p.tablename = $2
  and exists (select from unnest(p.roles) r
              where case when r = 'public' then true else pg_catalog.pg_has_role($3, r, 'MEMBER') end)
order by p.policyname`, a.r.Schema, a.r.Table, a.role)
	if err != nil {
		return fmt.Errorf("reading the policies of %s: %w", a.r.QualifiedName(), err)
	}
	type pol struct {
		cmd              string
		permissive       bool
		using, withCheck string
	}
	pols, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pol, error) {
		var p pol
		err := row.Scan(&p.cmd, &p.permissive, &p.using, &p.withCheck)
		return p, err
	})
	if err != nil {
		return err
	}
	for _, c := range compiler.Commands() {
		var cond [2][]string  // using, check; permissive
		var restr [2][]string // restrictive
		for _, p := range pols {
			if p.cmd != c.SQL && p.cmd != "all" {
				continue
			}
			check := p.withCheck
			if check == "" {
				check = p.using
			}
			for i, e := range []string{p.using, check} {
				if e == "" {
					continue
				}
				if p.permissive {
					cond[i] = append(cond[i], "("+e+")")
				} else {
					restr[i] = append(restr[i], "("+e+")")
				}
			}
		}
		var out [2]string
		for i := range out {
			out[i] = "false"
			if len(cond[i]) > 0 {
				out[i] = "(" + strings.Join(cond[i], " or ") + ")"
			}
			for _, r := range restr[i] {
				out[i] += " and " + r
			}
		}
		a.policies[c.SQL] = out
	}
	return nil
}

// policyFor is the applied condition a command puts on the rows it reads
// (select, update, delete) or writes (insert).
func (a *asker) policyFor(cmd string) string {
	p := a.policies[cmd]
	if cmd == "insert" {
		return p[1]
	}
	return p[0]
}

// facts asks the runtime, as the caller, who they are.
func (a *asker) facts() {
	if a.q.Caller.Anonymous {
		return
	}
	f := &a.rep.Caller
	var id *string
	err := a.caller("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(a.ctx, "select ("+compiler.CallerIDSQL(a.m)+")::text").Scan(&id)
	})
	switch {
	case err != nil:
		f.IDError = failure(err)
		if f.IDError == nil {
			f.IDError = &Failure{Message: err.Error()}
		}
	case id != nil:
		f.ID = *id
	}
	if role := a.m.Groups.AdminRole; role != "" {
		var has bool
		if err := a.caller("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(a.ctx, "select coalesce("+compiler.HasRealmRoleSQL(role)+", false)").Scan(&has)
		}); err == nil {
			f.Admin = &has
		}
	}
}

// groupRole is the caller's role in a group, as the runtime answers it
// (iam.group_role, which the row guard asks too); "" for none.
func (a *asker) groupRole(group string) string {
	if a.q.Caller.Anonymous || a.r.GroupColumn == "" || group == "" {
		return ""
	}
	var role *string
	if err := a.caller("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(a.ctx, "select iam.group_role($1::bigint)", group).Scan(&role)
	}); err != nil || role == nil {
		return ""
	}
	return *role
}

// armsOf is the files' arms of the caller's policy for a command.
func (a *asker) armsOf(perm lang.Perm) []compiler.Arm {
	return compiler.PolicyArms(a.m, a.r, a.q.Caller.Anonymous, perm, "")
}

func ruleRefs(arm compiler.Arm) []RuleRef {
	var out []RuleRef
	for _, r := range arm.Rules {
		perms := make([]string, len(r.Perms))
		for i, p := range r.Perms {
			perms[i] = string(p)
		}
		out = append(out, RuleRef{Rule: fmt.Sprintf("%s can %s", r.Subject, strings.Join(perms, ", ")), At: r.Pos.String()})
	}
	return out
}

func subjectOf(arm compiler.Arm, anonymous bool) string {
	switch arm.Kind {
	case "everyone":
		if anonymous {
			return "anonymous"
		}
		return "everyone"
	case "group":
		return "group " + string(arm.Role)
	case "admin":
		return "admin role"
	}
	return arm.Kind
}

// rowJSON is the row's values as JSON, decoded with numbers kept exact.
func decodeRow(text string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var row map[string]any
	err := dec.Decode(&row)
	return row, err
}

func jsonText(v any) *string {
	if v == nil {
		return nil
	}
	s := fmt.Sprint(v)
	return &s
}

func ptr[T any](v T) *T { return &v }
