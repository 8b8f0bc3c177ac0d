package policies_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// Column rules of stores.iam: the staff (members of the store's group)
// change the stock of its products and no other column; the store's owner
// and the group's admins change every column (a wider rule); anonymous
// visitors read the stores' id and name only (a column grant).

// productRow is every column a request may change, as a superuser reads it.
type productRow struct {
	Store int64
	Name  string
	Price string
	Stock int32
	At    string
}

func storedProduct(t *testing.T, db *Database, id int64) *productRow {
	t.Helper()
	var p productRow
	err := db.SU.QueryRow(t.Context(), "select store_id, name, price::text, stock, created_at::text from app.products where id = $1", id).
		Scan(&p.Store, &p.Name, &p.Price, &p.Stock, &p.At)
	if err == pgx.ErrNoRows {
		return nil
	}
	NoError(t, err)
	return &p
}

// freshProducts are n new products of olive's store, deleted after the test.
func freshProducts(t *testing.T, db *Database, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := range n {
		var id int64
		if err := db.SU.QueryRow(t.Context(), "insert into app.products (store_id, name, price, stock) values ($1, $2, 10, 5) returning id",
			market.oliveStore, fmt.Sprintf("lamp %d", i)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	t.Cleanup(func() { db.Exec(t, "delete from app.products where id = any($1)", ids) })
	return ids
}

// TestMarketplaceColumns is the both-sides matrix of the products' column
// rule: each column a PATCH may send x {store owner, staff member, staff
// admin, stranger, anonymous}. A change is made, or refused (42501 naming
// the column for the staff, a row the stranger cannot update, no privilege
// for anonymous), and every refused change is re-checked as a superuser.
func TestMarketplaceColumns(t *testing.T) {
	db := marketDB(t)
	type outcome int
	const (
		changed   outcome = iota
		refused           // 42501 naming the column
		untouched         // the policy lets no row through: 0 rows
		denied            // no privilege on the table (anonymous)
	)
	columns := []struct{ name, set string }{
		{"name", "name = 'desk'"},
		{"price", "price = 99"},
		{"stock", "stock = 1"},
		{"created_at", "created_at = '2020-01-01'"},
	}
	for _, c := range []struct {
		who  Person
		want map[string]outcome
	}{
		{olive, map[string]outcome{"name": changed, "price": changed, "stock": changed, "created_at": changed}},
		{sam, map[string]outcome{"name": refused, "price": refused, "stock": changed, "created_at": refused}},
		{ada, map[string]outcome{"name": changed, "price": changed, "stock": changed, "created_at": changed}},
		{stan, map[string]outcome{"name": untouched, "price": untouched, "stock": untouched, "created_at": untouched}},
		{Anonymous, map[string]outcome{"name": denied, "price": denied, "stock": denied, "created_at": denied}},
	} {
		for _, col := range columns {
			t.Run(c.who.Name+" changes "+col.name, func(t *testing.T) {
				id := freshProducts(t, db, 1)[0]
				before := storedProduct(t, db, id)
				n, err := Requester{T: t, DB: db, Who: c.who, Path: "/products"}.Exec("PATCH",
					"update app.products set "+col.set+" where id = $1", id)
				after := storedProduct(t, db, id)
				switch c.want[col.name] {
				case changed:
					NoError(t, err)
					if n != 1 || *after == *before {
						t.Errorf("%d rows, %+v -> %+v: want the %s changed", n, before, after, col.name)
					}
					return
				case refused:
					WantSQLError(t, err, "42501", "you cannot change column "+col.name+" of app.products")
				case untouched:
					NoError(t, err)
					if n != 0 {
						t.Errorf("%d rows updated, want 0", n)
					}
				case denied:
					WantSQLError(t, err, "42501", "permission denied for table products")
				}
				if *after != *before {
					t.Errorf("a refused change changed the product: %+v -> %+v", before, after)
				}
			})
		}
	}
}

// TestMarketplaceColumnAttacks: a forbidden column with an allowed one in
// one PATCH, through an upsert (Prefer: resolution=merge-duplicates, which
// PostgREST sends as INSERT ... ON CONFLICT DO UPDATE of every column of
// the body), through a bulk PATCH; each refused with nothing changed.
func TestMarketplaceColumnAttacks(t *testing.T) {
	db := marketDB(t)
	as := func(who Person) Requester { return Requester{T: t, DB: db, Who: who, Path: "/products"} }
	unchanged := func(t *testing.T, ids []int64, before []*productRow) {
		t.Helper()
		for i, id := range ids {
			if after := storedProduct(t, db, id); *after != *before[i] {
				t.Errorf("product %d changed: %+v -> %+v", id, before[i], after)
			}
		}
	}
	snapshot := func(ids []int64) []*productRow {
		var out []*productRow
		for _, id := range ids {
			out = append(out, storedProduct(t, db, id))
		}
		return out
	}
	upsert := `insert into app.products (id, store_id, name, price, stock) overriding system value
	    values ($1, $2, $3, $4, $5)
	    on conflict (id) do update set store_id = excluded.store_id, name = excluded.name, price = excluded.price, stock = excluded.stock`

	t.Run("a forbidden column together with an allowed one", func(t *testing.T) {
		ids := freshProducts(t, db, 1)
		before := snapshot(ids)
		_, err := as(sam).Exec("PATCH", "update app.products set stock = 2, price = 1 where id = $1", ids[0])
		WantSQLError(t, err, "42501", "you cannot change column price of app.products")
		unchanged(t, ids, before)
	})
	t.Run("a column set to the value it has is not a change", func(t *testing.T) {
		ids := freshProducts(t, db, 1)
		n, err := as(sam).Exec("PATCH", "update app.products set stock = 2, price = 10, name = 'lamp 0' where id = $1", ids[0])
		NoError(t, err)
		if p := storedProduct(t, db, ids[0]); n != 1 || p.Stock != 2 || p.Price != "10" {
			t.Errorf("%d rows, %+v: want the stock changed only", n, p)
		}
	})
	t.Run("a bulk PATCH of a forbidden column changes no row", func(t *testing.T) {
		ids := freshProducts(t, db, 5)
		before := snapshot(ids)
		_, err := as(sam).Exec("PATCH", "update app.products set price = price + 1 where id = any($1)", ids)
		WantSQLError(t, err, "42501", "you cannot change column price of app.products")
		unchanged(t, ids, before)
		// One row of the five with a forbidden change: none changes.
		_, err = as(sam).Exec("PATCH", "update app.products set stock = 0, name = case when id = $2 then 'x' else name end where id = any($1)", ids, ids[3])
		WantSQLError(t, err, "42501", "you cannot change column name of app.products")
		unchanged(t, ids, before)
		n, err := as(sam).Exec("PATCH", "update app.products set stock = stock - 1 where id = any($1)", ids)
		NoError(t, err)
		if n != 5 {
			t.Errorf("the staff's bulk stock update changed %d rows, want 5", n)
		}
	})
	t.Run("an upsert (resolution=merge-duplicates)", func(t *testing.T) {
		ids := freshProducts(t, db, 1)
		before := snapshot(ids)
		// sam may not create products: the upsert's insert is refused by
		// the insert policy whatever it changes.
		_, err := as(sam).Exec("POST", upsert, ids[0], market.oliveStore, "lamp 0", 99, 5)
		WantSQLError(t, err, "42501", "")
		unchanged(t, ids, before)
		// ada may create and write every column: her upsert updates.
		_, err = as(ada).Exec("POST", upsert, ids[0], market.oliveStore, "lamp 0", 12, 4)
		NoError(t, err)
		if p := storedProduct(t, db, ids[0]); p.Price != "12" || p.Stock != 4 {
			t.Errorf("ada's upsert: %+v", p)
		}
	})
	t.Run("an upsert by a writer limited to some columns", func(t *testing.T) {
		// A group whose members may also create (a copy of the example):
		// the insert part passes, the update part meets the column rule.
		ids := freshProducts(t, db, 1)
		before := snapshot(ids)
		db.Exec(t, `create policy "test: staff create" on app.products for insert to web_user
		    with check (store_id = any (array(select s.id from app.stores s where s.group_id = any ((select iam.group_ids('member'))::bigint[]))))`)
		defer db.Exec(t, `drop policy "test: staff create" on app.products`)
		_, err := as(sam).Exec("POST", upsert, ids[0], market.oliveStore, "lamp 0", 99, 5)
		WantSQLError(t, err, "42501", "you cannot change column price of app.products")
		unchanged(t, ids, before)
		n, err := as(sam).Exec("POST", upsert, ids[0], market.oliveStore, "lamp 0", 10, 3)
		NoError(t, err)
		if p := storedProduct(t, db, ids[0]); n != 1 || p.Stock != 3 {
			t.Errorf("sam's upsert of the stock: %d rows, %+v", n, p)
		}
	})
	t.Run("an update the row guard did not see is refused, not let through", func(t *testing.T) {
		ids := freshProducts(t, db, 1)
		before := snapshot(ids)
		db.Exec(t, "alter table app.products disable trigger iam_guard_row")
		defer db.Exec(t, "alter table app.products enable trigger iam_guard_row")
		_, err := as(sam).Exec("PATCH", "update app.products set stock = 1 where id = $1", ids[0])
		WantSQLError(t, err, "42501", "the row guard did not note the columns of this update of app.products")
		_, err = as(sam).Exec("PATCH", "update app.products set price = 1 where id = $1", ids[0])
		WantSQLError(t, err, "42501", "the row guard did not note")
		unchanged(t, ids, before)
	})
	t.Run("moving a product is a change of store_id", func(t *testing.T) {
		ids := freshProducts(t, db, 1)
		before := snapshot(ids)
		_, err := as(sam).Exec("PATCH", "update app.products set store_id = $1 where id = $2", market.oliveOther, ids[0])
		WantSQLError(t, err, "42501", "")
		unchanged(t, ids, before)
	})
}

// TestMarketplaceStoreColumns: anonymous visitors read the columns the
// rule lists (a column grant to web_anon) and no other; signed-in callers
// read whole rows.
func TestMarketplaceStoreColumns(t *testing.T) {
	db := marketDB(t)
	read := func(who Person, cols string) error {
		return Requester{T: t, DB: db, Who: who, Path: "/stores"}.Do("GET", func(tx pgx.Tx) error {
			rows, err := tx.Query(t.Context(), "select "+cols+" from app.stores")
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		})
	}
	for _, c := range []struct {
		who  Person
		cols string
		ok   bool
	}{
		{Anonymous, "id, name", true},
		{Anonymous, "name", true},
		{Anonymous, "*", false},
		{Anonymous, "owner_id", false},
		{Anonymous, "group_id", false},
		{Anonymous, "count(*)", true}, // HEAD and count=exact read no column
		{stan, "*", true},
		{stan, "owner_id, group_id", true},
	} {
		t.Run(fmt.Sprintf("%s reads %s", c.who.Name, c.cols), func(t *testing.T) {
			err := read(c.who, c.cols)
			if c.ok {
				NoError(t, err)
				return
			}
			WantSQLError(t, err, "42501", "permission denied for table stores")
		})
	}
	// What anonymous visitors see is every store, by name.
	var names []string
	err := Requester{T: t, DB: db, Who: Anonymous, Path: "/stores"}.Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), "select name from app.stores order by id")
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	NoError(t, err)
	if want := Scalar[int64](t, db, "select count(*) from app.stores"); int64(len(names)) != want {
		t.Errorf("anonymous sees %d stores, want all %d", len(names), want)
	}
	// The page function returns whole rows: it is not theirs to call.
	err = Requester{T: t, DB: db, Who: Anonymous, Path: "/rpc/stores_page"}.Do("GET", func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), "select * from app.stores_page()")
		return err
	})
	WantSQLError(t, err, "42501", "permission denied for function stores_page")
}

// TestMarketplaceColumnRulePlans: the column rule adds no query per row.
// The row guard compares the old and new row in memory, and the update
// policy's conditions, the wider rule's included, read the caller's
// stores once per statement (InitPlans): a bulk PATCH of 200 products
// scans the stores and the memberships as often as one of 2 does, for the
// staff (stock) and for the owner (a wider right, every column).
func TestMarketplaceColumnRulePlans(t *testing.T) {
	db := marketDB(t)
	scans := func(who Person, set string, ids []int64) int64 {
		t.Helper()
		// The scans of the tables a per-row check would read, counted by
		// the backend (pg_stat_xact_*: not yet flushed, so read before
		// and after the update, in its transaction).
		count := func(tx pgx.Tx) (int64, error) {
			var n int64
			err := tx.QueryRow(t.Context(), `select coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint
			    from pg_stat_xact_user_tables
			    where (schemaname, relname) in (('app', 'stores'), ('iam', 'group_members'), ('iam', 'groups'), ('iam', 'settings'), ('iam', 'blocked_subjects'), ('iam', 'group_roles'))`).Scan(&n)
			return n, err
		}
		var before, after int64
		err := Requester{T: t, DB: db, Who: who, Path: "/products"}.Do("PATCH", func(tx pgx.Tx) error {
			var err error
			if before, err = count(tx); err != nil {
				return err
			}
			tag, err := tx.Exec(t.Context(), "update app.products set "+set+" where id = any($1)", ids)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(ids)) {
				return fmt.Errorf("%d rows updated, want %d", tag.RowsAffected(), len(ids))
			}
			after, err = count(tx)
			return err
		})
		NoError(t, err)
		return after - before
	}
	few, many := freshProducts(t, db, 2), freshProducts(t, db, 200)
	for _, c := range []struct {
		who Person
		set string
	}{
		{sam, "stock = stock + 1"},
		{olive, "price = price + 1, stock = stock + 1"},
		{ada, "name = name || '!'"},
	} {
		a, b := scans(c.who, c.set, few), scans(c.who, c.set, many)
		if a != b || a == 0 {
			t.Errorf("%s: set %s scans the stores and memberships %d times for 2 rows, %d for 200: want the same (once per statement)", c.who.Name, c.set, a, b)
		} else {
			t.Logf("%s: set %s: %d scans for 2 rows and for 200", c.who.Name, c.set, a)
		}
	}
	// The update's plan: the policy's sub-selects are InitPlans, none a
	// SubPlan per row.
	var plan string
	err := Requester{T: t, DB: db, Who: sam, Path: "/products"}.Do("PATCH", func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), "explain (analyze, costs off, timing off, summary off) update app.products set stock = stock + 1 where id = any($1)", many)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		plan = strings.Join(lines, "\n")
		return err
	})
	NoError(t, err)
	if strings.Contains(plan, "SubPlan") || !strings.Contains(plan, "InitPlan") {
		t.Errorf("the staff's bulk update plans a query per row:\n%s", plan)
	}
	t.Logf("plan:\n%s", plan)
}
