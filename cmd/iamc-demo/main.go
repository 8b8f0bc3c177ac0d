// Command iamc-demo is the program behind `make demo`. It starts a throwaway
// PostgreSQL, loads the example schema (policies/), compiles the .iam files
// with iamc, applies the script with psql, and then replays a scripted
// multi-user walk-through the way PostgREST 12 would run each request: one
// transaction per request, as the authenticator login role, with the role
// and the Keycloak JWT claims set by set_config.
//
// Every step carries the outcome it is expected to have; the program exits
// non-zero if any step turns out differently, so the demo cannot silently lie.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Users, as PostgREST sees them after verifying their Keycloak token.
var users = map[string]user{
	"alice":     keycloakUser("a1ce0000-0000-4000-8000-00000000a11c", "alice").in("acme"),
	"bob":       keycloakUser("b0b00000-0000-4000-8000-000000000b0b", "bob").in("acme"),
	"dave":      keycloakUser("da7e0000-0000-4000-8000-00000000da7e", "dave").in("globex"),
	"erin":      keycloakUser("e1e10000-0000-4000-8000-00000000e1e1", "erin").in("globex"),
	"olga":      keycloakUser("0196a000-0000-4000-8000-0000000001a0", "olga").in("acme", "org-admin"),
	"greta":     keycloakUser("96e7a000-0000-4000-8000-000000096e7a", "greta").in("globex", "org-admin"),
	"mo":        keycloakUser("30000000-0000-4000-8000-00000000003d", "mo").in("globex", "moderator"),
	"carol":     keycloakUser("f:ldap:carol", "carol"), // LDAP-federated in Keycloak: sub is not a uuid
	"no sub":    {role: "web_user", claims: map[string]any{"iss": issuer, "azp": "demo-app", "preferred_username": "report-bot", "role": "web_user"}},
	"anonymous": {role: "web_anon"}, // no token: PostgREST's anonymous role, no claims
}

// The walk-through. rows(ids...) expects success, returning or touching
// exactly the rows with those ids (none: 0 rows); done() a function call
// that returns nothing; refused(sqlstate) expects the request to fail with
// that SQLSTATE; summary is the final state.
var steps = []step{
	// Owners: full CRUD on their own rows, nothing on anyone else's.
	{who: "alice", method: "POST", path: "/todos", body: `{"title": "buy milk"}`, want: rows(1)},
	{who: "alice", method: "POST", path: "/todos", body: `{"title": "write the iamc demo"}`, want: rows(2)},
	{who: "alice", method: "GET", path: "/todos", want: rows(1, 2), note: "her own two todos"},
	{who: "bob", method: "GET", path: "/todos", want: rows(), note: "none of alice's todos"},
	{who: "bob", method: "PATCH", path: "/todos?id=eq.1", body: `{"done": true}`, want: rows(), note: "alice's row is invisible to bob"},
	{who: "bob", method: "DELETE", path: "/todos?id=eq.1", want: rows(), note: "alice's row is invisible to bob"},
	{who: "bob", method: "POST", path: "/todos", body: `{"title": "bob's own todo"}`, want: rows(3)},
	{who: "alice", method: "POST", path: "/todos", body: `{"title": "forged", "owner_id": "` + users["bob"].sub() + `"}`, want: refused("42501"), note: "cannot create a row owned by bob"},
	{who: "alice", method: "PATCH", path: "/todos?id=eq.1", body: `{"owner_id": "` + users["bob"].sub() + `"}`, want: refused("42501"), note: "cannot give her todo away"},
	{who: "anonymous", method: "GET", path: "/todos", want: refused("42501"), note: "no token, no access"},
	{who: "no sub", method: "POST", path: "/todos", body: `{"title": "who am I?"}`, want: refused("28000"), note: "a row needs an owner"},
	{who: "carol", method: "GET", path: "/todos", want: refused("28000"), note: "sub f:ldap:carol is not a uuid"},

	// Groups: alice creates one, adds bob, shares a todo and talks in the room.
	{who: "alice", method: "POST", path: "/rpc/create_group", body: `{"name": "home"}`, want: newGroup(), note: "alice owns the new group; its id is random (it tells nobody how many groups exist)"},
	{who: "alice", method: "POST", path: "/rpc/add_group_member", body: `{"group_id": {group}, "user_id": "` + users["bob"].sub() + `"}`, want: done(), note: "bob joins as a member"},
	{who: "alice", method: "PATCH", path: "/todos?id=eq.1", body: `{"group_id": {group}}`, want: rows(1), note: "she shares todo 1 with the group"},
	{who: "bob", method: "GET", path: "/todos", want: rows(1, 3), note: "the shared todo and his own"},
	{who: "bob", method: "PATCH", path: "/todos?id=eq.1", body: `{"done": true}`, want: rows(1), note: "members may edit shared todos"},
	{who: "bob", method: "DELETE", path: "/todos?id=eq.1", want: rows(), note: "only group admins (and the owner) delete"},
	{who: "alice", method: "POST", path: "/chats", body: `{"body": "who buys milk?", "group_id": {group}}`, want: rows(1)},
	{who: "bob", method: "POST", path: "/chats", body: `{"body": "done!", "group_id": {group}}`, want: rows(2)},
	{who: "bob", method: "GET", path: "/chats", want: rows(1, 2), note: "members read the whole room"},
	{who: "bob", method: "GET", path: "/rpc/chats_page?group_id={group}", want: rows(2, 1), note: "the room's page function: newest first"},
	{who: "bob", method: "GET", path: "/rpc/chats_page?group_id={group}&before=2", want: rows(1), note: "the next page, by cursor"},
	{who: "bob", method: "PATCH", path: "/chats?id=eq.1", body: `{"body": "edited"}`, want: rows(), note: "only the author edits a message"},
	{who: "bob", method: "POST", path: "/rpc/add_group_member", body: `{"group_id": {group}, "user_id": "` + users["dave"].sub() + `"}`, want: refused("42501"), note: "members do not manage members"},
	{who: "dave", method: "POST", path: "/chats", body: `{"body": "spam", "group_id": {group}}`, want: refused("42501"), note: "outsiders cannot post into the room"},
	{who: "dave", method: "GET", path: "/chats", want: rows(), note: "nor read it"},
	{who: "dave", method: "GET", path: "/rpc/chats_page?group_id={group}", want: rows(), note: "nor through the page function"},
	{who: "dave", method: "POST", path: "/rpc/leave_group", body: `{"group_id": {group}}`, want: refused("PT404"), note: "a group he is not in answers as if it did not exist"},
	{who: "alice", method: "POST", path: "/rpc/leave_group", body: `{"group_id": {group}}`, want: refused("23514"), note: "a group keeps an owner"},
	{who: "alice", method: "POST", path: "/rpc/remove_group_member", body: `{"group_id": {group}, "user_id": "` + users["bob"].sub() + `"}`, want: done()},
	{who: "bob", method: "GET", path: "/todos", want: rows(3), note: "removal is immediate"},
	{who: "alice", method: "DELETE", path: "/todos?id=eq.2", want: rows(2)},

	// Shares: one todo with one more person, with per-share permissions.
	{who: "alice", method: "POST", path: "/todos", body: `{"title": "plan the trip"}`, want: rows(6), note: "todo 6: the refused inserts above used up ids 4 and 5"},
	{who: "alice", method: "POST", path: "/rpc/todos_share", body: `{"id": 6, "user_id": "` + users["bob"].sub() + `", "permissions": ["read", "write"]}`, want: done(), note: "she shares todo 6 with bob: read and write"},
	{who: "bob", method: "GET", path: "/todos", want: rows(3, 6), note: "his own and the one shared with him"},
	{who: "bob", method: "GET", path: "/rpc/todos_page", want: rows(6, 3), note: "the page function includes it"},
	{who: "bob", method: "PATCH", path: "/todos?id=eq.6", body: `{"done": true}`, want: rows(6), note: "his share lets him write"},
	{who: "bob", method: "DELETE", path: "/todos?id=eq.6", want: rows(), note: "but not delete"},
	{who: "bob", method: "POST", path: "/rpc/todos_share", body: `{"id": 6, "user_id": "` + users["dave"].sub() + `"}`, want: refused("42501"), note: "what he received he cannot share on"},
	{who: "dave", method: "POST", path: "/rpc/todos_share", body: `{"id": 6, "user_id": "` + users["bob"].sub() + `"}`, want: refused("PT404"), note: "a todo dave cannot read answers as one that does not exist"},
	{who: "alice", method: "POST", path: "/rpc/todos_unshare", body: `{"id": 6, "user_id": "` + users["bob"].sub() + `"}`, want: done()},
	{who: "bob", method: "GET", path: "/todos", want: rows(3), note: "unsharing is immediate"},

	// The marketplace: products take their access from their store.
	{who: "alice", method: "POST", path: "/stores", body: `{"name": "alice's bakery"}`, want: rows(1), note: "every signed-in user may open a store"},
	{who: "alice", method: "POST", path: "/rpc/create_group", body: `{"name": "bakery staff"}`, want: newGroup(), note: "the store's staff"},
	{who: "alice", method: "POST", path: "/rpc/add_group_member", body: `{"group_id": {group}, "user_id": "` + users["bob"].sub() + `"}`, want: done()},
	{who: "alice", method: "PATCH", path: "/stores?id=eq.1", body: `{"group_id": {group}}`, want: rows(1), note: "the staff group serves the store"},
	{who: "alice", method: "POST", path: "/products", body: `{"store_id": 1, "name": "bread", "price": 3, "stock": 10}`, want: rows(1), note: "the store's owner adds a product"},
	{who: "bob", method: "PATCH", path: "/products?id=eq.1", body: `{"stock": 9}`, want: rows(1), note: "staff change the stock of the store's products"},
	{who: "bob", method: "PATCH", path: "/products?id=eq.1", body: `{"stock": 8, "price": 1}`, want: refused("42501"), note: "and only the stock: the price is refused, naming the column"},
	{who: "bob", method: "DELETE", path: "/products?id=eq.1", want: rows(), note: "only the owner and the staff's admins remove them"},
	{who: "dave", method: "GET", path: "/rpc/products_page?store_id=1", want: rows(1), note: "everyone signed in browses the catalogue"},
	{who: "dave", method: "PATCH", path: "/products?id=eq.1", body: `{"price": 0}`, want: rows(), note: "but nobody else writes a product"},
	{who: "dave", method: "POST", path: "/products", body: `{"store_id": 1, "name": "fake bread"}`, want: refused("42501"), note: "nor adds one to someone else's store"},

	// Roles and tenants: notes belong to an organisation (the org_id claim);
	// org-admins read their organisation's notes; moderators read and
	// delete any chat message.
	{who: "alice", method: "POST", path: "/notes", body: `{"body": "quarterly plan"}`, want: rows(1), note: "org_id comes from her token: acme"},
	{who: "alice", method: "POST", path: "/notes", body: `{"body": "spy", "org_id": "globex"}`, want: refused("42501"), note: "not into another organisation"},
	{who: "alice", method: "PATCH", path: "/notes?id=eq.1", body: `{"org_id": "globex"}`, want: refused("42501"), note: "nor moved there"},
	{who: "bob", method: "GET", path: "/notes", want: rows(), note: "same organisation, not his note"},
	{who: "olga", method: "GET", path: "/notes", want: rows(1), note: "acme's org-admin reads every acme note"},
	{who: "olga", method: "PATCH", path: "/notes?id=eq.1", body: `{"body": "edited"}`, want: rows(), note: "and only reads"},
	{who: "greta", method: "GET", path: "/notes", want: rows(), note: "globex's org-admin: none of acme's"},
	{who: "mo", method: "GET", path: "/chats", want: rows(1, 2), note: "a moderator reads every room"},
	{who: "mo", method: "DELETE", path: "/chats?id=eq.2", want: rows(2), note: "and deletes any message"},

	// People: alice invites dave into the bakery staff with a one-time
	// token (no need to know his user id), and reads who changed what.
	{who: "alice", method: "POST", path: "/rpc/create_invitation", body: `{"group_id": {group}, "max_uses": 1}`, want: aToken(), note: "she sends the token to dave (a link, a message)"},
	{who: "dave", method: "POST", path: "/rpc/accept_invitation", body: `{"token": "{token}"}`, want: anObject(), note: "dave is staff now"},
	{who: "dave", method: "PATCH", path: "/products?id=eq.1", body: `{"stock": 8}`, want: rows(1), note: "and changes the store's products"},
	{who: "erin", method: "POST", path: "/rpc/accept_invitation", body: `{"token": "{token}"}`, want: refused("PT404"), note: "used up: the same answer as an expired, revoked or unknown token"},
	{who: "alice", method: "GET", path: "/group_audit?group_id=eq.{group}&order=at", want: entries(
		"group.create      by alice, about alice",
		"member.add        by alice, about bob",
		"invitation.create by alice, an invitation",
		"invitation.accept by dave, about dave, an invitation"), note: "the staff group's audit trail: owners and admins read it"},

	// Revocation: bob's token stays valid until it expires; a DBA blocks him
	// and the runtime refuses him at once (no PostgREST setting needed).
	{who: "api_owner", dba: "select iam.block_subject('" + users["bob"].sub() + "', 'disabled in Keycloak')", want: done(), note: "a DBA blocks bob's sub"},
	{who: "bob", method: "GET", path: "/todos", want: refused("28000"), note: "his still-valid token is refused"},
	{who: "alice", method: "GET", path: "/todos", want: rows(1, 6), note: "nobody else is affected"},
	{who: "api_owner", dba: "select iam.unblock_subject('" + users["bob"].sub() + "')", want: done()},
	{who: "bob", method: "GET", path: "/todos", want: rows(3), note: "unblocked"},
	{who: "postgres", final: true, want: summary("todos: alice 2, bob 1; notes: alice 1; chats: alice 1"), note: "the final state: RLS does not apply to superusers"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	interrupted := ctx.Err() != nil
	stop()
	var unexpected errUnexpected
	switch {
	case err == nil:
	case interrupted:
		fmt.Fprintln(os.Stderr, "iamc-demo: interrupted")
		os.Exit(130)
	case errors.As(err, &unexpected): // already reported in the table
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "iamc-demo: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	d, err := setUp(ctx, root)
	if d != nil {
		defer func() {
			if stopErr := d.server.Stop(); stopErr != nil {
				fmt.Fprintln(os.Stderr, "iamc-demo: warning: "+stopErr.Error())
			} else {
				fmt.Println("\nPostgreSQL stopped; its data directory is removed.")
			}
		}()
	}
	if err != nil {
		return err
	}
	d.printHeader(os.Stdout)
	return d.walkThrough(ctx, os.Stdout, steps)
}
