package compiler

import (
	"fmt"

	"github.com/iamc/iamc/lang"
)

// The calls of the runtime's helpers that generated SQL makes, spelled in
// one place. Policies wrap each in a scalar subquery, so that PostgreSQL
// runs it once per statement (an InitPlan) and can use its value as an
// index key; page functions call them directly, once per call.

// userIDCall is the caller's user id: iam.user_id_uuid('sub').
func userIDCall(id lang.Identities) string {
	return fmt.Sprintf("iam.user_id_%s(%s)", id.Type, quoteLiteral(id.Claim))
}

// groupIDsCall is the ids of the caller's groups where they have role or
// higher: iam.group_ids('member').
func groupIDsCall(role lang.GroupRole) string {
	return fmt.Sprintf("iam.group_ids(%s)", quoteLiteral(string(role)))
}

// hasRealmRoleCall is whether the token lists the realm role.
func hasRealmRoleCall(role string) string {
	return fmt.Sprintf("iam.has_realm_role(%s)", quoteLiteral(role))
}

// once wraps a call for a policy: (select call).
func once(call string) string { return "(select " + call + ")" }

// inGroups is `column = any(<the caller's groups with role>)` for a policy.
func inGroups(column string, role lang.GroupRole) string {
	return fmt.Sprintf("%s = any (%s::bigint[])", column, once(groupIDsCall(role)))
}
