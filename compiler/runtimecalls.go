package compiler

import "github.com/iamc/iamc/lang"

// The calls of the runtime's helpers that generated SQL makes, spelled in
// one place. Policies wrap each in Once, so that PostgreSQL runs it once
// per statement (an InitPlan) and can use its value as an index key; page
// functions call them directly, once per call.

// Call is a call of a function: name(args).
type Call struct {
	Fn   string
	Args []Expr
}

func (c Call) write(w *exprWriter) {
	w.WriteString(c.Fn + "(")
	join(w, c.Args, ", ")
	w.WriteString(")")
}

// runtimeCall calls a function of the iam runtime with literal arguments.
func runtimeCall(fn string, literals ...string) Call {
	c := Call{Fn: "iam." + fn}
	for _, l := range literals {
		c.Args = append(c.Args, Raw(quoteLiteral(l)))
	}
	return c
}

// userID is the caller's user id: iam.user_id_uuid('sub').
func userID(id lang.Identities) Call {
	return runtimeCall("user_id_"+string(id.Type), id.Claim)
}

// groupIDs is the ids of the caller's groups where they have role or
// higher: iam.group_ids('member').
func groupIDs(role lang.GroupRole) Call { return runtimeCall("group_ids", string(role)) }

// hasRealmRole is whether the token lists the realm role.
func hasRealmRole(role string) Call { return runtimeCall("has_realm_role", role) }

// hasClientRole is whether the token lists the role of the client.
func hasClientRole(client, role string) Call { return runtimeCall("has_client_role", client, role) }

// claimText is the token's string claim at path (a tenant), or NULL.
func claimText(path []string) Call { return runtimeCall("claim_text", path...) }

// claimMatch is claimText for a rule that grants rows by the claim (it
// refuses a blocked caller, as a role does).
func claimMatch(path []string) Call { return runtimeCall("claim_match", path...) }

// inGroups is `column = any(<the caller's groups with role>)` for a policy.
func inGroups(column Expr, role lang.GroupRole) Expr {
	return AnyOf{L: column, Array: Cast{E: Once{groupIDs(role)}, Type: "bigint[]"}}
}
