package stdlib_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	. "github.com/iamc/iamc/internal/exampletest"
)

// Custom group roles: the policies of golden/group-roles (roles viewer <
// editor < moderator < admin < owner, members managed by moderator, token
// subgroups managers and editors, role member becomes viewer) on a
// database of their own. docs: viewers read, editors create and write,
// moderators delete; comments follow their doc.

var customRolesDir = filepath.Join("..", "golden", "group-roles", "policies")

const customRolesSchema = `
create schema app authorization api_owner;
set role api_owner;
create table app.docs (
    id bigint generated always as identity primary key,
    title text not null default '',
    owner_id uuid not null,
    group_id bigint not null
);
create table app.comments (
    id bigint generated always as identity primary key,
    doc_id bigint not null references app.docs (id) on delete cascade,
    author_id uuid not null,
    body text not null default ''
);
reset role;`

// The team: one member per role (olga made the group, so she owns it),
// and rex, in no group.
var (
	olga  = KeycloakUser("olga", "0a000000-0000-4000-8000-0000000000a1")
	adele = KeycloakUser("adele", "0a000000-0000-4000-8000-0000000000a2")
	mona  = KeycloakUser("mona", "0a000000-0000-4000-8000-0000000000a3")
	eddie = KeycloakUser("eddie", "0a000000-0000-4000-8000-0000000000a4")
	vic   = KeycloakUser("vic", "0a000000-0000-4000-8000-0000000000a5")
	rex   = KeycloakUser("rex", "0a000000-0000-4000-8000-0000000000a6")
)

var customRoles struct {
	once sync.Once
	db   *Database
	team int64
	err  error
}

func customRolesDB(t *testing.T) (*Database, int64) {
	t.Helper()
	s := Server(t)
	customRoles.once.Do(func() {
		db, err := CreateDatabase(s, "custom_roles")
		if err != nil {
			customRoles.err = err
			return
		}
		if err := s.Exec(t.Context(), "custom_roles", customRolesSchema); err != nil {
			customRoles.err = err
			return
		}
		script, err := BuildScript(customRolesDir)
		if err != nil {
			customRoles.err = err
			return
		}
		if out, err := ApplyScript(t.Context(), s, "custom_roles", script); err != nil {
			customRoles.err = fmt.Errorf("%v\n%s", err, out)
			return
		}
		customRoles.db = db
	})
	if customRoles.err != nil {
		t.Fatalf("setting up the custom roles database: %v", customRoles.err)
	}
	db := customRoles.db
	if customRoles.team == 0 {
		team := CreateGroup(t, db, olga, "team")
		AddMember(t, db, olga, team, UserID(adele), "admin")
		AddMember(t, db, olga, team, UserID(mona), "moderator")
		AddMember(t, db, mona, team, UserID(eddie), "editor")
		AddMember(t, db, mona, team, UserID(vic), "") // the default: the lowest role
		customRoles.team = team
	}
	return db, customRoles.team
}

// TestCustomRolesMatrix is the both-sides matrix of docs: each of the five
// roles (and a stranger, and anonymous) x {list, read, create, update,
// delete} of a doc in the team's group that someone else owns; refused
// writes re-checked as a superuser.
func TestCustomRolesMatrix(t *testing.T) {
	db, team := customRolesDB(t)
	if got := Scalar[string](t, db, `select role from iam.group_members where user_id = $1`, UserID(vic)); got != "viewer" {
		t.Fatalf("a member added without a role holds %q, want viewer (the lowest)", got)
	}
	type want struct{ list, read, create, update, remove bool }
	for _, c := range []struct {
		who  Person
		want want
	}{
		{olga, want{true, true, true, true, true}},
		{adele, want{true, true, true, true, true}},
		{mona, want{true, true, true, true, true}},
		{eddie, want{true, true, true, true, false}},
		{vic, want{true, true, false, false, false}},
		{rex, want{false, false, false, false, false}},
		{Anonymous, want{false, false, false, false, false}},
	} {
		t.Run(c.who.Name, func(t *testing.T) {
			var doc int64
			if err := db.SU.QueryRow(t.Context(), "insert into app.docs (title, owner_id, group_id) values ('plan', gen_random_uuid(), $1) returning id", team).Scan(&doc); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Exec(t, "delete from app.docs where id = $1 or title = 'new'", doc) })
			title := func() string {
				t.Helper()
				return Scalar[string](t, db, "select coalesce((select title from app.docs where id = $1), '(deleted)')", doc)
			}
			as := Requester{T: t, DB: db, Who: c.who, Path: "/docs"}

			var page int64
			err := as.Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select count(*) from app.docs_page(group_id => $1) where id = $2", team, doc).Scan(&page)
			})
			if got := err == nil && page == 1; got != c.want.list {
				t.Errorf("list (the group's page): %d (err %v), want listed %v", page, err, c.want.list)
			}
			var seen int64
			err = as.Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select count(*) from app.docs where id = $1", doc).Scan(&seen)
			})
			if got := err == nil && seen == 1; got != c.want.read {
				t.Errorf("read: %d (err %v), want %v", seen, err, c.want.read)
			}
			_, err = as.Exec("POST", "insert into app.docs (title, group_id) values ('new', $1)", team)
			if got := err == nil; got != c.want.create {
				t.Errorf("create in the team's group: %v (err %v), want %v", got, err, c.want.create)
			}
			if !c.want.create && Scalar[int64](t, db, "select count(*) from app.docs where title = 'new'") != 0 {
				t.Error("a refused create created a doc")
			}
			n, err := as.Exec("PATCH", "update app.docs set title = 'changed' where id = $1", doc)
			if got := err == nil && n == 1; got != c.want.update {
				t.Errorf("update: %d (err %v), want %v", n, err, c.want.update)
			}
			if !c.want.update && title() != "plan" {
				t.Errorf("a refused update changed the doc: %s", title())
			}
			n, err = as.Exec("DELETE", "delete from app.docs where id = $1", doc)
			if got := err == nil && n == 1; got != c.want.remove {
				t.Errorf("delete: %d (err %v), want %v", n, err, c.want.remove)
			}
			if !c.want.remove && title() == "(deleted)" {
				t.Error("a refused delete deleted the doc")
			}
		})
	}
}

// TestCustomRolesGroupAPI: moderators and above manage members, each up
// to their own role; only owners make owners; role names are exact.
func TestCustomRolesGroupAPI(t *testing.T) {
	db, team := customRolesDB(t)
	newcomer := "0a000000-0000-4000-8000-0000000000b1"
	members := func() string {
		t.Helper()
		return Scalar[string](t, db, `select string_agg(user_id || ' ' || role, ', ' order by user_id) from iam.group_members where group_id = $1`, team)
	}
	before := members()
	refused := func(t *testing.T, err error, code, msg string) {
		t.Helper()
		WantSQLError(t, err, code, msg)
		if got := members(); got != before {
			t.Errorf("a refused call changed the members: %s, was %s", got, before)
		}
	}
	for _, c := range []struct {
		name      string
		who       Person
		fn        string
		args      []any
		code, msg string
	}{
		{"an editor adds someone", eddie, "add_group_member", []any{"user_id", newcomer},
			"42501", fmt.Sprintf("only owners, admins and moderators of group %d can add members", team)},
		{"a moderator adds an admin", mona, "add_group_member", []any{"user_id", newcomer, "role", "admin"},
			"42501", fmt.Sprintf("only owners and admins of group %d can add admins", team)},
		{"an admin adds an owner", adele, "add_group_member", []any{"user_id", newcomer, "role", "owner"},
			"42501", fmt.Sprintf("only owners of group %d can add owners", team)},
		{"an admin makes herself owner", adele, "set_group_member_role", []any{"user_id", UserID(adele), "role", "owner"},
			"42501", fmt.Sprintf("only owners of group %d can make or unmake owners", team)},
		{"a moderator promotes an editor to admin", mona, "set_group_member_role", []any{"user_id", UserID(eddie), "role", "admin"},
			"42501", fmt.Sprintf("only owners and admins of group %d can make or unmake admins", team)},
		{"a moderator demotes an admin", mona, "set_group_member_role", []any{"user_id", UserID(adele), "role", "viewer"},
			"42501", fmt.Sprintf("only owners and admins of group %d can make or unmake admins", team)},
		{"a moderator removes an admin", mona, "remove_group_member", []any{"user_id", UserID(adele)},
			"42501", fmt.Sprintf("moderators cannot remove admins of group %d", team)},
		{"an admin removes the owner", adele, "remove_group_member", []any{"user_id", UserID(olga)},
			"42501", fmt.Sprintf("admins cannot remove owners of group %d", team)},
		{"an admin deletes the group", adele, "delete_group", nil,
			"42501", fmt.Sprintf("only owners of group %d can delete the group", team)},
	} {
		t.Run(c.name, func(t *testing.T) {
			refused(t, RPC(t, db, c.who, c.fn, append([]any{"group_id", team}, c.args...)...), c.code, c.msg)
		})
	}

	t.Run("grant oneself a role by a name trick", func(t *testing.T) {
		hint := "A group role is viewer, editor, moderator, admin or owner."
		for _, name := range []string{"Admin", "ADMIN", " admin", "admin ", "admin\u00a0", "adm\u200bin", "\"admin\"", "member", "boss", ""} {
			for _, call := range [][]any{
				{"add_group_member", "group_id", team, "user_id", newcomer, "role", name},
				{"set_group_member_role", "group_id", team, "user_id", UserID(vic), "role", name},
				{"set_group_member_role", "group_id", team, "user_id", UserID(mona), "role", name},
			} {
				err := RPC(t, db, mona, call[0].(string), call[1:]...)
				refused(t, err, "22023", "unknown group role")
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Hint != hint {
					t.Errorf("%q: hint %q, want %q", name, pgErr.Hint, hint)
				}
			}
		}
	})

	t.Run("what managers may do, each up to their own role", func(t *testing.T) {
		NoError(t, RPC(t, db, mona, "add_group_member", "group_id", team, "user_id", newcomer, "role", "moderator"))
		NoError(t, RPC(t, db, mona, "set_group_member_role", "group_id", team, "user_id", newcomer, "role", "editor"))
		NoError(t, RPC(t, db, adele, "set_group_member_role", "group_id", team, "user_id", newcomer, "role", "admin"))
		NoError(t, RPC(t, db, adele, "remove_group_member", "group_id", team, "user_id", newcomer))
		if got := members(); got != before {
			t.Errorf("members %s, want %s", got, before)
		}
	})
}

// TestCustomRolesTokenSubgroups: a Keycloak group path names a role in the
// group whose token name (set by a DBA) is the path above a declared
// subgroup; nothing else does, and a token membership manages nothing.
func TestCustomRolesTokenSubgroups(t *testing.T) {
	db, _ := customRolesDB(t)
	chicago := CreateGroup(t, db, olga, "chicago")
	db.Exec(t, "update iam.groups set token_name = '/campus/chicago' where id = $1", chicago)
	untagged := CreateGroup(t, db, olga, "untagged")
	var doc int64
	if err := db.SU.QueryRow(t.Context(), "insert into app.docs (title, owner_id, group_id) values ('campus', gen_random_uuid(), $1) returning id", chicago).Scan(&doc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(t, "delete from app.docs where group_id = any($1)", []int64{chicago, untagged}) })
	tok := func(paths ...string) Person { return WithGroups(rex, paths) }
	roleIn := func(who Person, gid int64) string {
		t.Helper()
		var role *string
		err := Requester{T: t, DB: db, Who: who, Path: "/groups"}.Do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "select (select my_role from app.groups where id = $1)", gid).Scan(&role)
		})
		NoError(t, err)
		if role == nil {
			return ""
		}
		return *role
	}
	for _, c := range []struct {
		paths []string
		role  string
	}{
		{[]string{"/campus/chicago"}, "viewer"},
		{[]string{"/campus/chicago/editors"}, "editor"},
		{[]string{"/campus/chicago/managers"}, "admin"},
		{[]string{"/campus/chicago", "/campus/chicago/managers"}, "admin"},
		{[]string{"/campus/chicago/interns"}, ""},
		{[]string{"/campus/chicago/Managers"}, ""},
		{[]string{"/campus/chicago/managers/night"}, ""},
		{[]string{"/campus/chicagomanagers"}, ""},
		{[]string{"campus/chicago/managers"}, ""},
		{[]string{"/managers"}, ""},
		{[]string{"/untagged/managers"}, ""},
	} {
		t.Run(strings.Join(c.paths, ","), func(t *testing.T) {
			who := tok(c.paths...)
			if got := roleIn(who, chicago); got != c.role {
				t.Errorf("role in /campus/chicago: %q, want %q", got, c.role)
			}
			if got := roleIn(who, untagged); got != "" {
				t.Errorf("role in a group without a token name: %q", got)
			}
			// What the rules give that role: a moderator and above
			// delete; an editor and above create.
			_, err := Requester{T: t, DB: db, Who: who, Path: "/docs"}.Exec("POST", "insert into app.docs (title, group_id) values ('by token', $1)", chicago)
			if mayCreate := c.role == "editor" || c.role == "admin"; (err == nil) != mayCreate {
				t.Errorf("create: err %v, want allowed %v", err, mayCreate)
			}
			db.Exec(t, "delete from app.docs where title = 'by token'")
		})
	}
	t.Run("a manager by token deletes, but does not manage members", func(t *testing.T) {
		who := tok("/campus/chicago/managers")
		n, err := Requester{T: t, DB: db, Who: who, Path: "/docs"}.Exec("DELETE", "delete from app.docs where id = $1", doc)
		NoError(t, err)
		if n != 1 {
			t.Errorf("deleted %d docs, want 1", n)
		}
		WantSQLError(t, RPC(t, db, who, "add_group_member", "group_id", chicago, "user_id", UserID(vic)), "42501", "can add members")
	})
}

// TestCustomRolesBuildRefusesToDropHeldRole: the script applied with psql,
// as its header says, stops when the files no longer declare a role
// members hold, with a message that says what to write; nothing changes.
func TestCustomRolesBuildRefusesToDropHeldRole(t *testing.T) {
	db, _ := customRolesDB(t)
	s := Server(t)
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(customRolesDir, "*.iam"))
	NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		NoError(t, err)
		text := string(b)
		// No moderator any more: rules and the manager say admin.
		text = strings.NewReplacer("editor < moderator < admin", "editor < admin", "members managed by moderator", "members managed by admin",
			"group moderator", "group admin").Replace(text)
		NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(text), 0o644))
	}
	script, err := BuildScript(dir)
	NoError(t, err)
	roles := func() string {
		return Scalar[string](t, db, "select string_agg(name, ' < ' order by rank) from iam.group_roles")
	}
	before := roles()
	out, err := ApplyScript(t.Context(), s, db.Name, script)
	if err == nil {
		t.Fatal("the build removed a role members hold")
	}
	for _, want := range []string{"group role moderator is still held by", "role moderator becomes ROLE"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("psql's output does not say %q:\n%s", want, out)
		}
	}
	if got := roles(); got != before {
		t.Errorf("roles %s after the refused build, were %s", got, before)
	}
}
