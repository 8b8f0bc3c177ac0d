package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// DefaultPageSize and MaxPageSize: the rows of a page function's page
// when the request does not say, and the most it returns.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// PageCommentPrefix starts the comment of every page function: iamc apply
// finds the page functions it made (to drop those the files no longer
// declare) by it.
const PageCommentPrefix = "iamc (page by "

// maxBigint stands for "no cursor": every integer key is below it.
const maxBigint = 1<<63 - 1

// PageFunctionName is the name of a resource's page function (in the
// resource's schema): <table>_page.
func PageFunctionName(r *lang.ResourceModel) string { return derivedName(r.Table, "page") }

// pageStatements writes a resource's page function: the list page
// `ORDER BY key DESC LIMIT n` as a UNION ALL of the policy's arms, each an
// ordered walk of its (column, key) index that stops after n rows. A policy
// is a filter: the planner cannot turn its OR into per-arm walks, so a list
// page under RLS reads every row the caller can see before it sorts them;
// this reads at most n rows per arm (per group for the group arm).
//
// The function runs as the caller (RLS still applies to every arm, so it
// can show nothing the policies hide) and returns the same rows as the
// table with the same filter and order; the arms are disjoint.
func pageStatements(m *lang.Model, r *lang.ResourceModel) []Statement {
	fn := PageFunctionName(r)
	name, table, key := qualify(r.Schema, fn), qualify(r.Schema, r.Table), quoteIdent(r.PageKey)
	keyType := fmt.Sprintf("%s.%s%%type", table, key)
	param := func(p string) string { return quoteIdent(fn) + "." + quoteIdent(p) }
	before, size := param("before"), param("page_size")
	params := []string{"before " + keyType + " default null", fmt.Sprintf("page_size integer default %d", DefaultPageSize)}
	types := []string{keyType, "integer"}
	group := ""
	if r.GroupColumn != "" {
		group = param(r.GroupColumn)
		params = append(params, quoteIdent(r.GroupColumn)+" bigint default null")
		types = append(types, "bigint")
	}
	// The cursor is compared with a variable set once per call: under RLS
	// only leakproof conditions may run before the policies (and so be
	// index conditions), and PostgreSQL counts every COALESCE as leaky, so
	// `k < coalesce(before, ...)` in the query would filter the walk
	// instead of starting it at the cursor. An integer < is leakproof (the
	// catalog check makes sure the key is an integer).
	cursor := fmt.Sprintf("t.%s < page.before_key", key)
	// walk is one ordered index walk, under the policies like every read.
	walk := func(where string) string {
		return fmt.Sprintf("return query\n        select t.* from %s t\n        where %s%s\n        order by t.%s desc\n        limit %s;", table, where, cursor, key, size)
	}

	body := []string{fmt.Sprintf(`    if %s is null or %s < 1 or %s > %d then
        raise exception using errcode = '22023',
            message = 'page_size must be between 1 and %d',
            detail = pg_catalog.format('page_size is %%s.', coalesce(%s::text, 'null')),
            hint = 'Ask for at most %d rows; for the next page pass the last row''s %s as before.';
    end if;`, size, size, size, MaxPageSize, MaxPageSize, size, MaxPageSize, strings.ReplaceAll(r.PageKey, "'", "''")),
		fmt.Sprintf("    page.before_key := coalesce(%s, %d);", before, int64(maxBigint))}
	everyone := r.Authenticated[lang.Read] || r.Anonymous[lang.Read]
	ownerReads := r.OwnerColumn != "" && r.Owner[lang.Read]
	groupRole := r.GroupMinRole(lang.Read)
	owner, gcol := quoteIdent(r.OwnerColumn), quoteIdent(r.GroupColumn)
	isAdmin := ""
	if m.Groups.AdminRole != "" {
		isAdmin = once(hasRealmRoleCall(m.Groups.AdminRole))
	}
	callerID := "page.caller_id := " + userIDCall(m.Identity) + ";"
	callerGroups := groupIDsCall(groupRole)
	decls := []string{"    before_key bigint;"}
	if !everyone && ownerReads {
		decls = append(decls, fmt.Sprintf("    caller_id %s;", m.Identity.Type))
	}
	if !everyone && groupRole != "" {
		decls = append(decls, "    caller_groups bigint[];", "    floor_key bigint;")
	}
	declare := "declare\n" + strings.Join(decls, "\n") + "\n"
	indent := func(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

	if group != "" {
		// One group: its (group, key) index in order, for a caller who reads
		// the whole group; anyone else sees only their own rows in it, read
		// from their (owner, key) index, so the walk follows what the caller
		// sees, not the group's size (the group is a filter there: as an
		// index condition the planner might walk the group instead).
		// Statements as at the top of the body (indented 4), then the lot
		// indented once more inside the if.
		groupWalk := "    " + walk(fmt.Sprintf("t.%s = %s\n          and ", gcol, group))
		branch := groupWalk
		if !everyone {
			var readers []string
			if isAdmin != "" {
				readers = append(readers, isAdmin)
			}
			if groupRole != "" {
				readers = append(readers, fmt.Sprintf("%s = any (%s)", group, callerGroups))
			}
			ownWalk := ""
			if ownerReads {
				ownWalk = "    " + callerID + "\n    " + walk(fmt.Sprintf("t.%s = page.caller_id\n          and t.%s is not distinct from %s\n          and ", owner, gcol, group))
			}
			switch {
			case len(readers) == 0:
				branch = ownWalk
			case ownWalk == "":
				branch = fmt.Sprintf("    if %s then\n    %s\n    end if;", strings.Join(readers, " or "), indent(groupWalk))
			default:
				branch = fmt.Sprintf("    if %s then\n    %s\n    else\n    %s\n    end if;", strings.Join(readers, " or "), indent(groupWalk), indent(ownWalk))
			}
		}
		body = append(body, fmt.Sprintf("    if %s is not null then\n    %s\n        return;\n    end if;", group, indent(branch)))
	}
	if everyone {
		body = append(body, "    "+walk(""))
	} else {
		if isAdmin != "" {
			body = append(body, fmt.Sprintf("    if %s then\n        %s\n        return;\n    end if;", isAdmin, indent(walk(""))))
		}
		if ownerReads {
			body = append(body, "    "+callerID)
		}
		notMine := ""
		if ownerReads {
			// The owner arm has the caller's own rows.
			notMine = fmt.Sprintf("\n              and t.%s is distinct from page.caller_id", owner)
		}
		if groupRole != "" {
			body = append(body, fmt.Sprintf("    page.caller_groups := coalesce(%s, '{}');", callerGroups))
			// A page of the group arm is the newest rows of all the caller's
			// groups. Walking a page of every group reads groups x page rows,
			// each checked by the policy against every group: a user in
			// 2,000 groups read 100,000 rows (294 ms). With at least a page
			// of groups, the page-th newest of the groups' newest rows is a
			// floor: at least a page of rows is at or above it, so no row
			// below it is on the page. One row per group finds it; then only
			// groups with rows above it are walked, and only down to it.
			body = append(body, fmt.Sprintf(`    page.floor_key := %d;
    if cardinality(page.caller_groups) >= %s then
        select case when count(*) >= %s then min(h.k) else page.floor_key end into page.floor_key
        from (
            select h.k from (select distinct unnest(page.caller_groups) as id) g
            cross join lateral (
                select t.%s as k from %s t
                where t.%s = g.id%s
                  and %s
                order by t.%s desc
                limit 1) h
            order by h.k desc
            limit %s) h;
    end if;`, int64(-maxBigint-1), size, size, key, table, gcol, strings.ReplaceAll(notMine, "\n", "\n    "), cursor, key, size))
		}
		var arms []string
		if ownerReads {
			arms = append(arms, fmt.Sprintf("select t.* from %s t\n        where t.%s = page.caller_id\n          and %s\n        order by t.%s desc\n        limit %s",
				table, owner, cursor, key, size))
		}
		if groupRole != "" {
			arms = append(arms, fmt.Sprintf("select t.* from (select distinct unnest(page.caller_groups) as id) g\n"+
				"        cross join lateral (\n            select t.* from %s t\n            where t.%s = g.id%s\n              and %s\n              and t.%s >= page.floor_key\n            order by t.%s desc\n            limit %s) t",
				table, gcol, notMine, cursor, key, key, size))
		}
		switch {
		case len(arms) == 1 && groupRole == "":
			// The owner arm alone is in order and cut already.
			body = append(body, "    return query\n        "+arms[0]+";")
		default:
			// A page from each group (and the owner arm): the newest of all.
			var parts []string
			for _, a := range arms {
				parts = append(parts, "(\n        "+a+")")
			}
			body = append(body, fmt.Sprintf("    return query\n    select p.* from (\n        %s\n    ) p\n    order by p.%s desc\n    limit %s;",
				strings.Join(parts, "\n        union all\n        "), key, size))
		}
	}

	signature := fmt.Sprintf("%s(%s)", name, strings.Join(types, ", "))
	roles := []string{quoteIdent(m.Roles.Authenticated)}
	if r.Anonymous[lang.Read] {
		roles = append(roles, quoteIdent(m.Roles.Anonymous))
	}
	doc := fmt.Sprintf(PageCommentPrefix+"%s, %s:%d): GET /rpc/%s?before=<%s>&page_size=<1..%d>", r.PageKey, r.PagePos.Filename, r.PagePos.Line, fn, r.PageKey, MaxPageSize)
	if r.GroupColumn != "" {
		doc += fmt.Sprintf("&%s=<group>", r.GroupColumn)
	}
	doc += fmt.Sprintf(" returns the rows of %s the caller may read, newest %s first: the rows of the table ordered by %s desc with the same filters, read with one index walk per policy arm.", r.QualifiedName(), r.PageKey, r.PageKey)
	return []Statement{
		{
			Why: fmt.Sprintf("List pages by %s: the policy is a filter, so /%s?order=%s.desc&limit=50 reads every row the caller can see and sorts them; "+
				"this walks the (column, %s) indexes once per policy arm and stops after a page. It runs as the caller, so RLS still decides every row. "+
				"Bitmap scans, parallel workers and JIT are off inside (none of them can stop after a page), and its plans are generic: planned once per connection, not per call.", r.PageKey, r.Table, r.PageKey, r.PageKey),
			SQL: fmt.Sprintf("create or replace function %s(%s)\n    returns setof %s\n    language plpgsql stable security invoker\n"+
				"    set search_path = pg_catalog, pg_temp\n    set enable_bitmapscan = off\n    set max_parallel_workers_per_gather = 0\n    set jit = off\n    set plan_cache_mode = force_generic_plan\n"+
				"as $fn$\n<<page>>\n%sbegin\n%s\nend\n$fn$;",
				name, strings.Join(params, ", "), table, declare, strings.Join(body, "\n")),
		},
		{SQL: fmt.Sprintf("comment on function %s is %s;", signature, quoteLiteral(doc))},
		{Why: "Only the roles that may read the table may call it.",
			SQL: fmt.Sprintf("revoke all on function %s from public, %s, %s;", signature, quoteIdent(m.Roles.Authenticated), quoteIdent(m.Roles.Anonymous))},
		{SQL: fmt.Sprintf("grant execute on function %s to %s;", signature, strings.Join(roles, ", "))},
	}
}
