package bench

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestOtherRows builds a data set whose chats, notes, products (and
// stores) and insert floors' copies are smaller than its todos
// (--other-rows), in chunks small
// enough to print progress, and checks the sizes, the progress lines, the
// indexes (the same definitions after the load as before it), that the
// rows do not depend on the chunks, and that the requests on the smaller
// tables verify and run.
func TestOtherRows(t *testing.T) {
	ctx := context.Background()
	e, err := StartEphemeral(ctx, "../policies", io.Discard)
	if e != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("PostgreSQL log (tail):\n%s", e.Server.LogTail())
			}
			if err := e.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	su, err := pgx.Connect(ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(context.Background()) })

	indexDefs := func() []string {
		t.Helper()
		rows, err := su.Query(ctx, `select pg_get_indexdef(i.indexrelid) from pg_index i
join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
where n.nspname in ('app', 'iam') order by 1`)
		if err != nil {
			t.Fatal(err)
		}
		defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return defs
	}
	digests := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for table, order := range map[string]string{
			"app.todos": "id", "app.chats": "id", "app.notes": "id", "bench.todos_copy": "id", "bench.chats_copy": "id",
			"app.stores": "id", "app.products": "id", "bench.products_copy": "id",
			"iam.app_todos_shares": "row_id, user_id", "iam.group_members": "group_id, user_id",
		} {
			var d string
			if err := su.QueryRow(ctx, `select md5(coalesce(string_agg(t::text, ',' order by `+order+`), '')) from `+table+` t`).Scan(&d); err != nil {
				t.Fatal(err)
			}
			out[table] = d
		}
		return out
	}

	before := indexDefs()
	const rows, other = 20000, 5000
	size := Size{Rows: rows, OtherRows: other}
	defer func(n int) { buildChunk = n }(buildChunk)
	buildChunk = 4000 // todos in 5 chunks, the smaller tables in 2
	var log bytes.Buffer
	ds, err := PrepareSize(ctx, su, size, 1, SetupAuto, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	// The rows as built (the requests below change some: the staff's
	// updates add to the stock).
	chunked := digests()

	t.Run("sizes", func(t *testing.T) {
		if ds.Rows != rows || ds.OtherRows != other || ds.TodosMax != rows || ds.ChatsMax != other {
			t.Errorf("rows %d, other rows %d, todos %d, chats %d; want %d, %d, %d, %d", ds.Rows, ds.OtherRows, ds.TodosMax, ds.ChatsMax, rows, other, rows, other)
		}
		for table, want := range map[string]int{
			"app.todos": rows, "app.chats": other, "app.notes": other, "app.products": other, "app.stores": numStores(other),
			"bench.todos_copy": other, "bench.chats_copy": other, "bench.products_copy": other,
		} {
			var n int
			if err := su.QueryRow(ctx, `select count(*) from `+table).Scan(&n); err != nil || n != want {
				t.Errorf("%s holds %d rows (%v), want %d", table, n, err, want)
			}
		}
		// The special users are those of the full size.
		if want := int64(rows / bigEvery(rows)); ds.BigRows != want {
			t.Errorf("big group holds %d todos, want %d", ds.BigRows, want)
		}
		if ds.SharesOf != SharesOfUser {
			t.Errorf("user %d has %d shares, want %d", ds.Shares.N, ds.SharesOf, SharesOfUser)
		}
		if s := ds.Stats(); !strings.HasPrefix(s, "20000 todos, 5000 chats, 5000 notes") || !strings.Contains(s, "; 50 stores (") || !strings.HasSuffix(s, "), 5000 products") {
			t.Errorf("Stats = %q", s)
		}
		if ds.ProductsMax != other || len(ds.Stores) != numStores(other) {
			t.Errorf("%d products, %d stores; want %d and %d", ds.ProductsMax, len(ds.Stores), other, numStores(other))
		}
		for _, u := range ds.Users {
			for _, id := range u.VisibleNotes {
				if id > other {
					t.Fatalf("user %d: visible note %d of %d", u.N, id, other)
				}
			}
		}
	})

	t.Run("progress", func(t *testing.T) {
		for _, want := range []string{
			"disk: the data set of 20000 rows (5000 of the other tables) takes about ",
			"building the data set: 20000 todos, 5000 chats, 5000 notes, 5000 products of 50 stores,",
			"  todos ... (build ",
			"  todos: 4,000 of 20,000 rows (",
			"~", // the time left
			"  todos: 20,000 of 20,000 rows (",
			"  chats: 4,000 of 5,000 rows (",
			"  products: 4,000 of 5,000 rows (",
			"  floor copy of products: 5,000 of 5,000 rows (",
			"  floor copy of todos: 5,000 of 5,000 rows (",
			"  todos: done in ",
			"  shares ... (build ",
			"  dropped the 13 secondary indexes of app.todos",
			"  indexes: app.todos_owner_id_id_iam_idx built in ",
			"  indexes: bench.products_copy_store_id_id_idx built in ",
			"  vacuum analyze ... (build ",
			"  vacuum analyze: done in ",
			"  data set built in ",
		} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("the build's log lacks %q:\n%s", want, log.String())
			}
		}
		if strings.Contains(log.String(), "disk: free space not checked") {
			t.Errorf("an ephemeral server is local: its free space is checked:\n%s", log.String())
		}
	})

	t.Run("indexes", func(t *testing.T) {
		if after := indexDefs(); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Errorf("the indexes of app and iam changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
		var n int
		if err := su.QueryRow(ctx, `select count(*) from pg_indexes where schemaname = 'bench' and tablename in ('todos_copy', 'chats_copy', 'products_copy')`).Scan(&n); err != nil || n != 8 {
			t.Errorf("the copies have %d indexes (%v), want 8 (as app.todos, app.chats and app.products)", n, err)
		}
	})

	p, err := openPools(ctx, Target{DB: e.URL, APIUser: "authenticator", APIPassword: "mypass"}, Configs()[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()

	t.Run("the requests on the smaller tables", func(t *testing.T) {
		qs, err := SelectQueries([]string{"q1-chats-page", "q5-chat", "q5-todo", "q7-notes-page", "q8-notes-read",
			"q9-products-page", "q10-product-read", "q10-product-update", "q11-product-insert"})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := Verify(ctx, p, ds, qs, verifyUsers(ds, 6, 1), 1); err != nil || n < 20 {
			t.Fatalf("Verify = %d, %v", n, err)
		}
		for _, q := range qs {
			f, _, err := calibrate(ctx, p, ds, q, ClassRandom, 20*time.Millisecond, 1)
			if err != nil {
				t.Fatal(err)
			}
			res, err := measure(ctx, p, ds, q, f, ClassRandom, 1, 10*time.Millisecond, 50*time.Millisecond, 1)
			if err != nil {
				t.Fatal(err)
			}
			if res.RLS.N == 0 || res.FloorS.N == 0 {
				t.Errorf("%s: %d RLS and %d floor requests", q.Name, res.RLS.N, res.FloorS.N)
			}
		}
		// The copies' identities go on from the tables': Cleanup finds
		// what the insert floors added.
		var first int64
		if err := su.QueryRow(ctx, `select min(id) from bench.todos_copy where id > $1`, other).Scan(&first); err != nil || first <= rows {
			t.Errorf("the insert floor's first row is %d (%v), want above %d", first, err, rows)
		}
		if err := su.QueryRow(ctx, `select min(id) from bench.products_copy where id > $1`, other).Scan(&first); err != nil || first <= ds.ProductsMax {
			t.Errorf("the product insert floor's first row is %d (%v), want above %d", first, err, ds.ProductsMax)
		}
		if err := Cleanup(ctx, su); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"bench.todos_copy", "bench.chats_copy", "app.chats", "app.products", "bench.products_copy"} {
			var n int
			if err := su.QueryRow(ctx, `select count(*) from `+table).Scan(&n); err != nil || n != other {
				t.Errorf("after Cleanup, %s holds %d rows (%v), want %d", table, n, err, other)
			}
		}
	})

	t.Run("bench.meta", func(t *testing.T) {
		again, err := PrepareSize(ctx, su, size, 1, SetupAuto, io.Discard)
		if err != nil || !again.Build.Reused {
			t.Errorf("PrepareSize with the same size: reused %v (%v), want reused", again != nil && again.Build.Reused, err)
		}
		if _, err := Prepare(ctx, su, rows, 1, SetupNever, io.Discard); err == nil {
			t.Error("--reuse of the full size on a data set with smaller other tables: want an error")
		}
	})

	t.Run("the chunks do not change the rows", func(t *testing.T) {
		buildChunk = 1000000
		if _, err := PrepareSize(ctx, su, size, 1, SetupAlways, io.Discard); err != nil {
			t.Fatal(err)
		}
		whole := digests()
		for table, d := range chunked {
			if whole[table] != d {
				t.Errorf("%s differs between a build in chunks and one in a statement", table)
			}
		}
	})
}
