package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// Single-role mode (`single role web_user` in the roles block): every
// request runs as one database role, with a token or without (PostgREST's
// db-anon-role is the authenticated role, or a pooler allows one role), and
// who is signed in comes only from the claims. The policies of both
// audiences are then for that role, so the authenticated audience's are
// held to callers whose claims name a user (signedIn): a request without
// the identity claim is anonymous, and gets only what anonymous rules give.

// runtimeRoles is the roles requests run as, quoted, for the list of a
// grant or revoke: the authenticated and the anonymous role, or the one
// role of single-role mode.
func runtimeRoles(m *lang.Model) string {
	if m.Roles.Single {
		return quoteIdent(m.Roles.Authenticated)
	}
	return quoteIdent(m.Roles.Authenticated) + ", " + quoteIdent(m.Roles.Anonymous)
}

// signedIn is the condition of an authenticated policy: cond itself, or in
// single-role mode cond for callers with a user id only. The user id is a
// per-statement value and reads no column, so PostgreSQL checks it once
// (a One-Time Filter) and plans cond as it would without it.
func signedIn(m *lang.Model, audience, cond string) string {
	if !m.Roles.Single || audience != audienceAuthenticated {
		return cond
	}
	id := String(NotNull{Once{userID(m.Identity)}})
	if cond == string(True) {
		return id
	}
	return fmt.Sprintf("%s\n        and (%s)", id, cond)
}
