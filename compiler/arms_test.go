package compiler

import (
	"strings"
	"testing"

	"github.com/iamc/iamc/lang"
)

// TestPolicyArmsAreThePolicies: for every resource of the example and
// every command and role, the arms PolicyArms returns, or'ed as the build
// or's them, are the policy the build writes, and each arm cites the rules
// that grant the command.
func TestPolicyArmsAreThePolicies(t *testing.T) {
	out, err := Compile("../policies")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range out.Model.Resources {
		section, err := out.Find(r.QualifiedName())
		if err != nil {
			t.Fatal(err)
		}
		sql := section.SQL()
		for _, c := range Commands() {
			for _, anonymous := range []bool{false, true} {
				arms := PolicyArms(out.Model, r, anonymous, c.Perm, "")
				role := out.Model.Roles.Authenticated
				if anonymous {
					role = out.Model.Roles.Anonymous
				}
				head := "as permissive for " + c.SQL + " to " + role + "\n"
				if len(arms) == 0 {
					if strings.Contains(sql, head) {
						t.Errorf("%s: no arms for %s to %s, but the build has a policy", r.QualifiedName(), c.SQL, role)
					}
					continue
				}
				var conds []string
				for _, a := range arms {
					cond := a.Cond
					if strings.Contains(cond, " and ") && !strings.HasPrefix(cond, "(") && len(arms) > 1 {
						cond = "(" + cond + ")"
					}
					conds = append(conds, cond)
					if a.Kind != "admin" && len(a.Rules) == 0 {
						t.Errorf("%s %s: arm %s cites no rule", r.QualifiedName(), c.SQL, a.Kind)
					}
					for _, rule := range a.Rules {
						if !ruleGrants(rule, c.Perm) {
							t.Errorf("%s %s: arm %s cites %v, which does not grant %s", r.QualifiedName(), c.SQL, a.Kind, rule, c.Perm)
						}
					}
				}
				want := strings.Join(conds, "\n        or ")
				for _, a := range arms {
					if a.Cond == "true" {
						want = "(true)" // an arm that holds for every row is the whole policy
					}
				}
				if !strings.Contains(sql, head) || !strings.Contains(sql, want) {
					t.Errorf("%s %s to %s: the arms or'ed are\n%s\nwhich the build's policy does not hold:\n%s", r.QualifiedName(), c.SQL, role, want, sql)
				}
				checked++
			}
		}
	}
	if checked < 6 {
		t.Errorf("checked %d policies", checked)
	}
}

func ruleGrants(rule lang.RuleModel, perm lang.Perm) bool {
	for _, p := range rule.Perms {
		if p == perm {
			return true
		}
	}
	return false
}
