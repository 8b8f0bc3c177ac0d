package policies_test

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
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// replicated is a primary of its own (the standby copies a whole
// cluster) with roles.sql, schema.sql and the build of this directory.
func replicated(t *testing.T) (primary *pgtest.Server, db *database) {
	t.Helper()
	primary = pgtest.New(t)
	ctx := t.Context()
	if _, err := primary.Psql(ctx, "postgres", "-f", abs("roles.sql")); err != nil {
		t.Fatalf("roles.sql: %v", err)
	}
	db, err := createDatabase(primary, "replicated", "schema.sql")
	if err != nil {
		t.Fatalf("creating the primary's database: %v", err)
	}
	script, err := buildScript(".")
	noError(t, err)
	f := filepath.Join(t.TempDir(), "build.sql")
	noError(t, os.WriteFile(f, []byte(script), 0o644))
	if _, err := primary.Psql(ctx, "replicated", "-f", f); err != nil {
		t.Fatalf("applying the build on the primary: %v", err)
	}
	return primary, db
}

// openDatabase connects to an existing database of s (a standby cannot
// create one) as the superuser and as authenticator.
func openDatabase(t *testing.T, s *pgtest.Server, name string) *database {
	t.Helper()
	ctx := t.Context()
	su, err := pgx.Connect(ctx, s.URL(name, "postgres"))
	noError(t, err)
	t.Cleanup(func() { _ = su.Close(context.Background()) })
	api, err := pgx.Connect(ctx, strings.Replace(s.URL(name, "authenticator"), "authenticator@", "authenticator:mypass@", 1))
	noError(t, err)
	t.Cleanup(func() { _ = api.Close(context.Background()) })
	return &database{name: name, server: s, su: su, api: api}
}

// readRequests runs every read request of the example as who, the way
// PostgREST runs a GET (READ ONLY), and returns each one's result or
// SQLSTATE, keyed by request.
func readRequests(p pooledSession, who person, c *crew) map[string]string {
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
	for _, tbl := range groupTables {
		got, err := p.ids(who, tbl.path, "select id from "+tbl.name+" order by id")
		put("GET "+tbl.path, got, err)
		for n := 1; n <= 4; n++ {
			got, err := p.ids(who, tbl.path, "select id from "+tbl.name+" where id = $1", n)
			put(fmt.Sprintf("GET %s?id=eq.%d", tbl.path, n), got, err)
		}
		var count int64
		err = p.do(who, "HEAD", tbl.path, func(tx pgx.Tx) error {
			return tx.QueryRow(p.ctx, "select count(*) from "+tbl.name).Scan(&count)
		})
		put("HEAD "+tbl.path+" (count)", count, err)
	}
	groups, err := strs("/groups", "select name || ' ' || my_role from app.groups order by name")
	put("GET /groups", groups, err)
	members, err := strs("/group_members", "select group_id || ' ' || user_id || ' ' || role from app.group_members order by 1")
	for i := range members {
		f := strings.Fields(members[i])
		members[i] = c.name(f[0]) + " " + c.name(f[1]) + " " + f[2]
	}
	put("GET /group_members", members, err)
	team, err := strs("/group_members", "select user_id from app.group_members where group_id = $1 order by 1", c.team)
	put("GET /group_members?group_id=eq.team", len(team), err)
	return out
}

// expectedReads is what readRequests returns for a cast member on the
// seeded tables (crew.seed: nothing else in them).
func expectedReads(me poolCast) map[string]string {
	out := map[string]string{}
	anon := me.who.role == "web_anon"
	val := func(v any) string {
		if anon {
			return "SQLSTATE 42501" // no privilege at all (HTTP 401)
		}
		return fmt.Sprint(v)
	}
	for _, tbl := range groupTables {
		out["GET "+tbl.path] = val(append([]int64{}, me.rows...))
		for n := int64(1); n <= 4; n++ {
			var want []int64
			for _, r := range me.rows {
				if r == n {
					want = []int64{n}
				}
			}
			out[fmt.Sprintf("GET %s?id=eq.%d", tbl.path, n)] = val(want)
		}
		out["HEAD "+tbl.path+" (count)"] = val(len(me.rows))
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
	c := newCrew(t, pdb).in(t)
	for _, tbl := range groupTables {
		c.seed(tbl)
	}
	if err := standby.CatchUp(t.Context(), primary); err != nil {
		t.Fatal(err)
	}
	sdb := openDatabase(t, standby, "replicated")
	if !scalar[bool](t, sdb, "select pg_is_in_recovery()") {
		t.Fatal("the standby is not in recovery")
	}
	log := &pooledLog{}
	onPrimary := pooledSession{ctx: t.Context(), conn: pdb.api, su: pdb.su, log: log}
	onStandby := pooledSession{ctx: t.Context(), conn: sdb.api, su: sdb.su, log: log}
	requests := 0
	for _, me := range c.poolCast() {
		t.Run(me.who.name, func(t *testing.T) {
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
	c := newCrew(t, pdb).in(t)
	for _, tbl := range groupTables {
		c.seed(tbl)
	}
	noError(t, standby.CatchUp(t.Context(), primary))
	sdb := openDatabase(t, standby, "replicated")
	sc := *c
	sc.db = sdb // the crew's superuser views, read on the standby
	snapshot := func(c *crew) map[string]any {
		return map[string]any{"todos": c.rows(todos), "chats": c.rows(chats), "memberships": c.memberships()}
	}
	before := snapshot(c)
	if diff := cmp.Diff(before, snapshot(&sc)); diff != "" {
		t.Fatalf("the standby has not replayed the seed (-primary +standby):\n%s", diff)
	}
	// Each write is one its caller may make on the primary: only the
	// standby stands in the way.
	writes := []struct {
		who               person
		method, path, sql string
		args              []any
	}{
		{c.alice, "POST", "/todos", "insert into app.todos (title) values ('on the standby')", nil},
		{c.alice, "POST", "/chats", "insert into app.chats (body, group_id) values ('on the standby', $1)", []any{c.team}},
		{c.alice, "PATCH", "/todos", "update app.todos set title = 'edited' where id = 2", nil},
		{c.alice, "DELETE", "/chats", "delete from app.chats where id = 2", nil},
		{c.alice, "POST", "/rpc/create_group", "select app.create_group(name => 'on the standby')", nil},
		{c.alice, "POST", "/rpc/add_group_member", "select app.add_group_member(group_id => $1, user_id => $2)", []any{c.side, c.ottoID}},
		{c.olivia, "POST", "/rpc/remove_group_member", "select app.remove_group_member(group_id => $1, user_id => $2)", []any{c.team, c.miaID}},
		{c.alice, "POST", "/rpc/leave_group", "select app.leave_group(group_id => $1)", []any{c.team}},
		{c.alice, "POST", "/rpc/delete_group", "select app.delete_group(group_id => $1)", []any{c.side}},
	}
	errRollback := errors.New("rolled back on purpose")
	for _, w := range writes {
		t.Run(fmt.Sprintf("%s %s as %s on the primary (rolled back)", w.method, w.path, w.who.name), func(t *testing.T) {
			req := pgrest.Request{Method: w.method, Path: w.path, Role: w.who.role, Claims: w.who.claims}
			err := pgrest.Do(t.Context(), pdb.api, req, func(tx pgx.Tx) error {
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
			name := fmt.Sprintf("%s %s as %s", m.method, w.path, w.who.name)
			t.Run(name, func(t *testing.T) {
				req := pgrest.Request{Method: m.method, Path: w.path, Role: w.who.role, Claims: w.who.claims}
				err := pgrest.Do(t.Context(), sdb.api, req, func(tx pgx.Tx) error {
					_, err := tx.Exec(t.Context(), w.sql, w.args...)
					return err
				})
				if code := pgrest.SQLState(err); code != m.code {
					t.Errorf("%s on the standby: %v, want SQLSTATE %s", w.sql, err, m.code)
				}
			})
		}
	}
	noError(t, standby.CatchUp(t.Context(), primary))
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
	c := newCrew(t, pdb).in(t)
	for _, tbl := range groupTables {
		c.seed(tbl)
	}
	noError(t, standby.CatchUp(t.Context(), primary))
	sdb := openDatabase(t, standby, "replicated")
	onStandby := pooledSession{ctx: t.Context(), conn: sdb.api, su: sdb.su, log: &pooledLog{}}
	mia := func() map[string]string {
		got := readRequests(onStandby, c.mia, c)
		return map[string]string{"GET /todos": got["GET /todos"], "GET /chats": got["GET /chats"], "GET /groups": got["GET /groups"]}
	}
	want := map[string]string{"GET /todos": "[2 3]", "GET /chats": "[2 3]", "GET /groups": "[side member team member]"}
	if diff := cmp.Diff(want, mia()); diff != "" {
		t.Fatalf("mia on the standby before (-want +got):\n%s", diff)
	}
	if err := rpc(t, pdb, c.olivia, "remove_group_member", "group_id", c.team, "user_id", c.miaID); err != nil {
		t.Fatalf("olivia removes mia from team on the primary: %v", err)
	}
	noError(t, standby.CatchUp(t.Context(), primary))
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
	pdb.exec(t, planLoad)
	noError(t, standby.CatchUp(t.Context(), primary))
	sdb := openDatabase(t, standby, "replicated")
	user1 := keycloakUser("user1", "00000000-0000-4000-8000-000000000001")
	want := scalar[int64](t, pdb, `select count(*) from app.todos
		where owner_id = $1 or group_id in (select group_id from iam.group_members where user_id = $1::text)`, id(user1))
	var count int64
	err := requester{t: t, db: sdb, who: user1, path: "/todos"}.do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&count)
	})
	noError(t, err)
	if count != want {
		t.Fatalf("user1 counts %d todos on the standby, want %d", count, want)
	}
	for _, sql := range []string{"select count(*) from app.todos", "select * from app.todos order by id desc limit 50"} {
		t.Run(sql, func(t *testing.T) {
			plan, text := explainWith(t, sdb, user1, "", sql)
			t.Logf("EXPLAIN ANALYZE on the standby:\n%s", text)
			if problems := planProblems(plan, 2, "todos_owner_id_id_iam_idx", "todos_group_id_id_iam_idx"); len(problems) > 0 {
				t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
			}
			if !contains(plan.Nodes, "BitmapOr") {
				t.Errorf("plan %+v: no BitmapOr", plan)
			}
		})
	}
}
