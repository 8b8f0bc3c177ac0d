package compiler_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/lang"
)

// TestCheckCatalog runs the catalog check against a real database, from
// both sides: a database that matches the files, and one broken in each
// way the check knows.
func TestCheckCatalog(t *testing.T) {
	ctx := context.Background()
	s := pgtest.New(t)
	if err := s.Exec(ctx, "postgres", `
create role api_owner noinherit; create role web_user nologin; create role web_anon nologin;
create schema app authorization api_owner;
set role api_owner;
create table app.good (id bigint primary key, owner_id uuid not null, group_id bigint);
create table app.text_owner (id bigint primary key, owner_id text not null);
create table app.no_owner (id bigint primary key);
create table app.int_group (id bigint primary key, owner_id uuid not null, group_id integer);
create view app.a_view as select 1 as id;
reset role;
create table app.not_mine (id bigint primary key, owner_id uuid not null);`); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	check := func(t *testing.T, text string) []string {
		t.Helper()
		f, err := lang.ParseFile("p/a.iam", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		m, err := lang.Check([]*lang.File{f})
		if err != nil {
			t.Fatal(err)
		}
		findings, err := compiler.CheckCatalog(ctx, conn, m)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range findings {
			out = append(out, strings.SplitN(f.String(), "\n", 2)[0])
		}
		return out
	}

	t.Run("a database that matches the files has no findings", func(t *testing.T) {
		got := check(t, "groups { api schema app }\nresource app.good {\n  owner column owner_id\n  group column group_id\n  owner can read\n  group member can read\n}")
		if len(got) != 0 {
			t.Errorf("findings: %v", got)
		}
	})
	t.Run("each mismatch is reported at its line", func(t *testing.T) {
		got := check(t, `roles {
  authenticated web_user
  anonymous nobody_here
  owner api_owner
}
groups { api schema app }
resource app.missing { owner column owner_id  owner can read }
resource app.text_owner {
  owner column owner_id
  owner can read
}
resource app.no_owner {
  owner column owner_id
  owner can read
}
resource app.int_group {
  owner column owner_id
  group column group_id
  owner can read
}
resource app.a_view { anonymous can read }
resource app.not_mine { owner column owner_id  owner can read }`)
		want := []string{
			"p/a.iam:1:1: error: role nobody_here does not exist",
			"p/a.iam:7:1: error: table app.missing does not exist",
			"p/a.iam:9:16: error: column app.text_owner.owner_id is text, but the identity type is uuid",
			"p/a.iam:13:16: error: column owner_id does not exist in app.no_owner",
			"p/a.iam:18:16: error: column app.int_group.group_id is integer, but group ids (iam.groups.id) are bigint",
			"p/a.iam:21:1: error: app.a_view is not a table (relkind v): row-level security applies to tables only",
			"p/a.iam:22:1: error: table app.not_mine is owned by postgres, not by the owner role api_owner",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})
}
