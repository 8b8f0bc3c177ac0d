// Package e2e holds the end-to-end tests: the example policies of
// policies/ built in-process and applied to an ephemeral PostgreSQL, served
// by a real PostgREST 12 binary, and exercised over HTTP with
// Keycloak-shaped JWTs signed HS256 (a shared secret) and RS256 (a JWKS):
// the owner rules of todos and chats (postgrest_test.go), and README's
// "Sharing with groups" walk-through with Keycloak token groups
// (groups_test.go); the shipped policies/postgrest.conf and the deny list,
// with and without its db-pre-request (keycloak_test.go); what that
// db-pre-request refuses (planner-estimate counts, tokens without aud or
// exp) and the size limit of a token's groups claim (prerequest_test.go);
// PostgREST serving a hot standby and
// PostgREST behind pgbouncer in transaction pooling mode (stack_test.go).
//
// The tests need `postgrest` on PATH and skip, saying so, without it:
//
//	PATH=/path/to/postgrest-dir:$PATH go test ./e2e/ -v
//
// The package has no code of its own; everything is in the _test.go files.
package e2e
