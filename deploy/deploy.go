// Package deploy plans and applies an iamc build on a live database, the
// way Terraform plans and applies: `plan` says what would change, reading
// the catalog rather than trusting a local file, and `apply` makes exactly
// those changes in one transaction.
//
// The technique: snapshot the catalog state of every object iamc manages
// (policies with PostgreSQL's own rendering of their expressions, function
// and view definitions, triggers, indexes, foreign keys, row level
// security flags, grants, the runtime version and settings); run the
// build's statements in a transaction; snapshot again. The second snapshot
// is the desired state, normalised by PostgreSQL itself. The difference is
// the plan. plan always rolls the transaction back; apply commits it when
// there is a difference, and records what it installed in iam.applied. The
// next plan compares the catalog with that record too, to report drift:
// objects changed outside iamc since the last apply.
//
// It knows SQL and pgx, never the command line.
package deploy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/stdlib"
)

// Default lock timeouts: apply waits a little for a lock on a busy table;
// plan, which only looks, waits less.
const (
	DefaultLockTimeout     = 5 * time.Second
	DefaultPlanLockTimeout = 2 * time.Second
)

// lockKey is the advisory lock every build script and every apply takes.
const lockKey = "select pg_advisory_xact_lock(hashtext('iamc'))"

// Input is a build and where it came from.
type Input struct {
	Output      *compiler.Output
	Label       string // how the policy directory is named in messages
	IamcVersion string // recorded in iam.applied
}

// Options tune plan and apply.
type Options struct {
	// LockTimeout bounds every wait for a lock (lock_timeout): a table in
	// use by a long transaction makes plan or apply fail, not queue (and
	// make every query behind it queue too).
	LockTimeout time.Duration
	// ConcurrentIndexes (apply only): build missing indexes with CREATE
	// INDEX CONCURRENTLY, before and outside the transaction.
	ConcurrentIndexes bool
}

// Plan is what apply would change, and what changed outside iamc.
type Plan struct {
	Label    string
	Database string
	Changes  []Change
	Drift    []Drift    // changed outside iamc and left as it is by apply
	Warnings []string   // what apply leaves that weakens the files' rules
	Removed  []Resource // tables that are no longer resources
	// GroupRoles says what the files do to the installed group roles and
	// the memberships holding them (the order before and after, then one
	// line each); nil when they leave them as they are.
	GroupRoles []string
	Record     *Record // the last apply, nil when none
	// DriftKnown: the record can tell drift from changes of the files.
	DriftKnown bool
	// RuntimeInstalled is the runtime version found, 0 for none.
	RuntimeInstalled int
}

// HasChanges reports whether apply would change the database.
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 }

// Result is what apply did.
type Result struct {
	*Plan
	Applied    bool     // the transaction committed changes
	RecordID   int64    // the row written to iam.applied, 0 for none
	Concurrent []string // indexes built concurrently before the transaction
}

// PlanChanges computes the plan in a transaction that is always rolled
// back.
func PlanChanges(ctx context.Context, conn *pgx.Conn, in Input, opts Options) (*Plan, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultPlanLockTimeout
	}
	r, err := newRun(conn, in, opts, false)
	if err != nil {
		return nil, err
	}
	defer r.rollback(ctx)
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	return r.plan, nil
}

// Apply computes the plan in a transaction and commits it when it changes
// something. With nothing to change it commits nothing. The Result is never
// nil: after an error it says which indexes were built concurrently.
func Apply(ctx context.Context, conn *pgx.Conn, in Input, opts Options) (*Result, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	res := &Result{}
	r, err := newRun(conn, in, opts, true)
	if err != nil {
		return res, err
	}
	if opts.ConcurrentIndexes {
		built, unlock, err := r.buildConcurrently(ctx)
		if unlock != nil {
			defer unlock()
		}
		res.Concurrent = built
		if err != nil {
			return res, err
		}
	}
	defer r.rollback(ctx)
	if err := r.prepare(ctx); err != nil {
		return res, err
	}
	res.Plan = r.plan
	if !r.plan.HasChanges() && r.plan.DriftKnown && len(res.Concurrent) == 0 && sameResources(r.rec.Resources, r.resources()) {
		return res, nil // nothing to do: the transaction is rolled back
	}
	sourceHash, err := hashSources(in.Output.Sources)
	if err != nil {
		return res, err
	}
	rec := &Record{
		IamcVersion:    in.IamcVersion,
		RuntimeVersion: stdlib.Version,
		ServerVersion:  r.serverVersion,
		SourceHash:     sourceHash,
		ScriptHash:     hashText(in.Output.Script()),
		Sources:        in.Output.Sources,
		Resources:      r.resources(),
		scope: recordedScope{
			Functions: stored(r.a.functions),
			Views:     stored(r.a.views),
			Indexes:   stored(r.indexNames()),
			Schemas:   r.a.schemas,
			Tables:    stored(r.a.tables),
		},
	}
	if rec.Sources == nil {
		rec.Sources = []string{}
	}
	if res.RecordID, err = writeRecord(ctx, r.tx, rec, r.recordable()); err != nil {
		return res, err
	}
	if err := auditApply(ctx, r.tx, res.RecordID, rec, r.plan); err != nil {
		return res, err
	}
	if err := r.tx.Commit(ctx); err != nil {
		return res, r.explain(err, "committing")
	}
	res.Applied = r.plan.HasChanges()
	return res, nil
}

func sameResources(a, b []Resource) bool {
	return slices.Equal(a, b)
}

// run is one plan or apply.
type run struct {
	conn  *pgx.Conn
	tx    pgx.Tx
	in    Input
	model *lang.Model
	opts  Options
	apply bool
	a     *analysis

	serverVersion int
	searchPath    string
	rec           *Record
	tables        []*managedTable
	gone          []goneFunction // page functions the build no longer creates
	plan          *Plan
	desired       Snapshot
}

// managedTable is a table iamc manages now or managed until now.
type managedTable struct {
	Resource
	oid         uint32
	model       *lang.ResourceModel // nil: no longer in the files
	partitioned bool
}

func newRun(conn *pgx.Conn, in Input, opts Options, apply bool) (*run, error) {
	a, err := analyze(in.Output)
	if err != nil {
		return nil, err
	}
	return &run{conn: conn, in: in, model: in.Output.Model, opts: opts, apply: apply, a: a}, nil
}

func (r *run) rollback(ctx context.Context) {
	if r.tx != nil {
		_ = r.tx.Rollback(context.WithoutCancel(ctx))
	}
}

// prepare runs everything up to the decision: lock, snapshot, the build's
// statements, snapshot, diff.
func (r *run) prepare(ctx context.Context) error {
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("starting a transaction: %w", err)
	}
	r.tx = tx
	if _, err := tx.Exec(ctx, "select set_config('lock_timeout', $1, true)", fmt.Sprintf("%dms", r.opts.LockTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("setting lock_timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, lockKey); err != nil {
		return r.explain(err, "waiting for the iamc advisory lock (another iamc apply or build script is running)")
	}
	var database string
	if err := tx.QueryRow(ctx, `select current_setting('server_version_num')::int, current_database(), current_setting('search_path')`).
		Scan(&r.serverVersion, &database, &r.searchPath); err != nil {
		return fmt.Errorf("reading the server settings: %w", err)
	}
	if err := r.pinSearchPath(ctx, true); err != nil {
		return err
	}
	installed, err := installedRuntime(ctx, tx)
	if err != nil {
		return err
	}
	if installed > stdlib.Version {
		return &RuntimeTooNewError{Installed: installed, Supported: stdlib.Version}
	}
	if r.rec, err = loadRecord(ctx, tx); err != nil {
		return err
	}
	if err := r.resolveTables(ctx); err != nil {
		return err
	}
	if r.gone, err = r.goneFunctions(ctx); err != nil {
		return err
	}
	sc := r.scope()
	cur, err := takeSnapshot(ctx, tx, sc)
	if err != nil {
		return err
	}
	// The objects the last apply recorded, as they are now: drift.
	var curRec Snapshot
	if r.rec.usable(r.serverVersion) {
		recScope, err := r.recordedScope(ctx)
		if err != nil {
			return err
		}
		if curRec, err = takeSnapshot(ctx, tx, recScope); err != nil {
			return err
		}
	}
	groupRoles, manager, err := r.readGroupRoles(ctx)
	if err != nil {
		return err
	}
	steps, pending, err := r.steps(ctx)
	if err != nil {
		return err
	}
	if err := r.pinSearchPath(ctx, false); err != nil {
		return err
	}
	for _, s := range steps {
		if _, err := tx.Exec(ctx, s.sql); err != nil {
			return r.explain(err, "running "+firstLine(s.sql)+" ("+s.section+")")
		}
	}
	if err := r.pinSearchPath(ctx, true); err != nil {
		return err
	}
	des, err := takeSnapshot(ctx, tx, sc)
	if err != nil {
		return err
	}
	// Plan leaves out index builds on existing tables (a large table would
	// take long, and block its writes): their outcome is known.
	for _, p := range pending {
		des[p.Key()] = p
	}
	r.desired = des

	p := &Plan{Label: r.in.Label, Database: database, Record: r.rec, RuntimeInstalled: installed}
	var rec Snapshot
	if curRec != nil {
		p.DriftKnown = true
		rec = r.rec.Snapshot
	}
	roles := []string{"public", r.model.Roles.Authenticated, r.model.Roles.Anonymous}
	p.Changes, p.Drift = diff(cur, des, rec, curRec, roles)
	for _, t := range r.tables {
		if t.model == nil {
			p.Removed = append(p.Removed, t.Resource)
		}
	}
	p.Warnings = r.warnings(des, p.Drift)
	w, err := r.partitionWarning(ctx)
	if err != nil {
		return err
	}
	p.Warnings = append(p.Warnings, w...)
	if r.model.Groups.Declared {
		p.GroupRoles = groupRoleNotes(groupRoles, manager, r.model.Groups)
	}
	r.plan = p
	return nil
}

// pinSearchPath makes catalog output schema-qualified (on), or gives the
// build's statements the session's search_path (off).
func (r *run) pinSearchPath(ctx context.Context, on bool) error {
	path := r.searchPath
	if on {
		path = "pg_catalog, pg_temp"
	}
	if _, err := r.tx.Exec(ctx, "select set_config('search_path', $1, true)", path); err != nil {
		return fmt.Errorf("setting search_path: %w", err)
	}
	return nil
}

func installedRuntime(ctx context.Context, q pgx.Tx) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `select to_regclass('iam.runtime') is not null`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("reading the runtime version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v *int
	if err := q.QueryRow(ctx, `select max(version) from iam.runtime`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the runtime version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// resolveTables finds the managed tables: the resources of the files (each
// must exist), and the tables iamc managed until now: those the last apply
// recorded and those that carry an iamc policy, the row guard or a group
// foreign key (partitions left out: they carry their table's; a partition
// detached from a resource is a table of its own, and its copies are
// cleaned up).
func (r *run) resolveTables(ctx context.Context) error {
	var s, n []string
	for _, res := range r.model.Resources {
		s, n = append(s, res.Schema), append(n, res.Table)
	}
	rows, err := r.tx.Query(ctx, `select t.i, c.oid, format('%I.%I', t.s, t.n), coalesce(c.relkind = 'p', false)
	    from unnest($1::text[], $2::text[]) with ordinality t(s, n, i)
	    left join pg_namespace ns on ns.nspname = t.s
	    left join pg_class c on c.relnamespace = ns.oid and c.relname = t.n and c.relkind in ('r', 'p')
	    order by t.i`, s, n)
	if err != nil {
		return fmt.Errorf("looking up the resources' tables: %w", err)
	}
	var missing []string
	inFiles := map[uint32]bool{}
	for rows.Next() {
		var i int
		var oid *uint32
		var name string
		var partitioned bool
		if err := rows.Scan(&i, &oid, &name, &partitioned); err != nil {
			rows.Close()
			return fmt.Errorf("looking up the resources' tables: %w", err)
		}
		res := r.model.Resources[i-1]
		if oid == nil {
			missing = append(missing, fmt.Sprintf("%s (%s:%d)", name, res.Pos.Filename, res.Pos.Line))
			continue
		}
		inFiles[*oid] = true
		r.tables = append(r.tables, &managedTable{Resource: Resource{Schema: res.Schema, Table: res.Table, Name: name}, oid: *oid, model: res, partitioned: partitioned})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("looking up the resources' tables: %w", err)
	}
	if len(missing) > 0 {
		return &MissingTablesError{Tables: missing}
	}

	var rs, rn []string
	if r.rec != nil {
		for _, t := range r.rec.Resources {
			rs, rn = append(rs, t.Schema), append(rn, t.Table)
		}
	}
	rows, err = r.tx.Query(ctx, `select n.nspname, c.relname, c.oid, format('%I.%I', n.nspname, c.relname)
	    from pg_class c join pg_namespace n on n.oid = c.relnamespace
	    where c.relkind in ('r', 'p') and n.nspname <> 'iam'
	      and ((n.nspname, c.relname) in (select * from unnest($1::text[], $2::text[]))
	        or not c.relispartition and ( -- a partition carries the clones of its table's trigger and foreign key
	           exists (select from pg_policy p where p.polrelid = c.oid and p.polname = any($3::text[]))
	           or exists (select from pg_trigger t where t.tgrelid = c.oid and t.tgname = $4 and not t.tgisinternal)
	           or exists (select from pg_constraint k where k.conrelid = c.oid and k.contype = 'f' and k.confrelid = to_regclass('iam.groups'))))
	    order by 4`, rs, rn, compiler.PolicyNames(), compiler.GuardTrigger)
	if err != nil {
		return fmt.Errorf("looking for tables iamc managed: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t := &managedTable{}
		if err := rows.Scan(&t.Schema, &t.Table, &t.oid, &t.Name); err != nil {
			return fmt.Errorf("looking for tables iamc managed: %w", err)
		}
		if !inFiles[t.oid] {
			r.tables = append(r.tables, t)
		}
	}
	return rows.Err()
}

// resources lists the tables of the files, for the record.
func (r *run) resources() []Resource {
	out := []Resource{}
	for _, t := range r.tables {
		if t.model != nil {
			out = append(out, t.Resource)
		}
	}
	return out
}

// recordable is the desired state as the record keeps it: the objects of
// the runtime, the group API and the resources (not those left on tables
// that are no longer resources).
func (r *run) recordable() Snapshot {
	resources := map[string]bool{}
	for _, t := range r.resources() {
		resources[t.Name] = true
	}
	out := Snapshot{}
	for _, o := range r.desired {
		if o.Kind == "table" {
			resources[o.Table] = true // a share table, and what is on it
		}
	}
	for k, o := range r.desired {
		if o.Table == "" || resources[o.Table] {
			out[k] = o
		}
	}
	return out
}

// recordedScope is the scope the last apply's snapshot was taken with:
// its resources (those that still exist), functions, views, indexes and
// schemas.
func (r *run) recordedScope(ctx context.Context) (*scope, error) {
	sc := &scope{
		tables:    []uint32{},
		functions: unstored(r.rec.scope.Functions),
		views:     unstored(r.rec.scope.Views),
		indexes:   unstored(r.rec.scope.Indexes),
		schemas:   r.rec.scope.Schemas,
		created:   unstored(r.rec.scope.Tables),
	}
	var s, n []string
	for _, t := range r.rec.Resources {
		s, n = append(s, t.Schema), append(n, t.Table)
	}
	rows, err := r.tx.Query(ctx, `select c.oid from unnest($1::text[], $2::text[]) t(s, n)
	    join pg_namespace ns on ns.nspname = t.s
	    join pg_class c on c.relnamespace = ns.oid and c.relname = t.n and c.relkind in ('r', 'p')`, s, n)
	if err != nil {
		return nil, fmt.Errorf("looking up the recorded resources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		if err := rows.Scan(&oid); err != nil {
			return nil, fmt.Errorf("looking up the recorded resources: %w", err)
		}
		sc.tables = append(sc.tables, oid)
	}
	return sc, rows.Err()
}

// indexNames: the indexes the build creates.
func (r *run) indexNames() []qualifiedName {
	out := []qualifiedName{}
	for _, ix := range r.a.indexes {
		out = append(out, qualifiedName{ix.schema, ix.name})
	}
	return out
}

func (r *run) tableOf(schema, table string) *managedTable {
	for _, t := range r.tables {
		if t.Schema == schema && t.Table == table {
			return t
		}
	}
	return nil
}

func (r *run) scope() *scope {
	sc := &scope{functions: r.a.functions, views: r.a.views, schemas: r.a.schemas, tables: []uint32{}, created: r.a.tables}
	for _, t := range r.tables {
		sc.tables = append(sc.tables, t.oid)
	}
	seen := map[qualifiedName]bool{}
	for _, ix := range r.a.indexes {
		q := qualifiedName{ix.schema, ix.name}
		seen[q] = true
		sc.indexes = append(sc.indexes, q)
	}
	if r.rec != nil {
		for _, q := range unstored(r.rec.scope.Indexes) {
			if !seen[q] {
				seen[q] = true
				sc.indexes = append(sc.indexes, q)
			}
		}
	}
	// Share tables the last apply created and the build no longer does
	// are read too: the plan shows what apply takes off them.
	if r.rec != nil {
		made := map[qualifiedName]bool{}
		for _, q := range sc.created {
			made[q] = true
		}
		for _, q := range unstored(r.rec.scope.Tables) {
			if !made[q] {
				sc.created = append(slices.Clone(sc.created), q)
			}
		}
	}
	// Page functions the build no longer creates are read too, so that the
	// plan shows their drop.
	if len(r.gone) > 0 {
		sc.functions = slices.Clone(sc.functions)
		for _, g := range r.gone {
			sc.functions = append(sc.functions, g.name)
		}
	}
	return sc
}

// warnings: policies on resources that iamc did not write. PostgreSQL ORs
// permissive policies, so one can widen what the files allow.
func (r *run) warnings(des Snapshot, drift []Drift) []string {
	reported := map[string]bool{}
	for _, d := range drift {
		reported[d.Object.Key()] = true
	}
	resources := map[string]bool{}
	for _, t := range r.tables {
		if t.model != nil {
			resources[t.Name] = true
		}
	}
	var out []string
	for _, o := range des.Sorted() {
		if o.Kind != "policy" || isIamcPolicy(o) || !resources[o.Table] || reported[o.Key()] {
			continue
		}
		effect := "PostgreSQL ORs it with iamc's policies, so it can widen what the files allow"
		if o.Attrs["type"] == "restrictive" {
			effect = "it is restrictive: it narrows what iamc's policies allow"
		}
		out = append(out, fmt.Sprintf("policy %s is not iamc's (%s for %s): %s; apply leaves it", o.Name, o.Attrs["command"], o.Attrs["roles"], effect))
	}
	return out
}
