package policies_test

// iamc explain --as against the owner and group matrices: for every cell,
// what explain answers must be what the database does, from both sides.
// Explain runs first (and must leave every row as it was: its probes are
// rolled back), then the request itself, as PostgREST makes it; the two
// outcomes must agree with each other, with the matrix, and explain must
// find the applied policies and the files in agreement.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/explain"
	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/lang"
)

// explainModel is the model of this directory and one of its resources.
func explainModel(t *testing.T, table string) (*lang.Model, *lang.ResourceModel) {
	t.Helper()
	out, err := compiler.Compile(".")
	NoError(t, err)
	s, err := out.Find(table)
	NoError(t, err)
	return out.Model, s.Resource
}

// callerOf is a Person as explain asks as them.
func callerOf(p Person) explain.Caller {
	if p.Role == "web_anon" {
		return explain.Caller{Anonymous: true}
	}
	return explain.Caller{Claims: p.Claims}
}

// answerFor is the answer of a report for a command (change: "", "group"
// or "owner").
func answerFor(t *testing.T, rep *explain.Report, cmd, change string) explain.Answer {
	t.Helper()
	for _, a := range rep.Answers {
		if a.Command == cmd && a.Change == change {
			return a
		}
	}
	t.Fatalf("explain gave no answer for %s (change %q): %+v", cmd, change, rep.Answers)
	return explain.Answer{}
}

// agrees checks explain's answer against what the request got (rows and
// error) and against the matrix's Outcome.
func agrees(t *testing.T, ans explain.Answer, n int64, err error, want Outcome) {
	t.Helper()
	code := pgrest.SQLState(err)
	if err != nil && code == "" {
		t.Fatalf("the request failed outside the database: %v", err)
	}
	dbAllowed := err == nil && n > 0
	if ans.Allowed != dbAllowed {
		t.Errorf("explain says allowed=%v (%s), the request got %d rows, error %v", ans.Allowed, ans.Why, n, err)
	}
	switch {
	case err != nil && (ans.Error == nil || ans.Error.Code != code):
		t.Errorf("the request failed with SQLSTATE %s (%v); explain: error %+v, %s", code, err, ans.Error, ans.Why)
	case err == nil && ans.Error != nil:
		t.Errorf("the request succeeded (%d rows); explain says it fails: %s", n, ans.Error)
	}
	if want.Code != "" && (ans.Error == nil || ans.Error.Code != want.Code || !strings.Contains(ans.Error.Message, want.Msg)) {
		t.Errorf("matrix: %s; explain: %+v (%s)", want, ans.Error, ans.Why)
	}
	if want.Code == "" && !want.Read && ans.Allowed != (want.N > 0) {
		t.Errorf("matrix: %s; explain: allowed=%v (%s)", want, ans.Allowed, ans.Why)
	}
	if ans.Disagrees != "" {
		t.Errorf("explain finds the applied policies and the files disagree: %s", ans.Disagrees)
	}
	if ans.Why == "" {
		t.Error("explain gives no reason")
	}
}

// groupQuestion is the explain question that asks a cell of the group
// matrix: each request is on row 2 (alice's, in team).
func groupQuestion(c *Crew, r *lang.ResourceModel, op string, actor Person) (explain.Question, string, string) {
	q := explain.Question{Resource: r, Caller: callerOf(actor), Row: "2"}
	switch op {
	case "list":
		q.Row = ""
		return q, "select", ""
	case "read one":
		return q, "select", ""
	case "insert":
		q.Group = explain.NoGroup
		return q, "insert", ""
	case "insert into a group":
		return q, "insert", ""
	case "update":
		return q, "update", ""
	case "move to another group":
		q.Group = strconv.FormatInt(c.Side, 10)
		return q, "update", "group"
	case "take out of its group":
		q.Group = explain.NoGroup
		return q, "update", "group"
	case "change owner":
		return q, "update", "owner"
	case "delete":
		return q, "delete", ""
	}
	panic("no explain question for " + op)
}

// groupReasons are fragments the reason of some cells must hold: explain
// names what is missing, not only that something is.
var groupReasons = map[string]map[string]string{
	"read one": {"outsider": "you are not in group"},
	"delete":   {"group member": "your role in group", "outsider": "not the owner"},
	"update":   {"outsider": "not the owner"},
}

// TestExplainAgreesWithGroupMatrix walks every cell of TestGroupMatrix:
// explain's verdict for that request, by that role, on that row, is what
// the request then gets, and what the matrix says.
func TestExplainAgreesWithGroupMatrix(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	cells := 0
	for _, tbl := range GroupTables {
		m, r := explainModel(t, tbl.Name)
		t.Run(tbl.Name, func(t *testing.T) {
			for _, op := range groupOps {
				for i, actor := range byRole(c) {
					want := groupMatrix[tbl.Name][op.name][i]
					cells++
					t.Run(fmt.Sprintf("%s (%s) %s: %s", matrixRoles[i], actor.Name, op.name, want), func(t *testing.T) {
						c := c.In(t)
						seed := c.Seed(tbl)
						before := Snapshot(t, db)
						q, cmd, change := groupQuestion(c, r, op.name, actor)
						rep, err := explain.Ask(t.Context(), db.SU, m, q)
						NoError(t, err)
						c.WantRowsOf(t, tbl, seed)
						WantUnchanged(t, db, before)
						ans := answerFor(t, rep, cmd, change)
						if frag := groupReasons[op.name][matrixRoles[i]]; frag != "" && !strings.Contains(ans.Why, frag) {
							t.Errorf("reason %q lacks %q", ans.Why, frag)
						}

						// The other side: the request itself.
						sql := op.sql(c, actor)
						if op.read {
							got, err := c.IDs(actor, tbl, "GET", sql)
							if op.name == "list" {
								if err == nil {
									if rep.Visible == nil || *rep.Visible != int64(len(got)) {
										t.Errorf("explain counts %v visible rows, the list has %d (%s)", rep.Visible, len(got), ans.Why)
									}
									if len(want.IDs) != len(got) {
										t.Errorf("matrix: %s; the list has %v", want, got)
									}
								}
								agrees(t, ans, int64(len(got)), err, want)
								return
							}
							agrees(t, ans, int64(len(got)), err, want)
							if err == nil && ans.Allowed != (len(want.IDs) == 1) {
								t.Errorf("matrix: %s; explain: allowed=%v", want, ans.Allowed)
							}
							return
						}
						method := map[bool]string{true: "POST", false: "PATCH"}[strings.HasPrefix(sql, "insert")]
						if strings.HasPrefix(sql, "delete") {
							method = "DELETE"
						}
						n, err := c.Affected(actor, tbl, method, sql)
						agrees(t, ans, n, err, want)
					})
				}
			}
		})
	}
	if want := len(GroupTables) * len(groupOps) * len(matrixRoles); cells != want {
		t.Errorf("walked %d cells, want %d", cells, want)
	}
}

// TestExplainAgreesWithOwnerMatrix walks the cells of TestOwnerMatrix:
// every caller it uses (alice, bob, anonymous, a token without sub, a sub
// that is not a uuid) on each seeded row (alice's 1 and 2, bob's 3), each
// command, and the list; explain's verdict is what the request then gets.
func TestExplainAgreesWithOwnerMatrix(t *testing.T) {
	db := ExampleDB(t)
	callers := []Person{Alice, Bob, Anonymous, NoSub, federatedAlice}
	cells := 0
	for _, table := range ownedTables {
		m, r := explainModel(t, table.name)
		t.Run(table.name, func(t *testing.T) {
			for _, who := range callers {
				for _, key := range []string{"", "1", "2", "3"} {
					for _, cmd := range []string{"select", "insert", "update", "delete"} {
						if key == "" && cmd != "select" {
							continue
						}
						cells++
						name := fmt.Sprintf("%s %s row %s", who.Name, cmd, key)
						if key == "" {
							name = who.Name + " list"
						}
						if who.Name == "alice" && who.Claims["sub"] != AliceID {
							name = "federated " + name
						}
						t.Run(name, func(t *testing.T) {
							mx := newMatrix(t, db, table)
							rep, err := explain.Ask(t.Context(), db.SU, m, explain.Question{Resource: r, Caller: callerOf(who), Row: key})
							NoError(t, err)
							mx.unchanged()
							ans := answerFor(t, rep, cmd, "")
							req := mx.as(who)
							var n int64
							switch cmd {
							case "select":
								var got []Row
								if key == "" {
									got, err = req.Query("GET", "select {cols} from {table} order by id")
								} else {
									got, err = req.Query("GET", "select {cols} from {table} where id = $1", key)
								}
								n = int64(len(got))
								if key == "" && err == nil && (rep.Visible == nil || *rep.Visible != n) {
									t.Errorf("explain counts %v visible rows, the list has %d", rep.Visible, n)
								}
							case "insert":
								// A new row like the seeded one: in its group (alice's
								// or bob's room for chat messages).
								group := Scalar[*int64](t, db, mx.expand("select group_id from {table} where id = $1"), key)
								n, err = req.Exec("POST", "insert into {table} ({text}, group_id) values ('new', $1)", group)
							case "update":
								n, err = req.Exec("PATCH", "update {table} set {text} = {text} where id = $1", key)
							case "delete":
								n, err = req.Exec("DELETE", "delete from {table} where id = $1", key)
							}
							agrees(t, ans, n, err, Outcome{Read: true})
						})
					}
				}
			}
		})
	}
	t.Logf("owner matrix: %d cells", cells)
}

// TestExplainAgreesWithMarketplace walks TestMarketplaceProducts' cells
// (store owner, staff member, staff admin, stranger, anonymous on a
// product of olive's store): explain's verdicts for read, create, update
// and delete are the matrix's, and what the requests then get; the
// reasons of the parent arm name the store.
func TestExplainAgreesWithMarketplace(t *testing.T) {
	db := marketDB(t)
	m, r := explainModel(t, "app.products")
	type want struct{ read, create, update, remove bool }
	for _, c := range []struct {
		who  Person
		want want
	}{
		{olive, want{read: true, create: true, update: true, remove: true}},
		{sam, want{read: true, update: true}},
		{ada, want{read: true, create: true, update: true, remove: true}},
		{stan, want{read: true}},
		{Anonymous, want{}},
	} {
		t.Run(c.who.Name, func(t *testing.T) {
			var id int64
			NoError(t, db.SU.QueryRow(t.Context(), "insert into app.products (store_id, name, stock) values ($1, 'lamp', 5) returning id", market.oliveStore).Scan(&id))
			t.Cleanup(func() { db.Exec(t, "delete from app.products where id = $1", id) })
			before := Snapshot(t, db)
			rep, err := explain.Ask(t.Context(), db.SU, m, explain.Question{Resource: r, Caller: callerOf(c.who), Row: strconv.FormatInt(id, 10)})
			NoError(t, err)
			WantUnchanged(t, db, before)
			as := Requester{T: t, DB: db, Who: c.who, Path: "/products"}
			for _, cell := range []struct {
				cmd     string
				want    bool
				request func() (int64, error)
			}{
				{"select", c.want.read, func() (int64, error) {
					var n int64
					err := as.Do("GET", func(tx pgx.Tx) error {
						return tx.QueryRow(t.Context(), "select count(*) from app.products where id = $1", id).Scan(&n)
					})
					return n, err
				}},
				{"insert", c.want.create, func() (int64, error) {
					return as.Exec("POST", "insert into app.products (store_id, name, stock) values ($1, 'lamp', 5)", market.oliveStore)
				}},
				{"update", c.want.update, func() (int64, error) {
					return as.Exec("PATCH", "update app.products set stock = stock where id = $1", id)
				}},
				{"delete", c.want.remove, func() (int64, error) {
					return as.Exec("DELETE", "delete from app.products where id = $1", id)
				}},
			} {
				ans := answerFor(t, rep, cell.cmd, "")
				if ans.Allowed != cell.want {
					t.Errorf("%s: explain says allowed=%v (%s), the matrix %v", cell.cmd, ans.Allowed, ans.Why, cell.want)
				}
				n, err := cell.request()
				agrees(t, ans, n, err, Outcome{Read: true})
				if cell.cmd == "insert" && err == nil {
					db.Exec(t, "delete from app.products where store_id = $1 and id <> $2 and name = 'lamp'", market.oliveStore, id)
				}
			}
			if c.who.Name == "stan" {
				if ans := answerFor(t, rep, "update", ""); !strings.Contains(ans.Why, "the parent row (app.stores id=") {
					t.Errorf("stan's update: the reason %q does not name the parent row", ans.Why)
				}
			}
		})
	}
}
