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
// left one). The groups block declares no roles of its own yet: these are
// lang.GroupRoles, member < admin < owner.
func groupRoles() (upsert, prune Statement) {
	values := make([]string, len(lang.GroupRoles))
	names := make([]string, len(lang.GroupRoles))
	for i, r := range lang.GroupRoles {
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
