package bench

import (
	"strings"
	"testing"
)

func TestFloorFilters(t *testing.T) {
	const u = "b6ab4c49-8336-4f83-8b10-e13acbc6c7db"
	a := &floorAccess{user: u, org: "org-07", groups: []int64{3, 17}, adminGroups: []int64{17},
		shared: []int64{5, 9, 12}, sharedWrite: []int64{9}, stores: []int64{4, 11}}
	for _, c := range []struct{ name, got, want string }{
		{"todos read", a.todosRead(), "or=(owner_id.eq." + u + ",group_id.in.(3,17),id.in.(5,9,12))"},
		{"todos write", a.todosWrite(), "or=(and(owner_id.eq." + u + ",group_id.is.null),group_id.in.(3,17),id.in.(9))"},
		// No todo shared with delete: the arm is left out.
		{"todos delete", a.todosDelete(), "or=(owner_id.eq." + u + ",group_id.in.(17))"},
		{"chats read", a.chatsRead(), "or=(owner_id.eq." + u + ",group_id.in.(3,17))"},
		{"notes read", a.notesRead(), "org_id=eq.org-07&or=(owner_id.eq." + u + ",group_id.in.(3,17))"},
		{"products write", a.productsWrite(), "store_id=in.(4,11)"},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, c.got, c.want)
		}
	}
	// A user in no group, with no shares: the owner arm alone.
	lone := &floorAccess{user: u, org: "org-01"}
	if got, want := lone.todosRead(), "or=(owner_id.eq."+u+")"; got != want {
		t.Errorf("no groups, no shares: got %s, want %s", got, want)
	}
	// No store: no product to update (PostgREST's in.() matches nothing).
	if got, want := lone.productsWrite(), "store_id=in.()"; got != want {
		t.Errorf("no stores: got %s, want %s", got, want)
	}
	if got := inArm("id", nil); got != "" {
		t.Errorf("inArm of no ids = %q, want empty", got)
	}
}

func TestHTTPForms(t *testing.T) {
	forms := httpForms()
	for _, q := range Queries() {
		f, ok := forms[q.Key]
		if !ok {
			t.Errorf("%s has no HTTP form", q.Key)
			continue
		}
		u := &User{N: 20, ID: "b6ab4c49-8336-4f83-8b10-e13acbc6c7db", Org: "org-20"}
		j := &httpJob{job: &job{user: u, id: 42, id2: 43, group: 7, store: 9, text: "t", price: 1.5}, done: true, stock: 5}
		a := &floorAccess{user: u.ID, org: u.Org, groups: []int64{7}, adminGroups: []int64{7}, stores: []int64{9}}
		rls, floor := f.rls(j), f.floor(j, a)
		if rls.profile != "" || floor.profile != FloorSchema {
			t.Errorf("%s: profiles %q and %q, want the default and %s", q.Key, rls.profile, floor.profile, FloorSchema)
		}
		if !strings.HasPrefix(rls.path, "/") || !strings.HasPrefix(floor.path, "/") {
			t.Errorf("%s: paths %q, %q", q.Key, rls.path, floor.path)
		}
		if rls.method != floor.method {
			t.Errorf("%s: RLS %s, floor %s", q.Key, rls.method, floor.method)
		}
		// Reads by id, updates and deletes name their row on both sides
		// (a delete's floor deletes the user's other row).
		switch q.Kind {
		case kindReadByID, kindUpdate, kindNotesRead, kindProductUpdate:
			if !strings.Contains(rls.path, "id=eq.42") || !strings.Contains(floor.path, "id=eq.42&") {
				t.Errorf("%s: %s / %s do not both name row 42", q.Key, rls.path, floor.path)
			}
		case kindDelete:
			if !strings.Contains(rls.path, "id=eq.42") || !strings.Contains(floor.path, "id=eq.43&") {
				t.Errorf("%s: %s / %s", q.Key, rls.path, floor.path)
			}
		case kindProductRead:
			// Every signed-in user reads every product: the floor has no filter.
			if rls.path != "/products?id=eq.42" || floor.path != rls.path {
				t.Errorf("%s: %s / %s", q.Key, rls.path, floor.path)
			}
		case kindProductsList:
			if !strings.Contains(rls.path, "store_id=9") && !strings.Contains(rls.path, "store_id=eq.9") || !strings.Contains(floor.path, "store_id=eq.9&") {
				t.Errorf("%s: %s / %s do not both name store 9", q.Key, rls.path, floor.path)
			}
		}
		// Updates send the same body both ways (the value the SQL forms
		// compute in the statement), so does a product's insert (no owner
		// column to fill on the floor).
		switch q.Kind {
		case kindUpdate, kindProductUpdate, kindProductInsert:
			if string(rls.body) != string(floor.body) {
				t.Errorf("%s: bodies differ: RLS %s, floor %s", q.Key, rls.body, floor.body)
			}
		}
		switch q.Kind {
		case kindProductUpdate:
			if string(rls.body) != `{"stock":5}` || !strings.Contains(floor.path, "&store_id=in.(9)") {
				t.Errorf("%s: body %s, floor %s: want the stock, and the user's stores in the floor's filter", q.Key, rls.body, floor.path)
			}
		case kindProductInsert:
			if want := `{"name":"t","price":1.5,"stock":5,"store_id":9}`; string(rls.body) != want {
				t.Errorf("%s: body %s, want %s", q.Key, rls.body, want)
			}
		}
	}
}

func TestContentRange(t *testing.T) {
	for _, c := range []struct {
		header string
		rows   int
	}{{"0-0/*", 1}, {"0-49/*", 50}, {"*/*", 0}, {"*/1", 1}, {"*/0", 0}, {"", -1}} {
		if got := (httpAnswer{contentRange: c.header}).rowsTouched(); got != c.rows {
			t.Errorf("Content-Range %q: %d rows, want %d", c.header, got, c.rows)
		}
	}
	if got := confSchemas("db-uri = \"x\"\ndb-schemas = \"app, other\"\n"); got != "app, other" {
		t.Errorf("confSchemas = %q", got)
	}
}
