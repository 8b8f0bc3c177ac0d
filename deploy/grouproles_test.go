package deploy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// groupRolesFiles are the files of the group roles tests: the settings
// with a groups block saying roles (extra lines), and todos whose rules
// name the lowest role.
func groupRolesFiles(roles, lowest string) map[string]string {
	return map[string]string{
		"iam.iam": strings.Replace(iamFile, "  api schema app\n", "  api schema app\n"+roles, 1),
		"todos.iam": fmt.Sprintf(`resource app.todos {
  owner column owner_id
  group column group_id
  owner can read, create, write, delete
  group %s can read, create, write
  group admin can delete
}
`, lowest),
	}
}

// TestGroupRolesChange: the declared roles of a live database change
// through plan and apply, which say what happens to the memberships; a
// change that would take access from members silently (a role they hold
// no longer declared, two roles they hold swapped) stops plan and apply
// with a message saying what to declare instead, and changes nothing.
func TestGroupRolesChange(t *testing.T) {
	e := newEnv(t, groupRolesFiles("", "member"))
	e.apply(Options{})
	gid := e.query(`insert into iam.groups (name, created_by) values ('team', 'u1') returning id::text`)
	e.exec(fmt.Sprintf(`insert into iam.group_members (group_id, user_id, role) values
	    (%[1]s, 'u1', 'owner'), (%[1]s, 'u2', 'admin'), (%[1]s, 'u3', 'member'), (%[1]s, 'u4', 'member')`, gid))
	roles := func() string {
		t.Helper()
		return e.query(`select string_agg(name, ' < ' order by rank) from iam.group_roles`)
	}
	members := func() string {
		t.Helper()
		return e.query(`select string_agg(user_id || ' ' || role, ', ' order by user_id) from iam.group_members`)
	}
	wantRefused := func(code, msg string) {
		t.Helper()
		rolesBefore, membersBefore := roles(), members()
		for _, apply := range []bool{false, true} {
			var err error
			if apply {
				_, err = Apply(t.Context(), e.connect(), e.input(), Options{})
			} else {
				_, err = e.tryPlan(Options{})
			}
			var se *StatementError
			if !errors.As(err, &se) || se.Err.Code != code || !strings.Contains(se.Err.Message, msg) {
				t.Fatalf("apply %v: got %v, want SQLSTATE %s %q", apply, err, code, msg)
			}
			if se.Err.Hint == "" || !strings.Contains(err.Error(), "hint: ") {
				t.Errorf("the refusal gives no hint: %v", err)
			}
		}
		if got := roles(); got != rolesBefore {
			t.Errorf("a refused apply changed the roles: %s, was %s", got, rolesBefore)
		}
		if got := members(); got != membersBefore {
			t.Errorf("a refused apply changed the memberships: %s, was %s", got, membersBefore)
		}
	}

	t.Run("a role inserted between two: the memberships keep their roles", func(t *testing.T) {
		e.files(groupRolesFiles("  roles member < editor < admin < owner\n", "member"))
		p := e.plan()
		wantNotes(t, p, "member < admin < owner -> member < editor < admin < owner", "editor is new, between member and admin")
		e.apply(Options{})
		if got := roles(); got != "member < editor < admin < owner" {
			t.Errorf("roles %s", got)
		}
		if got := members(); got != "u1 owner, u2 admin, u3 member, u4 member" {
			t.Errorf("memberships %s", got)
		}
		if p := e.plan(); p.HasChanges() || len(p.GroupRoles) > 0 {
			t.Errorf("plan after apply:\n%s", text(t, p))
		}
	})

	t.Run("a rename: role member becomes viewer moves the memberships", func(t *testing.T) {
		e.files(groupRolesFiles("  roles viewer < editor < admin < owner\n  role member becomes viewer\n", "viewer"))
		p := e.plan()
		golden(t, "plan-group-roles.txt", text(t, p))
		wantNotes(t, p, "member < editor < admin < owner -> viewer < editor < admin < owner",
			"2 membership(s) of member become viewer (role member becomes viewer)", "viewer is new, the lowest")
		e.apply(Options{})
		if got := roles(); got != "viewer < editor < admin < owner" {
			t.Errorf("roles %s", got)
		}
		if got := members(); got != "u1 owner, u2 admin, u3 viewer, u4 viewer" {
			t.Errorf("memberships %s", got)
		}
		// The line may stay: nothing holds member any more.
		if p := e.plan(); p.HasChanges() || len(p.GroupRoles) > 0 {
			t.Errorf("plan after apply:\n%s", text(t, p))
		}
	})

	e.exec(`update iam.group_members set role = 'editor' where user_id = 'u4'`)
	t.Run("a role members hold, no longer declared: refused", func(t *testing.T) {
		e.files(groupRolesFiles("  roles viewer < admin < owner\n", "viewer"))
		wantRefused("23503", "group role editor is still held by 1 membership(s), and the .iam files no longer declare it")
	})

	t.Run("two roles members hold, swapped: refused", func(t *testing.T) {
		e.files(groupRolesFiles("  roles viewer < admin < editor < owner\n", "viewer"))
		wantRefused("55000", "put group role editor above admin, which members hold in the other order")
	})

	t.Run("removing a held role by moving its memberships down", func(t *testing.T) {
		e.files(groupRolesFiles("  roles viewer < admin < owner\n  role editor becomes viewer\n", "viewer"))
		wantNotes(t, e.plan(), "viewer < editor < admin < owner -> viewer < admin < owner",
			"1 membership(s) of editor become viewer (role editor becomes viewer)")
		e.apply(Options{})
		if got := members(); got != "u1 owner, u2 admin, u3 viewer, u4 viewer" {
			t.Errorf("memberships %s", got)
		}
	})

	t.Run("who manages members", func(t *testing.T) {
		e.files(groupRolesFiles("  roles viewer < admin < owner\n  members managed by owner\n", "viewer"))
		wantNotes(t, e.plan(), "viewer < admin < owner -> viewer < admin < owner", "members are managed by owners (was admin)")
		e.apply(Options{})
		if got := e.query(`select iam.manage_role()`); got != "owner" {
			t.Errorf("iam.manage_role() is %s", got)
		}
		// Back to the default: the runtime's own function again.
		e.files(groupRolesFiles("  roles viewer < admin < owner\n", "viewer"))
		wantNotes(t, e.plan(), "viewer < admin < owner -> viewer < admin < owner", "members are managed by owners and admins (was owner)")
		e.apply(Options{})
		if got := e.query(`select iam.manage_role()`); got != "admin" {
			t.Errorf("iam.manage_role() is %s", got)
		}
	})

	t.Run("a role no membership holds goes", func(t *testing.T) {
		// admin is named by the todos' rules: they say owner instead.
		files := groupRolesFiles("  roles viewer < owner\n", "viewer")
		files["todos.iam"] = strings.Replace(files["todos.iam"], "group admin can delete", "group owner can delete", 1)
		e.files(files)
		e.exec(`update iam.group_members set role = 'viewer' where role = 'admin'`)
		wantNotes(t, e.plan(), "viewer < admin < owner -> viewer < owner", "admin goes (no membership holds it)",
			"members are managed by owners (was admin)")
		e.apply(Options{})
		if got := roles(); got != "viewer < owner" {
			t.Errorf("roles %s", got)
		}
	})
}

// wantNotes: the plan's group role notes are these, in this order (each a
// prefix of the note).
func wantNotes(t *testing.T, p *Plan, want ...string) {
	t.Helper()
	if len(p.GroupRoles) != len(want) {
		t.Fatalf("group role notes %q, want %q", p.GroupRoles, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(p.GroupRoles[i], w) {
			t.Errorf("note %d: %q, want %q", i, p.GroupRoles[i], w)
		}
	}
}
