package stdlib_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// Column rules with several lists: the policies of golden/column-rules on
// a database of their own. tasks: the row's owner changes every column;
// the group's members done, progress and note; its admins (members too)
// also review; owners of the group are admins and more. catalog: column
// reads only. steps: the task's owner changes every column of a step, the
// task group's members only done.

var columnRulesDir = filepath.Join("..", "golden", "column-rules", "policies")

const columnRulesSchema = `
create schema app authorization api_owner;
set role api_owner;
create table app.tasks (
    id bigint generated always as identity primary key,
    title text not null default '',
    done boolean not null default false,
    progress integer not null default 0,
    note text not null default '',
    review text not null default '',
    owner_id uuid not null,
    group_id bigint
);
create table app.catalog (
    id bigint generated always as identity primary key,
    name text not null,
    price numeric not null,
    cost numeric not null
);
create table app.steps (
    id bigint generated always as identity primary key,
    task_id bigint not null references app.tasks (id) on delete cascade,
    body text not null default '',
    done boolean not null default false
);
reset role;`

// TestColumnRulesMatrix: each column of tasks and steps x each subject:
// changed, or refused with 42501 naming the column (re-checked as a
// superuser); catalog's columns x the runtime roles.
func TestColumnRulesMatrix(t *testing.T) {
	s := Server(t)
	db := NewDatabase(t, "column_rules")
	CloseWhenDone(t, db)
	NoError(t, s.Exec(t.Context(), db.Name, columnRulesSchema))
	script, err := BuildScript(columnRulesDir)
	NoError(t, err)
	if out, err := ApplyScript(t.Context(), s, db.Name, script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var (
		tara   = KeycloakUser("tara", "0b000000-0000-4000-8000-0000000000b1")  // owns the task, a member of the group
		gus    = KeycloakUser("gus", "0b000000-0000-4000-8000-0000000000b2")   // owns the group
		ali    = KeycloakUser("ali", "0b000000-0000-4000-8000-0000000000b3")   // an admin of the group
		mel    = KeycloakUser("mel", "0b000000-0000-4000-8000-0000000000b4")   // a member
		steve  = KeycloakUser("steve", "0b000000-0000-4000-8000-0000000000b5") // in no group
		people = []Person{tara, gus, ali, mel, steve, Anonymous}
	)
	team := CreateGroup(t, db, gus, "team")
	AddMember(t, db, gus, team, UserID(tara), "member")
	AddMember(t, db, gus, team, UserID(ali), "admin")
	AddMember(t, db, gus, team, UserID(mel), "member")

	const (
		ok      = "changed"
		refused = "refused"
		none    = "no row"
		denied  = "no privilege"
	)
	matrix := func(t *testing.T, table, fresh string, columns map[string]string, want map[string]map[string]string) {
		for _, who := range people {
			for col, set := range columns {
				t.Run(fmt.Sprintf("%s changes %s.%s", who.Name, table, col), func(t *testing.T) {
					var id int64
					if err := db.SU.QueryRow(t.Context(), fresh).Scan(&id); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { db.Exec(t, "delete from app."+table+" where id = $1", id) })
					row := func() string {
						return Scalar[string](t, db, "select t::text from app."+table+" t where id = $1", id)
					}
					before := row()
					n, err := Requester{T: t, DB: db, Who: who, Path: "/" + table}.Exec("PATCH", "update app."+table+" set "+set+" where id = $1", id)
					after := row()
					switch want[who.Name][col] {
					case ok:
						NoError(t, err)
						if n != 1 || after == before {
							t.Errorf("%d rows, %s -> %s: want %s changed", n, before, after, col)
						}
						return
					case refused:
						WantSQLError(t, err, "42501", "you cannot change column "+col+" of app."+table)
					case none:
						NoError(t, err)
						if n != 0 {
							t.Errorf("%d rows changed, want none", n)
						}
					case denied:
						WantSQLError(t, err, "42501", "permission denied for table "+table)
					}
					if after != before {
						t.Errorf("a refused change changed the row: %s -> %s", before, after)
					}
				})
			}
		}
	}

	all := func(v string) map[string]string {
		return map[string]string{"title": v, "done": v, "progress": v, "note": v, "review": v}
	}
	member := map[string]string{"title": refused, "done": ok, "progress": ok, "note": ok, "review": refused}
	admin := map[string]string{"title": refused, "done": ok, "progress": ok, "note": ok, "review": ok}
	matrix(t, "tasks", fmt.Sprintf("insert into app.tasks (title, owner_id, group_id) values ('t', '%s', %d) returning id", UserID(tara), team),
		map[string]string{"title": "title = 'x'", "done": "done = true", "progress": "progress = 50", "note": "note = 'x'", "review": "review = 'x'"},
		map[string]map[string]string{
			"tara": all(ok), "gus": admin, "ali": admin, "mel": member,
			"steve": all(none), "anonymous": all(denied),
		})

	var task int64
	NoError(t, db.SU.QueryRow(t.Context(), "insert into app.tasks (title, owner_id, group_id) values ('parent', $1, $2) returning id", UserID(tara), team).Scan(&task))
	steps := map[string]string{"body": "body = 'x'", "done": "done = true"}
	stepMember := map[string]string{"body": refused, "done": ok}
	matrix(t, "steps", fmt.Sprintf("insert into app.steps (task_id) values (%d) returning id", task), steps,
		map[string]map[string]string{
			"tara": {"body": ok, "done": ok}, "gus": stepMember, "ali": stepMember, "mel": stepMember,
			"steve": {"body": none, "done": none}, "anonymous": {"body": denied, "done": denied},
		})

	t.Run("catalog: column reads", func(t *testing.T) {
		db.Exec(t, "insert into app.catalog (name, price, cost) values ('pen', 2, 1)")
		for _, c := range []struct {
			who  Person
			cols string
			ok   bool
		}{
			{Anonymous, "id, name", true},
			{Anonymous, "price", false},
			{Anonymous, "*", false},
			{steve, "id, name, price", true},
			{steve, "cost", false},
			{steve, "*", false},
		} {
			err := Requester{T: t, DB: db, Who: c.who, Path: "/catalog"}.Do("GET", func(tx pgx.Tx) error {
				rows, err := tx.Query(t.Context(), "select "+c.cols+" from app.catalog")
				if err != nil {
					return err
				}
				rows.Close()
				return rows.Err()
			})
			if c.ok {
				NoError(t, err)
			} else {
				WantSQLError(t, err, "42501", "permission denied for table catalog")
			}
		}
	})
}
