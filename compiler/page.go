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
	c := &pageContext{ruleContext: newRuleContext(m, r, "t"), table: table, key: key, size: size,
		// The cursor is compared with a variable set once per call: under
		// RLS only leakproof conditions may run before the policies (and so
		// be index conditions), and PostgreSQL counts every COALESCE as
		// leaky, so `k < coalesce(before, ...)` in the query would filter
		// the walk instead of starting it at the cursor. An integer < is
		// leakproof (the catalog check makes sure the key is an integer).
		cursor: fmt.Sprintf("t.%s < page.before_key", key)}
	if c.tenant != nil {
		// Every walk stays in the caller's tenant: an index condition
		// (text = is leakproof) on the tenant column each index leads with.
		c.cursor = fmt.Sprintf("t.%s = page.tenant and %s", quoteIdent(c.tenant.column), c.cursor)
	}
	if r.GroupColumn != "" {
		c.groupParam = param(r.GroupColumn)
		params = append(params, quoteIdent(r.GroupColumn)+" bigint default null")
		types = append(types, "bigint")
	}
	if p := r.Parent; p != nil {
		c.parentParam = param(p.Column)
		colType := fmt.Sprintf("%s.%s%%type", table, quoteIdent(p.Column))
		params = append(params, quoteIdent(p.Column)+" "+colType+" default null")
		types = append(types, colType)
	}
	arms, everyone := c.arms()
	decls := block{"before_key bigint;"}
	if c.tenant != nil {
		decls = append(decls, "tenant text;")
	}
	if !everyone {
		for _, a := range arms {
			decls = append(decls, a.decls...)
		}
	}
	return pageFunction(c, name, params, types, decls, pageBody(c, arms, everyone, before).text(1))
}

// arms are the page arms of the kinds present, in order, and whether one
// reads every row. A kind that lets callers read rows must say how a page
// finds them: a page function without its arm would quietly drop them.
func (c *pageContext) arms() (arms []*pageArm, everyone bool) {
	for _, k := range c.kinds {
		a := k.page(c)
		if a == nil {
			if k.arm(c.ruleContext, audienceAuthenticated, lang.Read) != nil {
				panic(fmt.Sprintf("compiler bug: subject kind %T reads rows of %s but has no page arm", k, c.r.QualifiedName()))
			}
			continue
		}
		arms = append(arms, a)
		everyone = everyone || a.all
	}
	return arms, everyone
}

// pageContext is what the subject kinds' page arms are written against.
type pageContext struct {
	*ruleContext
	table, key, size string // quoted table and key, the page_size parameter
	cursor           string // the key below the cursor
	groupParam       string // the group parameter, "" without a group column
	parentParam      string // the parent parameter, "" without a parent
}

// walk is one ordered index walk, under the policies like every read:
// where is the conditions before the cursor, each ending "\n  and ".
func (c *pageContext) walk(where string) string {
	return fmt.Sprintf("return query\n    select t.* from %s t\n    where %s%s\n    order by t.%s desc\n    limit %s;", c.table, where, c.cursor, c.key, c.size)
}

// pageArm is one subject kind's part of a page function. Statements and
// queries are written from column 0 (see block).
type pageArm struct {
	all    bool   // the caller reads every row: a page is one walk of the key
	bypass string // when it holds, the caller reads every row (one walk)
	reader string // when it holds, the caller reads every row of the group parameter
	decls  []string
	// setup is what runs before the arms' query, given the exclude of
	// the arms before this one.
	setup func(earlier []string) block
	// query selects the kind's rows of a page, ordered by the key and cut
	// at a page, leaving out those of the arms before it.
	query   func(earlier []string) string
	ordered bool   // query alone is a page (no union, no sort)
	exclude string // leaves this arm's rows out of the arms after it
	inGroup block  // its walk of the rows of the group parameter
	// groupFilter: its rows in one group have no walk of their own; a
	// caller who does not read the whole group gets the group's rows
	// walked under the policies (instead of the arms' inGroup walks).
	groupFilter bool
	// groupSetup and groupQuery are inGroup as a setup and a query, for a
	// page of one group that merges several arms' rows in it (inGroup is
	// that page when one arm alone has rows there).
	groupSetup block
	groupQuery func(earlier []string) string
	// teardown runs after the page's query (the main path, not one group's).
	teardown block
}

// andEach is "\n<indent>and <condition>" for each condition.
func andEach(conditions []string, indent string) string {
	s := ""
	for _, e := range conditions {
		s += "\n" + indent + "and " + e
	}
	return s
}

func pageBody(c *pageContext, arms []*pageArm, everyone bool, before string) block {
	var body block
	body.addIf(fmt.Sprintf("%s is null or %s < 1 or %s > %d", c.size, c.size, c.size, MaxPageSize), block{fmt.Sprintf(`raise exception using errcode = '22023',
    message = 'page_size must be between 1 and %d',
    detail = pg_catalog.format('page_size is %%s.', coalesce(%s::text, 'null')),
    hint = 'Ask for at most %d rows; for the next page pass the last row''s %s as before.';`,
		MaxPageSize, c.size, MaxPageSize, strings.ReplaceAll(c.r.PageKey, "'", "''"))}, nil)
	body.add("page.before_key := coalesce(%s, %d);", before, int64(maxBigint))
	if c.tenant != nil {
		body.add("%s", c.tenant.pageSetup())
	}
	if c.groupParam != "" {
		body.addIf(c.groupParam+" is not null", append(oneGroup(c, arms, everyone), "return;"), nil)
	}
	if c.parentParam != "" {
		// The children of one parent row (the products of one store): one
		// walk of the (fk, key) index; the policies decide each row.
		body.addIf(c.parentParam+" is not null", block{
			c.walk(fmt.Sprintf("%s = %s\n      and ", String(c.col(c.r.Parent.Column)), c.parentParam)), "return;"}, nil)
	}
	if everyone {
		return append(body, c.walk(""))
	}
	for _, a := range arms {
		if a.bypass != "" {
			body.addIf(a.bypass, block{c.walk(""), "return;"}, nil)
		}
	}
	// Each arm leaves out the rows of the arms before it: disjoint arms.
	var earlier, queries []string
	single := false
	for _, a := range arms {
		if a.query == nil {
			continue
		}
		if a.setup != nil {
			body = append(body, a.setup(earlier)...)
		}
		queries = append(queries, a.query(earlier))
		single = a.ordered
		if a.exclude != "" {
			earlier = append(earlier, a.exclude)
		}
	}
	var teardown block
	for _, a := range arms {
		teardown = append(teardown, a.teardown...)
	}
	if len(queries) == 1 && single {
		// One arm in order and cut already.
		return append(append(body, "return query\n"+indentBy(queries[0], 1)+";"), teardown...)
	}
	// A page from each arm: the newest of all.
	var parts []string
	for _, q := range queries {
		parts = append(parts, indentBy("(\n"+q+")", 1))
	}
	body.add("return query\nselect p.* from (\n%s\n) p\norder by p.%s desc\nlimit %s;",
		strings.Join(parts, "\n    union all\n"), c.key, c.size)
	return append(body, teardown...)
}

// oneGroup is the branch for a page of one group: its (group, key) index
// in order, for a caller who reads the whole group; anyone else sees only
// the arms' rows in it (their own, read from their (owner, key) index), so
// the walk follows what the caller sees, not the group's size (the group
// is a filter there: as an index condition the planner might walk the
// group instead).
func oneGroup(c *pageContext, arms []*pageArm, everyone bool) block {
	groupWalk := block{c.walk(fmt.Sprintf("%s = %s\n      and ", String(c.col(c.r.GroupColumn)), c.groupParam))}
	if everyone {
		return groupWalk
	}
	var readers []string
	var own block
	filtered := false
	var walkers []*pageArm // the arms with rows of their own in the group
	for _, a := range arms {
		if a.bypass != "" {
			readers = append(readers, a.bypass)
		}
	}
	for _, a := range arms {
		if a.reader != "" {
			readers = append(readers, a.reader)
		}
		if a.inGroup != nil {
			walkers = append(walkers, a)
		}
		own = append(own, a.inGroup...)
		filtered = filtered || a.groupFilter
	}
	switch {
	case filtered:
		own = groupWalk
	case len(walkers) > 1:
		own = mergedGroupWalks(c, walkers)
	}
	if len(readers) == 0 {
		return own
	}
	var branch block
	branch.addIf(strings.Join(readers, " or "), groupWalk, own)
	return branch
}

// mergedGroupWalks is a page of one group for a caller who reads only
// some of its rows, through several arms (their own, those shared with
// them): each arm's newest rows in the group, disjoint, then the newest of
// all.
func mergedGroupWalks(c *pageContext, arms []*pageArm) block {
	var b block
	var earlier, parts []string
	for _, a := range arms {
		b = append(b, a.groupSetup...)
		parts = append(parts, indentBy("(\n"+a.groupQuery(earlier)+")", 1))
		if a.exclude != "" {
			earlier = append(earlier, a.exclude)
		}
	}
	b.add("return query\nselect p.* from (\n%s\n) p\norder by p.%s desc\nlimit %s;",
		strings.Join(parts, "\n    union all\n"), c.key, c.size)
	return b
}

// pageFunction is the function and its comment and grants around a body.
func pageFunction(c *pageContext, name string, params, types, decls []string, body string) []Statement {
	m, r, table := c.m, c.r, c.table
	fn := PageFunctionName(r)
	declare := "declare\n" + block(decls).text(1) + "\n"
	signature := fmt.Sprintf("%s(%s)", name, strings.Join(types, ", "))
	// A role limited to some columns (column rules) cannot read the whole
	// rows the function returns: it is not granted it.
	var roles []string
	if _, limited := r.ReadColumns(false); !limited {
		roles = append(roles, quoteIdent(m.Roles.Authenticated))
	}
	if _, limited := r.ReadColumns(true); r.Can(lang.AnonymousSubject{}, lang.Read) && !m.Roles.Single && !limited {
		roles = append(roles, quoteIdent(m.Roles.Anonymous))
	}
	doc := fmt.Sprintf(PageCommentPrefix+"%s, %s:%d): GET /rpc/%s?before=<%s>&page_size=<1..%d>", r.PageKey, r.PagePos.Filename, r.PagePos.Line, fn, r.PageKey, MaxPageSize)
	if r.GroupColumn != "" {
		doc += fmt.Sprintf("&%s=<group>", r.GroupColumn)
	}
	if r.Parent != nil {
		doc += fmt.Sprintf("&%s=<%s>", r.Parent.Column, r.Parent.Resource.Table)
	}
	doc += fmt.Sprintf(" returns the rows of %s the caller may read, newest %s first: the rows of the table ordered by %s desc with the same filters, read with one index walk per policy arm.", r.QualifiedName(), r.PageKey, r.PageKey)
	out := []Statement{
		{
			Why: fmt.Sprintf("List pages by %s: the policy is a filter, so /%s?order=%s.desc&limit=50 reads every row the caller can see and sorts them; "+
				"this walks the (column, %s) indexes once per policy arm and stops after a page. It runs as the caller, so RLS still decides every row. "+
				"Bitmap scans, parallel workers and JIT are off inside (none of them can stop after a page), and its plans are generic: planned once per connection, not per call.", r.PageKey, r.Table, r.PageKey, r.PageKey),
			SQL: fmt.Sprintf("create or replace function %s(%s)\n    returns setof %s\n    language plpgsql stable security invoker\n"+
				"    set search_path = pg_catalog, pg_temp\n    set enable_bitmapscan = off\n    set max_parallel_workers_per_gather = 0\n    set jit = off\n    set plan_cache_mode = force_generic_plan\n"+
				"as $fn$\n<<page>>\n%sbegin\n%s\nend\n$fn$;",
				name, strings.Join(params, ", "), table, declare, body),
			Object: &Object{Kind: ObjectFunction, Schema: r.Schema, Name: fn},
		},
		{SQL: fmt.Sprintf("comment on function %s is %s;", signature, quoteLiteral(doc))},
		{Why: "Only the roles that may read the table may call it.",
			SQL: fmt.Sprintf("revoke all on function %s from public, %s;", signature, runtimeRoles(m))},
	}
	if len(roles) > 0 {
		out = append(out, Statement{SQL: fmt.Sprintf("grant execute on function %s to %s;", signature, strings.Join(roles, ", "))})
	}
	return out
}
