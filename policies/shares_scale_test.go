package policies_test

// Row shares at scale: the quotas (max shares per row and per recipient)
// with concurrent callers, the page function with shared rows (the same
// rows as the table's page), and the plans of a user with 10,000 shares:
// the shared ids read once per statement from the (principal, row) index,
// nothing per row, while a deliberately bad share policy (a correlated
// look at the share table per row) fails the same check.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"

	"github.com/iamc/iamc/internal/pgrest"
)

// exampleWithTodos is a copy of the example's .iam files with todos.iam
// edited by edit.
func exampleWithTodos(t *testing.T, edit func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	paths, err := filepath.Glob("*.iam")
	NoError(t, err)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		NoError(t, err)
		text := string(b)
		if p == "todos.iam" {
			text = edit(text)
		}
		NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(text), 0o644))
	}
	return dir
}

// TestShareQuotas: with max shares per row 3 and per recipient 2, a fourth
// share of a todo and a third share with one user are refused with PT429
// (without saying how many shares the recipient has), nothing changes, and
// concurrent shares cannot pass a quota together.
func TestShareQuotas(t *testing.T) {
	dir := exampleWithTodos(t, func(s string) string {
		s = strings.Replace(s, "max shares per row 100", "max shares per row 3", 1)
		return strings.Replace(s, "max shares per recipient 10000", "max shares per recipient 2", 1)
	})
	db := NewDatabase(t, "sharequotas", "schema.sql")
	script, err := BuildScript(dir)
	NoError(t, err)
	if out, err := ApplyScript(t.Context(), db.Server, "sharequotas", script); err != nil {
		t.Fatalf("applying: %v\n%s", err, out)
	}
	c := newCast(t, db).in(t)
	c.seed() // todo 1: bob, carol, friends: the row is full
	share := func(who Person, todo int64, recipient string) error {
		return RPC(t, db, who, "todos_share", "id", todo, "user_id", recipient, "permissions", []string{"read"})
	}
	t.Run("a fourth share of a todo", func(t *testing.T) {
		before := Snapshot(t, db)
		WantSQLError(t, share(c.alice, c.todo1, c.erinID), "PT429", "has 3 shares, the most it may have")
		WantUnchanged(t, db, before)
	})
	t.Run("a third share with one user, without their count", func(t *testing.T) {
		NoError(t, share(c.alice, c.todo2, c.bobID)) // bob: todos 1 and 2
		var third int64
		NoError(t, db.SU.QueryRow(t.Context(), "insert into app.todos (title, owner_id) values ('third', $1) returning id", c.aliceID).Scan(&third))
		before := Snapshot(t, db)
		err := share(c.alice, third, c.bobID)
		WantSQLError(t, err, "PT429", "cannot receive more shares of app.todos")
		if strings.Contains(err.Error(), " 2 ") {
			t.Errorf("the refusal tells bob's count: %v", err)
		}
		WantUnchanged(t, db, before)
	})
	t.Run("an unshare makes room", func(t *testing.T) {
		NoError(t, RPC(t, db, c.alice, "todos_unshare", "id", c.todo1, "user_id", c.carolID))
		NoError(t, share(c.alice, c.todo1, c.erinID))
	})
	t.Run("concurrent shares of one todo stop at the quota", func(t *testing.T) {
		var todo int64
		NoError(t, db.SU.QueryRow(t.Context(), "insert into app.todos (title, owner_id) values ('popular', $1) returning id", c.aliceID).Scan(&todo))
		const tries = 8
		errs := make([]error, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := pgx.Connect(context.Background(), db.API.Config().ConnString())
				if err != nil {
					errs[i] = err
					return
				}
				defer conn.Close(context.Background())
				other := &Database{Name: db.Name, Server: db.Server, SU: db.SU, API: conn}
				errs[i] = RPC(t, other, c.alice, "todos_share", "id", todo, "user_id", fmt.Sprintf("5b000000-0000-4000-8000-%012d", i), "permissions", []string{"read"})
			}()
		}
		wg.Wait()
		codes := map[string]int{}
		for _, err := range errs {
			code := "ok"
			if err != nil {
				code = pgrest.SQLState(err)
			}
			codes[code]++
		}
		if diff := cmp.Diff(map[string]int{"ok": 3, "PT429": tries - 3}, codes); diff != "" {
			t.Errorf("outcomes of %d concurrent shares (-want +got):\n%s\nerrors: %v", tries, diff, errs)
		}
		if n := Scalar[int64](t, db, "select count(*) from iam.app_todos_shares where row_id = $1", todo); n != 3 {
			t.Errorf("the todo has %d shares, want 3", n)
		}
	})
}

// sharesLoad adds shares to PlanLoad's 300,000 todos (user k owns todo i
// when i % 2000 = k; every 10th todo is in group i / 10 % 300 + 1): user
// 1,999 receives 10,000 shares of other users' todos (every 30th todo),
// read and every third write; group 7 is shared 500 todos; user 1 has 40
// shares. Loaded as the superuser, past the API and its quotas, like the
// memberships.
const sharesLoad = `
		insert into iam.app_todos_shares (row_id, user_id, can_write, shared_by)
		select i, pg_temp.uid(1999)::uuid, i % 3 = 0, pg_temp.uid(i % 2000)::uuid
		from generate_series(30, 300000, 30) i where i % 2000 <> 1999;
		insert into iam.app_todos_shares (row_id, group_id, shared_by)
		select i, 7, pg_temp.uid(i % 2000)::uuid
		from generate_series(7, 300000, 600) i;
		insert into iam.app_todos_shares (row_id, user_id, can_delete, shared_by)
		select i, pg_temp.uid(1)::uuid, true, pg_temp.uid(i % 2000)::uuid
		from generate_series(1000, 300000, 7400) i where i % 2000 <> 1;
		analyze iam.app_todos_shares;`

var sharePages struct {
	once sync.Once
	db   *Database
}

// sharePagesDB is PlanLoad with sharesLoad, built and applied; set up once.
func sharePagesDB(t *testing.T) *Database {
	t.Helper()
	sharePages.once.Do(func() {
		db := NewDatabase(t, "sharepages", "schema.sql")
		script, err := BuildScript(Dir)
		NoError(t, err)
		_, err = ApplyScript(t.Context(), db.Server, "sharepages", script)
		NoError(t, err)
		db.Exec(t, PlanLoad+sharesLoad)
		sharePages.db = db
	})
	if sharePages.db == nil {
		t.Fatal("setting up the sharepages database failed (see the first test that used it)")
	}
	return sharePages.db
}

// TestSharedPagesAnswerAsTheTable: for the user with 10,000 shares, a user
// with a few shares and groups, and a member of a group todos are shared
// with, every page of todos_page (first pages, the pages after them, one
// group's pages, page sizes 1 to 1000) holds exactly the rows of the
// table's own page under RLS, in the same order: the shared rows are in.
func TestSharedPagesAnswerAsTheTable(t *testing.T) {
	db := sharePagesDB(t)
	member7 := Scalar[string](t, db, "select user_id from iam.group_members where group_id = 7 and user_id <> '00000000-0000-4000-8000-000000001999' order by user_id limit 1")
	callers := []Person{planUser(1999), planUser(1), KeycloakUser("member of 7", member7)}
	groupOf := func(who Person) int64 {
		return Scalar[int64](t, db, "select t.group_id from app.todos t join iam.app_todos_shares s on s.row_id = t.id where s.user_id = $1::text::uuid and t.group_id is not null order by t.id desc limit 1", UserID(who))
	}
	for _, who := range callers {
		t.Run(who.Name, func(t *testing.T) {
			shared := Scalar[int64](t, db, "select count(*) from iam.app_todos_shares where user_id = $1::text::uuid or group_id in (select group_id from iam.group_members where user_id = $1::text)", UserID(who))
			t.Logf("%s has %d shares", who.Name, shared)
			for _, size := range []int{1, 50, 1000} {
				before := int64(0) // no cursor
				for pageNo := 0; pageNo < 3; pageNo++ {
					cursor := "9223372036854775807"
					args := []any{size}
					fn := "select id from app.todos_page(page_size => $1)"
					if before != 0 {
						cursor = fmt.Sprint(before)
						fn = "select id from app.todos_page(before => $2, page_size => $1)"
						args = append(args, before)
					}
					want, err := pageIDs(t, db, who, "/todos", "select id from app.todos where id < "+cursor+" order by id desc limit $1", size)
					NoError(t, err)
					got, err := pageIDs(t, db, who, "/rpc/todos_page", fn, args...)
					NoError(t, err)
					if !slices.Equal(got, want) {
						t.Fatalf("page %d of size %d before %d: todos_page %v, the table %v", pageNo, size, before, head(got), head(want))
					}
					if len(got) < size {
						break
					}
					before = got[len(got)-1]
				}
			}
			if who.Name == "member of 7" {
				return
			}
			g := groupOf(who)
			want, err := pageIDs(t, db, who, "/todos", "select id from app.todos where group_id = $1 order by id desc limit 50", g)
			NoError(t, err)
			got, err := pageIDs(t, db, who, "/rpc/todos_page", "select id from app.todos_page(group_id => $1)", g)
			NoError(t, err)
			if !slices.Equal(got, want) || len(got) == 0 {
				t.Errorf("group %d (shared rows only): todos_page %v, the table %v", g, head(got), head(want))
			}
		})
	}
}

func head(ids []int64) []int64 {
	if len(ids) > 8 {
		return ids[:8]
	}
	return ids
}

// TestSharedRowsArePlannedOnce: for the user with 10,000 shares, the
// requests PostgREST makes read the shared ids once per statement (an
// InitPlan of iam.app_todos_shared, from the (user_id, row_id) index) and
// find the rows by primary key; nothing runs per row. The page function
// reads a page of the shared rows, not all 10,000. A share policy written
// the naive way (a correlated exists on the share table per row) fails the
// same check.
func TestSharedRowsArePlannedOnce(t *testing.T) {
	db := sharePagesDB(t)
	many := planUser(1999)
	var n int64
	err := Requester{T: t, DB: db, Who: many, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "select count(*) from app.todos").Scan(&n)
	})
	NoError(t, err)
	want := Scalar[int64](t, db, "select count(*) from app.todos where owner_id = $1::text::uuid or group_id in (select group_id from iam.group_members where user_id = $1::text) or id in (select row_id from iam.app_todos_shares where user_id = $1::text::uuid)", UserID(many))
	if n != want || n < 10000 {
		t.Fatalf("the user with 10,000 shares counts %d todos, want %d", n, want)
	}
	someShared := Scalar[int64](t, db, "select row_id from iam.app_todos_shares where user_id = $1::uuid order by row_id limit 1 offset 5000", UserID(many))

	for _, q := range []struct {
		name, sql string
		indexes   []string
	}{
		{"the list", "select * from app.todos order by id desc limit 50", TodosArms},
		{"the count", "select count(*) from app.todos", TodosArms},
		{"a read by id", fmt.Sprintf("select * from app.todos where id = %d", someShared), []string{"todos_pkey"}},
		{"an update by id", fmt.Sprintf("update app.todos set done = not done where id = %d", someShared), []string{"todos_pkey"}},
	} {
		t.Run(q.name+": the shared ids once, the rows by index", func(t *testing.T) {
			plan := explainAs(t, db, many, q.sql)
			problems := PlanProblems(plan, TodosInitPlans, q.indexes...)
			if strings.HasPrefix(q.sql, "update") {
				// An update applies three conditions (the update policy's
				// USING and WITH CHECK, the select policy's USING), each
				// with its own InitPlans: more than three, each still once
				// per statement. What matters is nothing per row.
				problems = slices.DeleteFunc(problems, func(p string) bool { return strings.HasPrefix(p, "want exactly") })
			}
			if len(problems) > 0 {
				t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
			}
		})
	}
	t.Run("the page function reads a page of the shared rows", func(t *testing.T) {
		plan := explainPage(t, db, many, "todos", "union all", "select * from app.todos_page()")
		groups := float64(Scalar[int64](t, db, "select count(*) from iam.group_members where user_id = $1", UserID(many)))
		limit := 50*(2+groups) + 50
		if problems := pageProblems(plan, limit, TodosArms...); len(problems) > 0 {
			t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
		}
		t.Logf("%+v (at most %.0f rows)", plan, limit)
	})

	t.Run("a naive share policy (exists on the share table per row) fails the same check", func(t *testing.T) {
		db.Exec(t, `
			drop schema if exists app_bad cascade;
			create schema app_bad;
			create table app_bad.todos (like app.todos);
			alter table app_bad.todos add constraint todos_pkey primary key (id);
			create index todos_owner_id_id_iam_idx on app_bad.todos (owner_id, id);
			create index todos_group_id_id_iam_idx on app_bad.todos (group_id, id) where group_id is not null;
			insert into app_bad.todos select * from app.todos;
			analyze app_bad.todos;
			alter table app_bad.todos enable row level security;
			create policy naive on app_bad.todos for select to web_user using (
			    owner_id = (select iam.user_id_uuid('sub'))
			    or exists (select from iam.app_todos_shares s where s.row_id = id and s.user_id = (select iam.user_id_uuid('sub'))));
			grant usage on schema app_bad to web_user;
			grant select on app_bad.todos to web_user;
			grant select on iam.app_todos_shares to web_user;`)
		plan := explainAs(t, db, many, "select count(*) from app_bad.todos")
		problems := PlanProblems(plan, TodosInitPlans, TodosArms...)
		if !slices.ContainsFunc(problems, func(p string) bool {
			return strings.Contains(p, "SubPlans run per row") || strings.Contains(p, "Seq Scan reads every row of todos")
		}) {
			t.Errorf("plan %+v: problems %q, want a per-row look at the shares reported", plan, problems)
		}
	})
}
