package e2e

// README's "Tables under other tables": the marketplace of
// policies/stores.iam over a real PostgREST 12. Alice owns a store and
// its staff group, bob is on the staff, dave is a stranger; products take
// their access from their store.

import (
	"net/http"
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
