package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/internal/pgtest"
	"github.com/iamc/iamc/lang"
)

// partitionedServer starts a cluster with the example's roles and two
// template databases with the example's chats partitioned by month and
// todos by id (policies/testdata/partitioned.sql): "parts_unbuilt", and
// "parts_built" with iamc build applied by a superuser (which installs the
// event trigger).
func partitionedServer(t *testing.T) *pgtest.Server {
	t.Helper()
	ctx := context.Background()
	s := pgtest.New(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(exampleDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := s.Exec(ctx, "postgres", read("roles.sql")); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"parts_unbuilt", "parts_built"} {
		if err := s.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"schema.sql", "testdata/partitioned.sql"} {
			if err := s.Exec(ctx, db, read(f)); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
	}
	script := filepath.Join(t.TempDir(), "iam.sql")
	if err := os.WriteFile(script, []byte(compile(t, exampleDir).Script()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Psql(ctx, "parts_built", "-q", "-f", script); err != nil {
		t.Fatal(err)
	}
	return s
}

// partitionNames lists the partitions of a table, as the findings name them.
func partitionNames(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `select format('%I.%I', n.nspname, c.relname)
	    from pg_partition_tree($1::regclass) p join pg_class c on c.oid = p.relid join pg_namespace n on n.oid = c.relnamespace
	    where p.level > 0 order by n.nspname collate "C", c.relname collate "C"`, table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestCheckPartitions: iamc check names every partition of a resource that
// breaks the rule (row-level security enabled and forced, no privilege but
// the owner's, no policy, owned by the owner role), and whether new
// partitions are locked down as they are created; it is silent once a
// superuser applied the build.
func TestCheckPartitions(t *testing.T) {
	s := partitionedServer(t)
	example := compile(t, exampleDir).Model
	opts := catalog.CatalogOptions{Dir: "../policies"}
	const noTrigger = "warning: new partitions of %s are not locked down when they are created: there is no event trigger iam_lock_partitions, " +
		"so a partition made later (by hand or by pg_partman) has row-level security off until the next build is applied, and a privilege granted on it meanwhile opens every row in it\n" +
		"  hint: apply the build once as a superuser: it installs the event trigger (creating one needs a superuser); until then, apply it after every new partition"

	t.Run("before the build", func(t *testing.T) {
		conn := newDatabase(t, s, "pc_before", "parts_unbuilt", "")
		got := check(t, conn, example, opts)
		var want []string
		for _, r := range []struct{ pos, table string }{{exChats, "app.chats"}, {exTodos, "app.todos"}} {
			for _, p := range partitionNames(t, conn, r.table) {
				want = append(want, r.pos+": warning: partition "+p+" of "+r.table+" has row-level security off: the first privilege granted on it "+
					"(pg_partman's inherit_privileges, default privileges, a GRANT) opens the rows in it to direct queries, past the policies of "+r.table+"\n"+
					"  hint: iamc build enables and forces it (expected before the first build; afterwards the event trigger iam_lock_partitions locks new partitions down)")
			}
			want = append(want, r.pos+": "+strings.ReplaceAll(noTrigger, "%s", r.table))
		}
		// The example's own warnings before a build (indexes, foreign keys,
		// row-level security of the tables) are TestCheckCatalog's.
		if diff := cmp.Diff(want, onlyPartitions(got)); diff != "" {
			t.Errorf("partition findings (-want +got):\n%s", diff)
		}
	})

	t.Run("after the build", func(t *testing.T) {
		conn := newDatabase(t, s, "pc_after", "parts_built", "")
		if got := check(t, conn, example, opts); len(got) != 0 {
			t.Errorf("want no finding, got:\n%s", strings.Join(got, "\n"))
		}
	})

	t.Run("partitions that break the rule", func(t *testing.T) {
		conn := newDatabase(t, s, "pc_broken", "parts_built", "")
		chats := partitionNames(t, conn, "app.chats")
		todos := partitionNames(t, conn, "app.todos")
		// Without the event trigger (which would undo each of these).
		exec(t, conn, `create role reporting nologin;
alter event trigger iam_lock_partitions disable;
alter table `+chats[0]+` disable row level security;
grant select, insert on `+chats[0]+` to web_user;
alter table `+chats[1]+` no force row level security;
grant select on `+chats[2]+` to web_anon, reporting;
create policy everyone on `+chats[3]+` for select using (true);
alter table `+todos[0]+` owner to postgres;
grant select on `+todos[1]+` to public;
create policy mine on `+todos[1]+` for select using (true);
create function public.touch() returns trigger language plpgsql as $$begin return new; end$$;
create trigger touch before insert on `+todos[1]+` for each row execute function public.touch();`)
		want := []string{
			exChats + ": error: partition " + chats[0] + " of app.chats has row-level security off and web_user can select and insert: queried directly (PostgREST serves every table of its schemas), it skips the policies of app.chats and shows every row in it\n" +
				"  hint: iamc build locks every partition down (apply it), or now: alter table " + chats[0] + " enable row level security, force row level security; revoke all on table " + chats[0] + " from web_user cascade;",
			exChats + ": warning: partition " + chats[1] + " of app.chats has row-level security not forced: its owner api_owner, and its views and SECURITY DEFINER functions, read and change it directly past the policies of app.chats\n" +
				"  hint: iamc build forces it (expected before the first build)",
			exChats + ": warning: partition " + chats[2] + " of app.chats grants privileges to reporting, web_anon: a partition is reached through app.chats, whose grants and policies apply; queried directly only its own do\n" +
				"  hint: iamc build revokes them: revoke all on table " + chats[2] + " from reporting, web_anon cascade;",
			exChats + ": warning: partition " + chats[3] + " of app.chats has policy \"everyone\": a partition queried directly is decided by its own policies, not by the rules of app.chats (iamc revokes every privilege on it, so it opens nothing until someone grants one)\n" +
				"  hint: say what it allows as rules in the .iam file, then drop policy everyone on " + chats[3] + ";",
			exChats + ": warning: new partitions of app.chats are not locked down when they are created: the event trigger iam_lock_partitions is disabled, " +
				"so a partition made later (by hand or by pg_partman) has row-level security off until the next build is applied, and a privilege granted on it meanwhile opens every row in it\n" +
				"  hint: apply the build once as a superuser: it installs the event trigger (creating one needs a superuser); until then, apply it after every new partition",
			exTodos + ": error: partition " + todos[0] + " of app.todos is owned by postgres, not by the owner role api_owner: iamc build cannot lock it down, nor change app.todos (its trigger and the owner column's default reach every partition)\n" +
				"  hint: alter table " + todos[0] + " owner to api_owner;",
			exTodos + ": error: partition " + todos[1] + " of app.todos has policies of its own (mine) and public can select: queried directly, its policies decide, not the rules of app.todos\n" +
				"  hint: iamc build revokes them (apply it), or now: alter table " + todos[1] + " enable row level security, force row level security; revoke all on table " + todos[1] + " from public cascade;",
			exTodos + ": warning: partition " + todos[1] + " of app.todos has trigger touch of its own, which iamc did not write: it fires for the rows of app.todos stored there, and a BEFORE ROW trigger firing after iam_guard_row can change the owner or group column the guard checked\n" +
				"  hint: make sure it cannot change the owner or group of a row, or drop it: drop trigger touch on " + todos[1] + ";",
			exTodos + ": warning: new partitions of app.todos are not locked down when they are created: the event trigger iam_lock_partitions is disabled, " +
				"so a partition made later (by hand or by pg_partman) has row-level security off until the next build is applied, and a privilege granted on it meanwhile opens every row in it\n" +
				"  hint: apply the build once as a superuser: it installs the event trigger (creating one needs a superuser); until then, apply it after every new partition",
		}
		if diff := cmp.Diff(want, check(t, conn, example, opts)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})

	t.Run("a partition declared as a resource", func(t *testing.T) {
		conn := newDatabase(t, s, "pc_part_resource", "parts_unbuilt", "")
		p := partitionNames(t, conn, "app.todos")[0]
		f, err := lang.ParseFile("p/a.iam", []byte("resource "+p+" {}"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := lang.Check([]*lang.File{f})
		if err != nil {
			t.Fatal(err)
		}
		want := "p/a.iam:1:1: error: " + p + " is a partition of app.todos: requests through app.todos never meet the policies of a partition, and iamc locks every partition of a resource down\n" +
			"  hint: declare app.todos as the resource instead: its policies apply to the rows of every partition read or written through it, and iamc locks its partitions down"
		got := check(t, conn, m, catalog.CatalogOptions{Dir: "p"})
		if !slices.Contains(got, want) {
			t.Errorf("got:\n%s\nwant among them:\n%s", strings.Join(got, "\n"), want)
		}
	})

	t.Run("page key of a table partitioned by another column", func(t *testing.T) {
		// Unique on its own is impossible (a unique index must hold
		// created_at); an identity generated by default lets a request set
		// it.
		conn := newDatabase(t, s, "pc_pagekey", "parts_unbuilt", `alter table app.chats alter column id set generated by default;`)
		want := exChatsPage + ": error: page key id of app.chats is neither unique on its own nor an identity column generated always: app.chats is partitioned " +
			"(RANGE (created_at)), so a unique index must hold the partition key, and pages ordered by id would repeat or skip rows that share a value\n" +
			"  hint: make it an identity column generated always (alter table app.chats alter column id add generated always as identity; or alter column id set generated always), or partition app.chats by id"
		var found bool
		for _, f := range check(t, conn, example, opts) {
			found = found || f == want
			if strings.Contains(f, "page key") && f != want {
				t.Errorf("unexpected page key finding:\n%s", f)
			}
		}
		if !found {
			t.Errorf("missing:\n%s", want)
		}
	})
}

// onlyPartitions keeps the findings about partitions and their event
// trigger.
func onlyPartitions(findings []string) []string {
	var out []string
	for _, f := range findings {
		if strings.Contains(f, "partition") {
			out = append(out, f)
		}
	}
	return out
}

func exec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
