package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// People (SPEC §11, "People"): the group API's invitations, ownership
// transfer of groups, the user directory's sync_profile, the views of open
// invitations and of the audit trail, and each resource's transfer policy
// and function (owner can transfer).

// peopleFunctions are the group API's functions for people: the HTTP
// parameter names, and the iam function each wraps (of the same name).
var peopleFunctions = []groupFunction{
	{"sync_profile", "", "", "jsonb", "", "POST /rpc/sync_profile: how a user who only reads enters the user directory.",
		`POST /rpc/sync_profile: puts the caller's profile (username, email, name from the token) into the user directory and returns it. GET and HEAD requests write nothing, so a user who only reads calls this once to be found.`},
	{"create_invitation", "group_id bigint, role text default 'member', expires_in interval default '7 days', max_uses integer default 1",
		"bigint, text, interval, integer", "jsonb", "group_id, role, expires_in, max_uses", "",
		`POST /rpc/create_invitation {"group_id","role","expires_in","max_uses"}: owners and admins invite (only owners invite owners); returns {"invitation_id","token",...}. The token is shown once: only its SHA-256 is stored.`},
	{"accept_invitation", "token text", "text", "jsonb", "token", "",
		`POST /rpc/accept_invitation {"token"}: the caller becomes a member of the group with the invitation's role (or is raised to it); returns {"group_id","role"}. An unknown, expired, revoked or used-up token answers 404, the same for all four.`},
	{"revoke_invitation", "invitation_id bigint", "bigint", "void", "invitation_id", "",
		`POST /rpc/revoke_invitation {"invitation_id"}: owners and admins revoke an invitation of their group.`},
	{"transfer_group", "group_id bigint, user_id text default null, username text default null, email text default null",
		"bigint, text, text, text", "void", "group_id, user_id, username, email", "",
		`POST /rpc/transfer_group {"group_id","user_id"|"username"|"email"}: an owner hands the group to another member, who becomes owner; the caller becomes admin.`},
}

// peopleViews are the group API's views of invitations and of the audit
// trail: the groups the caller manages (a membership row, admin or higher).
func peopleViews(api string) []struct{ name, why, sql string } {
	managed := "((select iam.managed_group_ids())::bigint[])"
	return []struct{ name, why, sql string }{
		{"group_invitations", "The open invitations of the groups the caller manages (owner or admin by a membership row); never the token, which is not stored.",
			fmt.Sprintf("create or replace view %s with (security_barrier) as\n"+
				"select i.id, i.group_id, i.role, i.max_uses, i.uses, i.expires_at, i.created_by, i.created_at\n"+
				"from iam.invitations i\n"+
				"where i.group_id = any %s\n"+
				"  and i.revoked_at is null and i.expires_at > now() and i.uses < i.max_uses;", qualify(api, "group_invitations"), managed)},
		{"group_audit", "The audit trail of the groups the caller manages: who changed who may do what, and when. Not its id or transaction id (counters of the whole database).",
			fmt.Sprintf("create or replace view %s with (security_barrier) as\n"+
				"select a.at, a.group_id, a.action, a.actor, a.subject, a.object, a.old_value, a.new_value\n"+
				"from iam.audit_log a\n"+
				"where a.group_id = any %s;", qualify(api, "group_audit"), managed)},
	}
}

// groupMembersView is GET /group_members: the members of the caller's
// groups with the profile the directory keeps (email only when the groups
// block says members see email, and only a verified one).
func groupMembersView(m *lang.Model, members string) string {
	email := "null::text"
	if m.Groups.MembersSeeEmail {
		email = "case when u.email_verified then u.email end"
	}
	return fmt.Sprintf("create or replace view %s with (security_barrier) as\n"+
		"select m.group_id, m.user_id, m.role, m.added_at, u.username, u.name, %s as email\n"+
		"from iam.group_members m\n"+
		"left join iam.users u on u.user_id = m.user_id\n"+
		"where %s;", members, email, String(inGroups(Col{Alias: "m", Name: "group_id"}, m.Groups.Order().Lowest())))
}

// TransferCommentPrefix starts the comment of every transfer function:
// iamc apply finds those the files no longer declare by it, as it finds
// page functions.
const TransferCommentPrefix = "iamc (owner can transfer, "

// TransferFunctionName is a resource's transfer function (in the
// resource's schema, beside its page function): <table>_transfer.
func TransferFunctionName(r *lang.ResourceModel) string { return derivedName(r.Table, "transfer") }

// transferPolicyName is the policy of owner can transfer.
var transferPolicyName = PolicyName(audienceAuthenticated, "transfer")

// transfer writes owner can transfer: a policy that only a transfer in
// progress in the caller's own transaction opens (iam.transfer_pending,
// once per statement), and the function that runs one.
func (b *resourceBuild) transfer() {
	r, m := b.r, b.m
	if !r.TransferPos.IsValid() {
		return
	}
	regclass := quoteLiteral(b.table) + "::regclass"
	pending := fmt.Sprintf("(select iam.transfer_pending(%s))", regclass)
	owner := fmt.Sprintf("%s = %s", quoteIdent(r.OwnerColumn), String(Once{userID(m.Identity)}))
	cite := fmt.Sprintf("owner can transfer (%s:%d)", r.TransferPos.Filename, r.TransferPos.Line)
	b.create(ObjectPolicy, transferPolicyName,
		"owner can transfer: the owner may change the owner column of their row only while iam.transfer_row runs in their own transaction; the row guard checks who gets it.",
		"create policy %s on %s\n    as permissive for update to %s\n    using (%s and %s)\n    with check (%s);",
		quoteIdent(transferPolicyName), b.table, quoteIdent(m.Roles.Authenticated), owner, pending, pending)
	b.add("", "comment on policy %s on %s is %s;", quoteIdent(transferPolicyName), b.table,
		quoteLiteral("iamc: "+cite+": opened only by a transfer under way in the caller's own transaction (iam.transfer_row)"))

	fn := TransferFunctionName(r)
	name := qualify(r.Schema, fn)
	key := TransferKey(r)
	keyType := fmt.Sprintf("%s.%s%%type", b.table, quoteIdent(key))
	signature := fmt.Sprintf("%s(%s, text, text, text)", name, keyType)
	param := func(p string) string { return quoteIdent(fn) + "." + quoteIdent(p) }
	mine := fmt.Sprintf("t.%s = %s and t.%s = %s", quoteIdent(key), param("id"), quoteIdent(r.OwnerColumn), String(userID(m.Identity)))
	b.out = append(b.out, Statement{
		Why: fmt.Sprintf("POST /rpc/%s: the owner hands a row over. Runs as the caller: the policies and the row guard decide. "+
			"The row is locked through a cursor and changed WHERE CURRENT OF it: an update whose WHERE reads the table's columns must leave a row the caller can still read, and a row handed over is no longer theirs to read.", fn),
		SQL: fmt.Sprintf(`create or replace function %[1]s(id %[2]s, user_id text default null, username text default null, email text default null)
    returns void
    language sql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
select iam.grant_transfer(%[3]s, %[4]s::text, %[5]s, %[6]s, %[7]s);
select iam.refuse_not_owner(%[8]s, %[9]s, %[4]s::text)
where not exists (select from %[10]s t where %[11]s);
declare iam_transfer no scroll cursor for select from %[10]s t where %[11]s for update;
move iam_transfer;
update %[10]s set %[12]s = iam.transfer_recipient(%[3]s)::%[13]s where current of iam_transfer;
close iam_transfer;
select iam.finish_transfer(%[3]s);
$fn$;`, name, keyType, regclass, param("id"), param("user_id"), param("username"), param("email"),
			quoteLiteral(b.table), quoteLiteral(key), b.table, mine, quoteIdent(r.OwnerColumn), m.Identity.Type),
		Object: &Object{Kind: ObjectFunction, Schema: r.Schema, Name: fn},
	})
	b.add("", "comment on function %s is %s;", signature, quoteLiteral(fmt.Sprintf(
		TransferCommentPrefix+"%s:%d): POST /rpc/%s {\"id\", \"user_id\"|\"username\"|\"email\"}: the owner of the row whose %s is id hands it to another user; the row keeps its group, whose members keep what the rules give them.",
		r.TransferPos.Filename, r.TransferPos.Line, fn, key)))
	b.add("", "revoke all on function %s from public, %s;", signature, runtimeRoles(m))
	b.add("", "grant execute on function %s to %s;", signature, quoteIdent(m.Roles.Authenticated))
}

// TransferKey is the column a transfer function finds the row by: the
// page key when the resource has one, else id (as a parent is referenced
// by id unless its item says otherwise).
func TransferKey(r *lang.ResourceModel) string {
	if r.PageKey != "" {
		return r.PageKey
	}
	return "id"
}

// transferCommands adds update to the commands the authenticated role is
// granted when the resource offers transfers: the transfer is an update.
func transferCommands(r *lang.ResourceModel, cmds []string) []string {
	if !r.TransferPos.IsValid() {
		return cmds
	}
	for _, c := range cmds {
		if c == "update" {
			return cmds
		}
	}
	var out []string
	for _, c := range commands { // in the order of commands
		if c.cmd == "update" || contains(cmds, c.cmd) {
			out = append(out, c.cmd)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// peopleHeader lists the endpoints of people in the group API's header.
var peopleHeader = []string{
	"  POST /rpc/create_invitation, /rpc/accept_invitation, /rpc/revoke_invitation,",
	"       /rpc/transfer_group, /rpc/sync_profile",
	"  GET  /group_invitations, /group_audit",
}
