package lint

import (
	"context"
	"fmt"
	"strings"
)

// IAM005: a permissive policy whose USING or WITH CHECK is the constant true
// on a write command (INSERT, UPDATE, DELETE or ALL), for a role that holds
// the matching privilege: that role may change, delete or create any row
// (for instance rows owned by someone else). PostgreSQL ORs permissive
// policies, so one such policy opens the table whatever the others say.
//
// `for select ... using (true)` is not reported: it is a deliberate "everyone
// may read" (iamc's `authenticated can read` and `anonymous can read`),
// and a SELECT policy never widens what UPDATE or DELETE may touch. Tables
// the anonymous role can read are IAM006. A policy for PUBLIC is checked for
// each runtime role (or for PUBLIC itself when neither exists).
var rulePolicyAlwaysTrue = Rule{
	ID:          "IAM005",
	Name:        "policy_always_true",
	Level:       Error,
	Description: "write policy USING (true) or WITH CHECK (true) for a role that holds the write privilege",
	check:       checkPolicyAlwaysTrue,
}

func checkPolicyAlwaysTrue(ctx context.Context, e *env) ([]Finding, error) {
	policies, err := loadPolicies(ctx, e)
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, pol := range policies {
		if !pol.Permissive {
			continue // a restrictive true restricts nothing and opens nothing
		}
		usingTrue := isTrue(pol.Using)
		// Without WITH CHECK, ALL and UPDATE check new rows with USING.
		checkTrue := isTrue(pol.Check) || pol.Check == "" && usingTrue && (pol.Command == "*" || pol.Command == "w")
		open := map[string]bool{}
		switch pol.Command {
		case "*":
			open["update"], open["delete"] = usingTrue, usingTrue
			open["insert"] = checkTrue
			open["update"] = open["update"] || checkTrue
		case "a":
			open["insert"] = checkTrue
		case "w":
			open["update"] = usingTrue || checkTrue
		case "d":
			open["delete"] = usingTrue
		}
		var clauses []string
		if usingTrue && pol.Command != "a" {
			clauses = append(clauses, "using (true)")
		}
		if isTrue(pol.Check) {
			clauses = append(clauses, "with check (true)")
		}
		if len(clauses) == 0 {
			continue
		}
		for _, role := range policyRoles(pol.Roles, e) {
			privs, err := privileges(ctx, e.tx, role, pol.TableOID)
			if err != nil {
				return nil, err
			}
			var opened []string
			for _, p := range privs {
				if open[p] {
					opened = append(opened, p)
				}
			}
			if len(opened) == 0 {
				continue
			}
			who := role
			if role == "public" {
				who = "PUBLIC"
			}
			out = append(out, Finding{
				Object: pol.Object(),
				Message: fmt.Sprintf("%s may %s any row: the policy is %s and %s holds the %s privilege%s",
					who, commaAnd(opened), strings.Join(clauses, " "), who, commaAnd(opened), plural(len(opened), "", "s")),
				Remediation: fmt.Sprintf("replace true with a condition on the row, e.g. owner_id = (select <current user id>), or revoke %s on table %s from %s;",
					strings.Join(opened, ", "), pol.Table, quoteIdent(role)),
			})
		}
	}
	return out, nil
}

// policyRoles is who a policy applies to, as the lint checks it: PUBLIC is
// each runtime role that exists, or PUBLIC itself when none does.
func policyRoles(roles []string, e *env) []string {
	var out []string
	seen := map[string]bool{}
	add := func(r string) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, r := range roles {
		if r != "public" {
			add(r)
			continue
		}
		if len(e.runtime) == 0 {
			add("public")
		}
		for _, rt := range e.runtime {
			add(rt)
		}
	}
	return out
}
