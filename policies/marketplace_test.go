package policies_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// The marketplace of stores.iam: products take their access from their
// store (parent app.stores via store_id). The cast:
//
//	olive  owns the store "olive's" and the group staff (its owner)
//	sam    a member of staff
//	ada    an admin of staff
//	stan   signed in, nothing to do with the store
//	otto   owns another store, "otto's"
var (
	olive = KeycloakUser("olive", "0e1e0000-0000-4000-8000-00000000001e")
	sam   = KeycloakUser("sam", "5a000000-0000-4000-8000-00000000005a")
	ada   = KeycloakUser("ada", "ada00000-0000-4000-8000-0000000000ad")
	stan  = KeycloakUser("stan", "57a00000-0000-4000-8000-00000000057a")
	otto  = KeycloakUser("otto", "0770000a-0000-4000-8000-000000000077")
)

// market is the marketplace database, set up once: the example built and
// applied, olive's store in her staff group, and otto's store.
var market struct {
	once                  sync.Once
	db                    *Database
	oliveStore, ottoStore int64
	oliveOther            int64 // a second store of olive's, in no group
	staff                 int64
	err                   error
}

func marketDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	market.once.Do(func() {
		var script string
		if market.db, market.err = CreateDatabase(s, "market", "schema.sql"); market.err != nil {
			return
		}
		if script, market.err = BuildScript(Dir); market.err != nil {
			return
		}
		if out, err := ApplyScript(t.Context(), s, "market", script); err != nil {
			market.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if market.err != nil {
		t.Fatalf("setting up the marketplace database: %v", market.err)
	}
	db := market.db
	if market.staff == 0 {
		// Through the API, as the store's owner would.
		market.oliveStore = insertStore(t, db, olive, "olive's")
		market.oliveOther = insertStore(t, db, olive, "olive's outlet")
		market.ottoStore = insertStore(t, db, otto, "otto's")
		market.staff = CreateGroup(t, db, olive, "staff")
		AddMember(t, db, olive, market.staff, sam.Claims["sub"].(string), "member")
		AddMember(t, db, olive, market.staff, ada.Claims["sub"].(string), "admin")
		n, err := Requester{T: t, DB: db, Who: olive, Path: "/stores"}.Exec("PATCH",
			"update app.stores set group_id = $1 where id = $2", market.staff, market.oliveStore)
		NoError(t, err)
		if n != 1 {
			t.Fatalf("olive put %d of her stores in her staff group, want 1", n)
		}
	}
	return db
}

// insertStore is POST /stores {"name"} as who: the new store's id.
func insertStore(t *testing.T, db *Database, who Person, name string) int64 {
	t.Helper()
	var id int64
	err := Requester{T: t, DB: db, Who: who, Path: "/stores"}.Do("POST", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "insert into app.stores (name) values ($1) returning id", name).Scan(&id)
	})
	NoError(t, err)
	return id
}

// product is a product as a superuser sees it, to check what a request did.
type product struct {
	Store int64
	Name  string
	Stock int32
}

// TestMarketplaceProducts is the both-sides matrix of stores.iam's
// products: {store owner, staff member, staff admin, stranger, anonymous}
// x {list, read, create, update, move to another store, delete}. Each cell
// starts from a fresh product of olive's store; every refused write is
// re-checked as a superuser (nothing changed).
func TestMarketplaceProducts(t *testing.T) {
	db := marketDB(t)
	type want struct{ list, read, create, update, move, remove bool }
	for _, c := range []struct {
		who  Person
		want want
	}{
		{olive, want{list: true, read: true, create: true, update: true, remove: true}},
		{sam, want{list: true, read: true, update: true}},
		{ada, want{list: true, read: true, create: true, update: true, remove: true}},
		{stan, want{list: true, read: true}},
		{Anonymous, want{}},
	} {
		t.Run(c.who.Name, func(t *testing.T) {
			fresh := func() int64 {
				t.Helper()
				var id int64
				if err := db.SU.QueryRow(t.Context(), "insert into app.products (store_id, name, stock) values ($1, 'lamp', 5) returning id", market.oliveStore).Scan(&id); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Exec(t, "delete from app.products where id = $1", id) })
				return id
			}
			stored := func(id int64) *product {
				t.Helper()
				var p product
				err := db.SU.QueryRow(t.Context(), "select store_id, name, stock from app.products where id = $1", id).Scan(&p.Store, &p.Name, &p.Stock)
				if err == pgx.ErrNoRows {
					return nil
				}
				NoError(t, err)
				return &p
			}
			as := Requester{T: t, DB: db, Who: c.who, Path: "/products"}
			lamp := product{Store: market.oliveStore, Name: "lamp", Stock: 5}

			id := fresh()
			var seen int64
			err := as.Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select count(*) from app.products where id = $1", id).Scan(&seen)
			})
			if got := err == nil && seen == 1; got != c.want.read {
				t.Errorf("read: got %v (err %v), want %v", got, err, c.want.read)
			}
			page, err := as.Exec("GET", "select * from app.products_page(store_id => $1)", market.oliveStore)
			if got := err == nil && page >= 1; got != c.want.list {
				t.Errorf("list (the store's page): %d rows (err %v), want a page: %v", page, err, c.want.list)
			}

			var created int64
			err = as.Do("POST", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "insert into app.products (store_id, name) values ($1, 'desk') returning id", market.oliveStore).Scan(&created)
			})
			if got := err == nil; got != c.want.create {
				t.Errorf("create in olive's store: succeeded %v (err %v), want %v", got, err, c.want.create)
			}
			if err == nil {
				db.Exec(t, "delete from app.products where id = $1", created)
			} else if c.who.Role == "web_user" {
				WantSQLError(t, err, "42501", "row-level security")
			}

			n, err := as.Exec("PATCH", "update app.products set stock = 4 where id = $1", id)
			if got := err == nil && n == 1; got != c.want.update {
				t.Errorf("update: %d rows (err %v), want updated %v", n, err, c.want.update)
			}
			if !c.want.update {
				if p := stored(id); p == nil || *p != lamp {
					t.Errorf("a refused update changed the product: %+v", p)
				}
			}

			// Moving needs write on both stores: nobody here writes otto's.
			n, err = as.Exec("PATCH", "update app.products set store_id = $1 where id = $2", market.ottoStore, id)
			if got := err == nil && n == 1; got != c.want.move {
				t.Errorf("move to otto's store: %d rows (err %v), want moved %v", n, err, c.want.move)
			}
			if p := stored(id); p == nil || p.Store != market.oliveStore {
				t.Errorf("a refused move moved the product: %+v", p)
			}

			n, err = as.Exec("DELETE", "delete from app.products where id = $1", id)
			if got := err == nil && n == 1; got != c.want.remove {
				t.Errorf("delete: %d rows (err %v), want deleted %v", n, err, c.want.remove)
			}
			if !c.want.remove && stored(id) == nil {
				t.Error("a refused delete deleted the product")
			}
		})
	}
}

// TestMarketplaceAttacks: each refused with an error or nothing changed,
// and no answer tells whether an unseen store exists.
func TestMarketplaceAttacks(t *testing.T) {
	db := marketDB(t)
	insert := func(who Person, store int64) error {
		_, err := Requester{T: t, DB: db, Who: who, Path: "/products"}.Exec("POST",
			"insert into app.products (store_id, name) values ($1, 'forged')", store)
		return err
	}
	t.Run("create a product in someone else's store", func(t *testing.T) {
		WantSQLError(t, insert(stan, market.oliveStore), "42501", "row-level security")
		WantSQLError(t, insert(otto, market.oliveStore), "42501", "row-level security")
	})
	t.Run("point a product at a store that does not exist", func(t *testing.T) {
		// The same answer as for a store one may not write: the policy
		// refuses before the foreign key could say the store is missing.
		WantSQLError(t, insert(olive, 1<<40), "42501", "row-level security")
	})
	t.Run("move a product into a store one cannot write", func(t *testing.T) {
		var id int64
		err := Requester{T: t, DB: db, Who: otto, Path: "/products"}.Do("POST", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "insert into app.products (store_id, name) values ($1, 'otto lamp') returning id", market.ottoStore).Scan(&id)
		})
		NoError(t, err)
		_, err = Requester{T: t, DB: db, Who: otto, Path: "/products"}.Exec("PATCH",
			"update app.products set store_id = $1 where id = $2", market.oliveStore, id)
		WantSQLError(t, err, "42501", "row-level security")
		var store int64
		NoError(t, db.SU.QueryRow(t.Context(), "select store_id from app.products where id = $1", id).Scan(&store))
		if store != market.ottoStore {
			t.Errorf("otto's product moved to store %d", store)
		}
	})
	t.Run("the owner moves a product between her own stores", func(t *testing.T) {
		var id int64
		NoError(t, db.SU.QueryRow(t.Context(), "insert into app.products (store_id, name) values ($1, 'chair') returning id", market.oliveStore).Scan(&id))
		n, err := Requester{T: t, DB: db, Who: olive, Path: "/products"}.Exec("PATCH",
			"update app.products set store_id = $1 where id = $2", market.oliveOther, id)
		NoError(t, err)
		if n != 1 {
			t.Errorf("olive moved %d products between her stores, want 1", n)
		}
	})
	t.Run("a staff member cannot take a product to another store of the owner", func(t *testing.T) {
		var id int64
		NoError(t, db.SU.QueryRow(t.Context(), "insert into app.products (store_id, name) values ($1, 'shelf') returning id", market.oliveStore).Scan(&id))
		_, err := Requester{T: t, DB: db, Who: ada, Path: "/products"}.Exec("PATCH",
			"update app.products set store_id = $1 where id = $2", market.oliveOther, id)
		WantSQLError(t, err, "42501", "row-level security")
	})
	t.Run("staff cannot change the store itself", func(t *testing.T) {
		n, err := Requester{T: t, DB: db, Who: ada, Path: "/stores"}.Exec("PATCH",
			"update app.stores set name = 'ada''s now' where id = $1", market.oliveStore)
		NoError(t, err)
		if n != 0 {
			t.Errorf("ada, a staff admin, renamed olive's store (%d rows)", n)
		}
	})
}

// TestMarketplacePlans: the parent arm reads the store keys once per
// statement (an InitPlan) and the products from their (store_id, id)
// index, never the parent per product. A policy written the naive way (a
// correlated EXISTS on the store) fails the same check.
func TestMarketplacePlans(t *testing.T) {
	s := Server(t)
	db := NewDatabase(t, "market_plans", "schema.sql")
	CloseWhenDone(t, db)
	script, err := BuildScript(Dir)
	NoError(t, err)
	if out, err := ApplyScript(t.Context(), s, db.Name, script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	staff := CreateGroup(t, db, olive, "staff")
	AddMember(t, db, olive, staff, ada.Claims["sub"].(string), "admin")
	// 20,000 stores of other owners, olive's store in staff, 100,000
	// products (replica mode skips the row guard to load fast).
	db.Exec(t, `
set session_replication_role = replica;
insert into app.stores (name, owner_id) select 'store ' || i, gen_random_uuid() from generate_series(1, 20000) i;
insert into app.stores (name, owner_id, group_id) values ('olive''s', '`+olive.Claims["sub"].(string)+`', `+fmt.Sprint(staff)+`);
insert into app.products (store_id, name) select 1 + i % 20001, 'product ' || i from generate_series(1, 100000) i;
reset session_replication_role;
create table app.products_naive (like app.products including all);
alter table app.products_naive owner to api_owner;
insert into app.products_naive overriding system value select * from app.products;
alter table app.products_naive enable row level security, force row level security;
grant select, delete on app.products_naive to web_user;
create policy naive_read on app.products_naive for select to web_user using (true);
create policy naive_delete on app.products_naive for delete to web_user using (exists (
    select from app.stores s where s.id = store_id
      and (s.owner_id = (select iam.user_id_uuid('sub')) or s.group_id = any ((select iam.group_ids('admin'))::bigint[]))));
analyze app.stores; analyze app.products; analyze app.products_naive;`)

	explain := func(sql string) PlanShape {
		t.Helper()
		var doc []byte
		err := Requester{T: t, DB: db, Who: ada, Path: "/products"}.Do("DELETE", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), "explain (format json) "+sql).Scan(&doc)
		})
		NoError(t, err)
		plan, err := WalkPlan(doc)
		NoError(t, err)
		return plan
	}
	// The array of olive's-or-ada's stores, and in it the caller's id and
	// groups: three InitPlans.
	plan := explain("delete from app.products")
	if problems := PlanProblems(plan, 3, "products_store_id_id_iam_idx"); len(problems) > 0 {
		t.Errorf("the products' delete policy, plan %+v:\n%s", plan, strings.Join(problems, "\n"))
	}
	naive := explain("delete from app.products_naive")
	// The copy's index on (store_id, id), under the name like gave it.
	naiveIndex := Scalar[string](t, db, `select indexname from pg_indexes where tablename = 'products_naive' and indexdef like '%(store_id, id)%'`)
	problems := PlanProblems(naive, 3, naiveIndex)
	if len(problems) == 0 {
		t.Errorf("the naive policy passes the plan check, which therefore proves nothing: %+v", naive)
	} else {
		t.Logf("the naive policy's plan fails it, as it should: %s", strings.Join(problems, "; "))
	}
	t.Logf("the generated policy's plan: %+v", plan)
}
