package stdlib_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// executable is one function a runtime role may execute in the example.
type executable struct {
	Signature string // schema.name(argument types)
	Role      string // web_user or web_anon
	Definer   bool   // SECURITY DEFINER: runs with its owner's rights
	Why       string // why the role needs it (not compared: a reason is required, its wording is free)
}

// runtimeExecutable is every function of a non-system schema that a
// runtime role may execute once the example is applied, and why. Any
// function the runtime roles can call is reachable from any RPC a developer
// writes (a SECURITY INVOKER function passes its arguments on as the
// caller), so a helper that answers about other people's data must not be
// here: iam.group_exists(bigint) (does any group exist?) is not. A new
// entry needs a reason: what calls it as the caller (a policy, a view, a
// page function, the row guard trigger, an API wrapper), and that it
// answers only about the caller or checks the caller's rights first.
// Functions called only from inside a SECURITY DEFINER function run as its
// owner and need no grant; a trigger function's EXECUTE is checked at
// CREATE TRIGGER, but what it calls runs as the caller.
var runtimeExecutable = []executable{
	// The group API: PostgREST's /rpc/... endpoints, thin invoker wrappers.
	{"app.add_group_member(bigint, text, text, text, text)", "web_user", false, "POST /rpc/add_group_member"},
	{"app.create_group(text)", "web_user", false, "POST /rpc/create_group"},
	{"app.delete_group(bigint)", "web_user", false, "POST /rpc/delete_group"},
	{"app.leave_group(bigint)", "web_user", false, "POST /rpc/leave_group"},
	{"app.remove_group_member(bigint, text)", "web_user", false, "POST /rpc/remove_group_member"},
	{"app.set_group_member_role(bigint, text, text)", "web_user", false, "POST /rpc/set_group_member_role"},
	// People: the directory, invitations, ownership (SPEC §11, "People").
	{"app.accept_invitation(text)", "web_user", false, "POST /rpc/accept_invitation"},
	{"app.create_invitation(bigint, text, interval, integer)", "web_user", false, "POST /rpc/create_invitation"},
	{"app.revoke_invitation(bigint)", "web_user", false, "POST /rpc/revoke_invitation"},
	{"app.sync_profile()", "web_user", false, "POST /rpc/sync_profile"},
	{"app.transfer_group(bigint, text, text, text)", "web_user", false, "POST /rpc/transfer_group"},
	// Transfer functions (owner can transfer): invoker, the policies and the row guard decide.
	{"app.stores_transfer(bigint, text, text, text)", "web_user", false, "POST /rpc/stores_transfer"},
	{"app.todos_transfer(bigint, text, text, text)", "web_user", false, "POST /rpc/todos_transfer"},
	// Page functions: invoker, RLS decides every row.
	{"app.chats_page(bigint, integer, bigint)", "web_user", false, "GET /rpc/chats_page"},
	{"app.todos_page(bigint, integer, bigint)", "web_user", false, "GET /rpc/todos_page"},
	{"app.stores_page(bigint, integer, bigint)", "web_user", false, "GET /rpc/stores_page"},
	{"app.products_page(bigint, integer, bigint)", "web_user", false, "GET /rpc/products_page (store_id: the products of one store)"},
	{"app.notes_page(bigint, integer, bigint)", "web_user", false, "GET /rpc/notes_page (the caller's tenant only)"},
	// What the wrappers call: each checks the caller's role in the group first.
	{"iam.add_group_member(bigint, text, text, text, text)", "web_user", true, "app.add_group_member; requires the caller's admin role in the group, then finds a username or email only among the people who share a group with the caller"},
	{"iam.create_group(text)", "web_user", true, "app.create_group; the caller becomes the owner"},
	{"iam.delete_group(bigint)", "web_user", true, "app.delete_group; requires the caller's owner role"},
	{"iam.leave_group(bigint)", "web_user", true, "app.leave_group; the caller's own membership"},
	{"iam.remove_group_member(bigint, text)", "web_user", true, "app.remove_group_member; requires the caller's admin role"},
	{"iam.set_group_member_role(bigint, text, text)", "web_user", true, "app.set_group_member_role; requires the caller's admin role"},
	{"iam.accept_invitation(text)", "web_user", true, "app.accept_invitation; the caller's own membership, only with a valid token"},
	{"iam.create_invitation(bigint, text, interval, integer)", "web_user", true, "app.create_invitation; requires the caller's admin role (owner to invite owners)"},
	{"iam.revoke_invitation(bigint)", "web_user", true, "app.revoke_invitation; requires the caller's admin role; PT404 alike for other groups' invitations and none"},
	{"iam.sync_profile()", "web_user", true, "app.sync_profile; writes and returns the caller's own profile"},
	{"iam.transfer_group(bigint, text, text, text)", "web_user", true, "app.transfer_group; requires the caller's owner role, the recipient a member"},
	// What the transfer functions call as the caller around their update.
	{"iam.grant_transfer(regclass, text, text, text, text)", "web_user", true, "<table>_transfer: checks the recipient, a grant for the caller's own transaction; alone it changes no row"},
	{"iam.finish_transfer(regclass)", "web_user", true, "<table>_transfer: removes the caller's own grant"},
	{"iam.transfer_recipient(regclass)", "web_user", true, "<table>_transfer: the recipient of the caller's own grant"},
	{"iam.refuse_not_owner(text, text, text)", "web_user", false, "<table>_transfer: raises PT404, answers about nothing"},
	// The share API of todos (share by id): invoker; the share table's
	// policies decide every write, the todos policies which rows it sees.
	{"app.todos_share(bigint, text, bigint, text[])", "web_user", false, "POST /rpc/todos_share"},
	{"app.todos_shares(bigint)", "web_user", false, "GET /rpc/todos_shares"},
	{"app.todos_unshare(bigint, text, bigint)", "web_user", false, "POST /rpc/todos_unshare"},
	// The shared arm: the rows shared with the caller, read through a definer
	// (the share table is not readable by the runtime roles).
	{"iam.app_todos_shared(text)", "web_user", true, "policies of app.todos and of its share table: the caller's shared rows"},
	{"iam.app_todos_shared_page(bigint, integer)", "web_user", true, "app.todos_page: the newest page of the caller's shared rows"},
	// The db-pre-request: every request, anonymous ones too; refuses the caller's own subject.
	{"iam.check_request()", "web_anon", true, "db-pre-request, anonymous requests"},
	{"iam.check_request()", "web_user", true, "db-pre-request"},
	// Policies (they run as the caller): the caller's id and groups.
	{"iam.group_ids(text)", "web_user", false, "policies, page functions, app.group_members: the caller's groups (reads the caller's context, inlined)"},
	{"iam.compute_group_ids(text)", "web_user", true, "iam.group_ids, inlined into policies: computes the caller's groups once per statement"},
	{"iam.caller_key()", "web_user", false, "the readers of the caller's context, inlined into policies: this statement's key (its start and the claims)"},
	{"iam.has_realm_role(text)", "web_user", false, "policies (admin role, role rules): the caller's token"},
	{"iam.has_client_role(text, text)", "web_user", false, "policies (role ... of client ... rules): the caller's token"},
	{"iam.claim_text(text[])", "web_user", false, "policies, page functions, row guard, tenant column default: the caller's tenant, from the token"},
	{"iam.claim_match(text[])", "web_user", false, "policies (column = claim rules): a claim of the caller's token"},
	{"iam.user_id_text(text)", "web_user", false, "policies when identity is text: the caller's id (reads the caller's context, inlined)"},
	{"iam.user_id_uuid(text)", "web_user", false, "policies, page functions: the caller's id (reads the caller's context, inlined)"},
	{"iam.compute_user_id_text(text)", "web_user", true, "iam.user_id_text, inlined into policies: computes the caller's id once per statement"},
	{"iam.compute_user_id_uuid(text)", "web_user", true, "iam.user_id_uuid, inlined into policies: computes the caller's id once per statement"},
	{"iam.check_columns(regclass, boolean, text[], boolean[])", "web_user", false, "update policy of a table with column rules (app.products): refuses a column the caller's own update changed; reads only its arguments and a setting"},
	// Views of the group API (a view's function calls are checked as the caller).
	{"iam.my_groups()", "web_user", true, "app.groups: the caller's groups and roles"},
	{"iam.managed_group_ids()", "web_user", true, "app.group_invitations, app.group_audit: the groups the caller manages"},
	// The transfer policy and the row guard: about the caller's own transaction.
	{"iam.transfer_pending(regclass)", "web_user", true, "transfer policy: is a transfer under way in the caller's own transaction?"},
	{"iam.take_transfer(oid, jsonb, text, text, bigint, text)", "web_user", true, "row guard: is this change of owner the caller's own granted transfer?"},
	{"iam.role_rank(text)", "web_user", true, "iam.check_group_entry (row guard): the rank of a declared role, the same for everyone"},
	// Called as the caller by invoker helpers above or by the row guard trigger.
	{"iam.bypasses_rls()", "web_user", false, "iam.privileged: is current_user a superuser or BYPASSRLS?"},
	{"iam.caller_id()", "web_user", false, "row guard, iam.has_realm_role: the caller's id (reads the caller's context, inlined)"},
	{"iam.compute_caller_id()", "web_user", true, "iam.caller_id: the caller's id as canonical text, once per statement (reads iam.settings)"},
	{"iam.check_group_entry(name, name, text, bigint, text, boolean)", "web_user", false, "row guard: explains why the caller may not enter a group"},
	{"iam.claims()", "web_user", false, "iam.has_realm_role: the caller's token"},
	{"iam.group_role(bigint)", "web_user", true, "iam.check_group_entry: the caller's role in one group"},
	{"iam.identity_claim()", "web_user", true, "row guard error messages: the configured claim name"},
	{"iam.is_admin()", "web_user", true, "iam.privileged: does the caller's token carry the admin role?"},
	{"iam.may_enter_group(bigint, text, boolean)", "web_user", false, "row guard: may the caller put a row into this group? (the caller's groups, from the caller's context)"},
	{"iam.privileged()", "web_user", false, "row guard: may the caller set owners and move rows?"},
	{"iam.guard_tenant(anyelement, jsonb, text, text[], name, name)", "web_user", false, "row guard: the tenant of the row the caller writes, against the caller's token"},
}

// TestRuntimeRolesExecute lists every function of a non-system schema that
// web_user or web_anon may execute in the example (directly, through a
// role it belongs to, or through PUBLIC) and compares it with
// runtimeExecutable: a new executable function fails here until it is
// added with a reason.
func TestRuntimeRolesExecute(t *testing.T) {
	db := ExampleDB(t)
	rows, err := db.SU.Query(t.Context(), `
select format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes)), r.rolname, p.prosecdef
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
cross join (values ('web_user'::name), ('web_anon'::name)) r (rolname)
where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and pg_catalog.has_function_privilege(r.rolname, p.oid, 'EXECUTE')
order by 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (executable, error) {
		var e executable
		err := row.Scan(&e.Signature, &e.Role, &e.Definer)
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range runtimeExecutable {
		if w.Why == "" {
			t.Errorf("%s for %s: no reason given", w.Signature, w.Role)
		}
	}
	ignoreWhy := cmp.Comparer(func(a, b executable) bool {
		return a.Signature == b.Signature && a.Role == b.Role && a.Definer == b.Definer
	})
	bySignature := cmpopts.SortSlices(func(a, b executable) bool {
		return a.Signature < b.Signature || a.Signature == b.Signature && a.Role < b.Role
	})
	if diff := cmp.Diff(runtimeExecutable, got, ignoreWhy, bySignature); diff != "" {
		t.Errorf("functions the runtime roles may execute (-want +got); a new one needs an entry saying why:\n%s", diff)
	}
}

// TestNoExistenceOracle: a signed-in caller cannot ask whether a group
// exists (a stranger's group or a missing one), neither directly nor
// through an RPC of their own.
func TestNoExistenceOracle(t *testing.T) {
	db := ExampleDB(t)
	r := Requester{T: t, DB: db, Who: KeycloakUser("eve", "e0e0e0e0-0000-4000-8000-000000000001"), Path: "/rpc/f"}
	_, err := r.Exec("POST", "select iam.group_exists(1)")
	WantSQLError(t, err, "42501", "permission denied for function group_exists")
}
