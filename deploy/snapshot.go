package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/stdlib"
)

// Object is one thing iamc manages, as the catalog describes it: its
// attributes are what PostgreSQL itself prints (pg_get_functiondef,
// pg_get_expr, pg_get_indexdef, aclexplode, ...), so two objects that
// PostgreSQL considers the same compare equal however they were written.
type Object struct {
	Kind  string            `json:"kind"`            // runtime, settings, schema, function, procedure, event trigger, view, rls, partition, grant, index, foreign key, column default, trigger, policy
	Table string            `json:"table,omitempty"` // the resource it belongs to (schema.table as PostgreSQL quotes it); "" for the runtime and the group API
	Name  string            `json:"name"`            // unique within its kind
	Attrs map[string]string `json:"attrs"`
}

// Key identifies an object across snapshots.
func (o Object) Key() string { return o.Kind + " " + o.Name }

// Snapshot is the state of every managed object, by key.
type Snapshot map[string]Object

// kinds orders the kinds of objects in a plan.
var kinds = []string{"runtime", "settings", "schema", "function", "procedure", "event trigger", "view", "table", "rls", "partition", "grant", "index", "foreign key", "column default", "trigger", "policy"}

func kindRank(k string) int {
	for i, x := range kinds {
		if x == k {
			return i
		}
	}
	return len(kinds)
}

// Sorted lists a snapshot's objects in plan order.
func (s Snapshot) Sorted() []Object {
	out := make([]Object, 0, len(s))
	for _, o := range s {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return objectLess(out[i], out[j]) })
	return out
}

func objectLess(a, b Object) bool {
	if a.Table != b.Table {
		return a.Table < b.Table
	}
	if ra, rb := kindRank(a.Kind), kindRank(b.Kind); ra != rb {
		return ra < rb
	}
	return a.Name < b.Name
}

// scope says which catalog objects a snapshot reads.
type scope struct {
	tables    []uint32        // the managed tables: resources in the files, recorded by the last apply, or carrying iamc's objects
	functions []qualifiedName // functions the build creates outside schema iam (every function in iam is read)
	views     []qualifiedName // views the build creates
	indexes   []qualifiedName // indexes the build creates, and those the last apply recorded
	schemas   []string        // schemas whose grants are read
	// created are the tables the build creates (share tables), and those
	// the last apply recorded: read by name (they may not exist yet), and
	// with what is on them, like the managed tables.
	created []qualifiedName
}

// The snapshot queries. Each returns kind, table, name and the attributes
// as a jsonb object of strings. They run with search_path pinned to
// pg_catalog, so every name PostgreSQL prints is schema-qualified.
// Parameters (named): @tables the managed tables, @fs/@fn functions,
// @vs/@vn views, @is/@in indexes (schemas and names), @schemas, @guard the
// row guard's trigger name, @et the partitions' event trigger and @ddl the
// schema of its function.
var snapshotQueries = []string{
	// Tables the build creates (share tables): their columns, constraints,
	// owner and comment. (Their policies, grants, indexes, triggers and row
	// level security are read with the managed tables'.)
	`select 'table', format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname),
	        jsonb_build_object('columns', (select string_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
	                                                                case when a.attnotnull then ' not null' else '' end), ', ' order by a.attnum)
	                                       from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
	                           'constraints', coalesce((select string_agg(pg_get_constraintdef(k.oid), ', ' order by k.conname)
	                                                    from pg_constraint k where k.conrelid = c.oid), ''),
	                           'owner', pg_get_userbyid(c.relowner)::text,
	                           'comment', coalesce(obj_description(c.oid, 'pg_class'), ''))
	from pg_class c join pg_namespace n on n.oid = c.relnamespace
	where c.relkind in ('r', 'p') and (n.nspname, c.relname) in (select * from unnest(@cs::text[], @cn::text[]))`,

	// The owners of schema iam and of iam_ddl (the event trigger's
	// function, a superuser's).
	`select 'schema', '', quote_ident(n.nspname), jsonb_build_object('owner', pg_get_userbyid(n.nspowner)::text)
	from pg_namespace n where n.nspname in ('iam', @ddl)`,

	// Functions and procedures: every one in schemas iam and iam_ddl, and
	// the group API's.
	`select case p.prokind when 'p' then 'procedure' else 'function' end, '',
	        format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)),
	        jsonb_build_object('definition', pg_get_functiondef(p.oid),
	                           'owner', pg_get_userbyid(p.proowner)::text,
	                           'comment', coalesce(obj_description(p.oid, 'pg_proc'), ''))
	from pg_proc p join pg_namespace n on n.oid = p.pronamespace
	where p.prokind in ('f', 'p')
	  and (n.nspname in ('iam', @ddl) or (n.nspname, p.proname) in (select * from unnest(@fs::text[], @fn::text[])))`,

	// The event trigger that locks down new partitions (@et).
	`select 'event trigger', '', quote_ident(e.evtname),
	        jsonb_build_object('event', e.evtevent::text,
	                           'tags', coalesce(array_to_string(e.evttags, ', '), ''),
	                           'function', e.evtfoid::regprocedure::text,
	                           'enabled', case e.evtenabled when 'O' then 'enabled' when 'D' then 'disabled' when 'R' then 'replica only' when 'A' then 'always' end,
	                           'owner', pg_get_userbyid(e.evtowner)::text,
	                           'comment', coalesce(obj_description(e.oid, 'pg_event_trigger'), ''))
	from pg_event_trigger e where e.evtname = @et`,

	// Views: the group API's, and any in schema iam.
	`select 'view', '', format('%I.%I', n.nspname, c.relname),
	        jsonb_build_object('definition', pg_get_viewdef(c.oid),
	                           'options', coalesce(array_to_string(c.reloptions, ', '), ''),
	                           'owner', pg_get_userbyid(c.relowner)::text,
	                           'comment', coalesce(obj_description(c.oid, 'pg_class'), ''))
	from pg_class c join pg_namespace n on n.oid = c.relnamespace
	where c.relkind = 'v'
	  and (n.nspname = 'iam' or (n.nspname, c.relname) in (select * from unnest(@vs::text[], @vn::text[])))`,

	// Row level security of every managed table; and every partition of
	// one (at every level; it belongs to its root table): its row level
	// security, owner and parent.
	`select 'rls', format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname),
	        jsonb_build_object('state', case when c.relrowsecurity then 'enabled' else 'disabled' end
	                                    || case when c.relforcerowsecurity then ', forced' else ', not forced' end)
	from pg_class c join pg_namespace n on n.oid = c.relnamespace
	where c.oid = any(@tables::oid[])
	union all
	select 'partition', format('%I.%I', rn.nspname, r.relname), format('%I.%I', n.nspname, c.relname),
	        jsonb_build_object('row level security', case when c.relrowsecurity then 'enabled' else 'disabled' end
	                                    || case when c.relforcerowsecurity then ', forced' else ', not forced' end,
	                           'owner', pg_get_userbyid(c.relowner)::text,
	                           'of', (select format('%I.%I', pn.nspname, pc.relname) from pg_class pc
	                                  join pg_namespace pn on pn.oid = pc.relnamespace where pc.oid = t.parentrelid))
	from pg_class r join pg_namespace rn on rn.oid = r.relnamespace,
	     pg_partition_tree(r.oid) t
	join pg_class c on c.oid = t.relid join pg_namespace n on n.oid = c.relnamespace
	where r.oid = any(@tables::oid[]) and r.relkind = 'p' and t.level > 0 and not c.oid = any(@tables::oid[])`,

	// Grants, one object per object and grantee (the owner's own rights
	// left out): managed tables, their partitions, their columns and their sequences, the relations of
	// schema iam, the API views, every function read above, and the
	// schemas iamc grants usage on. NULL ACLs are the defaults
	// (acldefault: PUBLIC may execute a function).
	`with objs as (
	    select 'table' as what, format('%I.%I', n.nspname, c.relname) as name, format('%I.%I', n.nspname, c.relname) as tbl,
	           c.relacl as acl, c.relowner as owner, 'r'::"char" as k
	    from pg_class c join pg_namespace n on n.oid = c.relnamespace
	    where c.oid = any(@tables::oid[])
	  union all
	    select 'table', format('%I.%I', n.nspname, c.relname), format('%I.%I', rn.nspname, r.relname),
	           c.relacl, c.relowner, 'r'::"char"
	    from pg_class r join pg_namespace rn on rn.oid = r.relnamespace,
	         pg_partition_tree(r.oid) t
	    join pg_class c on c.oid = t.relid join pg_namespace n on n.oid = c.relnamespace
	    where r.oid = any(@tables::oid[]) and r.relkind = 'p' and t.level > 0 and not c.oid = any(@tables::oid[])
	  union all
	    -- Column privileges of managed tables (column rules: read (id, name)).
	    select 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname), format('%I.%I', n.nspname, c.relname),
	           a.attacl, c.relowner, 'c'::"char"
	    from pg_attribute a
	    join pg_class c on c.oid = a.attrelid
	    join pg_namespace n on n.oid = c.relnamespace
	    where a.attrelid = any(@tables::oid[]) and a.attnum > 0 and not a.attisdropped and a.attacl is not null
	  union all
	    select 'sequence', format('%I.%I', n.nspname, s.relname), format('%I.%I', tn.nspname, t.relname),
	           s.relacl, s.relowner, 's'::"char"
	    from pg_depend d
	    join pg_class s on s.oid = d.objid and s.relkind = 'S'
	    join pg_namespace n on n.oid = s.relnamespace
	    join pg_class t on t.oid = d.refobjid
	    join pg_namespace tn on tn.oid = t.relnamespace
	    where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
	      and d.refobjid = any(@tables::oid[]) and d.deptype in ('a', 'i')
	  union all
	    select case c.relkind when 'v' then 'view' when 'S' then 'sequence' else 'table' end,
	           format('%I.%I', n.nspname, c.relname), '',
	           c.relacl, c.relowner, case c.relkind when 'S' then 's'::"char" else 'r'::"char" end
	    from pg_class c join pg_namespace n on n.oid = c.relnamespace
	    where c.relkind in ('r', 'p', 'v', 'S') and not c.oid = any(@tables::oid[])
	      and (n.nspname = 'iam' or (n.nspname, c.relname) in (select * from unnest(@vs::text[], @vn::text[])))
	  union all
	    select case p.prokind when 'p' then 'procedure' else 'function' end,
	           format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)), '',
	           p.proacl, p.proowner, 'f'::"char"
	    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
	    where p.prokind in ('f', 'p')
	      and (n.nspname in ('iam', @ddl) or (n.nspname, p.proname) in (select * from unnest(@fs::text[], @fn::text[])))
	  union all
	    select 'schema', quote_ident(n.nspname), '', n.nspacl, n.nspowner, 'n'::"char"
	    from pg_namespace n where n.nspname = any(@schemas::text[])
	)
	select 'grant', o.tbl,
	       format('on %s %s to %s', o.what, o.name,
	              case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end),
	       jsonb_build_object('privileges', string_agg(lower(a.privilege_type) || case when a.is_grantable then ' with grant option' else '' end, ', '
	           order by array_position(array['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER','MAINTAIN','USAGE','EXECUTE','CREATE','TEMPORARY','CONNECT'], a.privilege_type),
	                    a.privilege_type))
	from objs o, aclexplode(coalesce(o.acl, acldefault(o.k, o.owner))) a
	where a.grantee <> o.owner
	group by o.tbl, o.what, o.name, a.grantee`,

	// Indexes: those the build creates or the last apply recorded, and on
	// managed tables those named like iamc's (@idx: <table>_<column>_iam_idx).
	`select 'index', case when i.indrelid = any(@tables::oid[]) then format('%I.%I', tn.nspname, tc.relname) else '' end,
	        format('%I.%I', n.nspname, ic.relname),
	        jsonb_build_object('definition', pg_get_indexdef(i.indexrelid),
	                           'valid', case when i.indisvalid then 'valid' else 'invalid' end)
	from pg_index i
	join pg_class ic on ic.oid = i.indexrelid
	join pg_namespace n on n.oid = ic.relnamespace
	join pg_class tc on tc.oid = i.indrelid
	join pg_namespace tn on tn.oid = tc.relnamespace
	where (n.nspname, ic.relname) in (select * from unnest(@is::text[], @in::text[]))
	   or (i.indrelid = any(@tables::oid[]) and ic.relname like @idx)`,

	// Foreign keys from managed tables to iam.groups (iamc's group keys).
	`select 'foreign key', format('%I.%I', n.nspname, c.relname), format('%I on %I.%I', k.conname, n.nspname, c.relname),
	        jsonb_build_object('definition', pg_get_constraintdef(k.oid),
	                           'validated', case when k.convalidated then 'validated' else 'not validated' end)
	from pg_constraint k
	join pg_class c on c.oid = k.conrelid
	join pg_namespace n on n.oid = c.relnamespace
	where k.contype = 'f' and k.conrelid = any(@tables::oid[]) and k.confrelid = to_regclass('iam.groups')`,

	// Column defaults of managed tables that call a function of schema iam
	// (the owner column's: the caller's id).
	`select 'column default', format('%I.%I', n.nspname, c.relname), format('%I on %I.%I', a.attname, n.nspname, c.relname),
	        jsonb_build_object('definition', pg_get_expr(d.adbin, d.adrelid))
	from pg_attrdef d
	join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
	join pg_class c on c.oid = d.adrelid
	join pg_namespace n on n.oid = c.relnamespace
	where d.adrelid = any(@tables::oid[])
	  and exists (select from pg_depend k
	              join pg_proc p on p.oid = k.refobjid
	              join pg_namespace pn on pn.oid = p.pronamespace
	              where k.classid = 'pg_attrdef'::regclass and k.objid = d.oid
	                and k.refclassid = 'pg_proc'::regclass and pn.nspname = 'iam')`,

	// The row guard (@guard), and any trigger calling a function of
	// schema iam, on managed tables; and every trigger on the runtime's
	// own tables (the audit trail's append-only guard), with the runtime
	// (but a share table's quota trigger with its share table, a managed table).
	`select 'trigger', case when n.nspname = 'iam' and not t.tgrelid = any(@tables::oid[]) then '' else format('%I.%I', n.nspname, c.relname) end,
	        format('%I on %I.%I', t.tgname, n.nspname, c.relname),
	        jsonb_build_object('definition', pg_get_triggerdef(t.oid),
	                           'enabled', case t.tgenabled when 'O' then 'enabled' when 'D' then 'disabled' when 'R' then 'replica only' when 'A' then 'always' end)
	from pg_trigger t
	join pg_class c on c.oid = t.tgrelid
	join pg_namespace n on n.oid = c.relnamespace
	join pg_proc p on p.oid = t.tgfoid
	join pg_namespace pn on pn.oid = p.pronamespace
	where not t.tgisinternal
	  and (t.tgrelid = any(@tables::oid[]) and (t.tgname = @guard or pn.nspname = 'iam') or n.nspname = 'iam')`,

	// Every policy on a managed table, iamc's and others' (PostgreSQL ORs
	// permissive policies, so any of them changes who sees what).
	`select 'policy', format('%I.%I', n.nspname, c.relname), format('%I on %I.%I', p.polname, n.nspname, c.relname),
	        jsonb_build_object('type', case when p.polpermissive then 'permissive' else 'restrictive' end,
	                           'command', case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update' when 'd' then 'delete' else 'all' end,
	                           'roles', (select string_agg(case when r = 0 then 'public' else quote_ident(pg_get_userbyid(r)) end, ', '
	                                                       order by case when r = 0 then 'public' else quote_ident(pg_get_userbyid(r)) end)
	                                     from unnest(p.polroles) r),
	                           'using', coalesce(pg_get_expr(p.polqual, p.polrelid), ''),
	                           'with check', coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''),
	                           'comment', coalesce(obj_description(p.oid, 'pg_policy'), ''))
	from pg_policy p
	join pg_class c on c.oid = p.polrelid
	join pg_namespace n on n.oid = c.relnamespace
	where p.polrelid = any(@tables::oid[])`,
}

// takeSnapshot reads the state of every object in scope.
func takeSnapshot(ctx context.Context, tx pgx.Tx, sc *scope) (Snapshot, error) {
	snap := Snapshot{}
	fs, fn := splitNames(sc.functions)
	vs, vn := splitNames(sc.views)
	is, in := splitNames(sc.indexes)
	cs, cn := splitNames(sc.created)
	tables := slices.Clone(sc.tables)
	if len(sc.created) > 0 {
		rows, err := tx.Query(ctx, `select c.oid from unnest($1::text[], $2::text[]) t(s, n)
		    join pg_namespace ns on ns.nspname = t.s
		    join pg_class c on c.relnamespace = ns.oid and c.relname = t.n and c.relkind in ('r', 'p')`, cs, cn)
		if err != nil {
			return nil, fmt.Errorf("reading the catalog: %w", err)
		}
		oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
		if err != nil {
			return nil, fmt.Errorf("reading the catalog: %w", err)
		}
		tables = append(tables, oids...)
	}
	args := pgx.NamedArgs{"et": compiler.PartitionTrigger, "ddl": stdlib.DDLSchema, "tables": tables, "cs": cs, "cn": cn, "fs": fs, "fn": fn, "vs": vs, "vn": vn, "is": is, "in": in, "schemas": sc.schemas, "guard": compiler.GuardTrigger,
		// LIKE reads _ as any character: escape it to match the suffix itself.
		"idx": "%" + strings.ReplaceAll("_"+compiler.IndexSuffix, "_", `\_`) + "%"}
	for _, q := range snapshotQueries {
		if err := collect(ctx, tx, snap, q, args); err != nil {
			return nil, err
		}
	}
	// The runtime's version and the settings of the files: rows of tables
	// the runtime creates, so only once they exist. The group roles
	// (runtime 4) are settings too: "member < admin < owner".
	var hasRuntime, hasSettings, hasRoles bool
	if err := tx.QueryRow(ctx, `select to_regclass('iam.runtime') is not null, to_regclass('iam.settings') is not null, to_regclass('iam.group_roles') is not null`).
		Scan(&hasRuntime, &hasSettings, &hasRoles); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	if hasRuntime {
		if err := collect(ctx, tx, snap, `select 'runtime', '', 'iam.runtime', jsonb_build_object('version', version::text) from iam.runtime`); err != nil {
			return nil, err
		}
	}
	if hasSettings {
		roles := `'{}'::jsonb`
		if hasRoles {
			roles = `jsonb_build_object('group_roles', (select string_agg(r.name, ' < ' order by r.rank) from iam.group_roles r))`
		}
		if err := collect(ctx, tx, snap, `select 'settings', '', 'iam.settings', (to_jsonb(s) - 'singleton') || `+roles+` from iam.settings s`); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

func collect(ctx context.Context, tx pgx.Tx, snap Snapshot, sql string, args ...any) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o Object
		var attrs []byte
		if err := rows.Scan(&o.Kind, &o.Table, &o.Name, &attrs); err != nil {
			return fmt.Errorf("reading the catalog: %w", err)
		}
		var raw map[string]any
		if err := json.Unmarshal(attrs, &raw); err != nil {
			return fmt.Errorf("reading the catalog: %w", err)
		}
		o.Attrs = map[string]string{}
		for k, v := range raw {
			switch v := v.(type) {
			case nil:
				o.Attrs[k] = ""
			case string:
				o.Attrs[k] = v
			default:
				b, _ := json.Marshal(v)
				o.Attrs[k] = string(b)
			}
		}
		snap[o.Key()] = o
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	return nil
}
