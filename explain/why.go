package explain

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// facts is what an arm's reason needs about one (possibly new) row: who
// owns it, its group, and what the runtime said of the caller.
type facts struct {
	callerID  string
	idErr     *Failure
	owner     *string
	group     *string
	groupRole string // the caller's role in group ("" for none)
	admin     *bool
	parent    *string // the row's parent key
	isNew     bool    // a row to be created
}

func (a *asker) rowFacts(values map[string]any, perm lang.Perm) facts {
	f := facts{callerID: a.rep.Caller.ID, idErr: a.rep.Caller.IDError, admin: a.rep.Caller.Admin, isNew: perm == lang.Create}
	if a.r.OwnerColumn != "" {
		f.owner = jsonText(values[a.r.OwnerColumn])
	}
	if a.r.GroupColumn != "" {
		f.group = jsonText(values[a.r.GroupColumn])
	}
	if a.r.Parent != nil {
		f.parent = jsonText(values[a.r.Parent.Column])
	}
	if f.group != nil {
		switch {
		case a.rep.Row != nil && a.rep.Row.Group != nil && *a.rep.Row.Group == *f.group:
			f.groupRole = a.rep.Caller.GroupRole
		case a.q.Group == *f.group:
			f.groupRole = a.rep.Caller.TargetRole
		}
	}
	return f
}

func rolePhrase(role string) string {
	if role == "" {
		return "no role"
	}
	return "the role " + role
}

// armWhy says why one arm holds or not for the caller, from what the
// runtime answered (the caller's id, their role in the row's group, the
// token's realm role) and the row's owner and group.
func (a *asker) armWhy(arm compiler.Arm, holds bool, perm lang.Perm, f facts) string {
	row := "the row"
	if f.isNew {
		row = "the new row"
	}
	inGroup := func() string {
		if f.group == nil {
			return row + " is in no group"
		}
		if f.groupRole == "" {
			return "you are not in group " + *f.group
		}
		return fmt.Sprintf("your role in group %s is %s", *f.group, f.groupRole)
	}
	switch arm.Kind {
	case "everyone":
		if holds {
			if a.q.Caller.Anonymous {
				return "everyone may read every row"
			}
			return "every signed-in caller may read every row"
		}
		return "does not hold"
	case "owner":
		noID := "the token names no user"
		if f.idErr != nil {
			noID = "the token names no user: " + f.idErr.Message
		} else if claim := a.m.Identity.Claim; claim != "" {
			noID = fmt.Sprintf("the token has no %s claim: no user id", claim)
		}
		mine := f.callerID != "" && f.owner != nil && strings.EqualFold(*f.owner, f.callerID)
		if f.isNew {
			// The new row is the caller's: what remains is its group.
			switch {
			case f.callerID == "":
				return noID
			case holds && f.group == nil:
				return row + " is yours, in no group"
			case holds:
				return fmt.Sprintf("%s is yours, and %s", row, inGroup())
			case f.group == nil && a.r.GroupRequired:
				return "every row of " + a.r.QualifiedName() + " must be in a group"
			case f.group == nil:
				return "does not hold"
			default:
				need := a.r.GroupMinRole(lang.Create)
				if need == "" {
					return fmt.Sprintf("no group role may put rows into a group; %s", inGroup())
				}
				return fmt.Sprintf("putting a row into group %s takes %s; %s", *f.group, need, inGroup())
			}
		}
		switch {
		case holds:
			return "you own " + row
		case f.callerID == "":
			return noID
		case f.owner == nil:
			return row + " has no owner"
		case !mine:
			return fmt.Sprintf("not the owner (%s is owned by %s)", row, *f.owner)
		case f.group != nil && f.groupRole != "":
			return fmt.Sprintf("you own %s, but it is in group %s, where the group's rules decide (your role: %s)", row, *f.group, f.groupRole)
		case f.group != nil:
			return fmt.Sprintf("you own %s, but it is in group %s and you are not a member there", row, *f.group)
		default:
			return "does not hold"
		}
	case "group":
		switch {
		case holds:
			return fmt.Sprintf("your role in group %s is %s (group %s and above)", deref(f.group), f.groupRole, arm.Role)
		case f.group == nil:
			return row + " is in no group"
		case f.groupRole == "":
			return "you are not in group " + *f.group
		default:
			return fmt.Sprintf("your role in group %s is %s; %s takes %s", *f.group, f.groupRole, perm, arm.Role)
		}
	case "parent":
		link := a.r.Parent
		if link == nil {
			break
		}
		key := "null"
		if f.parent != nil {
			key = *f.parent
		}
		parentRow := fmt.Sprintf("%s %s=%s", link.Schema+"."+link.Table, link.Key, key)
		switch {
		case holds:
			return fmt.Sprintf("the parent row (%s) gives you %s", parentRow, perm)
		case f.parent == nil:
			return fmt.Sprintf("%s has no parent (%s is null)", row, link.Column)
		default:
			return fmt.Sprintf("the parent row (%s) does not give you %s: not its owner, not in its group with the role, or not among those its rules let", parentRow, perm)
		}
	case "shared":
		// Row shares (SPEC §21): a share with the caller or a group of theirs.
		if holds {
			return fmt.Sprintf("%s is shared with you (or a group of yours), and the share grants %s", row, perm)
		}
		return fmt.Sprintf("no share of %s with you (or a group of yours) grants %s", row, perm)
	case "admin":
		if holds {
			return fmt.Sprintf("the token has the realm role %s", a.m.Groups.AdminRole)
		}
		return fmt.Sprintf("the token lacks the realm role %s", a.m.Groups.AdminRole)
	case "role", "claim":
		// Keycloak roles and claim matches (SPEC §17), held to the
		// caller's tenant on a resource with a tenant column.
		var subjects []string
		for _, r := range arm.Rules {
			subjects = append(subjects, r.Subject.String())
		}
		within := ""
		if t := a.r.Tenant; t != nil {
			within = fmt.Sprintf(", within the tenant of the token's %s", t.Claim)
		}
		if holds {
			return fmt.Sprintf("the token and %s meet %s%s", row, strings.Join(subjects, " or "), within)
		}
		return fmt.Sprintf("the token and %s meet none of %s%s", row, strings.Join(subjects, ", "), within)
	}
	if holds {
		return "holds"
	}
	return "does not hold"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// refusal says why a statement failed.
func refusal(f *Failure, role, cmd, table string) string {
	if f.Code == "42501" && strings.HasPrefix(f.Message, "permission denied for") {
		return fmt.Sprintf("%s has no %s privilege on %s: no rule grants it (PostgREST answers 401 or 403)", role, strings.ToUpper(cmd), table)
	}
	s := "refused by the database: " + f.Message
	if f.Detail != "" {
		s += " (" + strings.TrimSuffix(f.Detail, ".") + ")"
	}
	return s + " [SQLSTATE " + f.Code + "]"
}

// why is the answer's one line: the granting rules, or why none grants.
func (a *asker) why(ans Answer, perm lang.Perm, row *Row) string {
	cmd, table := ans.Command, a.r.QualifiedName()
	if !ans.Privilege && (ans.Error == nil || ans.Error.Code == "42501") {
		return fmt.Sprintf("%s has no %s privilege on %s: no rule grants %s to %s", a.role, strings.ToUpper(cmd), table, perm, audienceWords(a.q.Caller.Anonymous))
	}
	if ans.Error != nil {
		return refusal(ans.Error, a.role, cmd, table)
	}
	var granting, failing []string
	for _, arm := range ans.Arms {
		label := arm.Subject
		if len(arm.Rules) > 0 {
			var rs []string
			for _, r := range arm.Rules {
				rs = append(rs, fmt.Sprintf("%s (%s)", r.Rule, r.At))
			}
			label = strings.Join(rs, ", ")
		}
		if arm.Holds != nil && *arm.Holds {
			granting = append(granting, fmt.Sprintf("%s: %s", label, arm.Why))
		} else if arm.Why != "" {
			failing = append(failing, arm.Why)
		}
	}
	if ans.Allowed {
		if len(granting) == 0 {
			return "by a policy the .iam files do not declare"
		}
		return strings.Join(granting, "; and ")
	}
	if len(ans.Arms) == 0 {
		return fmt.Sprintf("no rule grants %s on %s to %s", perm, table, audienceWords(a.q.Caller.Anonymous))
	}
	var reasons []string
	if row != nil && !row.Visible && (cmd == "update" || cmd == "delete") && len(granting) > 0 {
		reasons = append(reasons, "the row is not visible to you, and UPDATE and DELETE reach only rows the caller can read")
	}
	if len(granting) > 0 && len(reasons) == 0 {
		reasons = append(reasons, "the rules grant it, but the statement reached no row")
	}
	reasons = append(reasons, failing...)
	return strings.Join(reasons, "; ")
}

func audienceWords(anonymous bool) string {
	if anonymous {
		return "anonymous callers"
	}
	return "signed-in callers"
}
