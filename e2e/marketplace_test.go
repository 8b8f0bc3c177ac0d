package e2e

// README's "Tables under other tables": the marketplace of
// policies/stores.iam over a real PostgREST 12. Alice owns a store and
// its staff group, bob is on the staff, dave is a stranger; products take
// their access from their store.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

type product struct {
	ID    int64  `json:"id"`
	Store int64  `json:"store_id"`
	Name  string `json:"name"`
	Stock int32  `json:"stock"`
}

const productsSQL = "select id, store_id, name, stock from app.products order by id"

func marketplaceScenario(t *testing.T, api *client, su *pgx.Conn, tok tokens) {
	post := func(token, path string, body any) response {
		return api.do(t, request{method: "POST", path: path, token: token, body: body})
	}
	patch := func(token, path string, body any) response {
		return api.do(t, request{method: "PATCH", path: path, token: token, body: body})
	}
	bread := product{ID: 1, Store: 1, Name: "bread", Stock: 10}

	step(t, "alice opens a store and puts it in her staff group, with bob in it", func(t *testing.T) {
		wantStatus(t, post(tok.alice, "/stores", readme(`{"name": "alice's bakery"}`)), http.StatusCreated)
		staff := createGroup(t, api, tok.alice, "bakery staff")
		wantVoid(t, rpc(t, api, tok.alice, "add_group_member", map[string]any{"group_id": staff, "user_id": bob.sub}))
		wantStatus(t, patch(tok.alice, "/stores?id=eq.1", map[string]any{"group_id": staff}), http.StatusNoContent)
	})
	step(t, "the owner adds a product (201)", func(t *testing.T) {
		wantStatus(t, post(tok.alice, "/products", readme(`{"store_id": 1, "name": "bread", "price": 3, "stock": 10}`)), http.StatusCreated)
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
	})
	step(t, "a stranger cannot add a product to her store (403), nor to a store that does not exist (the same answer)", func(t *testing.T) {
		wantError(t, post(tok.dave, "/products", readme(`{"store_id": 1, "name": "fake"}`)), http.StatusForbidden, "42501", "row-level security")
		wantError(t, post(tok.dave, "/products", readme(`{"store_id": 999, "name": "fake"}`)), http.StatusForbidden, "42501", "row-level security")
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
	})
	step(t, "staff change the stock (204)", func(t *testing.T) {
		wantStatus(t, patch(tok.bob, "/products?id=eq.1", readme(`{"stock": 9}`)), http.StatusNoContent)
		bread.Stock = 9
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
	})
	// Column rules: staff change the stock only.
	step(t, "staff changing the price too get 403, naming the column, and nothing changes", func(t *testing.T) {
		e := wantError(t, patch(tok.bob, "/products?id=eq.1", readme(`{"stock": 8, "price": 1}`)), http.StatusForbidden, "42501", "you cannot change column price of app.products")
		if e.Details == nil || !strings.Contains(*e.Details, "only stock") {
			t.Errorf("details %v, want the columns bob may change", e.Details)
		}
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
	})
	step(t, "a bulk PATCH of the price by staff changes no product; of the stock, every one", func(t *testing.T) {
		wantStatus(t, post(tok.alice, "/products", readme(`{"store_id": 1, "name": "rolls", "price": 1, "stock": 30}`)), http.StatusCreated)
		rolls := product{Store: 1, Name: "rolls", Stock: 30}
		if err := su.QueryRow(t.Context(), "select id from app.products where name = 'rolls'").Scan(&rolls.ID); err != nil {
			t.Fatal(err)
		}
		wantError(t, patch(tok.bob, "/products?store_id=eq.1", readme(`{"price": 0}`)), http.StatusForbidden, "42501", "you cannot change column price")
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread, rolls})
		wantStatus(t, patch(tok.bob, "/products?store_id=eq.1", readme(`{"stock": 0}`)), http.StatusNoContent)
		bread.Stock, rolls.Stock = 0, 0
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread, rolls})
		wantStatus(t, api.do(t, request{method: "DELETE", path: fmt.Sprintf("/products?id=eq.%d", rolls.ID), token: tok.alice}), http.StatusNoContent)
		wantStatus(t, patch(tok.alice, "/products?id=eq.1", readme(`{"price": 4, "stock": 9}`)), http.StatusNoContent)
		bread.Stock = 9
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
	})
	step(t, "an upsert (resolution=merge-duplicates) by staff changes nothing; by the owner, the product", func(t *testing.T) {
		// A key PostgREST can upsert on (id is generated always, and
		// PostgreSQL refuses an id in an insert, 428C9, for everyone).
		if _, err := su.Exec(t.Context(), "create unique index products_store_name on app.products (store_id, name)"); err != nil {
			t.Fatal(err)
		}
		defer su.Exec(t.Context(), "drop index app.products_store_name")
		upsert := func(token string, price, stock int) response {
			return api.do(t, request{method: "POST", path: "/products?on_conflict=store_id,name", token: token, prefer: "resolution=merge-duplicates",
				body: []map[string]any{{"store_id": 1, "name": "bread", "price": price, "stock": stock}}})
		}
		// The proposed row meets the insert policy first: staff do not
		// create products, whatever the columns.
		wantError(t, upsert(tok.bob, 1, 9), http.StatusForbidden, "42501", "row-level security")
		wantError(t, upsert(tok.bob, 4, 8), http.StatusForbidden, "42501", "row-level security")
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
		wantStatus(t, upsert(tok.alice, 5, 7), http.StatusOK) // PostgREST 12: 200 when every row merged
		bread.Stock = 7
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
	})
	step(t, "anonymous visitors read the stores' id and name: select=id,name is 200, select=* (the default) 401", func(t *testing.T) {
		type store struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		}
		wantSame(t, "GET /stores?select=id,name", apiRows[store](t, get(t, api, "", "/stores?select=id,name")), []store{{1, "alice's bakery"}})
		wantError(t, get(t, api, "", "/stores"), http.StatusUnauthorized, "42501", "permission denied for table stores")
		wantError(t, get(t, api, "", "/stores?select=id,owner_id"), http.StatusUnauthorized, "42501", "permission denied for table stores")
		resp := api.do(t, request{method: "GET", path: "/stores?select=id", prefer: "count=exact"})
		wantStatus(t, resp, http.StatusOK)
		if got := resp.header.Get("Content-Range"); got != "0-0/1" {
			t.Errorf("count=exact: Content-Range %q, want 0-0/1", got)
		}
		// Signed in, whole rows.
		if rows := apiRows[map[string]any](t, get(t, api, tok.dave, "/stores")); len(rows) != 1 || rows[0]["owner_id"] == nil {
			t.Errorf("dave's GET /stores: %v, want the whole store", rows)
		}
	})
	step(t, "a member of the staff deletes nothing, a stranger changes nothing", func(t *testing.T) {
		wantStatus(t, api.do(t, request{method: "DELETE", path: "/products?id=eq.1", token: tok.bob}), http.StatusNoContent)
		wantStatus(t, patch(tok.dave, "/products?id=eq.1", readme(`{"stock": 0}`)), http.StatusNoContent)
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), []product{bread})
	})
	step(t, "everyone signed in browses the store's products; anonymous visitors do not (401)", func(t *testing.T) {
		wantSame(t, "dave's GET /rpc/products_page?store_id=1", apiRows[product](t, get(t, api, tok.dave, "/rpc/products_page?store_id=1")), []product{bread})
		wantError(t, get(t, api, "", "/products"), http.StatusUnauthorized, "42501", "permission denied")
	})
	step(t, "the owner deletes the store: its products go with it (on delete cascade)", func(t *testing.T) {
		wantStatus(t, api.do(t, request{method: "DELETE", path: "/stores?id=eq.1", token: tok.alice}), http.StatusNoContent)
		wantSame(t, "app.products", superRows[product](t, su, productsSQL), nil)
	})
}
