package deploy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/stdlib"
)

// indexState is what the catalog holds under the name of a build's index.
type indexState struct {
	ix          *indexStmt
	display     string // schema.name as PostgreSQL quotes it
	exists      bool
	valid       bool
	definition  string
	tableExists bool
	partitioned bool // the table is partitioned
	differs     bool // exists with another definition than the build's
}

// needsBuild: the index is missing, invalid (a failed concurrent build) or
// defined differently; `create index if not exists` alone would skip the
// last two.
func (s indexState) needsBuild() bool { return !s.exists || !s.valid || s.differs }

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// indexStates reads the catalog state of every index of the build. It
// needs search_path pinned to pg_catalog (pg_get_indexdef qualifies names
// by it).
func indexStates(ctx context.Context, q querier, a *analysis) ([]indexState, error) {
	var s, n, t []string
	for _, ix := range a.indexes {
		s, n, t = append(s, ix.schema), append(n, ix.name), append(t, ix.table)
	}
	rows, err := q.Query(ctx, `select t.i, format('%I.%I', t.s, t.n), c.oid is not null, coalesce(x.indisvalid, false),
	        coalesce(pg_get_indexdef(c.oid), ''), to_regclass(format('%I.%I', t.s, t.tb)) is not null,
	        coalesce((select r.relkind = 'p' from pg_class r where r.oid = to_regclass(format('%I.%I', t.s, t.tb))), false)
	    from unnest($1::text[], $2::text[], $3::text[]) with ordinality t(s, n, tb, i)
	    left join pg_namespace ns on ns.nspname = t.s
	    left join pg_class c on c.relnamespace = ns.oid and c.relname = t.n and c.relkind = 'i'
	    left join pg_index x on x.indexrelid = c.oid
	    order by t.i`, s, n, t)
	if err != nil {
		return nil, fmt.Errorf("reading the indexes: %w", err)
	}
	defer rows.Close()
	var out []indexState
	for rows.Next() {
		var i int
		st := indexState{}
		if err := rows.Scan(&i, &st.display, &st.exists, &st.valid, &st.definition, &st.tableExists, &st.partitioned); err != nil {
			return nil, fmt.Errorf("reading the indexes: %w", err)
		}
		st.ix = a.indexes[i-1]
		if st.exists {
			normal, err := normalIndex(st.definition)
			if err != nil {
				return nil, err
			}
			st.differs = normal != st.ix.normal
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// steps lists the statements to run: the preamble, the cleanup of what the
// files no longer call for, and the build's sections. For plan it also
// returns the desired state of the indexes it does not build.
func (r *run) steps(ctx context.Context) ([]step, []Object, error) {
	states, err := indexStates(ctx, r.tx, r.a)
	if err != nil {
		return nil, nil, err
	}
	byIndex := map[*indexStmt]indexState{}
	for _, st := range states {
		byIndex[st.ix] = st
	}
	cleanup, err := r.cleanup(ctx)
	if err != nil {
		return nil, nil, err
	}

	var out []step
	var pending []Object
	preamble := true
	for _, s := range r.a.steps {
		if preamble && s.section != "preamble" {
			out = append(out, cleanup...)
			preamble = false
		}
		st, isIndex := byIndex[s.index]
		if s.index == nil || !isIndex || !st.needsBuild() {
			out = append(out, s)
			continue
		}
		tableName := ""
		if t := r.tableOf(s.index.schema, s.index.table); t != nil {
			tableName = t.Name
		}
		if !r.apply && st.tableExists {
			// Plan: building an index reads the whole table and blocks its
			// writes meanwhile. Its outcome is known without building it.
			def := s.index.sql
			if st.exists && !st.differs {
				def = st.definition
			} else if o, ok := r.rec.recorded("index " + st.display); ok {
				// As PostgreSQL printed it when the last apply built it.
				if n, err := normalIndex(o.Attrs["definition"]); err == nil && n == s.index.normal {
					def = o.Attrs["definition"]
				}
			}
			pending = append(pending, Object{Kind: "index", Table: tableName, Name: st.display,
				Attrs: map[string]string{"definition": def, "valid": "valid"}})
			continue
		}
		if st.exists {
			out = append(out, step{section: s.section, sql: "drop index if exists " + s.index.qualified() + ";"})
		}
		out = append(out, s)
	}
	if preamble {
		out = append(out, cleanup...)
	}
	for _, g := range r.gone {
		if g.late {
			out = append(out, step{section: "functions no longer in the files", sql: "drop function if exists " + g.signature + ";"})
		}
	}
	return out, pending, nil
}

// goneShareTables: a share table the last apply created that the build no
// longer creates (the files stopped sharing the resource, or it went)
// keeps its rows, its indexes and its forced row level security, and
// loses iamc's policies, the quota and audit triggers and the runtime roles'
// privileges: nobody but superusers and BYPASSRLS roles reads it, and the
// share functions it used can go.
func (r *run) goneShareTables(ctx context.Context) ([]step, error) {
	if r.rec == nil {
		return nil, nil
	}
	built := map[qualifiedName]bool{}
	for _, q := range r.a.tables {
		built[q] = true
	}
	var s, n []string
	for _, q := range unstored(r.rec.scope.Tables) {
		if !built[q] {
			s, n = append(s, q.schema), append(n, q.name)
		}
	}
	if len(s) == 0 {
		return nil, nil
	}
	rows, err := r.tx.Query(ctx, `select n.nspname, c.relname, format('%I.%I', n.nspname, c.relname)
	    from unnest($1::text[], $2::text[]) t(s, n)
	    join pg_namespace n on n.nspname = t.s
	    join pg_class c on c.relnamespace = n.oid and c.relname = t.n and c.relkind in ('r', 'p')
	    order by 3`, s, n)
	if err != nil {
		return nil, fmt.Errorf("reading the share tables iamc no longer creates: %w", err)
	}
	defer rows.Close()
	var out []step
	runtimeRoles := ident(r.model.Roles.Authenticated) + ", " + ident(r.model.Roles.Anonymous)
	for rows.Next() {
		var q qualifiedName
		var display string
		if err := rows.Scan(&q.schema, &q.name, &display); err != nil {
			return nil, fmt.Errorf("reading the share tables iamc no longer creates: %w", err)
		}
		table := qualify(q.schema, q.name)
		section := "share table " + display + ", no longer in the files"
		for _, p := range compiler.ShareTablePolicies {
			out = append(out, step{section: section, sql: fmt.Sprintf("drop policy if exists %s on %s;", ident(compiler.PolicyName(p.Audience, p.Command)), table)})
		}
		for _, t := range compiler.ShareTriggers {
			out = append(out, step{section: section, sql: fmt.Sprintf("drop trigger if exists %s on %s;", ident(t), table)})
		}
		out = append(out, step{section: section, sql: fmt.Sprintf("revoke all on table %s from %s;", table, runtimeRoles)})
	}
	return out, rows.Err()
}

// cleanup drops what iamc created and the files no longer call for:
//   - on a table that is no longer a resource: iamc's policies, the row
//     guard, the grants to the runtime roles (on the table and its
//     sequences), the group foreign key, iamc's indexes and the owner
//     column's default. Row level
//     security stays enabled and forced (deny all), and no row is touched.
//   - on a resource: an index the last apply created that the build no
//     longer creates, a group foreign key on another column or with
//     another ON DELETE than the files say (the build adds the right one),
//     and iamc's default on a column that is no longer the owner column.
//   - a page function the last apply created that the build no longer
//     creates (`page by` or the resource went). (The group API stays when
//     the groups block goes: see TestGroupsRemoved.)
func (r *run) cleanup(ctx context.Context) ([]step, error) {
	var out []step
	for _, g := range r.gone {
		if !g.late {
			out = append(out, step{section: "functions no longer in the files", sql: "drop function if exists " + g.signature + ";"})
		}
	}
	shares, err := r.goneShareTables(ctx)
	if err != nil {
		return nil, err
	}
	out = append(out, shares...)
	if len(r.tables) == 0 {
		return out, nil
	}
	byOID := map[uint32]*managedTable{}
	var oids []uint32
	for _, t := range r.tables {
		byOID[t.oid] = t
		oids = append(oids, t.oid)
	}
	add := func(t *managedTable, format string, args ...any) {
		section := "resource " + t.Name
		if t.model == nil {
			section = "resource " + t.Name + ", no longer in the files"
		}
		out = append(out, step{section: section, sql: fmt.Sprintf(format, args...)})
	}

	// Tables that are no longer resources.
	runtimeRoles := ident(r.model.Roles.Authenticated) + ", " + ident(r.model.Roles.Anonymous)
	for _, t := range r.tables {
		if t.model != nil {
			continue
		}
		table := qualify(t.Schema, t.Table)
		for _, name := range compiler.PolicyNames() {
			add(t, "drop policy if exists %s on %s;", ident(name), table)
		}
		add(t, "drop trigger if exists %s on %s;", compiler.GuardTrigger, table)
		add(t, "revoke all on table %s from %s;", table, runtimeRoles)
	}
	rows, err := r.tx.Query(ctx, `select d.refobjid, n.nspname, s.relname
	    from pg_depend d
	    join pg_class s on s.oid = d.objid and s.relkind = 'S'
	    join pg_namespace n on n.oid = s.relnamespace
	    where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
	      and d.refobjid = any($1::oid[]) and d.deptype in ('a', 'i')
	    order by 2, 3`, oids)
	if err != nil {
		return nil, fmt.Errorf("reading the tables' sequences: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var schema, name string
		if err := rows.Scan(&oid, &schema, &name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the tables' sequences: %w", err)
		}
		if t := byOID[oid]; t.model == nil {
			add(t, "revoke all on sequence %s from %s;", qualify(schema, name), runtimeRoles)
		}
	}
	rows.Close()

	// Group foreign keys.
	rows, err = r.tx.Query(ctx, `select k.conrelid, k.conname,
	        coalesce((select a.attname from pg_attribute a where a.attrelid = k.conrelid and a.attnum = k.conkey[1]), ''),
	        cardinality(k.conkey), k.confdeltype::text
	    from pg_constraint k
	    where k.contype = 'f' and k.conrelid = any($1::oid[]) and k.confrelid = to_regclass('iam.groups')
	    order by 1, 2`, oids)
	if err != nil {
		return nil, fmt.Errorf("reading the group foreign keys: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var name, column, onDelete string
		var columns int
		if err := rows.Scan(&oid, &name, &column, &columns, &onDelete); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the group foreign keys: %w", err)
		}
		t := byOID[oid]
		if m := t.model; m != nil && m.GroupColumn != "" && columns == 1 && column == m.GroupColumn {
			_, want := compiler.GroupDeleteAction(m)
			if onDelete == want {
				continue
			}
		}
		add(t, "alter table %s drop constraint if exists %s;", qualify(t.Schema, t.Table), ident(name))
	}
	rows.Close()

	// Column defaults that call a function of schema iam (the owner column's
	// default, the caller's id; the tenant column's, the caller's tenant):
	// on a table that is no longer a resource, or on a column that is no
	// longer its owner or tenant column. (The build sets those; a default
	// of the application's own calls no iam function and is never dropped.)
	rows, err = r.tx.Query(ctx, `select d.adrelid, a.attname
	    from pg_attrdef d
	    join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
	    where d.adrelid = any($1::oid[])
	      and exists (select from pg_depend k
	                  join pg_proc p on p.oid = k.refobjid
	                  join pg_namespace pn on pn.oid = p.pronamespace
	                  where k.classid = 'pg_attrdef'::regclass and k.objid = d.oid
	                    and k.refclassid = 'pg_proc'::regclass and pn.nspname = 'iam')
	    order by 1, 2`, oids)
	if err != nil {
		return nil, fmt.Errorf("reading iamc's column defaults: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var column string
		if err := rows.Scan(&oid, &column); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading iamc's column defaults: %w", err)
		}
		t := byOID[oid]
		if m := t.model; m != nil && (m.HasOwnerRules() && m.OwnerColumn == column || m.Tenant != nil && m.Tenant.Column == column) {
			continue
		}
		add(t, "alter table %s alter column %s drop default;", qualify(t.Schema, t.Table), ident(column))
	}
	rows.Close()

	// Indexes: iamc's on tables that are no longer resources (recorded, or
	// named like iamc's), and on resources those the last apply created
	// that the build does not create any more.
	built := map[qualifiedName]bool{}
	for _, ix := range r.a.indexes {
		built[qualifiedName{ix.schema, ix.name}] = true
	}
	recorded := map[qualifiedName]bool{}
	var rs, rn []string
	if r.rec != nil {
		for _, q := range unstored(r.rec.scope.Indexes) {
			recorded[q] = true
			rs, rn = append(rs, q.schema), append(rn, q.name)
		}
	}
	rows, err = r.tx.Query(ctx, `select i.indrelid, n.nspname, c.relname
	    from pg_index i
	    join pg_class c on c.oid = i.indexrelid
	    join pg_namespace n on n.oid = c.relnamespace
	    where i.indrelid = any($1::oid[])
	      and ((n.nspname, c.relname) in (select * from unnest($2::text[], $3::text[])) or c.relname like '%\_iam\_idx%')
	    order by 2, 3`, oids, rs, rn)
	if err != nil {
		return nil, fmt.Errorf("reading iamc's indexes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		var q qualifiedName
		if err := rows.Scan(&oid, &q.schema, &q.name); err != nil {
			return nil, fmt.Errorf("reading iamc's indexes: %w", err)
		}
		t := byOID[oid]
		if built[q] || t.model != nil && !recorded[q] {
			continue
		}
		add(t, "drop index if exists %s;", qualify(q.schema, q.name))
	}
	return out, rows.Err()
}

// goneFunction is a page, transfer or share function the last apply
// created and the build no longer creates.
type goneFunction struct {
	name      qualifiedName
	signature string // regprocedure, for the drop
	// late: dropped after the build's sections (a share helper: the
	// resource's old policies call it until its section replaces them).
	late bool
}

// goneFunctions finds the page and transfer functions (known by the
// comments iamc gives them) that the last apply recorded and the build no
// longer creates, with their exact signatures.
func (r *run) goneFunctions(ctx context.Context) ([]goneFunction, error) {
	if r.rec == nil {
		return nil, nil
	}
	built := map[qualifiedName]bool{}
	for _, f := range r.a.functions {
		built[f] = true
	}
	var fs, fn []string
	for _, f := range unstored(r.rec.scope.Functions) {
		if !built[f] {
			fs, fn = append(fs, f.schema), append(fn, f.name)
		}
	}
	if len(fs) == 0 {
		return nil, nil
	}
	// The runtime's functions in iam carry neither comment: they stay.
	rows, err := r.tx.Query(ctx, `select n.nspname, p.proname, p.oid::regprocedure::text, starts_with(obj_description(p.oid, 'pg_proc'), $5)
	    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
	    where (n.nspname, p.proname) in (select * from unnest($1::text[], $2::text[]))
	      and (starts_with(obj_description(p.oid, 'pg_proc'), $3) or starts_with(obj_description(p.oid, 'pg_proc'), $4)
	           or starts_with(obj_description(p.oid, 'pg_proc'), $5))
	    order by 3`, fs, fn, compiler.PageCommentPrefix, compiler.TransferCommentPrefix, compiler.ShareCommentPrefix)
	if err != nil {
		return nil, fmt.Errorf("reading the functions iamc no longer creates: %w", err)
	}
	defer rows.Close()
	var out []goneFunction
	for rows.Next() {
		var g goneFunction
		if err := rows.Scan(&g.name.schema, &g.name.name, &g.signature, &g.late); err != nil {
			return nil, fmt.Errorf("reading the functions iamc no longer creates: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// buildConcurrently builds the indexes the build needs with CREATE INDEX
// CONCURRENTLY, outside any transaction, so that writes to a large table
// go on while it is read. It holds the iamc advisory lock (at session
// level) until unlock is called, so that the apply that follows is the
// next one.
func (r *run) buildConcurrently(ctx context.Context) (built []string, unlock func(), err error) {
	conn := r.conn
	var oldTimeout string
	if err := conn.QueryRow(ctx, `select current_setting('lock_timeout')`).Scan(&oldTimeout); err != nil {
		return nil, nil, fmt.Errorf("reading lock_timeout: %w", err)
	}
	if _, err := conn.Exec(ctx, "select set_config('lock_timeout', $1, false)", fmt.Sprintf("%dms", r.opts.LockTimeout.Milliseconds())); err != nil {
		return nil, nil, fmt.Errorf("setting lock_timeout: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "select set_config('lock_timeout', $1, false)", oldTimeout)
	}()
	if _, err := conn.Exec(ctx, "select pg_advisory_lock(hashtext('iamc'))"); err != nil {
		return nil, nil, r.explain(err, "waiting for the iamc advisory lock (another iamc apply or build script is running)")
	}
	unlock = func() {
		_, _ = conn.Exec(context.Background(), "select pg_advisory_unlock(hashtext('iamc'))")
	}

	// Read the state in a short transaction with a pinned search_path.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, unlock, err
	}
	if _, err := tx.Exec(ctx, "set local search_path = pg_catalog, pg_temp"); err != nil {
		_ = tx.Rollback(ctx)
		return nil, unlock, err
	}
	installed, err := installedRuntime(ctx, tx)
	if err != nil {
		_ = tx.Rollback(ctx)
		return nil, unlock, err
	}
	if installed > stdlib.Version {
		_ = tx.Rollback(ctx)
		return nil, unlock, &RuntimeTooNewError{Installed: installed, Supported: stdlib.Version}
	}
	states, err := indexStates(ctx, tx, r.a)
	_ = tx.Rollback(ctx)
	if err != nil {
		return nil, unlock, err
	}
	for _, st := range states {
		if !st.tableExists || !st.needsBuild() {
			continue
		}
		if st.partitioned {
			// No CREATE INDEX CONCURRENTLY on a partitioned table: one
			// partition at a time (deploy/partitions.go).
			ok, err := r.buildPartitionedConcurrently(ctx, st)
			if err != nil {
				return built, unlock, err
			}
			if ok {
				built = append(built, st.display)
			}
			continue
		}
		if st.exists {
			if _, err := conn.Exec(ctx, "drop index concurrently if exists "+st.ix.qualified()); err != nil {
				return built, unlock, r.explain(err, "dropping the index "+st.display+" concurrently, to rebuild it")
			}
		}
		sql, err := st.ix.concurrently()
		if err != nil {
			return built, unlock, err
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			// A failed concurrent build leaves an invalid index behind.
			_, _ = conn.Exec(context.WithoutCancel(ctx), "drop index concurrently if exists "+st.ix.qualified())
			return built, unlock, r.explain(err, "building the index "+st.display+" concurrently")
		}
		built = append(built, st.display)
	}
	return built, unlock, nil
}
