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

// TestCheckCatalogGroupColumn: a group column must exist and hold bigint
// group ids; one that does passes.
func TestCheckCatalogGroupColumn(t *testing.T) {
	ctx := context.Background()
	s := pgtest.New(t)
	if err := s.Exec(ctx, "postgres", `
create role api_owner noinherit; create role web_user nologin; create role web_anon nologin;
create schema app authorization api_owner;
set role api_owner;
create table app.good (id bigint primary key, owner_id uuid not null, group_id bigint);
create table app.int_group (id bigint primary key, owner_id uuid not null, group_id integer);
create table app.no_group (id bigint primary key, owner_id uuid not null);
reset role;`); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	f, err := lang.ParseFile("p/a.iam", []byte(`groups { api schema app }
resource app.good { owner column owner_id  group column group_id  owner can read  group member can read }
resource app.int_group {
  owner column owner_id
  group column group_id
}
resource app.no_group {
  owner column owner_id
  group column team_id
}`))
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
	var got []string
	for _, f := range findings {
		got = append(got, strings.SplitN(f.String(), "\n", 2)[0])
	}
	want := []string{
		"p/a.iam:5:16: error: column app.int_group.group_id is integer, but group ids (iam.groups.id) are bigint",
		"p/a.iam:9:16: error: column team_id does not exist in app.no_group",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}
