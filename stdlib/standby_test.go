package stdlib_test

// On a hot standby (a streaming replica made with pg_basebackup): every
// read request of the example works with the same policies and gives what
// it gives on the primary, because nothing on the read path writes; writes
// are refused by the standby and change nothing; a membership revoked on
// the primary is revoked on the standby once it has replayed.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// replicated is a primary of its own (the standby copies a whole
// cluster) with roles.sql, schema.sql and the build of policies/.
func replicated(t *testing.T) (primary *pgtest.Server, db *Database) {
	t.Helper()
	primary = pgtest.New(t)
	ctx := t.Context()
	if err := Roles(ctx, primary); err != nil {
		t.Fatalf("roles.sql: %v", err)
	}
	db, err := CreateDatabase(primary, "replicated", "schema.sql")
	if err != nil {
		t.Fatalf("creating the primary's database: %v", err)
	}
	script, err := BuildScript(Dir)
	NoError(t, err)
	f := filepath.Join(t.TempDir(), "build.sql")
	NoError(t, os.WriteFile(f, []byte(script), 0o644))
	if _, err := primary.Psql(ctx, "replicated", "-f", f); err != nil {
		t.Fatalf("applying the build on the primary: %v", err)
	}
	return primary, db
}

// openDatabase connects to an existing database of s (a standby cannot
// create one) as the superuser and as authenticator.
func openDatabase(t *testing.T, s *pgtest.Server, name string) *Database {
	t.Helper()
	ctx := t.Context()
	su, err := pgx.Connect(ctx, s.URL(name, "postgres"))
	NoError(t, err)
	t.Cleanup(func() { _ = su.Close(context.Background()) })
	api, err := pgx.Connect(ctx, strings.Replace(s.URL(name, "authenticator"), "authenticator@", "authenticator:mypass@", 1))
	NoError(t, err)
	t.Cleanup(func() { _ = api.Close(context.Background()) })
	return &Database{Name: name, Server: s, SU: su, API: api}
}

// readRequests runs every read request of the example as who, the way
// PostgREST runs a GET (READ ONLY), and returns each one's result or
// SQLSTATE, keyed by request.
func readRequests(p pooledSession, who Person, c *Crew) map[string]string {
	out := map[string]string{}
	put := func(req string, v any, err error) {
		if err != nil {
			if code := pgrest.SQLState(err); code != "" {
				out[req] = "SQLSTATE " + code
			} else {
				out[req] = "error: " + err.Error()
			}
			return
		}
		out[req] = fmt.Sprint(v)
	}
	strs := func(path, sql string, args ...any) ([]string, error) {
		var got []string
		err := p.do(who, "GET", path, func(tx pgx.Tx) error {
			rows, err := tx.Query(p.ctx, sql, args...)
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		return got, err
	}
	for _, tbl := range GroupTables {
		got, err := p.ids(who, tbl.Path, "select id from "+tbl.Name+" order by id")
		put("GET "+tbl.Path, got, err)
		for n := 1; n <= 4; n++ {
			got, err := p.ids(who, tbl.Path, "select id from "+tbl.Name+" where id = $1", n)
			put(fmt.Sprintf("GET %s?id=eq.%d", tbl.Path, n), got, err)
		}
		var count int64
		err = p.do(who, "HEAD", tbl.Path, func(tx pgx.Tx) error {
			return tx.QueryRow(p.ctx, "select count(*) from "+tbl.Name).Scan(&count)
		})
		put("HEAD "+tbl.Path+" (count)", count, err)
	}
	groups, err := strs("/groups", "select name || ' ' || my_role from app.groups order by name")
	put("GET /groups", groups, err)
	members, err := strs("/group_members", "select group_id || ' ' || user_id || ' ' || role from app.group_members order by 1")
	for i := range members {
		f := strings.Fields(members[i])
		members[i] = c.Name(f[0]) + " " + c.Name(f[1]) + " " + f[2]
	}
	put("GET /group_members", members, err)
	team, err := strs("/group_members", "select user_id from app.group_members where group_id = $1 order by 1", c.Team)
	put("GET /group_members?group_id=eq.team", len(team), err)
	return out
}

// expectedReads is what readRequests returns for a cast member on the
// seeded tables (crew.seed: nothing else in them).
func expectedReads(me poolCast) map[string]string {
	out := map[string]string{}
	anon := me.who.Role == "web_anon"
	val := func(v any) string {
		if anon {
			return "SQLSTATE 42501" // no privilege at all (HTTP 401)
		}
		return fmt.Sprint(v)
	}
	for _, tbl := range GroupTables {
		out["GET "+tbl.Path] = val(append([]int64{}, me.rows...))
		for n := int64(1); n <= 4; n++ {
			var want []int64
			for _, r := range me.rows {
				if r == n {
					want = []int64{n}
				}
			}
			out[fmt.Sprintf("GET %s?id=eq.%d", tbl.Path, n)] = val(want)
		}
		out["HEAD "+tbl.Path+" (count)"] = val(len(me.rows))
	}
	var groups []string
	for _, g := range me.groups {
		groups = append(groups, g.Name+" "+g.MyRole)
	}
	out["GET /groups"] = val(groups)
	return out
}

// TestStandbyReads: on the standby, every read request of the example,
// for every cast member, gives exactly what it gives on the primary, and
// that is what the policies say.
func TestStandbyReads(t *testing.T) {
	primary, pdb := replicated(t)
	standby := pgtest.NewStandby(t, primary)
	// Groups and rows are made on the primary after the base backup: the
	// standby gets them by streaming.
	c := NewCrew(t, pdb).In(t)
	for _, tbl := range GroupTables {
		c.Seed(tbl)
	}
	if err := standby.CatchUp(t.Context(), primary); err != nil {
		t.Fatal(err)
	}
	sdb := openDatabase(t, standby, "replicated")
	if !Scalar[bool](t, sdb, "select pg_is_in_recovery()") {
		t.Fatal("the standby is not in recovery")
	}
	log := &pooledLog{}
	onPrimary := pooledSession{ctx: t.Context(), conn: pdb.API, su: pdb.SU, log: log}
	onStandby := pooledSession{ctx: t.Context(), conn: sdb.API, su: sdb.SU, log: log}
	requests := 0
	for _, me := range castOf(c) {
		t.Run(me.who.Name, func(t *testing.T) {
			want := expectedReads(me)
			p, s := readRequests(onPrimary, me.who, c), readRequests(onStandby, me.who, c)
			requests += len(s)
			// The group members are compared between the two servers only;
			// TestGroupViews checks them against the policies.
			for _, k := range []string{"GET /group_members", "GET /group_members?group_id=eq.team"} {
				want[k] = p[k]
			}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("on the primary (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(p, s); diff != "" {
				t.Errorf("the standby differs from the primary (-primary +standby):\n%s", diff)
			}
		})
	}
	t.Logf("%d read requests on the standby", requests)
}

// TestStandbyRefusesWrites: every write request of the example on the
// standby fails: as PostgREST opens a write (BEGIN ... READ WRITE), the
// transaction cannot start (0A000); a write attempted in a READ ONLY
// transaction (a GET calling a write RPC) fails with 25006. The tables and
// memberships, re-read on the standby and on the primary, are unchanged.
func TestStandbyRefusesWrites(t *testing.T) {
	primary, pdb := replicated(t)
	standby := pgtest.NewStandby(t, primary)
	c := NewCrew(t, pdb).In(t)
	for _, tbl := range GroupTables {
		c.Seed(tbl)
	}
	NoError(t, standby.CatchUp(t.Context(), primary))
	sdb := openDatabase(t, standby, "replicated")
	sc := *c
	sc.DB = sdb // the crew's superuser views, read on the standby
	snapshot := func(c *Crew) map[string]any {
		return map[string]any{"todos": c.Rows(Todos), "chats": c.Rows(Chats), "memberships": c.Memberships()}
	}
	before := snapshot(c)
	if diff := cmp.Diff(before, snapshot(&sc)); diff != "" {
		t.Fatalf("the standby has not replayed the seed (-primary +standby):\n%s", diff)
	}
	// Each write is one its caller may make on the primary: only the
	// standby stands in the way.
	writes := []struct {
		who               Person
		method, path, sql string
		args              []any
	}{
		{c.Alice, "POST", "/todos", "insert into app.todos (title) values ('on the standby')", nil},
		{c.Alice, "POST", "/chats", "insert into app.chats (body, group_id) values ('on the standby', $1)", []any{c.Team}},
		{c.Alice, "PATCH", "/todos", "update app.todos set title = 'edited' where id = 2", nil},
		{c.Alice, "DELETE", "/chats", "delete from app.chats where id = 2", nil},
		{c.Alice, "POST", "/rpc/create_group", "select app.create_group(name => 'on the standby')", nil},
		{c.Alice, "POST", "/rpc/add_group_member", "select app.add_group_member(group_id => $1, user_id => $2)", []any{c.Side, c.OttoID}},
		{c.Olivia, "POST", "/rpc/remove_group_member", "select app.remove_group_member(group_id => $1, user_id => $2)", []any{c.Team, c.MiaID}},
		{c.Alice, "POST", "/rpc/leave_group", "select app.leave_group(group_id => $1)", []any{c.Team}},
		{c.Alice, "POST", "/rpc/delete_group", "select app.delete_group(group_id => $1)", []any{c.Side}},
	}
	errRollback := errors.New("rolled back on purpose")
	for _, w := range writes {
		t.Run(fmt.Sprintf("%s %s as %s on the primary (rolled back)", w.method, w.path, w.who.Name), func(t *testing.T) {
			req := pgrest.Request{Method: w.method, Path: w.path, Role: w.who.Role, Claims: w.who.Claims}
			err := pgrest.Do(t.Context(), pdb.API, req, func(tx pgx.Tx) error {
				if _, err := tx.Exec(t.Context(), w.sql, w.args...); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Errorf("%s on the primary: %v, want it to succeed", w.sql, err)
			}
		})
		for _, m := range []struct {
			method, code string
		}{{w.method, "0A000"}, {"GET", "25006"}} {
			name := fmt.Sprintf("%s %s as %s", m.method, w.path, w.who.Name)
			t.Run(name, func(t *testing.T) {
				req := pgrest.Request{Method: m.method, Path: w.path, Role: w.who.Role, Claims: w.who.Claims}
				err := pgrest.Do(t.Context(), sdb.API, req, func(tx pgx.Tx) error {
					_, err := tx.Exec(t.Context(), w.sql, w.args...)
					return err
				})
				if code := pgrest.SQLState(err); code != m.code {
					t.Errorf("%s on the standby: %v, want SQLSTATE %s", w.sql, err, m.code)
				}
			})
		}
	}
	NoError(t, standby.CatchUp(t.Context(), primary))
	if diff := cmp.Diff(before, snapshot(&sc)); diff != "" {
		t.Errorf("the standby changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before, snapshot(c)); diff != "" {
		t.Errorf("the primary changed (-before +after):\n%s", diff)
	}
}

// TestStandbyRevocation: mia reads team's rows on the standby; olivia
// removes her from team on the primary; once the standby has replayed,
// mia reads only her own row there, and team is gone from her groups.
func TestStandbyRevocation(t *testing.T) {
	primary, pdb := replicated(t)
	standby := pgtest.NewStandby(t, primary)
	c := NewCrew(t, pdb).In(t)
	for _, tbl := range GroupTables {
		c.Seed(tbl)
	}
	NoError(t, standby.CatchUp(t.Context(), primary))
	sdb := openDatabase(t, standby, "replicated")
	onStandby := pooledSession{ctx: t.Context(), conn: sdb.API, su: sdb.SU, log: &pooledLog{}}
	mia := func() map[string]string {
		got := readRequests(onStandby, c.Mia, c)
		return map[string]string{"GET /todos": got["GET /todos"], "GET /chats": got["GET /chats"], "GET /groups": got["GET /groups"]}
	}
	want := map[string]string{"GET /todos": "[2 3]", "GET /chats": "[2 3]", "GET /groups": "[side member team member]"}
	if diff := cmp.Diff(want, mia()); diff != "" {
		t.Fatalf("mia on the standby before (-want +got):\n%s", diff)
	}
	if err := RPC(t, pdb, c.Olivia, "remove_group_member", "group_id", c.Team, "user_id", c.MiaID); err != nil {
		t.Fatalf("olivia removes mia from team on the primary: %v", err)
	}
	NoError(t, standby.CatchUp(t.Context(), primary))
	want = map[string]string{"GET /todos": "[3]", "GET /chats": "[3]", "GET /groups": "[side member]"}
	if diff := cmp.Diff(want, mia()); diff != "" {
		t.Errorf("mia on the standby after her removal was replayed (-want +got):\n%s", diff)
	}
}

// TestStandbyPlans: the example's plan checks hold on the standby too
// (statistics are replicated): a user's count and list of 300,000 todos
// read the owner and group indexes (a BitmapOr), with the user id and
// groups computed once, as TestGroupQueriesUseTheOwnerAndGroupIndexes
// shows on a primary. The load is that test's, written on the primary.
func TestStandbyPlans(t *testing.T) {
	primary, pdb := replicated(t)
	standby := pgtest.NewStandby(t, primary)
	pdb.Exec(t, PlanLoad)
	NoError(t, standby.CatchUp(t.Context(), primary))
	sdb := openDatabase(t, standby, "replicated")
	user1 := KeycloakUser("user1", "00000000-0000-4000-8000-000000000001")
	want := Scalar[int64](t, pdb, `select count(*) from app.todos
		where owner_id = $1 or group_id in (select group_id from iam.group_members where user_id = $1::text)`, UserID(user1))
	var count int64
	err := Requester{T: t, DB: sdb, Who: user1, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&count)
	})
	NoError(t, err)
	if count != want {
		t.Fatalf("user1 counts %d todos on the standby, want %d", count, want)
	}
	for _, sql := range []string{"select count(*) from app.todos", "select * from app.todos order by id desc limit 50"} {
		t.Run(sql, func(t *testing.T) {
			plan, text := ExplainWith(t, sdb, user1, "", sql)
			t.Logf("EXPLAIN ANALYZE on the standby:\n%s", text)
			if problems := PlanProblems(plan, TodosInitPlans, TodosArms...); len(problems) > 0 {
				t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
			}
			if !slices.Contains(plan.Nodes, "BitmapOr") {
				t.Errorf("plan %+v: no BitmapOr", plan)
			}
		})
	}
}
