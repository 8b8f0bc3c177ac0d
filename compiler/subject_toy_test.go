package compiler

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/lang"
)

// A toy kind of subject, to show (and keep showing) that a new kind is
// one new file: "every signed-in caller reads the rows whose column is
// true" (published posts). It needs nothing outside this file: its lang
// side (published, a lang.Subject), its compiled side (publishedKind, a
// subjectKind) added to subjectKinds for the test, and its tests from both
// sides against a real PostgreSQL.

// published is the toy's subject as the checker would make it.
type published struct{ column string }

func (p published) String() string                   { return "published (" + p.column + ")" }
func (published) Anonymous() bool                    { return false }
func (published) OnlyRead() string                   { return "a published row is for reading" }
func (p published) ReadsFor(other lang.Subject) bool { return other == lang.Subject(p) }
func (published) ReadHint() string                   { return "add read" }

// publishedKind compiles it: column = true, an arm with its own index.
type publishedKind struct{ column string }

func newPublishedKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	for _, rule := range r.Rules {
		if p, ok := rule.Subject.(published); ok {
			return publishedKind{p.column}
		}
	}
	return nil
}

func (k publishedKind) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	if audience != audienceAuthenticated || !c.r.Can(published{k.column}, perm) {
		return nil
	}
	return Eq{L: c.col(k.column), R: True}
}

func (k publishedKind) columns(c *ruleContext) []ColumnNeed {
	return []ColumnNeed{{
		Column: k.column, Type: "boolean", TypeOK: func(t string) bool { return t == "boolean" },
		TypeWhy: "it says whether a row is published", TypeHint: "alter the column to boolean",
		Index: true, IndexWhy: "The published arm is " + k.column + " = true: this index serves it.",
		LookupWhy: "the policies look published rows up by it",
	}}
}

func (publishedKind) page(*pageContext) *pageArm { return nil }

func (publishedKind) cites(*ruleContext, string, lang.Perm) []string { return nil }

const toyPolicy = `resource app.posts {
  owner column owner_id
  owner can read, create, write, delete
}
`

// toyBuild compiles toyPolicy with a published rule added to posts.
func toyBuild(t *testing.T) *Output {
	t.Helper()
	saved := subjectKinds
	subjectKinds = append(append([]func(*lang.Model, *lang.ResourceModel) subjectKind{}, saved...), newPublishedKind)
	t.Cleanup(func() { subjectKinds = saved })
	f, err := lang.ParseFile("toy.iam", []byte(toyPolicy))
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check([]*lang.File{f})
	if err != nil {
		t.Fatal(err)
	}
	posts := m.Resources[0]
	posts.Rules = append(posts.Rules, lang.RuleModel{Subject: published{"published"}, Perms: []lang.Perm{lang.Read},
		Pos: lang.Pos{Filename: "toy.iam", Line: 4, Column: 3}})
	out, err := Build(m, []string{"toy.iam"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestToySubjectKindSQL: the new kind's arm joins the select policy after
// the owner's, its rule is cited, its column is indexed, and it grants
// nothing else.
func TestToySubjectKindSQL(t *testing.T) {
	out := toyBuild(t)
	script := out.Script()
	for _, want := range []string{
		"as permissive for select to web_user\n    using (owner_id = (select iam.user_id_uuid('sub'))\n        or published = true);",
		"'iamc: owner can read (toy.iam:3); published (published) can read (toy.iam:4)'",
		"create index if not exists posts_published_iam_idx on app.posts (published);",
		"as permissive for update to web_user\n    using (owner_id = (select iam.user_id_uuid('sub')))",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the build lacks\n%s\n--- build:\n%s", want, script)
		}
	}
	cols := Columns(out.Model, out.Model.Resources[0])
	var names []string
	for _, c := range cols {
		names = append(names, c.Column)
	}
	if diff := cmp.Diff([]string{"owner_id", "published"}, names); diff != "" {
		t.Errorf("columns the catalog check reads (-want +got):\n%s", diff)
	}
}

// TestToySubjectKindDatabase: applied to a real database, a signed-in
// caller reads their own rows and the published ones, and nobody else's
// drafts; the published arm lets no one change a row.
func TestToySubjectKindDatabase(t *testing.T) {
	ctx := context.Background()
	const alice, bob = "a1ce0000-0000-4000-8000-00000000a11c", "b0b00000-0000-4000-8000-000000000b0b"
	conn := newServer(t, `
create schema app authorization api_owner;
create table app.posts (id bigint generated always as identity primary key, owner_id uuid not null,
    published boolean not null default false, body text not null);
alter table app.posts owner to api_owner;`, toyBuild(t).Script(), `
insert into app.posts (owner_id, published, body) values
    ('`+alice+`', false, 'alice draft'), ('`+alice+`', true, 'alice post'),
    ('`+bob+`', false, 'bob draft'), ('`+bob+`', true, 'bob post');`)
	as := func(sub, method, sql string) []string {
		t.Helper()
		var got []string
		err := asUser(conn, sub, method, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, sql)
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			t.Fatalf("%s as %s: %v", sql, sub, err)
		}
		return got
	}
	const list = "select body from app.posts order by id"
	if diff := cmp.Diff([]string{"alice draft", "alice post", "bob post"}, as(alice, "GET", list)); diff != "" {
		t.Errorf("alice reads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alice post", "bob draft", "bob post"}, as(bob, "GET", list)); diff != "" {
		t.Errorf("bob reads (-want +got):\n%s", diff)
	}
	if got := as(bob, "PATCH", "update app.posts set body = 'defaced' where body = 'alice post' returning body"); len(got) != 0 {
		t.Errorf("bob changed alice's published post: %q", got)
	}
	if got := as(alice, "PATCH", "update app.posts set body = 'alice post, edited' where body = 'alice post' returning body"); len(got) != 1 {
		t.Errorf("alice could not edit her own post: %q", got)
	}
}
