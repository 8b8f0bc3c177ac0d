package policies_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	. "github.com/iamc/iamc/internal/exampletest"
)

// chatsLoad puts 60,000 chats into the groups of planLoad: chat i is in
// group i % 300 + 1 and written by one of its members.
const chatsLoad = `
		set session_replication_role = replica;
		insert into app.chats (body, owner_id, group_id)
		select 'chat ' || i, pg_temp.uid(((i % 300 + 1) + 200 * (i % 10)) % 2000)::uuid, i % 300 + 1
		from generate_series(1, 60000) i;
		reset session_replication_role;
		analyze app.chats;`

var pages struct {
	once sync.Once
	db   *Database
}

// pagesDB is the plan data set (planLoad) with chats, built and applied;
// set up once, shared by the page tests (which only read, or undo what
// they change).
func pagesDB(t *testing.T) *Database {
	t.Helper()
	pages.once.Do(func() {
		db := NewDatabase(t, "pages", "schema.sql")
		script, err := BuildScript(Dir)
		NoError(t, err)
		_, err = ApplyScript(t.Context(), db.Server, "pages", script)
		NoError(t, err)
		db.Exec(t, PlanLoad+chatsLoad)
		pages.db = db
	})
	if pages.db == nil {
		t.Fatal("setting up the pages database failed (see the first test that used it)")
	}
	return pages.db
}

func planUser(k int) Person {
	return KeycloakUser(fmt.Sprintf("user%d", k), fmt.Sprintf("00000000-0000-4000-8000-%012d", k))
}

// pageIDs runs one request and returns the ids in the order returned.
func pageIDs(t *testing.T, db *Database, who Person, path, sql string, args ...any) ([]int64, error) {
	t.Helper()
	var ids []int64
	err := Requester{T: t, DB: db, Who: who, Path: path}.Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), sql, args...)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return ids, err
}

// TestPageFunctionAnswersAsTheTable: for callers who see many, few and no
// rows, every page of todos_page and chats_page (first pages, the pages
// after them by cursor, one group's pages, the group of somebody else, page
// sizes 1 to 1000) holds exactly the rows PostgREST's
// /todos?id=lt.<before>&group_id=eq.<g>&order=id.desc&limit=<n> returns
// under RLS, in the same order.
func TestPageFunctionAnswersAsTheTable(t *testing.T) {
	db := pagesDB(t)
	callers := []struct {
		who  Person
		sees string // what the caller should see, to make the comparison mean something
	}{
		{planUser(1), "own rows and 5 groups"},
		{planUser(7), "own rows and one group"},
		{planUser(1999), "own rows and one group"},
		{KeycloakUser("nobody", "00000000-0000-4000-8000-999999999999"), "nothing"},
	}
	for _, table := range []string{"todos", "chats"} {
		for _, c := range callers {
			t.Run(table+" of "+c.who.Name+" ("+c.sees+")", func(t *testing.T) {
				groups := Scalar[[]int64](t, db, "select coalesce(array_agg(group_id order by group_id), '{}') from iam.group_members where user_id = $1", UserID(c.who))
				// A group the caller is not in, with rows of others: the
				// page for it must hold the caller's own rows only.
				other := Scalar[int64](t, db, fmt.Sprintf("select min(group_id) from app.%s where not group_id = any($1) and owner_id <> $2::uuid", table), groups, UserID(c.who))
				type ask struct {
					before any
					size   int
					group  any
				}
				asks := []ask{{nil, 50, nil}, {nil, 1, nil}, {nil, 7, nil}, {nil, 1000, nil}, {nil, 50, other}}
				for _, g := range groups {
					asks = append(asks, ask{nil, 50, g}, ask{nil, 3, g})
				}
				seen, nonEmpty := 0, 0
				for len(asks) > 0 {
					a := asks[0]
					asks = asks[1:]
					where := "($1::bigint is null or id < $1) and ($3::bigint is null or group_id = $3)"
					want, err := pageIDs(t, db, c.who, "/"+table, fmt.Sprintf("select id from app.%s where %s order by id desc limit $2", table, where), a.before, a.size, a.group)
					NoError(t, err)
					got, err := pageIDs(t, db, c.who, "/rpc/"+table+"_page", fmt.Sprintf("select id from app.%s_page($1, $2, $3)", table), a.before, a.size, a.group)
					NoError(t, err)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("page before %v, size %d, group %v (-table +page function):\n%s", a.before, a.size, a.group, diff)
					}
					seen++
					if len(got) > 0 {
						nonEmpty++
					}
					// Follow the cursor for three more pages.
					if a.size == 50 && len(got) == a.size && a.before == nil {
						for i := range 3 {
							asks = append(asks, ask{got[len(got)-1] - int64(i*137), 50, a.group})
						}
					}
				}
				if c.sees == "nothing" && nonEmpty > 0 {
					t.Errorf("%d of %d pages hold rows for a caller who sees nothing", nonEmpty, seen)
				}
				if c.sees != "nothing" && nonEmpty < seen/2 {
					t.Errorf("only %d of %d pages hold rows: the comparison says little", nonEmpty, seen)
				}
			})
		}
	}
}

// TestPageFunctionRefuses: the page functions are the table's reads, not
// more: anonymous callers have no privilege (HTTP 401), a page size out of
// range is a clear 22023 (HTTP 400), a blocked user is refused (28000).
func TestPageFunctionRefuses(t *testing.T) {
	db := pagesDB(t)
	user := planUser(1)
	anonymous := Person{Name: "anonymous", Role: "web_anon"}
	for _, c := range []struct {
		name string
		who  Person
		sql  string
		want Outcome
	}{
		{"anonymous", anonymous, "select id from app.todos_page()", Denied},
		{"anonymous, chats", anonymous, "select id from app.chats_page()", Denied},
		{"page size 0", user, "select id from app.todos_page(page_size => 0)", Fails("22023", "page_size must be between 1 and 1000")},
		{"page size 1001", user, "select id from app.chats_page(page_size => 1001)", Fails("22023", "page_size must be between 1 and 1000")},
		{"page size null", user, "select id from app.todos_page(page_size => null)", Fails("22023", "page_size must be between 1 and 1000")},
		{"page size 1000", user, "select id from app.todos_page(page_size => 1000)", Outcome{Read: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := pageIDs(t, db, c.who, "/rpc/todos_page", c.sql)
			WantError(t, err, c.want)
		})
	}
	t.Run("blocked user", func(t *testing.T) {
		db.Exec(t, fmt.Sprintf("select iam.block_subject('%s', 'test')", UserID(user)))
		defer db.Exec(t, fmt.Sprintf("select iam.unblock_subject('%s')", UserID(user)))
		// Every page, one group's too, even one with no rows, where no
		// policy ever asks who the caller is.
		empty := Scalar[int64](t, db, "select max(id) + 1 from iam.groups")
		db.Exec(t, fmt.Sprintf("insert into iam.groups (id, name, created_by) overriding system value values (%d, 'empty', 'test')", empty))
		defer db.Exec(t, fmt.Sprintf("delete from iam.groups where id = %d", empty))
		own := Scalar[int64](t, db, "select min(group_id) from iam.group_members where user_id = $1", UserID(user))
		for _, ask := range []struct{ path, sql string }{
			{"/rpc/todos_page", "select id from app.todos_page()"},
			{"/rpc/chats_page", fmt.Sprintf("select id from app.chats_page(group_id => %d)", own)},
			{"/rpc/chats_page", fmt.Sprintf("select id from app.chats_page(group_id => %d)", empty)},
		} {
			_, err := pageIDs(t, db, user, ask.path, ask.sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "28000" {
				t.Errorf("blocked user's %s: %v, want SQLSTATE 28000", ask.sql, err)
			}
		}
	})
}

// pagePlan is what a page request read, from auto_explain's plans of the
// statements it ran (the function's query among them).
type pagePlan struct {
	Scans     []string           // "<node> <direction> <index>" per scan of the table
	Relations []string           // the relation each scan read: the table, or a partition of it
	Read      map[string]float64 // rows read, by relation
	RowsRead  float64            // rows the scans of the table returned, all loops
	Sorted    float64            // rows into Sort nodes
}

// explainPage runs sql as who, with auto_explain logging the plans of
// nested statements, and sums up the scans of table (or of its partitions,
// when it is partitioned) in the plan of the statement whose text contains
// marker.
func explainPage(t *testing.T, db *Database, who Person, table, marker, sql string) pagePlan {
	t.Helper()
	ofTable := Scalar[[]string](t, db, `select array[$1] || array(select c.relname::text from pg_partition_tree(('app.' || $1)::regclass) p
	    join pg_class c on c.oid = p.relid where p.level > 0)`, table)
	cfg := db.SU.Config().Copy()
	var logs []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Severity == "LOG" {
			logs = append(logs, n.Message)
		}
	}
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	NoError(t, err)
	defer conn.Close(context.Background())
	claims, err := json.Marshal(who.Claims)
	NoError(t, err)
	tx, err := conn.BeginTx(t.Context(), pgx.TxOptions{AccessMode: pgx.ReadOnly})
	NoError(t, err)
	defer tx.Rollback(context.Background())
	for _, s := range []string{
		"load 'auto_explain'",
		"set local auto_explain.log_min_duration = 0",
		"set local auto_explain.log_analyze = on",
		"set local auto_explain.log_timing = off",
		"set local auto_explain.log_nested_statements = on",
		"set local auto_explain.log_format = json",
		"set local client_min_messages = log",
	} {
		_, err := tx.Exec(t.Context(), s)
		NoError(t, err)
	}
	_, err = tx.Exec(t.Context(), "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)", who.Role, string(claims))
	NoError(t, err)
	rows, err := tx.Query(t.Context(), sql)
	NoError(t, err)
	rows.Close()
	NoError(t, rows.Err())
	// The portal of the extended protocol ends (and auto_explain logs its
	// plan) when the next statement starts.
	_, err = tx.Exec(t.Context(), "select 1")
	NoError(t, err)

	var plan pagePlan
	found := false
	for _, l := range logs {
		i := strings.Index(l, "{")
		if i < 0 {
			continue
		}
		var doc struct {
			Text string         `json:"Query Text"`
			Plan map[string]any `json:"Plan"`
		}
		if err := json.Unmarshal([]byte(l[i:]), &doc); err != nil || !strings.Contains(doc.Text, marker) {
			continue
		}
		found = true
		var walk func(n map[string]any)
		walk = func(n map[string]any) {
			typ, _ := n["Node Type"].(string)
			rows, _ := n["Actual Rows"].(float64)
			loops, _ := n["Actual Loops"].(float64)
			if rel, _ := n["Relation Name"].(string); slices.Contains(ofTable, rel) && loops > 0 { // a scan never run reads nothing
				dir, _ := n["Scan Direction"].(string)
				idx, _ := n["Index Name"].(string)
				plan.Scans = append(plan.Scans, strings.TrimSpace(typ+" "+dir+" "+idx))
				plan.Relations = append(plan.Relations, rel)
				// Rows a walk passes over (the policies' filter, the
				// arms' own) are read too.
				removed, _ := n["Rows Removed by Filter"].(float64)
				plan.RowsRead += (rows + removed) * loops
				if plan.Read == nil {
					plan.Read = map[string]float64{}
				}
				plan.Read[rel] += (rows + removed) * loops
			}
			if typ == "Sort" {
				if kids, _ := n["Plans"].([]any); len(kids) == 1 {
					kid, _ := kids[0].(map[string]any)
					r, _ := kid["Actual Rows"].(float64)
					l, _ := kid["Actual Loops"].(float64)
					plan.Sorted += r * l
				}
			}
			kids, _ := n["Plans"].([]any)
			for _, k := range kids {
				if m, ok := k.(map[string]any); ok {
					walk(m)
				}
			}
		}
		walk(doc.Plan)
	}
	if !found {
		t.Fatalf("no plan of a statement containing %q among %d logged plans", marker, len(logs))
	}
	return plan
}

// pageProblems says why a plan is not a page read: anything but backward
// walks of the given indexes, or more rows read (returned or passed over)
// or sorted than limit.
func pageProblems(p pagePlan, limit float64, indexes ...string) []string {
	var out []string
	for _, s := range p.Scans {
		ok := false
		for _, ix := range indexes {
			if s == "Index Scan Backward "+ix {
				ok = true
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("scan %q is not a backward walk of %v", s, indexes))
		}
	}
	if len(p.Scans) == 0 {
		out = append(out, "no scan of the table")
	}
	if p.RowsRead > limit {
		out = append(out, fmt.Sprintf("read %.0f rows, more than %.0f", p.RowsRead, limit))
	}
	if p.Sorted > limit {
		out = append(out, fmt.Sprintf("sorted %.0f rows, more than %.0f", p.Sorted, limit))
	}
	return out
}

// TestPageFunctionReadsAPage: the page function reads at most a page per
// policy arm (per group for the group arm; one walk for one group) plus the
// caller's own rows a group walk passes over, each a backward walk of the
// (column, id) index, with no bitmap scan and no sort of everything the
// caller sees; a caller asking for a group they do not read walks their own
// rows, not the group's. The same check reports the table's own list page
// under RLS, which reads every visible row and sorts them, so it can fail.
// (The function forces generic plans, the ones a long-lived PostgREST
// connection runs: these are those plans.)
func TestPageFunctionReadsAPage(t *testing.T) {
	db := pagesDB(t)
	user1, user7 := planUser(1), planUser(7)
	groupsOf := func(who Person) []int64 {
		return Scalar[[]int64](t, db, "select coalesce(array_agg(group_id order by group_id), '{}') from iam.group_members where user_id = $1", UserID(who))
	}
	// ownRows counts the caller's rows of a table in the given groups (with
	// in false: in any other group; rows in no group count for neither,
	// and chats are always in one).
	ownRows := func(table string, who Person, groups []int64, in bool) float64 {
		return float64(Scalar[int64](t, db, fmt.Sprintf("select count(*) from app.%s where owner_id = $1::uuid and (group_id = any($2)) = $3", table), UserID(who), groups, in))
	}
	groups := groupsOf(user1)
	// A group user 7 is not in, bigger than a page, with no row of theirs.
	stranger := Scalar[int64](t, db, "select group_id from app.chats where not group_id = any($1) group by group_id having count(*) > 100 and count(*) filter (where owner_id = $2::uuid) = 0 order by group_id limit 1", groupsOf(user7), UserID(user7))
	// The todos page also reads the rows shared with the caller by primary
	// key (at most a page: the shared ids the helper found, none here).
	todos := TodosArms
	chats := []string{"chats_owner_id_id_iam_idx", "chats_group_id_id_iam_idx"}
	cases := []struct {
		name, table, marker, sql string
		who                      Person
		limit                    float64 // rows read or sorted at most
		indexes                  []string
		walksGroups              bool // the group index is walked
		wantProblems             bool
	}{
		{"todos, first page", "todos", "union all", "select * from app.todos_page()", user1,
			50*float64(2+len(groups)) + ownRows("todos", user1, groups, true), todos, true, false},
		{"todos, page after a cursor", "todos", "union all", "select * from app.todos_page(before => 250000)", user1,
			50*float64(2+len(groups)) + ownRows("todos", user1, groups, true), todos, true, false},
		{"todos, one group", "todos", "t.group_id = todos_page.group_id", fmt.Sprintf("select * from app.todos_page(group_id => %d)", groups[1]), user1,
			50, todos, true, false},
		{"chats, one group", "chats", "t.group_id = chats_page.group_id", fmt.Sprintf("select * from app.chats_page(group_id => %d, page_size => 20)", groups[0]), user1,
			20, chats, true, false},
		{"chats, every group", "chats", "union all", "select * from app.chats_page()", user1,
			50*float64(1+len(groups)) + ownRows("chats", user1, groups, true), chats, true, false},
		{"chats, a group the caller is not in (their own rows only)", "chats", "is not distinct from chats_page.group_id", fmt.Sprintf("select * from app.chats_page(group_id => %d, page_size => 20)", stranger), user7,
			20 + ownRows("chats", user7, []int64{stranger}, false), chats[:1], false, false},
		{"the table's list page under RLS (the check can fail)", "todos", "order by id desc", "select * from app.todos order by id desc limit 50", user1,
			50, todos, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := explainPage(t, db, c.who, c.table, c.marker, c.sql)
			problems := pageProblems(plan, c.limit, c.indexes...)
			t.Logf("%s: %+v (at most %.0f rows)", c.sql, plan, c.limit)
			if c.wantProblems && len(problems) == 0 {
				t.Errorf("plan %+v passes the page check, want it reported", plan)
			}
			if !c.wantProblems && len(problems) > 0 {
				t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
			}
			if c.walksGroups && !slices.ContainsFunc(plan.Scans, func(s string) bool { return strings.HasSuffix(s, c.indexes[1]) }) {
				t.Errorf("plan %+v: the group index is never walked", plan)
			}
		})
	}
}

// pageShapesCase is the golden case with a page function for every shape
// of read rule: everyone reads (anonymous too), only the owner reads (text
// identity, key seq), only group admins read (admin realm role, token
// groups).
const pageShapesCase = "../golden/page-shapes/policies"

// TestPageShapes applies golden/page-shapes and compares, for callers on
// both sides of every rule (group admins, members, outsiders, a Keycloak
// token group, the admin realm role, anonymous), every page of every page
// function with the table's own list page under RLS.
func TestPageShapes(t *testing.T) {
	db := NewDatabase(t, "pageshapes")
	db.Exec(t, `
		create schema app authorization api_owner;
		set role api_owner;
		create table app.notices (id bigint generated always as identity primary key, body text not null, author text not null, board_id bigint);
		create table app.drafts (seq bigint generated always as identity primary key, body text not null, author text not null);
		create table app.audits (id bigint generated always as identity primary key, body text not null, team_id bigint not null);
		reset role;`)
	script, err := BuildScript(pageShapesCase)
	NoError(t, err)
	_, err = ApplyScript(t.Context(), db.Server, "pageshapes", script)
	NoError(t, err)
	// Groups 1..6; u1 owns 1 and 2 and is a member of 3; u2 is an admin of
	// 3 and a member of 1; u3 is in no group; group 6 is Keycloak's
	// /team-x (token groups count as member, so they read no audits).
	db.Exec(t, `
		insert into iam.groups (id, name, created_by) select g, 'g' || g, 'u1' from generate_series(1, 6) g;
		update iam.groups set token_name = '/team-x' where id = 6;
		insert into iam.group_members (group_id, user_id, role, added_by) values
		    (1, 'u1', 'owner', 'u1'), (2, 'u1', 'owner', 'u1'), (3, 'u1', 'member', 'u2'),
		    (3, 'u2', 'admin', 'u2'), (1, 'u2', 'member', 'u1');
		set session_replication_role = replica;
		insert into app.notices (body, author, board_id)
		select 'n' || i, 'u' || (i % 4), case when i % 3 = 0 then i % 6 + 1 end from generate_series(1, 400) i;
		insert into app.drafts (body, author) select 'd' || i, 'u' || (i % 4) from generate_series(1, 400) i;
		insert into app.audits (body, team_id) select 'a' || i, i % 6 + 1 from generate_series(1, 400) i;
		reset session_replication_role;
		analyze app.notices; analyze app.drafts; analyze app.audits;`)

	user := func(name string, edit func(map[string]any)) Person {
		p := KeycloakUser(name, "")
		if edit != nil {
			edit(p.Claims)
		}
		return p
	}
	callers := []Person{
		user("u1", nil),
		user("u2", nil),
		user("u3", nil),
		user("u4", func(c map[string]any) { c["groups"] = []string{"/team-x"} }),
		user("root", func(c map[string]any) {
			c["realm_access"] = map[string]any{"roles": []string{"default-roles-iamc", "iam-admin"}}
		}),
		{Name: "anonymous", Role: "web_anon"},
	}
	resources := []struct {
		table, key, group string
		anonymous         bool // anonymous may read
	}{
		{"notices", "id", "board_id", true},
		{"drafts", "seq", "", false},
		{"audits", "id", "team_id", false},
	}
	for _, res := range resources {
		for _, c := range callers {
			t.Run(res.table+" of "+c.Name, func(t *testing.T) {
				fn := fmt.Sprintf("app.%s_page", res.table)
				if c.Role == "web_anon" && !res.anonymous {
					_, err := pageIDs(t, db, c, "/rpc/"+res.table+"_page", "select "+res.key+" from "+fn+"()")
					WantError(t, err, Denied)
					return
				}
				groups := []any{nil}
				if res.group != "" {
					groups = []any{nil, int64(1), int64(3), int64(6)}
				}
				total := 0
				for _, g := range groups {
					for _, before := range []any{nil, int64(300), int64(37)} {
						for _, size := range []int{1, 7, 50} {
							where := fmt.Sprintf("($1::bigint is null or %s < $1)", res.key)
							args := []any{before, size}
							call := fmt.Sprintf("select %s from %s($1, $2)", res.key, fn)
							if res.group != "" {
								where += fmt.Sprintf(" and ($3::bigint is null or %s = $3)", res.group)
								args = append(args, g)
								call = fmt.Sprintf("select %s from %s($1, $2, $3)", res.key, fn)
							}
							want, err := pageIDs(t, db, c, "/"+res.table, fmt.Sprintf("select %s from app.%s where %s order by %s desc limit $2", res.key, res.table, where, res.key), args...)
							NoError(t, err)
							got, err := pageIDs(t, db, c, "/rpc/"+res.table+"_page", call, args...)
							NoError(t, err)
							if diff := cmp.Diff(want, got); diff != "" {
								t.Errorf("group %v, before %v, size %d (-table +page function):\n%s", g, before, size, diff)
							}
							total += len(got)
						}
					}
				}
				t.Logf("%d rows compared", total)
			})
		}
	}
	// Both sides must occur: who reads audits at all (group admins, the
	// realm admin) and who reads none (members, outsiders, token members).
	for _, c := range []struct {
		who  Person
		some bool
	}{{callers[0], true}, {callers[1], true}, {callers[4], true}, {callers[2], false}, {callers[3], false}} {
		got, err := pageIDs(t, db, c.who, "/rpc/audits_page", "select id from app.audits_page()")
		NoError(t, err)
		if (len(got) > 0) != c.some {
			t.Errorf("%s's audits page holds %d rows", c.who.Name, len(got))
		}
	}
}
