// Package compiler turns a checked policy model into SQL: the iam runtime,
// and for every resource its RLS policies, grants, trigger and index.
// It knows SQL and never the command line.
package compiler

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/stdlib"
)

// Statement is one generated SQL statement and the comment that explains it.
type Statement struct {
	Why    string  // comment lines printed above the statement, may be empty
	SQL    string  // exactly one statement, ending in ';'
	Object *Object // what it creates or replaces; nil for grants, comments, settings
}

// Section is a group of statements under a header: the runtime, or one
// resource.
type Section struct {
	Header     []string
	Resource   *lang.ResourceModel // nil for the runtime section
	Statements []Statement
}

// Output is everything `iamc build` emits, in order.
type Output struct {
	Model    *lang.Model
	Sources  []string // the .iam files it was built from
	Sections []*Section
}

// commands maps a permission to the SQL command its policy is for.
var commands = []struct {
	perm lang.Perm
	cmd  string
}{
	{lang.Read, "select"},
	{lang.Create, "insert"},
	{lang.Write, "update"},
	{lang.Delete, "delete"},
}

// Audiences of a policy: who the request runs as.
const (
	audienceAuthenticated = "authenticated"
	audienceAnonymous     = "anonymous"
)

// Build generates the SQL for a model and verifies every statement with a
// pg_query round-trip. sources are the files the model came from.
func Build(m *lang.Model, sources []string) (*Output, error) {
	out := generate(m, sources)
	if err := roundTripAll(append([]*Section{{Statements: out.Preamble()}}, out.Sections...)); err != nil {
		return nil, fmt.Errorf("compiler bug: generated SQL does not round-trip (please report it): %w", err)
	}
	return out, nil
}

// generate writes the SQL without verifying it (Build verifies).
func generate(m *lang.Model, sources []string) *Output {
	out := &Output{Model: m, Sources: sources}
	indexes := indexNames{}
	for _, r := range m.Resources {
		// Indexes share their schema's namespace with tables: an index
		// named like a resource table would fail to be created.
		indexes.reserve(r.Schema, r.Table)
	}
	out.Sections = append(out.Sections, runtimeSection(m))
	if m.Groups.Declared {
		out.Sections = append(out.Sections, groupAPISection(m))
	}
	for _, r := range m.Resources {
		out.Sections = append(out.Sections, resourceSection(m, r, indexes))
	}
	return out
}

// roundTripAll checks every statement, on every CPU: the parser is the
// cost of a build, and statements are independent. The error reported is
// the first failing statement in script order, whatever finished first.
func roundTripAll(sections []*Section) error {
	var stmts []string
	for _, s := range sections {
		for _, st := range s.Statements {
			stmts = append(stmts, st.SQL)
		}
	}
	errs := make([]error, len(stmts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = RoundTrip(stmts[i])
			}
		}()
	}
	for i := range stmts {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func runtimeSection(m *lang.Model) *Section {
	s := &Section{Header: []string{
		fmt.Sprintf("iam runtime, version %d (embedded in iamc: stdlib/runtime.sql, with the steps of stdlib/migrations)", stdlib.Version),
	}}
	for _, stmt := range splitStatements(stdlib.Runtime) {
		s.Statements = append(s.Statements, Statement{SQL: stmt, Object: describe(stmt)})
	}
	roles, g := m.Roles, m.Groups
	upsertRoles, pruneRoles := groupRoles(m)
	s.Statements = append(s.Statements, upsertRoles)
	s.Statements = append(s.Statements, roleExtras(m)...)
	s.Statements = append(s.Statements,
		Statement{
			Why: "The settings of the .iam files, read by the helpers (which claim is the user id, the token's audience and expiry, token groups, admin role, the group API's quotas).",
			SQL: fmt.Sprintf("insert into iam.settings (singleton, identity_claim, identity_type, audience, expiry_required, token_groups_claim, token_group_role, admin_role, "+
				"max_groups_created_per_user, max_groups_per_user, max_members_per_group, max_invitations_per_group, "+
				"username_claim, email_claim, name_claim, members_see_email)\n"+
				"values (true, %s, %s, %s, %t, %s, %s, %s, %d, %d, %d, %d, %s, %s, %s, %t)\n"+
				"on conflict (singleton) do update set identity_claim = excluded.identity_claim, identity_type = excluded.identity_type, "+
				"audience = excluded.audience, expiry_required = excluded.expiry_required, "+
				"token_groups_claim = excluded.token_groups_claim, token_group_role = excluded.token_group_role, admin_role = excluded.admin_role, "+
				"max_groups_created_per_user = excluded.max_groups_created_per_user, max_groups_per_user = excluded.max_groups_per_user, "+
				"max_members_per_group = excluded.max_members_per_group, max_invitations_per_group = excluded.max_invitations_per_group, "+
				"username_claim = excluded.username_claim, email_claim = excluded.email_claim, name_claim = excluded.name_claim, "+
				"members_see_email = excluded.members_see_email;",
				quoteLiteral(m.Identity.Claim), quoteLiteral(string(m.Identity.Type)),
				literalOrNull(m.Identity.Audience), !m.Identity.ExpiryOptional,
				literalOrNull(g.TokenClaim), literalOrNull(string(g.TokenRole)), literalOrNull(g.AdminRole),
				g.Limits.GroupsCreatedPerUser, g.Limits.GroupsPerUser, g.Limits.MembersPerGroup, g.Limits.InvitationsPerGroup,
				literalOrNull(g.Profile.Username), literalOrNull(g.Profile.Email), literalOrNull(g.Profile.Name), g.MembersSeeEmail),
		},
		pruneRoles,
		Statement{
			Why: "Functions are executable by PUBLIC unless revoked; only the authenticated role may call the helpers policies and triggers use.",
			SQL: fmt.Sprintf("revoke all on all routines in schema iam from public, %s;", runtimeRoles(m)),
		},
		Statement{SQL: fmt.Sprintf("grant usage on schema iam to %s;", quoteIdent(roles.Authenticated))},
		Statement{SQL: fmt.Sprintf("grant execute on function %s to %s;", strings.Join(stdlib.RequestFunctions, ", "), quoteIdent(roles.Authenticated))},
	)
	if !roles.Single {
		s.Statements = append(s.Statements, Statement{
			Why: "The optional db-pre-request (iam.check_request) runs for every request, anonymous ones too: both runtime roles may call it.",
			SQL: fmt.Sprintf("grant usage on schema iam to %s;", quoteIdent(roles.Anonymous)),
		})
	}
	s.Statements = append(s.Statements, Statement{SQL: fmt.Sprintf("grant execute on function %s to %s;", stdlib.PreRequestSignature, runtimeRoles(m))})
	return s
}

// groupAPISection exposes the group functions and views in the API schema
// PostgREST serves: thin SQL wrappers with the parameter names of the HTTP
// API over the checked iam functions.
func groupAPISection(m *lang.Model) *Section {
	api, user := m.Groups.APISchema, quoteIdent(m.Roles.Authenticated)
	g := m.Groups
	s := &Section{Header: []string{
		fmt.Sprintf("group API in schema %s (%s:%d)", api, g.Pos.Filename, g.Pos.Line),
		"  POST /rpc/create_group, /rpc/add_group_member, /rpc/remove_group_member,",
		"       /rpc/set_group_member_role, /rpc/leave_group, /rpc/delete_group",
		"  GET  /groups, /group_members",
	}}
	s.Header = append(s.Header, peopleHeader...)
	var object *Object // what the next statement creates
	add := func(why, format string, args ...any) {
		s.Statements = append(s.Statements, Statement{Why: why, SQL: fmt.Sprintf(format, args...), Object: object})
		object = nil
	}
	add("", "grant usage on schema %s to %s;", quoteIdent(api), user)
	add("Runtime 3's add_group_member took a user id only; runtime 4's also takes a username or an email (a new signature).",
		"drop function if exists %s(bigint, text, text);", qualify(api, "add_group_member"))
	var signatures []string
	for _, fn := range append(groupFunctions, peopleFunctions...) {
		// A member is added with the lowest role unless the call names one.
		fn.params = strings.Replace(fn.params, "default 'member'", "default "+quoteLiteral(string(g.Order().Lowest())), 1)
		// Who manages members, as the groups block says.
		fn.doc = strings.Replace(fn.doc, "owners and admins", holders(g), 1)
		name := qualify(api, fn.name)
		object = &Object{Kind: ObjectFunction, Schema: api, Name: fn.name}
		add(fn.why, "create or replace function %s(%s) returns %s\n    language sql volatile\n    set search_path = pg_catalog, pg_temp\nas $fn$select iam.%s(%s)$fn$;",
			name, fn.params, fn.returns, fn.name, fn.args)
		add("", "comment on function %s(%s) is %s;", name, fn.types, quoteLiteral(fn.doc))
		signatures = append(signatures, fmt.Sprintf("%s(%s)", name, fn.types))
	}
	add("The wrappers run as the caller and call these; each checks the caller's rights itself.",
		"grant execute on function %s to %s;", strings.Join(stdlib.APIFunctions, ", "), user)
	add("The wrappers run as the caller; the iam functions they call check every rule.",
		"revoke all on function %s from public, %s;", strings.Join(signatures, ", "), quoteIdent(m.Roles.Anonymous))
	add("", "grant execute on function %s to %s;", strings.Join(signatures, ", "), user)

	groups, members := qualify(api, "groups"), qualify(api, "group_members")
	object = &Object{Kind: ObjectView, Schema: api, Name: "groups"}
	add("The caller's groups and their role in each (token groups included). security_barrier: no filter runs before the membership check.",
		"create or replace view %s with (security_barrier) as\nselect g.id, g.name, mg.role as my_role, g.created_at\nfrom iam.groups g\njoin (select distinct on (m.group_id) m.group_id, m.role from iam.my_groups() m join iam.group_roles r on r.name = m.role order by m.group_id, r.rank desc) mg on mg.group_id = g.id;", groups)
	object = &Object{Kind: ObjectView, Schema: api, Name: "group_members"}
	add("The members of the caller's groups, nobody else's, with their username and name from the user directory (email only where the groups block says members see email).",
		"%s", groupMembersView(m, members))
	views := []string{groups, members}
	for _, v := range peopleViews(api) {
		object = &Object{Kind: ObjectView, Schema: api, Name: v.name}
		add(v.why, "%s", v.sql)
		views = append(views, qualify(api, v.name))
	}
	add("", "revoke all on table %s from public, %s;", strings.Join(views, ", "), runtimeRoles(m))
	add("", "grant select on table %s to %s;", strings.Join(views, ", "), user)
	return s
}

// groupFunctions is the group API: the HTTP parameter names, and the iam
// function each wraps.
var groupFunctions = []groupFunction{
	{"create_group", "name text", "text", "bigint", "name", "POST /rpc/create_group {\"name\"}",
		`POST /rpc/create_group {"name"}: creates a group and makes the caller its owner; returns the new id.`},
	{"add_group_member", "group_id bigint, user_id text default null, role text default 'member', username text default null, email text default null",
		"bigint, text, text, text, text", "void", "group_id, user_id, role, username, email", "",
		`POST /rpc/add_group_member {"group_id","user_id"|"username"|"email","role"}: owners and admins add members (only owners add owners); a username or email finds only people who share a group with the caller.`},
	{"remove_group_member", "group_id bigint, user_id text", "bigint, text", "void", "group_id, user_id", "",
		`POST /rpc/remove_group_member {"group_id","user_id"}: owners and admins remove members; admins cannot remove owners; the last owner stays.`},
	{"set_group_member_role", "group_id bigint, user_id text, role text", "bigint, text, text", "void", "group_id, user_id, role", "",
		`POST /rpc/set_group_member_role {"group_id","user_id","role"}: owners and admins change roles; only owners make or unmake owners; the last owner stays.`},
	{"leave_group", "group_id bigint", "bigint", "void", "group_id", "",
		`POST /rpc/leave_group {"group_id"}: the caller leaves the group, unless they are its last owner.`},
	{"delete_group", "group_id bigint", "bigint", "void", "group_id", "",
		`POST /rpc/delete_group {"group_id"}: owners delete the group; rows in it follow the foreign key iamc created (set null, or cascade when the group is required).`},
}

// groupFunction is one function of the group API: the HTTP parameter
// names, and the iam function of the same name it wraps.
type groupFunction struct {
	name, params, types, returns, args, why, doc string
}

func literalOrNull(s string) string {
	if s == "" {
		return "null"
	}
	return quoteLiteral(s)
}

// indexNames keeps the index names used per schema: two tables can join
// to the same <table>_<column> text (user + orders_owner, user_orders +
// owner), and `create index if not exists` would then quietly skip one.
type indexNames map[string]map[string]bool

// reserve marks a name as taken in a schema.
func (n indexNames) reserve(schema, name string) {
	if n[schema] == nil {
		n[schema] = map[string]bool{}
	}
	n[schema][name] = true
}

func (n indexNames) unique(schema string, parts ...string) string {
	if n[schema] == nil {
		n[schema] = map[string]bool{}
	}
	name := derivedName(parts...)
	if n[schema][name] {
		// The hash of the parts kept apart tells the two tables' names apart.
		name = derivedName(append(parts, hashSuffix(strings.Join(parts, "\x00")))...)
	}
	n[schema][name] = true
	return name
}

// resourceSection is one resource's statements, in script order: row
// security, its partitions' lockdown, grants, the indexes of the policy arms, the group foreign key,
// the owner default, the row guard, the policies and the page function.
func resourceSection(m *lang.Model, r *lang.ResourceModel, indexes indexNames) *Section {
	b := &resourceBuild{m: m, r: r, table: qualify(r.Schema, r.Table), indexes: indexes, rules: newRuleContext(m, r, "")}
	b.rowSecurity()
	b.lockPartitions()
	b.grants()
	b.armIndexes()
	b.groupForeignKey()
	if r.HasOwnerRules() {
		b.out = append(b.out, ownerDefault(m, r, b.table))
	}
	if t := b.rules.tenant; t != nil {
		b.out = append(b.out, t.columnDefault(r, b.table))
	}
	b.rowGuard()
	b.sharesBeforePolicies()
	b.policies()
	b.transfer()
	if r.PageKey != "" {
		b.out = append(b.out, pageStatements(m, r)...)
	}
	b.sharesAfterPolicies()
	return &Section{Resource: r, Header: resourceHeader(r), Statements: b.out}
}

// resourceBuild collects one resource's statements.
type resourceBuild struct {
	m       *lang.Model
	r       *lang.ResourceModel
	table   string // schema.table, quoted
	indexes indexNames
	rules   *ruleContext // the subject kinds present, columns unaliased
	out     []Statement
}

func (b *resourceBuild) add(why, format string, args ...any) {
	b.out = append(b.out, Statement{Why: why, SQL: fmt.Sprintf(format, args...)})
}

// create adds a statement that creates kind name on the resource's table.
func (b *resourceBuild) create(kind ObjectKind, name, why, format string, args ...any) {
	b.add(why, format, args...)
	b.out[len(b.out)-1].Object = &Object{Kind: kind, Schema: b.r.Schema, Name: name, Table: b.r.Table}
}

// policy is the condition of the audience's policy for a command, or ""
// when no subject grants it.
func (b *resourceBuild) policy(audience string, perm lang.Perm) string {
	arms := b.rules.arms(audience, perm)
	if len(arms) == 0 {
		return ""
	}
	return signedIn(b.m, audience, policyCondition(arms))
}

func (b *resourceBuild) rowSecurity() {
	b.add("Deny by default: with RLS on and forced, a row is visible only through a policy below, even to the table owner.",
		"alter table %s enable row level security;", b.table)
	b.add("", "alter table %s force row level security;", b.table)
}

// grants: exactly the commands some policy allows, per role.
func (b *resourceBuild) grants() {
	r, roles := b.r, b.m.Roles
	b.add("Grant exactly the commands the rules allow; everything else stays denied at the privilege level too.",
		"revoke all on table %s from public, %s;", b.table, runtimeRoles(b.m))
	var authCmds, anonCmds []string
	for _, c := range commands {
		auth, anon := b.policy(audienceAuthenticated, c.perm) != "", b.policy(audienceAnonymous, c.perm) != ""
		if roles.Single {
			// One role runs every request: it needs what either audience may do.
			auth, anon = auth || anon, false
		}
		// A read rule of anonymous or authenticated with a column list is
		// a grant of those columns (column rules).
		if auth {
			authCmds = append(authCmds, grantOf(c.cmd, r, false))
		}
		if anon {
			anonCmds = append(anonCmds, grantOf(c.cmd, r, true))
		}
	}
	authCmds = transferCommands(r, authCmds)
	for _, g := range []struct {
		role string
		cmds []string
	}{{roles.Authenticated, authCmds}, {roles.Anonymous, anonCmds}} {
		if len(g.cmds) == 0 {
			continue
		}
		b.add("", "grant usage on schema %s to %s;", quoteIdent(r.Schema), quoteIdent(g.role))
		b.add("", "grant %s on table %s to %s;", strings.Join(g.cmds, ", "), b.table, quoteIdent(g.role))
	}
	if b.policy(audienceAuthenticated, lang.Create) != "" {
		b.add("serial columns need USAGE on their sequence to insert (identity columns need nothing).",
			"call iam.grant_serial_sequences(%s::regclass, %s);", quoteLiteral(b.table), quoteLiteral(roles.Authenticated))
	}
}

// grantOf is the privilege of a command for a runtime role: select may be
// on some columns only.
func grantOf(cmd string, r *lang.ResourceModel, anonymous bool) string {
	if cmd == "select" {
		return selectGrant(r, anonymous)
	}
	return cmd
}

// armIndexes creates the index of each column a policy arm compares.
func (b *resourceBuild) armIndexes() {
	for _, need := range Columns(b.m, b.r) {
		if !need.Index {
			continue
		}
		where := ""
		if need.Partial {
			where = fmt.Sprintf(" where %s is not null", quoteIdent(need.Column))
		}
		b.index(need, where)
	}
}

// index creates the index of a policy arm's column; with a page key it is
// (column, key), so that the page function walks it in key order (it
// serves the policy's column = ... just the same), and the single-column
// index an earlier build made goes.
//
// With a tenant the index leads with the tenant column, and the one the
// build made without it goes too.
func (b *resourceBuild) index(need ColumnNeed, where string) {
	r, column, why := b.r, need.Column, need.IndexWhy
	cols := quoteIdent(column)
	name := b.indexes.unique(r.Schema, r.Table, column, IndexSuffix)
	var drops []Statement
	if r.PageKey != "" {
		single := name
		name = b.indexes.unique(r.Schema, r.Table, column, r.PageKey, IndexSuffix)
		cols += ", " + quoteIdent(r.PageKey)
		why += fmt.Sprintf(" It ends with the page key %s: the page function walks it in that order.", r.PageKey)
		drops = append(drops, Statement{Why: fmt.Sprintf("The (%s, %s) index above serves everything the single-column one did.", column, r.PageKey),
			SQL: fmt.Sprintf("drop index if exists %s;", qualify(r.Schema, single))})
	}
	if need.Lead != "" {
		without := name
		parts := append([]string{r.Table}, need.IndexColumns(r)...)
		name = b.indexes.unique(r.Schema, append(parts, IndexSuffix)...)
		cols = quoteIdent(need.Lead) + ", " + cols
		drops = append(drops, Statement{Why: fmt.Sprintf("The (%s) index above serves everything the one without the tenant column did.", strings.Join(need.IndexColumns(r), ", ")),
			SQL: fmt.Sprintf("drop index if exists %s;", qualify(r.Schema, without))})
	}
	b.create(ObjectIndex, name, why, "create index if not exists %s on %s (%s)%s;", quoteIdent(name), b.table, cols, where)
	b.out = append(b.out, drops...)
}

// groupForeignKey: a row's group must exist in iam.groups.
func (b *resourceBuild) groupForeignKey() {
	r := b.r
	if r.GroupColumn == "" {
		return
	}
	fk := GroupForeignKeyName(r)
	action, _ := GroupDeleteAction(r)
	why := "A row's group must exist; when the group is deleted its rows go back to their owners only (set null)."
	if r.GroupRequired {
		why = "A row's group must exist; rows of a required group are deleted with the group (cascade)."
	}
	b.create(ObjectConstraint, fk, why, "do $do$\nbegin\n    if not exists (select from pg_catalog.pg_constraint where conrelid = %s::regclass and conname = %s) then\n"+
		"        alter table %s add constraint %s foreign key (%s) references iam.groups (id) on delete %s;\n    end if;\nend\n$do$;",
		quoteLiteral(b.table), quoteLiteral(fk), b.table, quoteIdent(fk), quoteIdent(r.GroupColumn), action)
}

// rowGuard: the trigger that fills and fixes the owner and checks group
// moves, or its removal when there is nothing to guard.
func (b *resourceBuild) rowGuard() {
	r := b.r
	t := b.rules.tenant
	if !r.HasOwnerRules() && r.GroupColumn == "" && t == nil && !r.HasWriteColumns() {
		b.add("No owner or group column: no row guard.", "drop trigger if exists %s on %s;", GuardTrigger, b.table)
		return
	}
	var cols []string
	ownerArg, groupArg, required := "", "", ""
	if r.HasOwnerRules() {
		cols, ownerArg = append(cols, quoteIdent(r.OwnerColumn)), r.OwnerColumn
	}
	if r.GroupColumn != "" {
		cols, groupArg = append(cols, quoteIdent(r.GroupColumn)), r.GroupColumn
		if r.GroupRequired {
			required = "required"
		}
	}
	args := []string{quoteLiteral(ownerArg), quoteLiteral(groupArg), quoteLiteral(string(r.GroupMinRole(lang.Create))), quoteLiteral(required)}
	why := "Fill the owner from the JWT on insert and refuse a forged one; keep it fixed; let rows into a group only with the create role there, " +
		"and let only the owner move them (RLS cannot compare old and new rows, a trigger can)."
	if t != nil {
		cols, args = append(cols, quoteIdent(t.column)), append(args, t.guardArgs()...)
		if ownerArg == "" && groupArg == "" {
			why = "Fill the tenant from the JWT on insert, refuse another, and keep it fixed (RLS cannot compare old and new rows, a trigger can)."
		} else {
			why += " Fill the tenant from the JWT on insert, refuse another, and keep it fixed."
		}
	}
	if r.HasWriteColumns() {
		if t == nil {
			args = append(args, quoteLiteral(""), quoteLiteral("{}")) // no tenant
		}
		b.columnGuard(why, args)
		return
	}
	b.create(ObjectTrigger, GuardTrigger, why,
		"create or replace trigger %s\n    before insert or update of %s on %s\n    for each row execute function iam.guard_row(%s);",
		GuardTrigger, strings.Join(cols, ", "), b.table, strings.Join(args, ", "))
}

// columnGuard is the row guard of a resource with write lists: it fires
// on every update (any column may be one a subject may not change) and
// notes the columns each update changes beyond those every writer may
// (arguments: the six of guard_row, the tenant's ” and '{}' without one,
// then 'columns' and those columns).
func (b *resourceBuild) columnGuard(why string, args []string) {
	args = append(args, quoteLiteral("columns"))
	for _, col := range b.r.FreeColumns() {
		args = append(args, quoteLiteral(col))
	}
	b.create(ObjectTrigger, GuardTrigger, why+" With column rules, on every update: note which columns it changes beyond those every writer may change (after 'columns'); "+
		"the update policy refuses a change its rules do not allow on the row.",
		"create or replace trigger %s\n    before insert or update on %s\n    for each row execute function iam.guard_row(%s);",
		GuardTrigger, b.table, strings.Join(args, ", "))
	b.add("The update policy checks the columns an update changes with this, as the caller.",
		"grant execute on function %s to %s;", CheckColumnsSignature, quoteIdent(b.m.Roles.Authenticated))
}

// policies: drop every name iamc may have used, then create today's.
func (b *resourceBuild) policies() {
	roles := b.m.Roles
	for i, name := range PolicyNames() {
		why := ""
		if i == 0 {
			why = "Policies are replaced as a set: drop every policy name iamc uses, then create the ones the rules call for."
		}
		b.add(why, "drop policy if exists %s on %s;", quoteIdent(name), b.table)
	}
	for _, c := range commands {
		for _, aud := range []struct{ name, role string }{{audienceAuthenticated, roles.Authenticated}, {audienceAnonymous, roles.Anonymous}} {
			if cond := b.policy(aud.name, c.perm); cond != "" {
				check := cond
				if c.perm == lang.Write && b.r.HasWriteColumns() {
					// Column rules: the columns the row guard saw change.
					check = fmt.Sprintf("(%s)\n        and %s", cond, String(b.columnCheck()))
				}
				b.out = append(b.out, policy(b.rules, b.table, aud.name, aud.role, c.cmd, cond, check, c.perm)...)
				b.out[len(b.out)-2].Object = &Object{Kind: ObjectPolicy, Schema: b.r.Schema, Name: PolicyName(aud.name, c.cmd), Table: b.r.Table}
			}
		}
	}
}

// ownerDefault gives the owner column a default, the caller's id, so that
// PostgREST's OpenAPI document shows it as the column's "default" and
// clients see they may leave it out. (PostgREST 12 still lists the column
// in "required": it lists every NOT NULL column, defaulted or not, as it
// does id and created_at; iamc does not drop a NOT NULL the application
// declared.) The row guard still decides: it refuses any other id. A default is iamc's
// when it calls a function of schema iam (pg_depend: an earlier build's,
// perhaps for another identity type or claim); one the table
// already had is the application's and is kept, with a WARNING (psql
// prints it; the build's notices below warning are silenced), rather than
// overwritten without a word: the guard refuses any value but the caller's
// id, so keeping it changes no rule.
func ownerDefault(m *lang.Model, r *lang.ResourceModel, table string) Statement {
	return iamDefault(table, r.OwnerColumn, String(userID(m.Identity)),
		"The owner column defaults to the caller's id, which PostgREST's OpenAPI shows as its default: clients see they may leave it out (the row guard still decides). "+
			"A default the table already had, one that calls no iam function, is kept with a warning.",
		"iamc did not set its default (the caller''s id); the row guard still refuses an owner other than the caller.")
}

// iamDefault sets a column's default to expr (a call of the runtime), or
// keeps, with a WARNING saying so, a default the application set (one that
// calls no function of schema iam). detail is the warning's DETAIL, a SQL
// literal's text.
func iamDefault(table, column, expr, why, detail string) Statement {
	return Statement{
		Why: why,
		SQL: fmt.Sprintf(`do $do$
begin
    if exists (
        select from pg_catalog.pg_attrdef d
        join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
        where d.adrelid = %[1]s::pg_catalog.regclass and a.attname = %[2]s
          and not exists (
              select from pg_catalog.pg_depend k
              join pg_catalog.pg_proc p on p.oid = k.refobjid
              where k.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass and k.objid = d.oid
                and k.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                and p.pronamespace = 'iam'::pg_catalog.regnamespace)) then
        raise warning using
            message = %[3]s,
            detail = '%[8]s',
            hint = %[4]s;
    else
        alter table %[5]s alter column %[6]s set default %[7]s;
    end if;
end
$do$;`,
			quoteLiteral(table), quoteLiteral(column),
			quoteLiteral(fmt.Sprintf("%s.%s keeps its own default", table, quoteIdent(column))),
			quoteLiteral(fmt.Sprintf("To have iamc fill it: alter table %s alter column %s drop default; and apply the build again.", table, quoteIdent(column))),
			table, quoteIdent(column), expr, detail),
	}
}

func policy(c *ruleContext, table, audience, role, cmd, cond, check string, perm lang.Perm) []Statement {
	name := quoteIdent(PolicyName(audience, cmd))
	var clause string
	switch cmd {
	case "insert":
		clause = fmt.Sprintf("with check (%s)", cond)
	case "update":
		clause = fmt.Sprintf("using (%s)\n    with check (%s)", cond, check)
	default:
		clause = fmt.Sprintf("using (%s)", cond)
	}
	why := policyWhy(c, audience, perm)
	return []Statement{
		{SQL: fmt.Sprintf("create policy %s on %s\n    as permissive for %s to %s\n    %s;", name, table, cmd, quoteIdent(role), clause)},
		{SQL: fmt.Sprintf("comment on policy %s on %s is %s;", name, table, quoteLiteral(why))},
	}
}

// policyWhy cites the rules a policy comes from, for the DBA reading \d+:
// the rules of its audience that grant perm, in file order (an anonymous
// read rule opens the rows to signed-in callers too), then what the kinds
// add.
func policyWhy(c *ruleContext, audience string, perm lang.Perm) string {
	var cites []string
	for _, rule := range c.r.Rules {
		anonymous := rule.Subject.Anonymous()
		if anonymous != (audience == audienceAnonymous) && !(anonymous && perm == lang.Read) {
			continue
		}
		for _, p := range rule.Perms {
			if p == perm {
				cites = append(cites, fmt.Sprintf("%s can %s (%s:%d)", rule.Subject, p, rule.Pos.Filename, rule.Pos.Line))
			}
		}
	}
	for _, k := range c.kinds {
		cites = append(cites, k.cites(c, audience, perm)...)
	}
	return "iamc: " + strings.Join(cites, "; ")
}

func resourceHeader(r *lang.ResourceModel) []string {
	h := []string{fmt.Sprintf("resource %s (%s:%d)", qualify(r.Schema, r.Table), r.Pos.Filename, r.Pos.Line)}
	if r.OwnerColumn != "" {
		h = append(h, "  owner column "+quoteIdent(r.OwnerColumn))
	}
	if r.GroupColumn != "" {
		g := "  group column " + quoteIdent(r.GroupColumn)
		if r.GroupRequired {
			g += " required"
		}
		h = append(h, g)
	}
	if r.PageKey != "" {
		h = append(h, "  page by "+quoteIdent(r.PageKey))
	}
	if t := r.Tenant; t != nil {
		h = append(h, fmt.Sprintf("  tenant column %s from claim %s", quoteIdent(t.Column), quoteLiteral(t.Claim)))
	}
	for _, rule := range r.Rules {
		perms := make([]string, len(rule.Perms))
		for i, p := range rule.Perms {
			perms[i] = string(p)
		}
		h = append(h, fmt.Sprintf("  %s can %s  (line %d)", rule.Subject, strings.Join(perms, ", "), rule.Pos.Line))
	}
	return h
}

// Compile is `iamc build DIR` in process, the one way from policy files to
// SQL (the CLI, the demo, the benchmark and the tests all use it): every
// .iam file of dir (or the one file dir names) parsed, checked and built.
// Problems in the files come back as a lang.ErrorList (file:line:col each);
// a directory that cannot be read, as another error.
func Compile(dir string) (*Output, error) {
	files, err := lang.ParseDir(dir)
	if err != nil {
		return nil, err
	}
	return CompileFiles(files)
}

// CompileFiles checks and builds files already parsed; their names are the
// sources the script's header names.
func CompileFiles(files []*lang.File) (*Output, error) {
	model, err := lang.Check(files)
	if err != nil {
		return nil, err
	}
	sources := make([]string, len(files))
	for i, f := range files {
		sources[i] = f.Name
	}
	return Build(model, sources)
}
