package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/lang"
)

// TestAuthenticatorMembershipOptions: the catalog check "the authenticator
// can become the runtime roles" agrees with what PostgREST's role switch
// (set_config('role', ...)) actually allows, on every PostgreSQL version.
// Since PostgreSQL 16 a membership has SET and INHERIT options: SET FALSE
// makes the member unable to switch although pg_has_role(..., 'MEMBER') is
// still true, and INHERIT FALSE does not matter to PostgREST. Before 16
// those options do not exist: the GRANT is a syntax error.
func TestAuthenticatorMembershipOptions(t *testing.T) {
	s := pgtest.New(t)
	version := pgtest.MustVersionNum(t, s)

	tests := []struct {
		name  string
		since int    // the first server_version_num that accepts setup
		setup string // run as postgres; roles vN_user, vN_anon, vN_owner, vN_login exist
		want  []string
		// can: for each runtime role, whether vN_login can switch to it.
		can map[string]bool
	}{
		{
			name:  "plain grants",
			setup: "grant v0_user, v0_anon to v0_login;",
			can:   map[string]bool{"v0_user": true, "v0_anon": true},
		},
		{
			name:  "no grant of the authenticated role",
			setup: "grant v1_anon to v1_login;",
			want: []string{"p/a.iam:1:1: error: v1_login cannot become v1_user: PostgREST logs in as v1_login and switches to v1_user for every request with a JWT\n" +
				"  hint: grant v1_user to v1_login;"},
			can: map[string]bool{"v1_user": false, "v1_anon": true},
		},
		{
			name:  "membership WITH SET FALSE",
			since: 160000,
			setup: "grant v2_user to v2_login with set false; grant v2_anon to v2_login;",
			want: []string{"p/a.iam:1:1: error: v2_login cannot become v2_user: PostgREST logs in as v2_login and switches to v2_user for every request with a JWT\n" +
				"  hint: grant v2_user to v2_login;"},
			can: map[string]bool{"v2_user": false, "v2_anon": true},
		},
		{
			name:  "membership WITH INHERIT FALSE",
			since: 160000,
			setup: "grant v3_user, v3_anon to v3_login with inherit false;",
			can:   map[string]bool{"v3_user": true, "v3_anon": true},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p := fmt.Sprintf("v%d_", i)
			roles := fmt.Sprintf("create role %[1]suser nologin; create role %[1]sanon nologin; create role %[1]sowner nologin; create role %[1]slogin login noinherit;", p)
			if err := s.Exec(ctx, "postgres", roles); err != nil {
				t.Fatal(err)
			}
			err := s.Exec(ctx, "postgres", tt.setup)
			if version < tt.since {
				// The option does not exist on this version: nothing to check
				// but that PostgreSQL refuses it.
				if state := pgrest.SQLState(err); state != "42601" {
					t.Fatalf("PostgreSQL %d: %q: err = %v (SQLSTATE %q), want a syntax error (42601)", version, tt.setup, err, state)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}

			src := fmt.Sprintf("roles { authenticated %[1]suser  anonymous %[1]sanon  owner %[1]sowner }", p)
			f, err := lang.ParseFile("p/a.iam", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			m, err := lang.Check([]*lang.File{f})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.Connect(ctx, s.URL("postgres", "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			got := check(t, conn, m, catalog.CatalogOptions{Dir: "p", Authenticator: p + "login"})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}

			// What PostgREST would do: log in as the authenticator and
			// switch role for the request.
			login, err := pgx.Connect(ctx, s.URL("postgres", p+"login"))
			if err != nil {
				t.Fatal(err)
			}
			defer login.Close(ctx)
			for role, can := range tt.can {
				var current string
				err := pgrest.Do(ctx, login, pgrest.Request{Method: "GET", Path: "/", Role: role}, func(tx pgx.Tx) error {
					return tx.QueryRow(ctx, "select current_user").Scan(&current)
				})
				switch {
				case can && (err != nil || current != role):
					t.Errorf("switching to %s: current_user %q, err %v; want to run as %s", role, current, err, role)
				case !can && pgrest.SQLState(err) != "42501":
					t.Errorf("switching to %s: current_user %q, err %v; want permission denied (42501)", role, current, err)
				case !can && !strings.Contains(err.Error(), role):
					t.Errorf("switching to %s: error %v does not name the role", role, err)
				}
			}
		})
	}
}

// TestOwnerMembershipWithoutSet: a runtime role granted the owner role WITH
// SET FALSE (PostgreSQL 16+) cannot switch to it, but still inherits its
// privileges, and with them counts as the tables' owner: it skips
// row-level security that is not forced. So the catalog check keeps
// reporting it (it asks 'MEMBER'). The authenticator, a member of the owner
// role only through that membership, cannot switch to it: a token naming
// the owner role is refused, and the check (asking 'SET') does not report
// it. Before 16 the GRANT is a syntax error.
func TestOwnerMembershipWithoutSet(t *testing.T) {
	s := pgtest.New(t)
	ctx := context.Background()
	version := pgtest.MustVersionNum(t, s)
	if err := s.Exec(ctx, "postgres", `create role o_owner nologin; create role o_user nologin; create role o_anon nologin;
create role o_login login noinherit; grant o_user, o_anon to o_login;
create table public.t (id int primary key); alter table public.t owner to o_owner;
insert into public.t values (1);
alter table public.t enable row level security;
grant select on public.t to o_user, o_anon;`); err != nil {
		t.Fatal(err)
	}
	err := s.Exec(ctx, "postgres", "grant o_owner to o_user with set false")
	if version < 160000 {
		if state := pgrest.SQLState(err); state != "42601" {
			t.Fatalf("PostgreSQL %d: grant ... with set false: err = %v (SQLSTATE %q), want a syntax error (42601)", version, err, state)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}

	f, err := lang.ParseFile("p/a.iam", []byte("roles { authenticated o_user  anonymous o_anon  owner o_owner }"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check([]*lang.File{f})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	want := []string{"p/a.iam:1:1: warning: the authenticated role o_user can become the owner role o_owner: requests get every privilege on the resources' tables and the power to turn row-level security off\n" +
		"  hint: revoke o_owner from o_user; (or from the role through which it is a member)"}
	if diff := cmp.Diff(want, check(t, conn, m, catalog.CatalogOptions{Dir: "p", Authenticator: "o_login"})); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// What requests can do, logged in as o_login as PostgREST is. Both
	// runtime roles have SELECT on public.t, whose row-level security (on,
	// not forced, no policy) hides every row from anyone but its owner.
	login, err := pgx.Connect(ctx, s.URL("postgres", "o_login"))
	if err != nil {
		t.Fatal(err)
	}
	defer login.Close(ctx)
	get := func(role, sql string, dest ...any) error {
		return pgrest.Do(ctx, login, pgrest.Request{Method: "GET", Path: "/t", Role: role}, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, sql).Scan(dest...)
		})
	}
	for _, tt := range []struct {
		role string
		rows int
	}{
		{"o_user", 1}, // counts as the owner: row-level security skipped
		{"o_anon", 0}, // row-level security applies
	} {
		var n int
		if err := get(tt.role, "select count(*) from public.t", &n); err != nil || n != tt.rows {
			t.Errorf("GET /t as %s: %d rows, err %v; want %d rows", tt.role, n, err, tt.rows)
		}
		var ignored string
		if err := get(tt.role, "select set_config('role', 'o_owner', true)", &ignored); pgrest.SQLState(err) != "42501" {
			t.Errorf("%s switching to o_owner: err = %v, want permission denied (42501)", tt.role, err)
		}
	}
	var ignored string
	if err := get("o_owner", "select current_user", &ignored); pgrest.SQLState(err) != "42501" {
		t.Errorf("a token naming o_owner: err = %v, want permission denied (42501)", err)
	}
}
