package stdlib_test

// The limits one user meets so that they cannot hurt the others: quotas of
// the group API (groups block: max ...) and the statement and lock timeouts
// of the runtime roles (roles block). Each is built from a copy of the
// example with its own runtime roles: role settings belong to the cluster,
// and the other tests run as web_user with the defaults.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
)

// limitsDB is the example (schema.sql, todos.iam, chats.iam) built with
// iamText as its iam.iam, in a database of its own. The roles iamText names
// are created first (nologin, granted to authenticator, like roles.sql).
func limitsDB(t *testing.T, name, iamText string, roles ...string) *Database {
	t.Helper()
	s := Server(t)
	for _, r := range roles {
		err := s.Exec(t.Context(), "postgres", fmt.Sprintf(`do $$ begin
			if not exists (select from pg_roles where rolname = '%[1]s') then
				create role %[1]s nologin;
				grant %[1]s to authenticator;
			end if;
		end $$`, r))
		NoError(t, err)
	}
	db := NewDatabase(t, name, "schema.sql")
	script, err := BuildScript(exampleWith(t, iamText))
	NoError(t, err)
	if out, err := ApplyScript(t.Context(), s, name, script); err != nil {
		t.Fatalf("applying the build: %v\n%s", err, out)
	}
	return db
}

// as is who with the runtime role role instead of web_user.
func as(who Person, role string) Person {
	claims := map[string]any{}
	for k, v := range who.Claims {
		claims[k] = v
	}
	claims["role"] = role
	return Person{Name: who.Name, Role: role, Claims: claims}
}

func TestGroupQuotas(t *testing.T) {
	db := limitsDB(t, "quotas", `
roles {
  authenticated quota_user
  anonymous quota_anon
  owner api_owner
}
groups {
  api schema app
  max groups created per user 3
  max groups per user 3
  max members per group 3
}
`, "quota_user", "quota_anon")
	user := func(name, sub string) Person { return as(KeycloakUser(name, sub), "quota_user") }
	alice := user("alice", "a1000000-0000-4000-8000-000000000001")
	bob := user("bob", "b2000000-0000-4000-8000-000000000002")
	carol := user("carol", "c3000000-0000-4000-8000-000000000003")
	dave := user("dave", "d4000000-0000-4000-8000-000000000004")
	erin := user("erin", "e5000000-0000-4000-8000-000000000005")
	sub := func(p Person) string { return p.Claims["sub"].(string) }
	createErr := func(who Person, name string) error {
		return RPC(t, db, who, "create_group", "name", name)
	}

	var g [3]int64
	for i := range g {
		g[i] = CreateGroup(t, db, alice, fmt.Sprintf("alice %d", i+1))
	}
	t.Run("a fourth group of alice's is refused with PT429", func(t *testing.T) {
		WantSQLError(t, createErr(alice, "alice 4"), "PT429", "you cannot create more than 3 groups")
		if n := Scalar[int64](t, db, "select count(*) from iam.groups where name = 'alice 4'"); n != 0 {
			t.Errorf("the refused group was created anyway (%d rows)", n)
		}
	})
	b1 := CreateGroup(t, db, bob, "bob 1")
	t.Run("bob still creates his groups", func(t *testing.T) {
		if b1 == 0 {
			t.Fatal("bob's group has no id")
		}
	})
	t.Run("once alice deletes a group she may create one again", func(t *testing.T) {
		NoError(t, RPC(t, db, alice, "delete_group", "group_id", g[2]))
		g[2] = CreateGroup(t, db, alice, "alice 3 again")
	})

	addErr := func(who Person, group int64, member Person) error {
		return RPC(t, db, who, "add_group_member", "group_id", group, "user_id", sub(member))
	}
	NoError(t, addErr(alice, g[0], bob))
	NoError(t, addErr(alice, g[1], bob)) // bob: b1, g0, g1
	t.Run("a fourth membership of bob's is refused without telling how many groups he is in", func(t *testing.T) {
		err := addErr(alice, g[2], bob)
		WantSQLError(t, err, "PT429", "this user cannot be added to another group")
		if strings.Contains(err.Error(), "3 groups that") || strings.Contains(err.Error(), "is in 3") {
			t.Errorf("the error gives bob's count: %v", err)
		}
	})
	t.Run("bob cannot create a group that would be his fourth membership", func(t *testing.T) {
		WantSQLError(t, createErr(bob, "bob 2"), "PT429", "you cannot be in more than 3 groups")
	})
	t.Run("once bob leaves a group he may be added to another", func(t *testing.T) {
		NoError(t, RPC(t, db, bob, "leave_group", "group_id", g[0]))
		NoError(t, addErr(alice, g[2], bob)) // g2: alice, bob
	})

	NoError(t, addErr(alice, g[2], carol)) // g2: alice, bob, carol
	t.Run("a fourth member of a group is refused with PT429", func(t *testing.T) {
		WantSQLError(t, addErr(alice, g[2], dave), "PT429", fmt.Sprintf("group %d is full", g[2]))
		if n := Scalar[int64](t, db, "select count(*) from iam.group_members where group_id = $1", g[2]); n != 3 {
			t.Errorf("group %d has %d members, want 3", g[2], n)
		}
	})
	t.Run("another group still takes members", func(t *testing.T) {
		NoError(t, addErr(alice, g[1], dave))
	})
	t.Run("once a member is removed the group takes another", func(t *testing.T) {
		NoError(t, RPC(t, db, alice, "remove_group_member", "group_id", g[2], "user_id", sub(carol)))
		NoError(t, addErr(alice, g[2], erin))
	})

	t.Run("concurrent creates by one user stop at the quota", func(t *testing.T) {
		frank := user("frank", "f6000000-0000-4000-8000-000000000006")
		const tries = 8
		errs := make([]error, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := pgx.Connect(context.Background(), db.API.Config().ConnString())
				if err != nil {
					errs[i] = err
					return
				}
				defer conn.Close(context.Background())
				other := &Database{Name: db.Name, Server: db.Server, SU: db.SU, API: conn}
				errs[i] = RPC(t, other, frank, "create_group", "name", fmt.Sprintf("frank %d", i))
			}()
		}
		wg.Wait()
		codes := map[string]int{}
		for _, err := range errs {
			code := "ok"
			if err != nil {
				code = pgrest.SQLState(err)
			}
			codes[code]++
		}
		if diff := cmp.Diff(map[string]int{"ok": 3, "PT429": tries - 3}, codes); diff != "" {
			t.Errorf("outcomes of %d concurrent create_group (-want +got):\n%s\nerrors: %v", tries, diff, errs)
		}
	})
}

func TestRoleTimeouts(t *testing.T) {
	iam := func(statement, lock string) string {
		return fmt.Sprintf(`
roles {
  authenticated tmo_user
  anonymous tmo_anon
  owner api_owner
  statement timeout %s
  lock timeout '%s'
}
groups {
  api schema app
}
`, statement, lock)
	}
	db := limitsDB(t, "timeouts", iam("300ms", "200ms"), "tmo_user", "tmo_anon")
	alice := as(KeycloakUser("alice", "a1000000-0000-4000-8000-000000000001"), "tmo_user")
	anon := Person{Name: "anonymous", Role: "tmo_anon"}

	setting := func(who Person, name string) string {
		var v string
		err := Requester{T: t, DB: db, Who: who, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "select current_setting($1)", name).Scan(&v)
		})
		NoError(t, err)
		return v
	}
	t.Run("both runtime roles run requests under the declared timeouts", func(t *testing.T) {
		got := map[string]string{}
		for _, who := range []Person{alice, anon} {
			for _, name := range []string{"statement_timeout", "lock_timeout"} {
				got[who.Role+" "+name] = setting(who, name)
			}
		}
		want := map[string]string{
			"tmo_user statement_timeout": "300ms", "tmo_user lock_timeout": "200ms",
			"tmo_anon statement_timeout": "300ms", "tmo_anon lock_timeout": "200ms",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("settings in requests (-want +got):\n%s", diff)
		}
	})
	t.Run("a request running longer is cancelled with 57014", func(t *testing.T) {
		err := Requester{T: t, DB: db, Who: alice, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
			_, err := tx.Exec(t.Context(), "select pg_sleep(2)")
			return err
		})
		WantSQLError(t, err, "57014", "statement timeout")
	})
	t.Run("the superuser is not capped", func(t *testing.T) {
		db.Exec(t, "select pg_sleep(0.5)")
	})
	t.Run("a write waiting for a row lock gives up with 55P03", func(t *testing.T) {
		var id int64
		err := Requester{T: t, DB: db, Who: alice, Path: "/todos"}.Do("POST", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "insert into app.todos (title) values ('locked') returning id").Scan(&id)
		})
		NoError(t, err)
		holder, err := db.SU.Begin(t.Context())
		NoError(t, err)
		defer holder.Rollback(context.Background()) //nolint:errcheck
		_, err = holder.Exec(t.Context(), "select from app.todos where id = $1 for update", id)
		NoError(t, err)
		_, err = Requester{T: t, DB: db, Who: alice, Path: "/todos"}.Exec("PATCH", "update app.todos set done = true where id = $1", id)
		WantSQLError(t, err, "55P03", "lock timeout")
	})

	rolconfig := func() []string {
		var cfg []string
		err := db.SU.QueryRow(t.Context(), "select coalesce(rolconfig, '{}') from pg_roles where rolname = 'tmo_user'").Scan(&cfg)
		NoError(t, err)
		return cfg
	}
	t.Run("a new value is applied by the next build", func(t *testing.T) {
		script, err := BuildScript(exampleWith(t, iam("1s", "200ms")))
		NoError(t, err)
		if out, err := ApplyScript(t.Context(), db.Server, db.Name, script); err != nil {
			t.Fatalf("applying: %v\n%s", err, out)
		}
		if got := setting(alice, "statement_timeout"); got != "1s" {
			t.Errorf("statement_timeout after the rebuild is %s, want 1s", got)
		}
		t.Run("the owner role applies it again unchanged, but cannot change it, and nothing is applied", func(t *testing.T) {
			owner, err := db.SU.Begin(t.Context())
			NoError(t, err)
			defer owner.Rollback(context.Background()) //nolint:errcheck
			before := rolconfig()
			_, err = owner.Exec(t.Context(), "set local role api_owner")
			NoError(t, err)
			_, err = owner.Exec(t.Context(), roleSettingsStatement(t, script))
			NoError(t, err) // same values: nothing to set
			NoError(t, owner.Rollback(t.Context()))

			changed := strings.Replace(roleSettingsStatement(t, script), "statement_timeout=1s", "statement_timeout=9s", 1)
			owner, err = db.SU.Begin(t.Context())
			NoError(t, err)
			_, err = owner.Exec(t.Context(), "set local role api_owner")
			NoError(t, err)
			_, err = owner.Exec(t.Context(), changed)
			WantSQLError(t, err, "42501", "cannot set statement_timeout=9s on role")
			NoError(t, owner.Rollback(t.Context()))
			if diff := cmp.Diff(before, rolconfig()); diff != "" {
				t.Errorf("the role's settings changed (-before +after):\n%s", diff)
			}
		})
	})
}

// roleSettingsStatement is the build's statement that sets the runtime
// roles' timeouts.
func roleSettingsStatement(t *testing.T, script string) string {
	t.Helper()
	start := strings.Index(script, "do $do$\ndeclare\n    r record;\n    setting text;")
	if start < 0 {
		t.Fatal("the build has no statement setting the role timeouts")
	}
	end := strings.Index(script[start:], "$do$;")
	return script[start : start+end+len("$do$;")]
}

// TestRoleTimeoutsFromConcurrentBuilds: two builds in different databases
// of one cluster (the iamc advisory lock is per database) set the timeouts
// of roles that have no settings yet at the same moment. PostgreSQL keeps a
// role's settings in one row of a shared catalog, so the second insert of
// that row fails with 23505 unless the build retries it as an update.
func TestRoleTimeoutsFromConcurrentBuilds(t *testing.T) {
	s := Server(t)
	for _, r := range []string{"race_user", "race_anon"} {
		NoError(t, s.Exec(t.Context(), "postgres", fmt.Sprintf(`do $$ begin
			if not exists (select from pg_roles where rolname = '%[1]s') then create role %[1]s nologin; end if;
		end $$; alter role %[1]s reset all`, r)))
	}
	dir := t.TempDir()
	NoError(t, os.WriteFile(filepath.Join(dir, "iam.iam"), []byte("roles {\n  authenticated race_user\n  anonymous race_anon\n}\n"), 0o644))
	script, err := BuildScript(dir)
	NoError(t, err)
	stmt := roleSettingsStatement(t, script)

	first, err := pgx.Connect(t.Context(), s.URL("postgres", "postgres"))
	NoError(t, err)
	defer first.Close(context.Background())
	second, err := pgx.Connect(t.Context(), s.URL("template1", "postgres"))
	NoError(t, err)
	defer second.Close(context.Background())

	tx1, err := first.Begin(t.Context())
	NoError(t, err)
	_, err = tx1.Exec(t.Context(), stmt)
	NoError(t, err)
	done := make(chan error, 1)
	go func() {
		tx2, err := second.Begin(context.Background())
		if err == nil {
			if _, err = tx2.Exec(context.Background(), stmt); err == nil {
				err = tx2.Commit(context.Background())
			} else {
				_ = tx2.Rollback(context.Background())
			}
		}
		done <- err
	}()
	// The second waits for the first's uncommitted row; let it get there.
	NoError(t, s.Exec(t.Context(), "postgres", `do $$ begin
		for i in 1..200 loop
			exit when exists (select from pg_stat_activity where wait_event_type = 'Lock' and datname = 'template1');
			perform pg_sleep(0.01);
		end loop;
	end $$`))
	NoError(t, tx1.Commit(t.Context()))
	if err := <-done; err != nil {
		t.Fatalf("the second build: %v", err)
	}
	var cfg []string
	NoError(t, first.QueryRow(t.Context(), "select coalesce(rolconfig, '{}') from pg_roles where rolname = 'race_user'").Scan(&cfg))
	if diff := cmp.Diff([]string{"statement_timeout=5s", "lock_timeout=2s"}, cfg); diff != "" {
		t.Errorf("race_user's settings (-want +got):\n%s", diff)
	}
}
