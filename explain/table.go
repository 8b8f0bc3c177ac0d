package explain

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// table answers for the whole table: how many rows the caller sees, and
// of those how many each arm of each command grants, counted as the
// caller (one query, READ ONLY, as a GET). Insert is asked of a new row
// owned by the caller, in no group or in Question.Group.
func (a *asker) whole() error {
	type slot struct {
		perm lang.Perm
		arms []compiler.Arm
		at   int // index of the applied policy's count; the arms' follow
	}
	exprs := []string{"count(*)"}
	var slots []slot
	for _, c := range compiler.Commands() {
		if c.Perm == lang.Create {
			continue
		}
		s := slot{perm: c.Perm, arms: a.armsOf(c.Perm), at: len(exprs)}
		exprs = append(exprs, fmt.Sprintf("count(*) filter (where %s)", a.policyFor(c.SQL)))
		for _, arm := range s.arms {
			exprs = append(exprs, fmt.Sprintf("count(*) filter (where %s)", arm.Cond))
		}
		slots = append(slots, s)
	}
	counts := make([]int64, len(exprs))
	ptrs := make([]any, len(exprs))
	for i := range counts {
		ptrs[i] = &counts[i]
	}
	sql := fmt.Sprintf("select %s from %s", strings.Join(exprs, ", "), a.table)
	err := a.caller("GET", func(tx pgx.Tx) error { return tx.QueryRow(a.ctx, sql).Scan(ptrs...) })
	fail := failure(err)
	if err != nil && fail == nil {
		return err
	}
	if fail == nil {
		a.rep.Visible = ptr(counts[0])
	}
	f := facts{callerID: a.rep.Caller.ID, idErr: a.rep.Caller.IDError, admin: a.rep.Caller.Admin}
	for _, s := range slots {
		cmd := commandOf(s.perm)
		ans := Answer{Command: cmd, Permission: string(s.perm), Privilege: a.privileges[cmd], Arms: []Arm{}, Error: fail,
			Probe: fmt.Sprintf("select count(*) from %s, each arm counted", a.table)}
		var armRows int64
		if fail == nil {
			ans.Rows = ptr(counts[s.at])
			ans.Allowed = ans.Privilege && counts[s.at] > 0
			// Rows any arm grants: or-ing the arms is the policy the files
			// declare, counted apart from the applied one.
			var ors []string
			for _, arm := range s.arms {
				ors = append(ors, "("+arm.Cond+")")
			}
			if len(ors) > 0 {
				if err := a.caller("GET", func(tx pgx.Tx) error {
					return tx.QueryRow(a.ctx, fmt.Sprintf("select count(*) filter (where %s) from %s", strings.Join(ors, " or "), a.table)).Scan(&armRows)
				}); err != nil {
					return err
				}
			}
			if armRows != counts[s.at] {
				ans.Disagrees = fmt.Sprintf("the policy applied to %s reaches %d of your rows, the rules of the .iam files %d: the database runs another build (iamc plan shows what differs)",
					a.r.QualifiedName(), counts[s.at], armRows)
			}
		}
		var parts, none []string
		for i, arm := range s.arms {
			ar := Arm{Subject: subjectOf(arm, a.q.Caller.Anonymous), Rules: ruleRefs(arm), Condition: arm.Cond}
			if fail == nil {
				n := counts[s.at+1+i]
				ar.Rows = ptr(n)
				ar.Why = a.countWhy(arm, n, f, s.perm)
				label := ar.Subject
				if len(ar.Rules) > 0 {
					label = fmt.Sprintf("%s (%s)", ar.Rules[0].Rule, ar.Rules[0].At)
				}
				if n > 0 {
					parts = append(parts, fmt.Sprintf("%d by %s", n, label))
				} else {
					none = append(none, ar.Why)
				}
			}
			ans.Arms = append(ans.Arms, ar)
		}
		switch {
		case !ans.Privilege:
			ans.Why = fmt.Sprintf("%s has no %s privilege on %s: no rule grants %s to %s", a.role, strings.ToUpper(cmd), a.r.QualifiedName(), s.perm, audienceWords(a.q.Caller.Anonymous))
		case fail != nil:
			ans.Why = refusal(fail, a.role, cmd, a.r.QualifiedName())
		case len(s.arms) == 0:
			ans.Why = fmt.Sprintf("no rule grants %s on %s to %s", s.perm, a.r.QualifiedName(), audienceWords(a.q.Caller.Anonymous))
		default:
			verb := map[lang.Perm]string{lang.Read: "sees", lang.Write: "may update", lang.Delete: "may delete"}[s.perm]
			ans.Why = fmt.Sprintf("%s %d of the %d rows you see", verb, counts[s.at], counts[0])
			if s.perm == lang.Read {
				ans.Why = "sees " + rowsWord(counts[0])
			}
			if len(parts) > 0 {
				ans.Why += ": " + strings.Join(parts, ", ")
			}
			if len(none) > 0 {
				ans.Why += "; none " + strings.Join(none, "; none ")
			}
		}
		a.rep.Answers = append(a.rep.Answers, ans)
		if s.perm == lang.Read {
			if err := a.newRow(); err != nil {
				return err
			}
		}
	}
	return nil
}

// countWhy is one arm's count in words.
func (a *asker) countWhy(arm compiler.Arm, n int64, f facts, perm lang.Perm) string {
	switch arm.Kind {
	case "everyone":
		return "every row"
	case "owner":
		if f.callerID == "" {
			return "of yours: the token names no user"
		}
		return fmt.Sprintf("owned by you (%s)", f.callerID)
	case "group":
		return fmt.Sprintf("in your groups where your role is %s or above", arm.Role)
	case "parent":
		if l := a.r.Parent; l != nil {
			return fmt.Sprintf("whose parent row in %s.%s gives you %s", l.Schema, l.Table, perm)
		}
	case "shared":
		return fmt.Sprintf("shared with you (or a group of yours), the share granting %s", perm)
	case "admin":
		if f.admin != nil && *f.admin {
			return "every row: the token has the realm role " + a.m.Groups.AdminRole
		}
		return "through the realm role " + a.m.Groups.AdminRole + ", which the token lacks"
	}
	return arm.Kind
}

// newRow answers insert without a row to copy: the applied insert policy
// and the files' arms on a new row owned by the caller, in no group or in
// Question.Group. The row guard (which also refuses what the policy would)
// runs only on a real insert: give --row to run one.
func (a *asker) newRow() error {
	values := map[string]any{}
	if a.r.OwnerColumn != "" && a.rep.Caller.ID != "" {
		values[a.r.OwnerColumn] = a.rep.Caller.ID
	}
	group := a.q.Group
	if a.r.GroupColumn != "" && group != "" && group != NoGroup {
		values[a.r.GroupColumn] = json.Number(group)
		a.rep.Caller.TargetRole = a.groupRole(group)
	}
	probe := fmt.Sprintf("the insert policy of %s on a new row owned by the caller", a.r.QualifiedName())
	if a.r.GroupColumn != "" {
		probe += ", " + groupWords(values[a.r.GroupColumn])
	}
	ans := Answer{Command: "insert", Permission: string(lang.Create), Privilege: a.privileges["insert"], Probe: probe, Arms: []Arm{}}
	arms := a.armsOf(lang.Create)
	conds := []string{a.policyFor("insert")}
	for _, arm := range arms {
		conds = append(conds, arm.Cond)
	}
	holds, fail, err := a.eval(values, conds)
	if err != nil {
		return err
	}
	ans.Error = fail
	f := a.rowFacts(values, lang.Create)
	anyArm := false
	for i, arm := range arms {
		ar := Arm{Subject: subjectOf(arm, a.q.Caller.Anonymous), Rules: ruleRefs(arm), Condition: arm.Cond}
		if holds != nil {
			ar.Holds = ptr(holds[i+1])
			anyArm = anyArm || holds[i+1]
			ar.Why = a.armWhy(arm, holds[i+1], lang.Create, f)
		}
		ans.Arms = append(ans.Arms, ar)
	}
	if holds != nil {
		ans.Policy = ptr(holds[0])
		ans.Allowed = ans.Privilege && holds[0]
		if holds[0] != anyArm {
			ans.Disagrees = fmt.Sprintf("the policy applied to %s %s this new row, the rules of the .iam files %s it: the database runs another build (iamc plan shows what differs)",
				a.r.QualifiedName(), grants(holds[0]), grants(anyArm))
		}
	}
	ans.Why = a.why(ans, lang.Create, nil)
	a.rep.Answers = append(a.rep.Answers, ans)
	return nil
}
