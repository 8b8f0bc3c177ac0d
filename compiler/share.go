package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// Row shares (SPEC §21): `share by id with users, groups` gives a resource
// a share table in schema iam, the definer helpers the policies read it
// through, and a share API (share, unshare, list) in the groups block's
// API schema. The shared subject kind (subject_shared.go) is its arm of
// the resource's policies and page function.
//
// Who may share is a policy too: the share table has row-level security,
// and its insert policy is the resource's own conditions (who may share
// the row, and whether the sharer holds each permission the share
// grants), read from the same subject kinds as the resource's policies.
// The API functions run as the caller, check the same in order to answer
// with a clear error, and insert under those policies.

// shareSchema holds the share tables and their helpers: not served by
// PostgREST, owned by the owner role.
const shareSchema = "iam"

// ShareCommentPrefix starts the comment of every function a `share` item
// makes (the helpers in iam, the API): iamc apply drops those the files no
// longer declare by it.
const ShareCommentPrefix = "iamc (share by "

// ShareTableName is the share table of a resource, in schema iam:
// <schema>_<table>_shares.
func ShareTableName(r *lang.ResourceModel) string { return derivedName(r.Schema, r.Table, "shares") }

// SharedFunctionName is the helper the policies call for the caller's
// shared row ids: iam.<schema>_<table>_shared(perm).
func SharedFunctionName(r *lang.ResourceModel) string {
	return derivedName(r.Schema, r.Table, "shared")
}

// SharedPageFunctionName is the helper the page function calls for the
// newest page of the caller's shared row ids.
func SharedPageFunctionName(r *lang.ResourceModel) string {
	return derivedName(r.Schema, r.Table, "shared_page")
}

// ShareHintSetting is the transaction-local setting a statement that reads
// only some rows (the page function's shared arm) sets to their ids, so
// that the policies' shared arm reads the caller's shares among them only
// instead of all of them. It can only narrow: the helper answers the
// caller's shares that are in the hint.
func ShareHintSetting(r *lang.ResourceModel) string {
	return "iam." + derivedName(r.Schema, r.Table, "shared_hint")
}

// ShareQuotaFunctionName is the trigger function that keeps a share table
// within its quotas (max shares per row and per recipient).
func ShareQuotaFunctionName(r *lang.ResourceModel) string {
	return derivedName(r.Schema, r.Table, "share_quota")
}

// ShareQuotaTrigger is the trigger on a share table that calls it.
const ShareQuotaTrigger = "iam_share_quota"

// ShareAuditFunctionName is the trigger function that records each share
// made and removed in the audit trail (share.grant, share.revoke).
func ShareAuditFunctionName(r *lang.ResourceModel) string {
	return derivedName(r.Schema, r.Table, "share_audit")
}

// ShareAuditTrigger is the trigger on a share table that calls it.
const ShareAuditTrigger = "iam_share_audit"

// ShareTriggers are the triggers iamc puts on a share table.
var ShareTriggers = []string{ShareQuotaTrigger, ShareAuditTrigger}

// ShareAPINames are the share API's functions in the API schema:
// <table>_share, <table>_unshare and <table>_shares.
func ShareAPINames(r *lang.ResourceModel) (share, unshare, list string) {
	return derivedName(r.Table, "share"), derivedName(r.Table, "unshare"), derivedName(r.Table, "shares")
}

// ShareTablePolicies are the policy names iamc gives a share table: the
// authenticated role's, and the owner role's read (the definer helpers
// run as the owner, and the table's row security is forced).
var ShareTablePolicies = []struct{ Audience, Command string }{
	{audienceAuthenticated, "select"}, {audienceAuthenticated, "insert"}, {audienceAuthenticated, "delete"}, {"owner", "select"},
}

// sharedCall is the caller's shared row ids granting perm:
// iam.app_todos_shared('read').
func sharedCall(r *lang.ResourceModel, perm lang.Perm) Call {
	return Call{Fn: qualify(shareSchema, SharedFunctionName(r)), Args: []Expr{Raw(quoteLiteral(string(perm)))}}
}

// Exists is exists (select from <table> <alias> where <where>).
type Exists struct {
	Table, Alias string
	Where        Expr
}

func (e Exists) write(w *exprWriter) {
	w.WriteString("exists (select from " + e.Table + " " + e.Alias + " where ")
	e.Where.write(w)
	w.WriteString(")")
}

// Not is not e.
type Not struct{ E Expr }

func (n Not) write(w *exprWriter) { w.WriteString("not "); n.E.write(w) }

// anyArm is the arms of a condition joined by or, in parentheses when
// there are several (nil when none, true when one holds for every row).
func anyArm(arms []Expr) Expr {
	if anyTrue(arms) {
		return True
	}
	switch len(arms) {
	case 0:
		return nil
	case 1:
		return arms[0]
	}
	or := make(Or, len(arms))
	for i, a := range arms {
		if and, ok := a.(And); ok {
			a = Paren{and}
		}
		or[i] = a
	}
	return Paren{or}
}

// andLines is a policy condition that is an and of parts, one a line.
func andLines(parts And) string {
	lines := make([]string, len(parts))
	for i, p := range parts {
		lines[i] = String(p)
	}
	return strings.Join(lines, "\n        and ")
}

// shareBuild writes a resource's share objects.
type shareBuild struct {
	*resourceBuild
	sh    lang.Shares
	store string       // the share table, qualified
	row   *ruleContext // the resource's conditions on alias t
	id    string       // the identity type: uuid or text
}

func (b *resourceBuild) shareBuild() *shareBuild {
	r := b.r
	return &shareBuild{resourceBuild: b, sh: r.Shares, store: qualify(shareSchema, ShareTableName(r)),
		row: newRuleContext(b.m, r, "t"), id: string(b.m.Identity.Type)}
}

// createIn adds a statement that creates kind name in schema (on table).
func (b *resourceBuild) createIn(kind ObjectKind, schema, name, table, why, format string, args ...any) {
	b.add(why, format, args...)
	b.out[len(b.out)-1].Object = &Object{Kind: kind, Schema: schema, Name: name, Table: table}
}

// sharesBeforePolicies: the share table, its indexes and the helpers the
// resource's policies call (they must exist before the policies).
func (b *resourceBuild) sharesBeforePolicies() {
	if !b.r.Shares.Declared {
		return
	}
	s := b.shareBuild()
	s.createTable()
	s.helpers()
}

// sharesAfterPolicies: the share table's policies and the share API.
func (b *resourceBuild) sharesAfterPolicies() {
	if !b.r.Shares.Declared {
		return
	}
	s := b.shareBuild()
	s.tablePolicies()
	s.api()
}

func (s *shareBuild) createTable() {
	r, name := s.r, ShareTableName(s.r)
	s.createIn(ObjectTable, shareSchema, name, "",
		fmt.Sprintf("Shares of %s rows (share by %s): one row per share, with a user or a group, granting read and, per share, write and delete. "+
			"Created once: iamc does not change an existing share table, and keeps it (and its shares) when the files no longer share the resource.", r.QualifiedName(), r.Shares.Key),
		`create table if not exists %s (
    row_id bigint not null references %s (%s) on delete cascade,
    user_id %s,
    group_id bigint references iam.groups (id) on delete cascade,
    can_write boolean not null default false,
    can_delete boolean not null default false,
    shared_by %s not null,
    shared_at timestamptz not null default now(),
    constraint one_recipient check (num_nonnulls(user_id, group_id) = 1)
);`, s.store, s.table, quoteIdent(r.Shares.Key), s.id, s.id)
	s.add("", "comment on table %s is %s;", s.store, quoteLiteral(fmt.Sprintf(
		"iamc: the shares of %s (share by %s, %s:%d). Written through the share API (%s), read by the policies through %s.",
		r.QualifiedName(), r.Shares.Key, r.Shares.Pos.Filename, r.Shares.Pos.Line,
		strings.Join(s.apiNames(), ", "), qualify(shareSchema, SharedFunctionName(r)))))
	for _, ix := range []struct{ cols, where, why string }{
		{"user_id, row_id", " where user_id is not null", "A user's shared rows, read once per statement by the policies (an index on (principal, row)); unique: one share per user and row."},
		{"group_id, row_id", " where group_id is not null", "A group's shared rows, likewise; unique: one share per group and row."},
		{"row_id", "", "The shares of a row: listed and counted by the share API, deleted with the row (the foreign key's cascade)."},
	} {
		unique := ""
		if ix.where != "" {
			unique = "unique "
		}
		idx := derivedName(name, strings.SplitN(ix.cols, ",", 2)[0], IndexSuffix)
		s.createIn(ObjectIndex, shareSchema, idx, name, ix.why, "create %sindex if not exists %s on %s (%s)%s;", unique, quoteIdent(idx), s.store, ix.cols, ix.where)
	}
	s.add("Deny by default, the owner role too: the definer helpers read it through their own policy, requests write it through the share API's.",
		"alter table %s enable row level security;", s.store)
	s.add("", "alter table %s force row level security;", s.store)
	s.add("The share API runs as the caller: it reads and writes the table under the policies below. No other privilege.",
		"revoke all on table %s from public, %s, %s;", s.store, quoteIdent(s.m.Roles.Authenticated), quoteIdent(s.m.Roles.Anonymous))
	s.add("", "grant select, insert, delete on table %s to %s;", s.store, quoteIdent(s.m.Roles.Authenticated))
}

// apiNames are the API functions as a caller writes them: app.todos_share, ...
func (s *shareBuild) apiNames() []string {
	share, unshare, list := ShareAPINames(s.r)
	api := s.m.Groups.APISchema
	return []string{qualify(api, share), qualify(api, unshare), qualify(api, list)}
}

// helpers: the definers that read the share table for the caller (its
// row security lets the owner role read; the runtime roles cannot).
func (s *shareBuild) helpers() {
	r, store := s.r, s.store
	user, groups := s.sh.Users, s.sh.Groups
	prefix := fmt.Sprintf("%s%s of %s, %s:%d): ", ShareCommentPrefix, s.sh.Key, r.QualifiedName(), s.sh.Pos.Filename, s.sh.Pos.Line)
	caller := fmt.Sprintf("caller %s := %s;", s.id, String(userID(s.m.Identity)))
	grant := func(signature string) {
		s.add("", "revoke all on function %s from public, %s, %s;", signature, quoteIdent(s.m.Roles.Authenticated), quoteIdent(s.m.Roles.Anonymous))
		s.add("", "grant execute on function %s to %s;", signature, quoteIdent(s.m.Roles.Authenticated))
	}

	// The caller's shared ids granting a permission: the shared arm of the
	// policies, once per statement. For read, an index-only range of the
	// (principal, row) indexes; the hint (below) narrows it.
	fn := SharedFunctionName(r)
	name := qualify(shareSchema, fn)
	perm := quoteIdent(fn) + ".perm"
	hintName := quoteLiteral(ShareHintSetting(r))
	ids := func(cond string) string {
		var parts []string
		if user {
			parts = append(parts, fmt.Sprintf("select s.row_id from %s s where s.user_id = shared.caller%s", store, cond))
		}
		if groups {
			parts = append(parts, fmt.Sprintf("select s.row_id from %s s where s.group_id = any (shared.caller_groups)%s", store, cond))
		}
		return "return array(\n    " + strings.Join(parts, "\n    union all\n    ") + ");"
	}
	decls := block{caller, "only_ids bigint[];"}
	var body block
	body.addIf(fmt.Sprintf("%s is null or %s not in ('read', 'write', 'delete')", perm, perm), block{fmt.Sprintf(`raise exception using errcode = '22023',
    message = pg_catalog.format('unknown share permission %%s', coalesce(%s, 'null')),
    detail = 'The shared arm of a policy asks for read, write or delete.',
    hint = 'A share grants read, write or delete.';`, perm)}, nil)
	body.addIf("shared.caller is null", block{"return '{}';"}, nil)
	if groups {
		decls = append(decls, "caller_groups bigint[];")
		body.add("shared.caller_groups := coalesce(%s, '{}');", String(groupIDs(lang.Member)))
	}
	grantsPerm := fmt.Sprintf(" and (%s = 'read' or %s = 'write' and s.can_write or %s = 'delete' and s.can_delete)", perm, perm, perm)
	body.add("-- A statement that reads only some rows may name them (the page function\n-- does): the answer is then the caller's shares among them. A hint can only\n-- narrow what the shares give, never widen it.\nshared.only_ids := nullif(pg_catalog.current_setting(%s, true), '')::bigint[];", hintName)
	// From the hint: one probe of the (principal, row) index per id (offset
	// 0 keeps the planner from joining the other way round: it cannot tell
	// that a user has 10,000 shares and reads them all).
	var hinted []string
	if user {
		hinted = append(hinted, fmt.Sprintf("select x.row_id from unnest(shared.only_ids) h (id)\n    cross join lateral (select s.row_id from %s s where s.user_id = shared.caller and s.row_id = h.id%s offset 0) x", store, grantsPerm))
	}
	if groups {
		hinted = append(hinted, fmt.Sprintf("select x.row_id from unnest(shared.only_ids) h (id)\n    cross join lateral (select s.row_id from %s s where s.row_id = h.id and s.group_id = any (shared.caller_groups)%s offset 0) x", store, grantsPerm))
	}
	body.addIf("shared.only_ids is not null", block{"return array(\n    " + strings.Join(hinted, "\n    union all\n    ") + ");"}, nil)
	body.addIf(perm+" = 'read'", block{ids("")}, nil)
	body = append(body, ids(grantsPerm))
	sig := name + "(text)"
	s.createIn(ObjectFunction, shareSchema, fn, "",
		fmt.Sprintf("The rows of %s shared with the caller "+s.how()+" whose share grants perm: the shared arm of the policies, once per statement (an InitPlan). "+
			"A definer: the share table is not readable by the runtime roles. It answers only about the caller.", r.QualifiedName()),
		"create or replace function %s(perm text) returns bigint[]\n    language plpgsql stable parallel unsafe security definer\n    set search_path = pg_catalog, pg_temp\nas $fn$\n<<shared>>\ndeclare\n%s\nbegin\n%s\nend\n$fn$;",
		name, decls.text(1), body.text(1))
	s.add("", "comment on function %s is %s;", sig, quoteLiteral(prefix+"[runtime-callable] The ids of the rows shared with the caller "+s.how()+" whose share grants perm (read, write or delete). Policies call it as (select ...) so it runs once per statement."))
	grant(sig)

	// The newest page of the caller's shared ids, for the page function.
	if r.PageKey == s.sh.Key {
		fn := SharedPageFunctionName(r)
		name := qualify(shareSchema, fn)
		param := func(p string) string { return quoteIdent(fn) + "." + p }
		before, size := param("before"), param("page_size")
		var parts []string
		if user {
			parts = append(parts, fmt.Sprintf("(select s.row_id from %s s\n     where s.user_id = page.caller and s.row_id < %s\n     order by s.row_id desc\n     limit %s)", store, before, size))
		}
		if groups {
			parts = append(parts, fmt.Sprintf("(select h.row_id from unnest(page.caller_groups) g (id)\n     cross join lateral (\n         select s.row_id from %s s\n         where s.group_id = g.id and s.row_id < %s\n         order by s.row_id desc\n         limit %s) h)", store, before, size))
		}
		decls := block{caller}
		var body block
		body.addIf("page.caller is null", block{"return '{}';"}, nil)
		if groups {
			decls = append(decls, "caller_groups bigint[];")
			body.add("page.caller_groups := coalesce(%s, '{}');", String(groupIDs(lang.Member)))
		}
		body.add("return array(\n    select p.row_id from (\n    %s\n    ) p\n    order by p.row_id desc\n    limit %s);", strings.Join(parts, "\n    union\n    "), size)
		sig := name + "(bigint, integer)"
		s.createIn(ObjectFunction, shareSchema, fn, "",
			fmt.Sprintf("The newest page of the ids of the rows of %s shared with the caller below a cursor: the shared arm of %s, one backward walk of the (principal, row) index per principal.",
				r.QualifiedName(), qualify(r.Schema, PageFunctionName(r))),
			"create or replace function %s(before bigint, page_size integer) returns bigint[]\n    language plpgsql stable parallel unsafe security definer\n    set search_path = pg_catalog, pg_temp\nas $fn$\n<<page>>\ndeclare\n%s\nbegin\n%s\nend\n$fn$;",
			name, decls.text(1), body.text(1))
		s.add("", "comment on function %s is %s;", sig, quoteLiteral(prefix+"[runtime-callable] The newest page_size ids below before of the rows shared with the caller "+s.how()+", newest first: the page function's shared arm."))
		grant(sig)
	}

	// The quotas, checked by a trigger: a definer (it counts shares the
	// caller cannot see) that no one can call as a function, so it answers
	// nobody about anyone's shares but by refusing this one.
	fn = ShareQuotaFunctionName(r)
	name = qualify(shareSchema, fn)
	perRow, perRecipient := s.sh.Limits.PerRow, s.sh.Limits.PerRecipient
	what := sqlText(r.QualifiedName())
	file := sqlText(fmt.Sprintf("%s:%d", s.sh.Pos.Filename, s.sh.Pos.Line))
	s.createIn(ObjectFunction, shareSchema, fn, "",
		fmt.Sprintf("The quotas of the shares of %s: max shares per row (%d) and per recipient (%d), one user or group. Each count is taken under a lock "+
			"(the row's, then the recipient's), so concurrent shares cannot pass a quota together. A definer trigger function: it counts shares the caller cannot see, and cannot be called otherwise.",
			r.QualifiedName(), perRow, perRecipient),
		`create or replace function %[1]s() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(%[2]s, new.row_id));
    if (select count(*) from (select from %[3]s s where s.row_id = new.row_id limit %[4]d) x) >= %[4]d then
        raise exception using errcode = 'PT429',
            message = pg_catalog.format('the row of %[6]s with %[8]s %%s has %[4]d shares, the most it may have', new.row_id),
            detail = 'The limit is max shares per row of %[6]s (%[7]s).',
            hint = 'Unshare it with someone first, or ask an administrator to raise the limit.';
    end if;
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(%[9]s || coalesce('user ' || new.user_id::text, 'group ' || new.group_id::text), 0));
    if (select count(*) from (
            select from %[3]s s
            where s.user_id = new.user_id or s.group_id = new.group_id
            limit %[5]d) x) >= %[5]d then
        raise exception using errcode = 'PT429',
            message = pg_catalog.format('%%s cannot receive more shares of %[6]s', coalesce('user ' || new.user_id::text, 'group ' || new.group_id::text)),
            detail = 'The limit is max shares per recipient of %[6]s (%[7]s).',
            hint = 'A user can remove shares made to them; or ask an administrator to raise the limit.';
    end if;
    return new;
end
$fn$;`, name, quoteLiteral("iamc share "+r.QualifiedName()), store, perRow, perRecipient, what, file, sqlText(s.sh.Key), quoteLiteral("iamc share "+r.QualifiedName()+" with "))
	sig = name + "()"
	s.add("", "comment on function %s is %s;", sig, quoteLiteral(prefix+"Keeps the share table within max shares per row and per recipient (a trigger; PT429 past either)."))
	s.add("A trigger function runs only as a trigger; nobody needs EXECUTE.",
		"revoke all on function %s from public, %s, %s;", sig, quoteIdent(s.m.Roles.Authenticated), quoteIdent(s.m.Roles.Anonymous))
	s.createIn(ObjectTrigger, shareSchema, ShareQuotaTrigger, ShareTableName(r), "",
		"create or replace trigger %s\n    before insert on %s\n    for each row execute function %s();", ShareQuotaTrigger, store, name)

	// The audit trail (§11): a share made or removed is a change of who
	// may do what. A trigger, so every way a share comes or goes is
	// recorded: the share API, the row's or the group's deletion (the
	// foreign keys' cascade), a DBA's SQL. A definer: iam.audit is granted
	// to nobody.
	fn = ShareAuditFunctionName(r)
	name = qualify(shareSchema, fn)
	s.createIn(ObjectFunction, shareSchema, fn, "",
		fmt.Sprintf("The audit trail of the shares of %s: share.grant when a share is made, share.revoke when it goes (unshared, or with its row or group), in the transaction of the change. "+
			"A definer trigger function: iam.audit is granted to nobody.", r.QualifiedName()),
		`create or replace function %[1]s() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    s %[2]s;
    permissions jsonb;
begin
    if tg_op = 'INSERT' then
        s := new;
    else
        s := old;
    end if;
    permissions := pg_catalog.jsonb_build_object('permissions', pg_catalog.to_jsonb(array['read']
        || case when s.can_write then array['write'] else '{}'::text[] end
        || case when s.can_delete then array['delete'] else '{}'::text[] end));
    if tg_op = 'INSERT' then
        perform iam.audit('share.grant', s.group_id, s.user_id::text, %[3]s || ' ' || s.row_id::text, null,
            permissions || pg_catalog.jsonb_build_object('shared_by', s.shared_by::text));
    else
        perform iam.audit('share.revoke', s.group_id, s.user_id::text, %[3]s || ' ' || s.row_id::text,
            permissions || pg_catalog.jsonb_build_object('shared_by', s.shared_by::text), null);
    end if;
    return null;
end
$fn$;`, name, store, quoteLiteral(s.table))
	sig = name + "()"
	s.add("", "comment on function %s is %s;", sig, quoteLiteral(prefix+"Records each share made (share.grant) and removed (share.revoke) in iam.audit_log (a trigger)."))
	s.add("A trigger function runs only as a trigger; nobody needs EXECUTE.",
		"revoke all on function %s from public, %s, %s;", sig, quoteIdent(s.m.Roles.Authenticated), quoteIdent(s.m.Roles.Anonymous))
	s.createIn(ObjectTrigger, shareSchema, ShareAuditTrigger, ShareTableName(r), "",
		"create or replace trigger %s\n    after insert or delete on %s\n    for each row execute function %s();", ShareAuditTrigger, store, name)
}

// how says how rows reach the caller: "(directly or through their groups)".
func (s *shareBuild) how() string {
	switch {
	case s.sh.Users && s.sh.Groups:
		return "(directly or through their groups)"
	case s.sh.Users:
		return "(with them by name)"
	}
	return "(through their groups)"
}

// sharer is who may share a row (t): every subject granted share, or nil.
func (s *shareBuild) sharer() Expr { return anyArm(s.row.arms(audienceAuthenticated, lang.Share)) }

// manager is who may unshare any share of a row: the sharers but those who
// hold the row only through a share (they unshare what they shared).
func (s *shareBuild) manager() Expr {
	var arms []Expr
	for _, k := range s.row.kinds {
		if _, isShared := k.(shared); isShared {
			continue
		}
		if a := k.arm(s.row, audienceAuthenticated, lang.Share); a != nil {
			arms = append(arms, a)
		}
	}
	return anyArm(arms)
}

// holds is whether the caller has perm on a row (t): the resource's own
// policy condition for it, or nil when nobody has it.
func (s *shareBuild) holds(perm lang.Perm) Expr {
	return anyArm(s.row.arms(audienceAuthenticated, perm))
}

// onRow is exists (a row of the resource the share points at, readable by
// the caller, where cond holds).
func (s *shareBuild) onRow(cond Expr) Expr {
	self := quoteIdent(ShareTableName(s.r))
	where := And{Eq{L: s.row.col(s.sh.Key), R: Col{Alias: self, Name: "row_id"}}}
	if cond != nil {
		where = append(where, cond)
	}
	return Exists{Table: s.table, Alias: "t", Where: where}
}

func (s *shareBuild) tablePolicies() {
	roles := s.m.Roles
	me := s.rules.caller()
	for i, p := range ShareTablePolicies {
		why := ""
		if i == 0 {
			why = "The share table's policies, replaced as a set. Who may share a row, and what, is the resource's own conditions on it (the same subjects as its policies)."
		}
		s.add(why, "drop policy if exists %s on %s;", quoteIdent(PolicyName(p.Audience, p.Command)), s.store)
	}
	col := func(name string) Col { return Col{Name: name} }
	sharePolicy := func(aud, role, cmd, clause, why string) {
		name := PolicyName(aud, cmd)
		s.createIn(ObjectPolicy, shareSchema, name, ShareTableName(s.r), "",
			"create policy %s on %s\n    as permissive for %s to %s\n    %s;", quoteIdent(name), s.store, cmd, quoteIdent(role), clause)
		s.add("", "comment on policy %s on %s is %s;", quoteIdent(name), s.store, quoteLiteral("iamc: "+why))
	}
	lines := func(arms ...Expr) string {
		var ok []Expr
		for _, a := range arms {
			if a != nil {
				ok = append(ok, a)
			}
		}
		return policyCondition(ok)
	}
	shareCite := fmt.Sprintf("share by %s (%s:%d)", s.sh.Key, s.sh.Pos.Filename, s.sh.Pos.Line)

	// Read: the shares of rows the caller may share, and the caller's own.
	sharePolicy(audienceAuthenticated, roles.Authenticated, "select",
		fmt.Sprintf("using (%s)", lines(s.onRow(s.sharer()), Eq{L: col("user_id"), R: me})),
		"those who may share a row see its shares; a user sees the shares made to them; "+shareCite)

	// Insert: the caller shares, in their own name, a row they may share,
	// with a user other than themselves or a group of theirs, granting
	// only what the rules let shares grant and what the caller holds.
	check := And{Eq{L: col("shared_by"), R: me}}
	if s.sh.Users {
		check = append(check, Paren{Or{IsNull{col("user_id")}, DistinctFrom{L: col("user_id"), R: me}}})
	} else {
		check = append(check, IsNull{col("user_id")})
	}
	if s.sh.Groups {
		check = append(check, Paren{Or{IsNull{col("group_id")}, inGroups(col("group_id"), lang.Member)}})
	} else {
		check = append(check, IsNull{col("group_id")})
	}
	onRow := And{}
	if sharer := s.sharer(); sharer != nil {
		onRow = append(onRow, sharer)
	}
	for _, p := range []struct {
		perm lang.Perm
		col  string
	}{{lang.Write, "can_write"}, {lang.Delete, "can_delete"}} {
		holds := s.holds(p.perm)
		if !s.r.Can(lang.SharedSubject{}, p.perm) || holds == nil {
			check = append(check, Not{col(p.col)})
			continue
		}
		onRow = append(onRow, Paren{Or{Not{Col{Alias: quoteIdent(ShareTableName(s.r)), Name: p.col}}, holds}})
	}
	var rowCond Expr
	if len(onRow) > 0 {
		rowCond = onRow
	}
	check = append(check, s.onRow(rowCond))
	sharePolicy(audienceAuthenticated, roles.Authenticated, "insert",
		fmt.Sprintf("with check (%s)", andLines(check)),
		"a share is made by one who may share the row, in their name, granting no more than the rules let shares grant and the sharer holds; "+shareCite)

	// Delete: who manages the row unshares any share of it; a re-sharer
	// what they shared; a user the shares made to them.
	var del []Expr
	if m := s.manager(); m != nil {
		del = append(del, s.onRow(m))
	}
	if s.r.Can(lang.SharedSubject{}, lang.Share) {
		del = append(del, Eq{L: col("shared_by"), R: me})
	}
	del = append(del, Eq{L: col("user_id"), R: me})
	sharePolicy(audienceAuthenticated, roles.Authenticated, "delete",
		fmt.Sprintf("using (%s)", lines(del...)),
		"those who manage a row (who may share it but through a share) unshare its shares, a re-sharer what they shared, a user a share made to them; "+shareCite)

	sharePolicy("owner", roles.Owner, "select", "using (true)",
		"the definer helpers (owned by the owner role) read every share: the policies call them for the caller's shared rows; "+shareCite)
}
