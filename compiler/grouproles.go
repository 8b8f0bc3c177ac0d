package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// groupRoles writes iam.group_roles, the group roles of the .iam files and
// their ranks (lowest first), which memberships and the token role refer
// to: the upsert before the settings (the token role must be there first),
// the removal of undeclared roles after them (the token role may have just
// left one). Between them, what only a groups block that declares its
// roles asks for (roleExtras). The runtime's triggers on iam.group_roles
// refuse to remove a role memberships hold, or to swap two they hold.
func groupRoles(m *lang.Model) (upsert, prune Statement) {
	order := m.Groups.Order()
	values := make([]string, len(order))
	names := make([]string, len(order))
	for i, r := range order {
		values[i] = fmt.Sprintf("(%s, %d)", quoteLiteral(string(r)), i+1)
		names[i] = quoteLiteral(string(r))
	}
	upsert = Statement{
		Why: "The group roles of the .iam files, lowest first (a rule for a role applies to the roles above it): a membership's role and the token role must be one of them.",
		SQL: fmt.Sprintf("insert into iam.group_roles (name, rank) values %s\n"+
			"on conflict (name) do update set rank = excluded.rank where iam.group_roles.rank is distinct from excluded.rank;",
			strings.Join(values, ", ")),
	}
	prune = Statement{
		Why: "Roles the files no longer declare go; one a membership still holds cannot (23503), so no member loses a role silently.",
		SQL: fmt.Sprintf("delete from iam.group_roles where name not in (%s);", strings.Join(names, ", ")),
	}
	return upsert, prune
}

// roleExtras are the statements of the groups block's role items beyond
// the order: memberships of a role no longer declared moved to another
// (`role member becomes viewer`), and the runtime's functions that say who
// manages members and which Keycloak subgroups confer a role, replaced
// when the files say otherwise than their default (the runtime, run first
// by every build, puts the defaults back when the files stop saying so).
// None for files that leave these alone, whose build is what it always
// was.
func roleExtras(m *lang.Model) []Statement {
	g := m.Groups
	var out []Statement
	for _, mv := range g.RoleMoves {
		out = append(out, Statement{
			Why: fmt.Sprintf("role %s becomes %s (%s:%d): the memberships holding %s, which the files no longer declare, take %s.",
				mv.From, mv.To, mv.Pos.Filename, mv.Pos.Line, mv.From, mv.To),
			SQL: fmt.Sprintf("update iam.group_members set role = %s where role = %s;", quoteLiteral(string(mv.To)), quoteLiteral(string(mv.From))),
		}, Statement{
			// People: open invitations to the role move with its memberships.
			SQL: fmt.Sprintf("update iam.invitations set role = %s where role = %s;", quoteLiteral(string(mv.To)), quoteLiteral(string(mv.From))),
		})
	}
	if !g.ManagerByDefault() {
		fn := &Object{Kind: ObjectFunction, Schema: "iam", Name: "manage_role"}
		out = append(out, Statement{
			Why: fmt.Sprintf("members managed by %s (%s:%d): the lowest role that adds, removes and changes members.", g.Manager(), g.ManagedByPos.Filename, g.ManagedByPos.Line),
			SQL: fmt.Sprintf("create or replace function iam.manage_role() returns text\n    language sql stable parallel safe\n    set search_path = pg_catalog, pg_temp\nas $fn$select %s::text$fn$;",
				quoteLiteral(string(g.Manager()))),
			Object: fn,
		}, Statement{
			SQL: fmt.Sprintf("comment on function iam.manage_role() is %s;", quoteLiteral(fmt.Sprintf(
				"The lowest group role that manages members (adds, removes, changes roles up to its own rank): %s, as the groups block says (members managed by %s).", g.Manager(), g.Manager()))),
		})
	}
	if len(g.TokenSubgroups) > 0 {
		rows := make([]string, len(g.TokenSubgroups))
		var said []string
		for i, s := range g.TokenSubgroups {
			rows[i] = fmt.Sprintf("(%s, %s)", quoteLiteral(s.Name), quoteLiteral(string(s.Role)))
			said = append(said, fmt.Sprintf("token subgroup '%s' as %s", strings.ReplaceAll(s.Name, "'", "''"), s.Role))
		}
		fn := &Object{Kind: ObjectFunction, Schema: "iam", Name: "token_subgroups"}
		first := g.TokenSubgroups[0].Pos
		out = append(out, Statement{
			Why: fmt.Sprintf("%s (%s:%d): a token listing <a group's token name>/<subgroup> is that group's member with the subgroup's role.",
				strings.Join(said, ", "), first.Filename, first.Line),
			SQL: fmt.Sprintf("create or replace function iam.token_subgroups() returns table (name text, role text)\n    language sql stable parallel safe\n    set search_path = pg_catalog, pg_temp\nas $fn$select * from (values %s) s(name, role)$fn$;",
				strings.Join(rows, ", ")),
			Object: fn,
		}, Statement{
			SQL: fmt.Sprintf("comment on function iam.token_subgroups() is %s;", quoteLiteral(
				"The Keycloak subgroups whose path under a group's token name confers a role in that group, as the groups block declares them: "+strings.Join(said, ", ")+".")),
		})
	}
	return out
}

// holders is how messages name the roles that manage members, highest
// first: "owners and admins" (iam.role_holders in the runtime).
func holders(g lang.GroupSettings) string {
	roles := g.ManagerRoles()
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r) + "s"
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
