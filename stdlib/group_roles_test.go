package stdlib_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	. "github.com/iamc/iamc/internal/exampletest"
)

// TestGroupRolesAreData: the group roles are rows of iam.group_roles, which
// every build writes from the .iam files (today always member < admin <
// owner), and which the runtime reads: the declared roles work, an unknown
// one is refused by the group API (22023, the message it always had) and
// by the tables under it (foreign keys, 23503). A role added to the table
// works with no function changed, ranked where its row says; a build that
// no longer declares it fails while a member holds it, and removes it once
// nobody does.
func TestGroupRolesAreData(t *testing.T) {
	ctx := context.Background()
	s := Server(t)
	script, err := BuildScript(Dir)
	NoError(t, err)
	db := NewDatabase(t, "group_roles", "schema.sql")
	CloseWhenDone(t, db)
	apply := func() error {
		t.Helper()
		out, err := ApplyScript(ctx, s, db.Name, script)
		if err != nil {
			t.Logf("psql: %s", out)
		}
		return err
	}
	NoError(t, apply())
	roles := func() string {
		t.Helper()
		return Scalar[string](t, db, `select string_agg(name || ' ' || rank, ', ' order by rank) from iam.group_roles`)
	}
	if got := roles(); got != "member 1, admin 2, owner 3" {
		t.Fatalf("the build wrote the group roles %q", got)
	}

	owner := KeycloakUser("olga", "0f000000-0000-4000-8000-0000000000f1")
	adminID, memberID, coOwnerID, viewerID := "ad000000-0000-4000-8000-0000000000a1",
		"3e000000-0000-4000-8000-0000000000e1", "c0000000-0000-4000-8000-0000000000c1", "71000000-0000-4000-8000-000000000071"
	team := CreateGroup(t, db, owner, "team")

	// The declared roles work.
	AddMember(t, db, owner, team, adminID, "admin")
	AddMember(t, db, owner, team, memberID, "member")
	AddMember(t, db, owner, team, coOwnerID, "owner")
	NoError(t, RPC(t, db, owner, "set_group_member_role", "group_id", team, "user_id", memberID, "role", "admin"))
	NoError(t, RPC(t, db, owner, "set_group_member_role", "group_id", team, "user_id", memberID, "role", "member"))
	members := func() string {
		t.Helper()
		return Scalar[string](t, db, `select string_agg(user_id || ' ' || role, ', ' order by user_id) from iam.group_members where group_id = $1`, team)
	}
	want := "0f000000-0000-4000-8000-0000000000f1 owner, 3e000000-0000-4000-8000-0000000000e1 member, " +
		"ad000000-0000-4000-8000-0000000000a1 admin, c0000000-0000-4000-8000-0000000000c1 owner"
	if got := members(); got != want {
		t.Fatalf("memberships: %s, want %s", got, want)
	}

	// An unknown role: the API answers as it always did, its hint listing
	// the roles of iam.group_roles.
	wantHint := func(err error, code, msg, hint string) {
		t.Helper()
		WantSQLError(t, err, code, msg)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Hint != hint {
			t.Errorf("hint %q, want %q", pgErr.Hint, hint)
		}
	}
	wantHint(RPC(t, db, owner, "add_group_member", "group_id", team, "user_id", viewerID, "role", "viewer"),
		"22023", "unknown group role viewer", "A group role is member, admin or owner.")
	wantHint(RPC(t, db, owner, "set_group_member_role", "group_id", team, "user_id", memberID, "role", "viewer"),
		"22023", "unknown group role viewer", "A group role is member, admin or owner.")
	wantHint(RPC(t, db, owner, "set_group_member_role", "group_id", team, "user_id", memberID, "role", nil),
		"22023", "role is required", "A group role is member, admin or owner.")
	// Under the API, the tables refuse it too.
	_, err = db.SU.Exec(ctx, `insert into iam.group_members (group_id, user_id, role) values ($1, $2, 'viewer')`, team, viewerID)
	WantSQLError(t, err, "23503", "group_members_role_fkey")
	_, err = db.SU.Exec(ctx, `update iam.settings set token_group_role = 'viewer'`)
	WantSQLError(t, err, "23503", "settings_token_group_role_fkey")

	// A role below member, added as a build declaring it would write it.
	db.Exec(t, `update iam.group_roles set rank = rank + 1`)
	db.Exec(t, `insert into iam.group_roles (name, rank) values ('viewer', 1)`)
	AddMember(t, db, owner, team, viewerID, "viewer")
	wantHint(RPC(t, db, owner, "add_group_member", "group_id", team, "user_id", viewerID, "role", "boss"),
		"22023", "unknown group role boss", "A group role is viewer, member, admin or owner.")
	viewer := KeycloakUser("vera", viewerID)
	groupIDs := func(who Person, minRole string) []int64 {
		t.Helper()
		var ids []int64
		err := Requester{T: t, DB: db, Who: who, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `select iam.group_ids($1)`, minRole).Scan(&ids)
		})
		NoError(t, err)
		return ids
	}
	if got := groupIDs(viewer, "viewer"); len(got) != 1 || got[0] != team {
		t.Errorf("a viewer's groups at viewer or above: %v, want [%d]", got, team)
	}
	if got := groupIDs(viewer, "member"); len(got) != 0 {
		t.Errorf("a viewer's groups at member or above: %v, want none (viewer ranks below member)", got)
	}
	if got := groupIDs(KeycloakUser("mo", memberID), "viewer"); len(got) != 1 || got[0] != team {
		t.Errorf("a member's groups at viewer or above: %v, want [%d]", got, team)
	}

	// The files do not declare viewer: the build would remove it, and
	// cannot while a member holds it. Nothing changes.
	if err := apply(); err == nil {
		t.Fatal("the build removed a role a member holds")
	}
	if got := roles(); got != "viewer 1, member 2, admin 3, owner 4" {
		t.Errorf("after the failed build, the roles are %q", got)
	}
	NoError(t, RPC(t, db, owner, "remove_group_member", "group_id", team, "user_id", viewerID))
	NoError(t, apply())
	if got := roles(); got != "member 1, admin 2, owner 3" {
		t.Errorf("the build wrote the group roles %q", got)
	}
	if got := members(); got != want {
		t.Errorf("memberships after the roles changed back: %s, want %s", got, want)
	}
}
