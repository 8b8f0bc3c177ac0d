package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// Changes of the group roles of a live database (custom group roles):
// plan says, in words, what the files do to the memberships. The settings
// object shows the order before and after ("group_roles member < admin <
// owner -> viewer < admin < owner"); these notes say which memberships a
// `role X becomes Y` moves, which roles are new or go, and who manages
// members. What would take access from members silently is refused by
// the runtime's triggers on iam.group_roles while the build runs (a role
// memberships hold, no longer declared: 23503; two roles they hold, in the
// other order: 55000), so plan and apply stop there with the trigger's
// message and hint, and nothing changes.

// installedRole is a row of iam.group_roles and the memberships holding it.
type installedRole struct {
	name    string
	rank    int
	members int64
}

// readGroupRoles reads the installed roles, the memberships holding each
// and the role that manages members; nil when the runtime has no roles
// table yet (a fresh install or an upgrade from runtime 3: nothing to say).
func (r *run) readGroupRoles(ctx context.Context) ([]installedRole, string, error) {
	var exists bool
	if err := r.tx.QueryRow(ctx, `select to_regclass('iam.group_roles') is not null and to_regclass('iam.group_members') is not null`).Scan(&exists); err != nil {
		return nil, "", fmt.Errorf("reading the group roles: %w", err)
	}
	if !exists {
		return nil, "", nil
	}
	rows, err := r.tx.Query(ctx, `select r.name, r.rank, (select count(*) from iam.group_members m where m.role = r.name)
	    from iam.group_roles r order by r.rank`)
	if err != nil {
		return nil, "", fmt.Errorf("reading the group roles: %w", err)
	}
	var out []installedRole
	for rows.Next() {
		var ir installedRole
		if err := rows.Scan(&ir.name, &ir.rank, &ir.members); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("reading the group roles: %w", err)
		}
		out = append(out, ir)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("reading the group roles: %w", err)
	}
	var manager string
	if err := r.tx.QueryRow(ctx, `select case when to_regprocedure('iam.manage_role()') is null then '' else iam.manage_role() end`).Scan(&manager); err != nil {
		return nil, "", fmt.Errorf("reading who manages group members: %w", err)
	}
	return out, manager, nil
}

// groupRoleNotes says what the files do to the installed roles.
func groupRoleNotes(installed []installedRole, manager string, g lang.GroupSettings) []string {
	if installed == nil {
		return nil
	}
	order := g.Order()
	var notes []string
	held := map[string]int64{}
	var before []string
	for _, ir := range installed {
		held[ir.name] = ir.members
		before = append(before, ir.name)
	}
	moved := map[lang.GroupRole]bool{}
	for _, mv := range g.RoleMoves {
		moved[mv.From] = true
		n, ok := held[string(mv.From)]
		if !ok {
			continue // applied before: nothing holds it any more
		}
		notes = append(notes, fmt.Sprintf("%d membership(s) of %s become %s (role %s becomes %s)", n, mv.From, mv.To, mv.From, mv.To))
	}
	for _, ir := range installed {
		role := lang.GroupRole(ir.name)
		if order.Rank(role) > 0 || moved[role] {
			continue
		}
		// One that memberships hold never gets here: the build stops on
		// it (the runtime's trigger), and so does plan.
		notes = append(notes, fmt.Sprintf("%s goes (no membership holds it)", ir.name))
	}
	for i, role := range order {
		if _, ok := held[string(role)]; ok {
			continue
		}
		where := "the lowest"
		switch {
		case i == len(order)-1:
			where = "the highest"
		case i > 0:
			where = fmt.Sprintf("between %s and %s", order[i-1], order[i+1])
		}
		notes = append(notes, fmt.Sprintf("%s is new, %s", role, where))
	}
	if manager != "" && manager != string(g.Manager()) {
		notes = append(notes, fmt.Sprintf("members are managed by %s (was %s)", holdersOf(order, g.Manager()), manager))
	}
	if len(notes) == 0 {
		return nil
	}
	return append([]string{fmt.Sprintf("%s -> %s", strings.Join(before, " < "), order)}, notes...)
}

// holdersOf is "owners and admins": the roles at min or above.
func holdersOf(order lang.RoleOrder, min lang.GroupRole) string {
	var names []string
	for i := len(order) - 1; i >= 0 && i+1 >= order.Rank(min); i-- {
		names = append(names, string(order[i])+"s")
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
