package policies_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/iamc/iamc/internal/exampletest"
)

// TestOwnerColumnDefault: the build gives every owner column a default,
// the caller's id, so that PostgREST's OpenAPI shows it as optional (a NOT
// NULL column without a default is "required"). The row guard still
// decides: left out or DEFAULT, the row is the caller's; someone else's id
// is refused; without a user id nothing is created.
func TestOwnerColumnDefault(t *testing.T) {
	db := NewDatabase(t, "owner_default", "schema.sql")
	script, err := BuildScript(Dir)
	NoError(t, err)
	_, err = ApplyScript(context.Background(), db.Server, db.Name, script)
	NoError(t, err)

	for _, table := range []string{"app.todos", "app.chats"} {
		if got := Scalar[string](t, db, ownerDefault, table); got != "iam.user_id_uuid('sub'::text)" {
			t.Errorf("the default of %s.owner_id is %q, want the caller's id", table, got)
		}
	}
	r := Requester{T: t, DB: db, Who: Alice, Path: "/todos"}
	got, err := r.Query("POST", "insert into app.todos (title) values ('left out') returning id, title, owner_id::text")
	NoError(t, err)
	WantRows(t, "an insert without owner_id", got, []Row{{ID: 1, Text: "left out", Owner: "alice"}})
	got, err = r.Query("POST", "insert into app.todos (title, owner_id) values ('default', default) returning id, title, owner_id::text")
	NoError(t, err)
	WantRows(t, "an insert with owner_id DEFAULT", got, []Row{{ID: 2, Text: "default", Owner: "alice"}})
	_, err = r.Exec("POST", "insert into app.todos (title, owner_id) values ('forged', $1)", BobID)
	WantSQLError(t, err, "42501", "owner_id must be the caller's own user id")
	_, err = Requester{T: t, DB: db, Who: NoSub, Path: "/todos"}.Exec("POST", "insert into app.todos (title) values ('nobody''s')")
	WantSQLError(t, err, "28000", "without a user id")
	if n := Scalar[int](t, db, "select count(*) from app.todos"); n != 2 {
		t.Errorf("app.todos holds %d rows, want alice's 2", n)
	}
}

// ownerDefault is the default expression of a table's owner_id, as
// PostgreSQL prints it (search_path pinned, so names are qualified).
const ownerDefault = `select coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
from pg_catalog.pg_attribute a left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = $1::text::pg_catalog.regclass and a.attname = 'owner_id'`

// TestOwnerColumnOwnDefaultKept: a default the table already had (one that
// calls no iam function) is not overwritten: the build keeps it and says
// so with a WARNING. Once dropped, the next build sets the caller's id.
func TestOwnerColumnOwnDefaultKept(t *testing.T) {
	db := NewDatabase(t, "owner_own_default", "schema.sql")
	const own = "'00000000-0000-4000-8000-000000000000'::uuid"
	db.Exec(t, "alter table app.todos alter column owner_id set default "+own)
	script, err := BuildScript(Dir)
	NoError(t, err)
	out, err := ApplyScript(context.Background(), db.Server, db.Name, script)
	NoError(t, err)
	if !strings.Contains(string(out), "WARNING:  app.todos.owner_id keeps its own default") {
		t.Errorf("applying the build said nothing about the kept default:\n%s", out)
	}
	if got := Scalar[string](t, db, ownerDefault, "app.todos"); got != own {
		t.Errorf("the default of app.todos.owner_id is %q, want the table's own %q", got, own)
	}
	if got := Scalar[string](t, db, ownerDefault, "app.chats"); got != "iam.user_id_uuid('sub'::text)" {
		t.Errorf("the default of app.chats.owner_id is %q, want the caller's id", got)
	}
	// The guard still decides: the kept default is not the caller.
	_, err = Requester{T: t, DB: db, Who: Alice, Path: "/todos"}.Exec("POST", "insert into app.todos (title) values ('x')")
	WantSQLError(t, err, "42501", "owner_id must be the caller's own user id")

	db.Exec(t, "alter table app.todos alter column owner_id drop default")
	out, err = ApplyScript(context.Background(), db.Server, db.Name, script)
	NoError(t, err)
	if strings.Contains(string(out), "WARNING") {
		t.Errorf("a warning applying the build again:\n%s", out)
	}
	if got := Scalar[string](t, db, ownerDefault, "app.todos"); got != "iam.user_id_uuid('sub'::text)" {
		t.Errorf("the default of app.todos.owner_id is %q after the table's own was dropped, want the caller's id", got)
	}
}
