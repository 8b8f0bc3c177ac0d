package stdlib_test

// Names that need quoting, SQL reserved words, unicode and 63-byte names,
// on a real PostgreSQL: the input of golden/identifiers is applied to
// tables with exactly those names, and owner CRUD is run from both sides
// through pgrest. A name quoted wrongly anywhere (a policy, the row guard's
// column argument, an index, a grant) fails the apply or a request here.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/lang"
)

const identifiersCase = "../golden/identifiers/policies"

// TestIdentifiersOnPostgres applies the build of golden/identifiers and
// checks, for every resource, that the owner may do what its rules say and
// bob may not, and that every refused write leaves the database unchanged.
func TestIdentifiersOnPostgres(t *testing.T) {
	out, err := compiler.Compile(identifiersCase)
	NoError(t, err)
	model := out.Model
	if len(model.Resources) < 8 {
		t.Fatalf("golden/identifiers has %d resources, want at least 8", len(model.Resources))
	}

	db := NewDatabase(t, "identifiers")
	// The tables, as a DBA would create them: owned by api_owner, an
	// identity id, a text and the owner column (uuid, Keycloak's sub).
	var ddl strings.Builder
	schemas := map[string]bool{}
	for _, r := range model.Resources {
		if !schemas[r.Schema] {
			schemas[r.Schema] = true
			fmt.Fprintf(&ddl, "create schema if not exists %s authorization api_owner;\n", ident(r.Schema))
		}
	}
	ddl.WriteString("set role api_owner;\n")
	for _, r := range model.Resources {
		fmt.Fprintf(&ddl, "create table %s (id bigint generated always as identity primary key, body text not null, %s uuid not null);\n",
			ident(r.Schema, r.Table), ident(r.OwnerColumn))
	}
	ddl.WriteString("reset role;\n")
	db.Exec(t, ddl.String())

	script, err := BuildScript(identifiersCase)
	NoError(t, err)
	_, err = ApplyScript(t.Context(), db.Server, "identifiers", script)
	NoError(t, err)

	for _, r := range model.Resources {
		t.Run(r.QualifiedName(), func(t *testing.T) {
			idt := identTable{t: t, db: db, r: r}
			idt.run()
		})
	}
}

// ident quotes a (qualified) name exactly, whatever it holds.
func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// identTable runs the owner cases on one resource of golden/identifiers.
type identTable struct {
	t  *testing.T
	db *Database
	r  *lang.ResourceModel
}

// expand fills {table} and {owner} with the quoted names.
func (x identTable) expand(sql string) string {
	return strings.NewReplacer("{table}", ident(x.r.Schema, x.r.Table), "{owner}", ident(x.r.OwnerColumn)).Replace(sql)
}

func (x identTable) as(who Person) Requester {
	return Requester{T: x.t, DB: x.db, Who: who, Path: "/" + x.r.Table, Expand: x.expand}
}

// seed empties the table and puts in alice's row 1 and bob's row 2.
func (x identTable) seed() []Row {
	x.db.Exec(x.t, x.expand("truncate {table} restart identity"))
	x.db.Exec(x.t, x.expand("insert into {table} (body, {owner}) values ('alice''s', $1), ('bob''s', $2)"), AliceID, BobID)
	return []Row{{ID: 1, Text: "alice's", Owner: "alice"}, {ID: 2, Text: "bob's", Owner: "bob"}}
}

// table is the whole table as the superuser sees it.
func (x identTable) table() []Row {
	rows, err := x.db.SU.Query(x.t.Context(), x.expand("select id, body, {owner}::text from {table} order by id"))
	NoError(x.t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
	NoError(x.t, err)
	return Names(got)
}

func (x identTable) run() {
	t, r := x.t, x.r
	const cols = "select id, body, {owner}::text from {table}"
	cases := []struct {
		name string
		run  func(t *testing.T, x identTable, seeded []Row)
	}{
		{"alice reads exactly her row, bob exactly his", func(t *testing.T, x identTable, seeded []Row) {
			got, err := x.as(Alice).Query("GET", cols+" order by id")
			NoError(t, err)
			WantRows(t, "alice's list", got, seeded[:1])
			got, err = x.as(Bob).Query("GET", cols+" where id = 1")
			NoError(t, err)
			WantRows(t, "bob's read of alice's row", got, nil)
		}},
		{"an anonymous visitor reads nothing (42501)", func(t *testing.T, x identTable, seeded []Row) {
			before := Snapshot(t, x.db)
			_, err := x.as(Anonymous).Query("GET", cols)
			WantSQLError(t, err, "42501", "permission denied")
			WantUnchanged(t, x.db, before)
		}},
	}
	if r.PageKey != "" {
		cases = append(cases, struct {
			name string
			run  func(t *testing.T, x identTable, seeded []Row)
		}{
			"alice's page (page by) is her row, bob's his", func(t *testing.T, x identTable, seeded []Row) {
				page := "select id, body, {owner}::text from " + ident(r.Schema, compiler.PageFunctionName(r)) + "()"
				got, err := x.as(Alice).Query("GET", page)
				NoError(t, err)
				WantRows(t, "alice's page", got, seeded[:1])
				got, err = x.as(Bob).Query("GET", page)
				NoError(t, err)
				WantRows(t, "bob's page", got, seeded[1:2])
			}})
	}
	if r.Can(lang.OwnerSubject{}, lang.Create) {
		cases = append(cases, []struct {
			name string
			run  func(t *testing.T, x identTable, seeded []Row)
		}{
			{"alice creates a row, owned by her", func(t *testing.T, x identTable, seeded []Row) {
				got, err := x.as(Alice).Query("POST", "insert into {table} (body) values ('new') returning id, body, {owner}::text")
				NoError(t, err)
				created := Row{ID: 3, Text: "new", Owner: "alice"}
				WantRows(t, "returned", got, []Row{created})
				WantRows(t, "the table", x.table(), append(seeded, created))
			}},
			{"bob cannot create a row owned by alice (42501), nothing changes", func(t *testing.T, x identTable, seeded []Row) {
				before := Snapshot(t, x.db)
				_, err := x.as(Bob).Exec("POST", "insert into {table} (body, {owner}) values ('forged', $1)", AliceID)
				WantSQLError(t, err, "42501", r.OwnerColumn)
				WantUnchanged(t, x.db, before)
			}},
		}...)
	} else {
		cases = append(cases, struct {
			name string
			run  func(t *testing.T, x identTable, seeded []Row)
		}{"alice cannot create a row: no create rule (42501), nothing changes", func(t *testing.T, x identTable, seeded []Row) {
			before := Snapshot(t, x.db)
			_, err := x.as(Alice).Exec("POST", "insert into {table} (body) values ('new')")
			WantSQLError(t, err, "42501", "permission denied")
			WantUnchanged(t, x.db, before)
		}})
	}
	for _, op := range []struct {
		perm lang.Perm
		verb string
		sql  string
	}{
		{lang.Write, "PATCH", "update {table} set body = 'changed' where id = 1"},
		{lang.Delete, "DELETE", "delete from {table} where id = 1"},
	} {
		if r.Can(lang.OwnerSubject{}, op.perm) {
			cases = append(cases, []struct {
				name string
				run  func(t *testing.T, x identTable, seeded []Row)
			}{
				{fmt.Sprintf("alice can %s her row", op.perm), func(t *testing.T, x identTable, seeded []Row) {
					n, err := x.as(Alice).Exec(op.verb, op.sql)
					NoError(t, err)
					if n != 1 {
						t.Errorf("%d rows affected, want 1", n)
					}
					want := []Row{{ID: 1, Text: "changed", Owner: "alice"}, seeded[1]}
					if op.perm == lang.Delete {
						want = seeded[1:]
					}
					WantRows(t, "the table", x.table(), want)
				}},
				{fmt.Sprintf("bob cannot %s alice's row (reaches no row), nothing changes", op.perm), func(t *testing.T, x identTable, seeded []Row) {
					before := Snapshot(t, x.db)
					n, err := x.as(Bob).Exec(op.verb, op.sql)
					NoError(t, err)
					if n != 0 {
						t.Errorf("%d rows affected, want 0", n)
					}
					WantUnchanged(t, x.db, before)
				}},
			}...)
		} else {
			cases = append(cases, struct {
				name string
				run  func(t *testing.T, x identTable, seeded []Row)
			}{fmt.Sprintf("alice cannot %s her row: no %s rule (42501), nothing changes", op.perm, op.perm), func(t *testing.T, x identTable, seeded []Row) {
				before := Snapshot(t, x.db)
				_, err := x.as(Alice).Exec(op.verb, op.sql)
				WantSQLError(t, err, "42501", "permission denied")
				WantUnchanged(t, x.db, before)
			}})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := x
			x.t = t
			c.run(t, x, x.seed())
		})
	}
}
