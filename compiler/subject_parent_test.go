package compiler

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestParentChainDatabase: three levels, stores -> products -> reviews
// (golden/parent-chain), applied to a real PostgreSQL. Reviews are
// `parent readers can read` (products are read by every signed-in user)
// and `parent writers can delete`: whoever may change the product (its
// store's owner, its store's staff) may delete its reviews; nobody else.
func TestParentChainDatabase(t *testing.T) {
	ctx := context.Background()
	out, err := Compile(filepath.Join("..", "golden", "parent-chain", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	const owner, staff, stranger = "0e1e0000-0000-4000-8000-00000000001e", "5a000000-0000-4000-8000-00000000005a", "57a00000-0000-4000-8000-00000000057a"
	conn := newServer(t, `
create schema app authorization api_owner;
set role api_owner;
create table app.stores (id bigint generated always as identity primary key, name text not null,
    owner_id uuid not null, group_id bigint);
create table app.products (id bigint generated always as identity primary key,
    store_id bigint not null references app.stores on delete cascade, name text not null);
create table app.reviews (id bigint generated always as identity primary key,
    product_id bigint not null references app.products on delete cascade, body text not null);
create table app.drafts (id bigint generated always as identity primary key,
    product_id bigint not null references app.products on delete cascade, body text not null);
reset role;`, out.Script(), `
insert into iam.groups (id, name, created_by) values (7, 'staff', '`+owner+`');
insert into iam.group_members (group_id, user_id, role) values (7, '`+owner+`', 'owner'), (7, '`+staff+`', 'member');
set session_replication_role = replica;
insert into app.stores (name, owner_id, group_id) values ('olive''s', '`+owner+`', 7), ('stan''s', '`+stranger+`', null);
insert into app.products (store_id, name) values (1, 'lamp'), (2, 'desk');
insert into app.drafts (product_id, body) select 1 + i % 2, 'draft ' || i from generate_series(1, 9) i;
reset session_replication_role;
insert into app.reviews (product_id, body) values (1, 'great'), (1, 'meh'), (1, 'bad');`)
	as := func(sub, method, sql string) (int64, error) {
		var n int64
		err := asUser(conn, sub, method, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, sql)
			n = tag.RowsAffected()
			return err
		})
		return n, err
	}
	for _, c := range []struct {
		who          string
		sub          string
		read, delete int64
	}{
		{"a stranger", stranger, 3, 0},
		{"the store's staff", staff, 3, 1},
		{"the store's owner", owner, 2, 1},
	} {
		n, err := as(c.sub, "GET", "select from app.reviews")
		if err != nil || n != c.read {
			t.Errorf("%s reads %d reviews (%v), want %d", c.who, n, err, c.read)
		}
		n, err = as(c.sub, "DELETE", "delete from app.reviews where id = (select min(id) from app.reviews)")
		if err != nil || n != c.delete {
			t.Errorf("%s deleted %d reviews (%v), want %d", c.who, n, err, c.delete)
		}
	}
	// Drafts (parent writers can read): the page function walks each
	// product the caller may change and answers what the table answers.
	ids := func(sub, sql string) []int64 {
		t.Helper()
		var got []int64
		err := asUser(conn, sub, "GET", func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, sql)
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return got
	}
	for _, c := range []struct {
		who  string
		sub  string
		want []int64
	}{
		{"the store's owner", owner, []int64{8, 6, 4}},
		{"the store's staff", staff, []int64{8, 6, 4}},
		{"the other store's owner", stranger, []int64{9, 7, 5}},
	} {
		page := ids(c.sub, "select id from app.drafts_page(page_size => 3)")
		table := ids(c.sub, "select id from app.drafts order by id desc limit 3")
		if !slices.Equal(page, c.want) || !slices.Equal(table, c.want) {
			t.Errorf("%s: page %v, table %v, want %v", c.who, page, table, c.want)
		}
	}
	if got := ids(staff, "select id from app.drafts_page(product_id => 2)"); len(got) != 0 {
		t.Errorf("staff of store 1 read drafts %v of store 2's product", got)
	}
}
