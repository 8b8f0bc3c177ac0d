package bench

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
)

const testRows = 20000

// testEnv is an ephemeral server with the example applied and a tiny data
// set, shared by the tests of this file.
func testEnv(t *testing.T) (*Ephemeral, *pgx.Conn, *Dataset) {
	t.Helper()
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
	ds, err := Prepare(ctx, su, testRows, 1, SetupAuto, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return e, su, ds
}

func TestBench(t *testing.T) {
	e, su, ds := testEnv(t)
	ctx := context.Background()
	target := Target{DB: e.URL, APIUser: "authenticator", APIPassword: "mypass"}

	t.Run("data set", func(t *testing.T) {
		if ds.Build.Reused {
			t.Error("first Prepare reused a data set")
		}
		if len(ds.Users) != NumUsers || ds.TodosMax != testRows || ds.ChatsMax != testRows {
			t.Errorf("users %d, todos %d, chats %d; want %d, %d, %d", len(ds.Users), ds.TodosMax, ds.ChatsMax, NumUsers, testRows, testRows)
		}
		if want := int64(testRows / bigEvery(testRows)); ds.BigRows != want {
			t.Errorf("big group holds %d todos, want %d", ds.BigRows, want)
		}
		for _, c := range []struct {
			u    *User
			want int
		}{{ds.Many, ManyGroups}, {ds.Many500, Many500Groups}, {ds.Many2000, Many2000Groups}} {
			if len(c.u.Groups) != c.want {
				t.Errorf("user %d is in %d groups, want %d", c.u.N, len(c.u.Groups), c.want)
			}
			if len(c.u.AdminGroups) > c.want/10 {
				t.Errorf("user %d is admin or owner of %d groups", c.u.N, len(c.u.AdminGroups))
			}
		}
		if ds.SharesOf != SharesOfUser || len(ds.SharedRows) != SharesOfUser {
			t.Errorf("user %d has %d shares (%d rows), want %d", ds.Shares.N, ds.SharesOf, len(ds.SharedRows), SharesOfUser)
		}
		for _, u := range ds.Normal {
			if u.N < randomStartN || u.N == sharesUserN {
				t.Errorf("special user %d among the ordinary users", u.N)
			}
		}
		var noGroup, several int
		for _, u := range ds.Normal {
			switch {
			case len(u.Groups) == 0:
				noGroup++
			case len(u.Groups) > 1:
				several++
			}
		}
		if noGroup == 0 || several == 0 {
			t.Errorf("%d users in no group, %d in several: want some of each", noGroup, several)
		}
		var ungrouped int
		if err := su.QueryRow(ctx, `select count(*) from app.chats where group_id is null`).Scan(&ungrouped); err != nil || ungrouped != 0 {
			t.Errorf("chats without a group: %d (%v)", ungrouped, err)
		}
		// The marketplace: ROWS/100 stores, most with a staff group, ROWS
		// products, every one in a store.
		var stores, grouped, products, orphans, copies int64
		if err := su.QueryRow(ctx, `select (select count(*) from app.stores), (select count(group_id) from app.stores),
  (select count(*) from app.products), (select count(*) from app.products p where not exists (select from app.stores s where s.id = p.store_id)),
  (select count(*) from bench.products_copy)`).Scan(&stores, &grouped, &products, &orphans, &copies); err != nil {
			t.Fatal(err)
		}
		if stores != int64(numStores(testRows)) || products != testRows || orphans != 0 || copies != products || len(ds.Stores) != int(stores) {
			t.Errorf("%d stores (%d loaded), %d products (%d without a store), %d copies; want %d stores, %d products, none without a store, as many copies",
				stores, len(ds.Stores), products, orphans, copies, numStores(testRows), testRows)
		}
		if grouped < stores*8/10 || grouped == stores {
			t.Errorf("%d of %d stores have a staff group: want most, not all", grouped, stores)
		}
		if ds.ProductsMax != testRows || len(ds.OwnedStores) == 0 || len(ds.StaffedProducts) == 0 {
			t.Errorf("products max %d, %d stores of ordinary users, %d products with ordinary staff", ds.ProductsMax, len(ds.OwnedStores), len(ds.StaffedProducts))
		}
		// The marker: a second Prepare with the same rows and seed reuses it.
		again, err := Prepare(ctx, su, testRows, 1, SetupAuto, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Build.Reused {
			t.Error("second Prepare rebuilt the data set although bench.meta matches")
		}
		if _, err := Prepare(ctx, su, testRows+1, 1, SetupNever, io.Discard); err == nil {
			t.Error("--reuse with another row count: want an error")
		}
	})

	p, err := openPools(ctx, target, Configs()[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	users := verifyUsers(ds, 8, 1)

	t.Run("RLS agrees with every floor", func(t *testing.T) {
		n, err := Verify(ctx, p, ds, Queries(), users, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n < 100 {
			t.Errorf("only %d requests compared", n)
		}
	})

	wrong := []struct {
		name, query, floor string
	}{
		{"list without the group arm", "q1-todos", `select * from app.todos where owner_id = $1 order by id desc limit 50`},
		{"list without the shared rows", "q1-todos", `select * from app.todos where owner_id = $1 or group_id = any (` + myGroups + `) order by id desc limit 50`},
		{"read without the shared rows", "q2-read", `select * from app.todos where id = $2 and (owner_id = $1 or group_id = any (` + myGroups + `))`},
		{"list of every todo", "q1-todos", `select * from app.todos where $1::uuid is not null order by id desc limit 50`},
		{"count without the owner arm", "q4-count", `select count(*) from app.todos where group_id = any (` + myGroups + `)`},
		{"chats of a group the user is not in", "q1-chats", `select * from app.chats where group_id = $2 and $1::uuid is not null order by id desc limit 50`},
		{"delete without a check", "q6-delete", `delete from app.todos where id = $2 and $1::uuid is not null`},
		{"update of member rows only", "q3-update", `update app.todos set done = not done where id = $2 and group_id = any (` + myGroups + `)`},
		{"notes of every organisation", "q7-notes-page", `select * from app.notes where $2::text is not null and (owner_id = $1 or group_id = any (` + myGroups + `)) order by id desc limit 50`},
		{"an org-admin's notes of every organisation", "q7-notes-admin-page", `select * from app.notes where $1::text is not null order by id desc limit 50`},
		{"products in the wrong order", "q9-products-page", `select * from app.products where store_id = $1 order by id limit 50`},
		{"a product update by the store owner only", "q10-product-update", `update app.products t set stock = stock + 1 where id = $2 and exists (select from app.stores s where s.id = t.store_id and s.owner_id = $1)`},
		{"a product update without a check", "q10-product-update", `update app.products set stock = stock + 1 where id = $2 and $1::uuid is not null`},
		{"a product inserted with another price", "q11-product-insert", `insert into bench.products_copy (store_id, name, price) values ($1, $2, $3 + 1)`},
	}
	for _, w := range wrong {
		t.Run("detects a wrong floor: "+w.name, func(t *testing.T) {
			var qs []*Query
			for _, q := range Queries() {
				if q.Key == w.query {
					q.Floors = append(q.Floors, Floor{Name: "wrong", SQL: w.floor, Args: q.Floors[0].Args})
					qs = append(qs, q)
				}
			}
			_, err := Verify(ctx, p, ds, qs, users, 1)
			var wa *WrongAnswerError
			if !errors.As(err, &wa) {
				t.Fatalf("Verify = %v, want a WrongAnswerError", err)
			}
			if wa.Floor != "wrong" || !strings.Contains(err.Error(), "nothing was timed") {
				t.Errorf("error names floor %q: %v", wa.Floor, err)
			}
		})
	}

	// The driver runs every query both ways (no timings are checked).
	t.Run("driver", func(t *testing.T) {
		for _, q := range Queries() {
			for _, class := range q.Classes() {
				f, _, err := calibrate(ctx, p, ds, q, class, 20*time.Millisecond, 1)
				if err != nil {
					t.Fatal(err)
				}
				res, err := measure(ctx, p, ds, q, f, class, 2, 10*time.Millisecond, 60*time.Millisecond, 1)
				if err != nil {
					t.Fatal(err)
				}
				if res.RLS.N == 0 || res.FloorS.N == 0 {
					t.Errorf("%s, %s: %d RLS and %d floor requests", q.Name, class, res.RLS.N, res.FloorS.N)
				}
			}
		}
		if err := Cleanup(ctx, su); err != nil {
			t.Fatal(err)
		}
		var extra int
		if err := su.QueryRow(ctx, `select (select count(*) from app.todos where id > $1) + (select count(*) from app.products where id > $2)
  + (select count(*) from bench.products_copy where id > $2)`, ds.TodosMax, ds.ProductsMax).Scan(&extra); err != nil || extra != 0 {
			t.Errorf("after Cleanup, %d rows of runs left (%v)", extra, err)
		}
	})

	t.Run("refuses a database with other data", func(t *testing.T) {
		if _, err := su.Exec(ctx, `drop table bench.meta`); err != nil {
			t.Fatal(err)
		}
		_, err := Prepare(ctx, su, testRows, 1, SetupAuto, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not a benchmark database") {
			t.Errorf("Prepare = %v, want a refusal", err)
		}
	})
}

func TestPlotSVG(t *testing.T) {
	rep := &Report{Clients: []int{1}}
	for i, rows := range []int{100000, 1000000} {
		sr := &SizeReport{Rows: rows}
		for _, c := range Configs() {
			sr.Configs = append(sr.Configs, &ConfigReport{Config: c, Results: []*Result{
				{Query: "Q1 todos list", User: ClassRandom, Clients: 1, Ratio: 1.5 + float64(i)*20},
				{Query: "Q2 read <by> id", User: ClassRandom, Clients: 1, Ratio: 1.2},
			}})
		}
		rep.Sizes = append(rep.Sizes, sr)
	}
	svg := PlotSVG(rep)
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	if n := strings.Count(svg, "<polyline"); n != 4 {
		t.Errorf("%d lines, want 4 (2 queries x 2 configs)", n)
	}
}

// BenchmarkBuild1000Resources compiles 1,000 resources (owner and group
// rules) the way `iamc build` does: lang.ParseDir, lang.Check and
// compiler.Build, which round-trips every statement through pg_query.
// The target is under one second per build.
func BenchmarkBuild1000Resources(b *testing.B) {
	dir := b.TempDir()
	if err := writeResources(dir, 1000); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		out, err := compiler.Compile(dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Model.Resources) != 1000 {
			b.Fatalf("%d resources", len(out.Model.Resources))
		}
	}
}

// writeResources writes iam.iam (the settings of policies/) and n resource
// files, alternating the shapes of policies/: owner-only, owner + optional
// group, owner + required group.
func writeResources(dir string, n int) error {
	settings := `identity {
  claim 'sub'
  type uuid
}

roles {
  authenticated web_user
  anonymous web_anon
  owner api_owner
}

groups {
  api schema app
  token claim 'groups' as member
}
`
	if err := os.WriteFile(filepath.Join(dir, "iam.iam"), []byte(settings), 0o644); err != nil {
		return err
	}
	for i := range n {
		var body string
		switch i % 3 {
		case 0:
			body = "  owner column owner_id\n  owner can read, create, write, delete\n"
		case 1:
			body = "  owner column owner_id\n  group column group_id\n\n  owner can read, create, write, delete\n  group member can read, create, write\n  group admin can delete\n"
		default:
			body = "  owner column owner_id\n  group column group_id required\n\n  owner can read, create, write, delete\n  group member can read, create\n  group admin can delete\n"
		}
		src := fmt.Sprintf("# resource %d\nresource app.table_%04d {\n%s}\n", i, i, body)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("t%04d.iam", i)), []byte(src), 0o644); err != nil {
			return err
		}
	}
	return nil
}
