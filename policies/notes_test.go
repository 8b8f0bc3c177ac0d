package policies_test

// The tenants of notes.iam (app.notes: tenant column org_id from claim
// 'org_id'), against a real PostgreSQL, every request made as PostgREST 12
// makes it. Two organisations, acme and globex; a group (team) made by an
// acme user that a globex user was added to. Every case is checked from
// both sides: what the caller gets, and what the superuser then finds
// (nothing changed when refused).

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// tenantUser is a signed-in user of an organisation, with realm roles on
// top of the defaults.
func tenantUser(name, sub, org string, roles ...string) Person {
	p := KeycloakUser(name, sub)
	p.Claims = maps.Clone(p.Claims)
	if org != "" {
		p.Claims["org_id"] = org
	}
	realm := []string{"default-roles-iamc", "offline_access", "uma_authorization"}
	p.Claims["realm_access"] = map[string]any{"roles": append(realm, roles...)}
	return p
}

// withClaim is who with one claim replaced (nil removes it).
func withClaim(who Person, claim string, value any) Person {
	who.Claims = maps.Clone(who.Claims)
	if value == nil {
		delete(who.Claims, claim)
	} else {
		who.Claims[claim] = value
	}
	return who
}

// office is the cast of one notes test, with ids no other test uses:
//
//	acme    alice (writes the notes under test), bob (in team), olga (org-admin), mallory (in no group)
//	globex  gary (added to alice's team), greta (org-admin)
//	team    alice (owner, created it), bob (member), gary (member, of globex)
type office struct {
	t                                         *testing.T
	db                                        *Database
	alice, bob, olga, mallory, gary, greta    Person
	aliceID, bobID, olgaID, malloryID, garyID string
	gretaID                                   string
	team                                      int64
	names                                     map[string]string
}

var offices struct {
	mu sync.Mutex
	n  int
}

func newOffice(t *testing.T, db *Database) *office {
	t.Helper()
	offices.mu.Lock()
	offices.n++
	n := offices.n
	offices.mu.Unlock()
	uid := func(k int) string { return fmt.Sprintf("0ff1%04d-0000-4000-8000-%012d", n, k) }
	o := &office{t: t, db: db, names: map[string]string{}}
	o.aliceID, o.bobID, o.olgaID, o.malloryID, o.garyID, o.gretaID = uid(1), uid(2), uid(3), uid(4), uid(5), uid(6)
	o.alice = tenantUser("alice", o.aliceID, "acme")
	o.bob = tenantUser("bob", o.bobID, "acme")
	o.olga = tenantUser("olga", o.olgaID, "acme", "org-admin")
	o.mallory = tenantUser("mallory", o.malloryID, "acme")
	o.gary = tenantUser("gary", o.garyID, "globex")
	o.greta = tenantUser("greta", o.gretaID, "globex", "org-admin")
	for _, p := range []Person{o.alice, o.bob, o.olga, o.mallory, o.gary, o.greta} {
		o.names[UserID(p)] = p.Name
	}
	// Groups are not a tenant's: alice adds a user of another organisation.
	o.team = CreateGroup(t, db, o.alice, "team")
	AddMember(t, db, o.alice, o.team, o.bobID, "member")
	AddMember(t, db, o.alice, o.team, o.garyID, "member")
	o.names[fmt.Sprint(o.team)] = "team"
	return o
}

func (o *office) in(t *testing.T) *office {
	cp := *o
	cp.t = t
	return &cp
}

// note is a row of app.notes as these tests compare it.
type note struct {
	ID    int64
	Org   string
	Owner string
	Group string
	Body  string
}

// seed empties app.notes and fills it as the superuser:
//
//	1  alice's       acme    no group
//	2  alice's       acme    team      <- the row under test
//	3  bob's         acme    no group
//	4  gary's        globex  team      (a row of another tenant in the same group)
//	5  gary's        globex  no group
func (o *office) seed() []note {
	o.t.Helper()
	o.db.Exec(o.t, "truncate app.notes restart identity")
	o.db.Exec(o.t, `insert into app.notes (org_id, owner_id, group_id, body) values
		('acme', $1, null, 'alice''s'), ('acme', $1, $3, 'alice''s, in team'), ('acme', $2, null, 'bob''s'),
		('globex', $4, $3, 'gary''s, in team'), ('globex', $4, null, 'gary''s')`,
		o.aliceID, o.bobID, o.team, o.garyID)
	return o.notes()
}

// notes is app.notes as the superuser sees it.
func (o *office) notes() []note {
	o.t.Helper()
	rows, err := o.db.SU.Query(o.t.Context(),
		"select id, org_id, owner_id::text, coalesce(group_id::text, ''), body from app.notes order by id")
	NoError(o.t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[note])
	NoError(o.t, err)
	for i := range got {
		got[i].Owner, got[i].Group = o.name(got[i].Owner), o.name(got[i].Group)
	}
	return got
}

func (o *office) name(s string) string {
	if n, ok := o.names[s]; ok {
		return n
	}
	return s
}

func (o *office) wantNotes(t *testing.T, want []note) {
	t.Helper()
	if diff := cmp.Diff(want, o.notes(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("app.notes as the superuser sees it (-want +got):\n%s", diff)
	}
}

func (o *office) expand(sql string) string {
	return strings.NewReplacer("{team}", fmt.Sprint(o.team)).Replace(sql)
}

func (o *office) ids(who Person, path, sql string, args ...any) ([]int64, error) {
	o.t.Helper()
	var got []int64
	err := Requester{T: o.t, DB: o.db, Who: who, Path: path}.Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(o.t.Context(), o.expand(sql), args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return got, err
}

func (o *office) affected(who Person, method, sql string, args ...any) (int64, error) {
	o.t.Helper()
	return Requester{T: o.t, DB: o.db, Who: who, Path: "/notes"}.Exec(method, o.expand(sql), args...)
}

// The cast of the matrix, in the order of its columns.
var noteRoles = [7]string{"row owner (acme)", "team member (acme)", "org-admin (acme)", "no group (acme)",
	"team member (globex)", "org-admin (globex)", "anonymous"}

func (o *office) byRole() [7]Person {
	return [7]Person{o.alice, o.bob, o.olga, o.mallory, o.gary, o.greta, Anonymous}
}

// noteOp is one request of the matrix; writes are about row 2 (alice's,
// acme, in team).
type noteOp struct {
	name  string
	read  bool
	sql   string
	after func(o *office, seed []note, actor Person) []note
}

func noteRow2(seed []note, f func(*note)) []note {
	out := slices.Clone(seed)
	for i := range out {
		if out[i].ID == 2 {
			f(&out[i])
		}
	}
	return out
}

func orgOf(who Person) string { s, _ := who.Claims["org_id"].(string); return s }

var noteOps = []noteOp{
	{name: "list", read: true, sql: "select id from app.notes order by id"},
	{name: "read one", read: true, sql: "select id from app.notes where id = 2"},
	{name: "list the team's", read: true, sql: "select id from app.notes where group_id = {team} order by id"},
	{name: "insert", sql: "insert into app.notes (body) values ('new')",
		after: func(o *office, seed []note, actor Person) []note {
			return append(slices.Clone(seed), note{ID: 6, Org: orgOf(actor), Owner: actor.Name, Body: "new"})
		}},
	{name: "insert naming tenant acme", sql: "insert into app.notes (body, org_id) values ('new', 'acme')",
		after: func(o *office, seed []note, actor Person) []note {
			return append(slices.Clone(seed), note{ID: 6, Org: "acme", Owner: actor.Name, Body: "new"})
		}},
	{name: "insert into team", sql: "insert into app.notes (body, group_id) values ('new', {team})",
		after: func(o *office, seed []note, actor Person) []note {
			return append(slices.Clone(seed), note{ID: 6, Org: orgOf(actor), Owner: actor.Name, Group: "team", Body: "new"})
		}},
	{name: "update", sql: "update app.notes set body = 'edited' where id = 2",
		after: func(o *office, seed []note, _ Person) []note {
			return noteRow2(seed, func(n *note) { n.Body = "edited" })
		}},
	{name: "move to globex", sql: "update app.notes set org_id = 'globex' where id = 2",
		after: func(o *office, seed []note, _ Person) []note {
			return noteRow2(seed, func(n *note) { n.Org = "globex" })
		}},
	{name: "delete", sql: "delete from app.notes where id = 2",
		after: func(o *office, seed []note, _ Person) []note {
			return slices.DeleteFunc(slices.Clone(seed), func(n note) bool { return n.ID == 2 })
		}},
}

var (
	forgedTenant = Fails("42501", "org_id must be the caller's tenant") // the row guard: a row of another tenant
	tenantFixed  = Fails("42501", "the tenant of a row of app.notes cannot be changed")
	noTenant     = Fails("28000", "without a tenant")
)

// noteMatrix: notes.iam gives the owner CRUD inside the tenant, the
// members of a note's group read it (and put their notes into it), and the
// realm role org-admin reads every note of its own tenant; nothing crosses
// tenants, the team's rows of globex included.
var noteMatrix = map[string][7]Outcome{
	//                            alice           bob             olga               mallory       gary          greta         Anonymous
	"list":                      {Sees(1, 2), Sees(2, 3), Sees(1, 2, 3), Sees(), Sees(4, 5), Sees(4, 5), Denied},
	"read one":                  {Sees(2), Sees(2), Sees(2), Sees(), Sees(), Sees(), Denied},
	"list the team's":           {Sees(2), Sees(2), Sees(2), Sees(), Sees(4), Sees(4), Denied},
	"insert":                    {OneRow, OneRow, OneRow, OneRow, OneRow, OneRow, Denied},
	"insert naming tenant acme": {OneRow, OneRow, OneRow, OneRow, forgedTenant, forgedTenant, Denied},
	"insert into team":          {OneRow, OneRow, NotInGroup, NotInGroup, OneRow, NotInGroup, Denied},
	"update":                    {OneRow, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, Denied},
	"move to globex":            {tenantFixed, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, Denied},
	"delete":                    {OneRow, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, NoRowSeen, Denied},
}

var notesExample struct {
	once sync.Once
	db   *Database
	err  error
}

func notesDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	notesExample.once.Do(func() {
		var script string
		if notesExample.db, notesExample.err = CreateDatabase(s, "tenant_notes", "schema.sql"); notesExample.err != nil {
			return
		}
		if script, notesExample.err = BuildScript("."); notesExample.err != nil {
			return
		}
		_, notesExample.err = ApplyScript(t.Context(), s, "tenant_notes", script)
	})
	if notesExample.err != nil {
		t.Fatalf("setting up the notes database: %v", notesExample.err)
	}
	return notesExample.db
}

// TestNoteMatrix runs every request of noteOps as every member of the
// office. Reads run READ ONLY and must see exactly the expected rows;
// writes run as return=representation and return=minimal on a freshly
// seeded table, with the same Outcome, and the superuser then finds the
// table changed exactly as the write says, or not at all.
func TestNoteMatrix(t *testing.T) {
	db := notesDB(t)
	o := newOffice(t, db)
	cells := 0
	for _, op := range noteOps {
		wants, ok := noteMatrix[op.name]
		if !ok {
			t.Fatalf("no row %q in the notes matrix", op.name)
		}
		for i, actor := range o.byRole() {
			want := wants[i]
			cells++
			t.Run(fmt.Sprintf("%s (%s) %s: %s", noteRoles[i], actor.Name, op.name, want), func(t *testing.T) {
				o := o.in(t)
				if op.read {
					seed := o.seed()
					before := Snapshot(t, db)
					got, err := o.ids(actor, "/notes", op.sql)
					if WantError(t, err, want) {
						if diff := cmp.Diff(want.IDs, got, cmpopts.EquateEmpty()); diff != "" {
							t.Errorf("ids seen (-want +got):\n%s", diff)
						}
					}
					o.wantNotes(t, seed)
					WantUnchanged(t, db, before)
					return
				}
				for _, prefer := range []string{"return=representation", "return=minimal"} {
					seed := o.seed()
					before := Snapshot(t, db)
					stmt := op.sql
					if prefer == "return=representation" {
						stmt += " returning id"
					}
					method := "PATCH"
					switch {
					case strings.HasPrefix(stmt, "insert"):
						method = "POST"
					case strings.HasPrefix(stmt, "delete"):
						method = "DELETE"
					}
					n, err := o.affected(actor, method, stmt)
					if WantError(t, err, want) && n != want.N {
						t.Errorf("%s: %d rows affected, want %d", prefer, n, want.N)
					}
					expected := seed
					if want.Changes() {
						expected = op.after(o, seed, actor)
					} else {
						WantUnchanged(t, db, before)
					}
					o.wantNotes(t, expected)
				}
			})
		}
	}
	if want := len(noteOps) * len(noteRoles); cells != want {
		t.Errorf("ran %d cells, want %d", cells, want)
	}
	t.Logf("notes matrix: %d cells (%d requests x %d callers)", cells, len(noteOps), len(noteRoles))
}

// TestTenantClaims: a token whose org_id is missing, empty, null, or not a
// string (an array, a number, an object) has no tenant: it reads no note,
// changes none, and creates none (28000); an org-admin without a tenant
// reads nothing either. The superuser finds nothing changed.
func TestTenantClaims(t *testing.T) {
	db := notesDB(t)
	o := newOffice(t, db)
	for _, c := range []struct {
		name  string
		value any
	}{
		{"missing", nil}, {"empty", ""}, {"null", nullClaim{}}, {"an array", []string{"acme"}}, {"a number", 42},
		{"an object", map[string]any{"id": "acme"}}, {"a boolean", true},
	} {
		for _, who := range []Person{o.alice, o.olga} {
			t.Run(fmt.Sprintf("%s with org_id %s", who.Name, c.name), func(t *testing.T) {
				o := o.in(t)
				var value any = c.value
				if _, ok := value.(nullClaim); ok {
					value = nil
				}
				caller := withClaim(who, "org_id", nil)
				if c.value != nil {
					caller.Claims["org_id"] = value
				}
				seed := o.seed()
				before := Snapshot(t, db)
				for _, q := range []struct{ path, sql string }{
					{"/notes", "select id from app.notes"},
					{"/notes", "select id from app.notes where id = 2"},
					{"/rpc/notes_page", "select id from app.notes_page()"},
					{"/rpc/notes_page", "select id from app.notes_page(group_id => {team})"},
				} {
					got, err := o.ids(caller, q.path, q.sql)
					NoError(t, err)
					if len(got) != 0 {
						t.Errorf("%s: sees %v, want nothing", q.sql, got)
					}
				}
				for _, w := range []struct{ method, sql string }{
					{"PATCH", "update app.notes set body = 'x'"},
					{"DELETE", "delete from app.notes"},
				} {
					n, err := o.affected(caller, w.method, w.sql)
					NoError(t, err)
					if n != 0 {
						t.Errorf("%s: %d rows, want 0", w.sql, n)
					}
				}
				_, err := o.affected(caller, "POST", "insert into app.notes (body) values ('x')")
				WantError(t, err, noTenant)
				_, err = o.affected(caller, "POST", "insert into app.notes (body, org_id) values ('x', 'acme')")
				WantError(t, err, noTenant)
				o.wantNotes(t, seed)
				WantUnchanged(t, db, before)
			})
		}
	}
}

// nullClaim stands for a JSON null in the claims.
type nullClaim struct{}

// TestTenantAttacks: the ways across tenants that are not in the matrix.
func TestTenantAttacks(t *testing.T) {
	db := notesDB(t)
	o := newOffice(t, db)

	t.Run("an org-admin of acme acting in globex reads, changes and deletes nothing there, by table or page function", func(t *testing.T) {
		o := o.in(t)
		seed := o.seed()
		before := Snapshot(t, db)
		for _, sql := range []string{
			"select id from app.notes where org_id = 'globex'",
			"select id from app.notes where id in (4, 5)",
			"select id from app.notes_page() where org_id = 'globex'",
			"select id from app.notes_page(group_id => {team}) where org_id = 'globex'",
		} {
			got, err := o.ids(o.olga, "/notes", sql)
			NoError(t, err)
			if len(got) != 0 {
				t.Errorf("%s: olga sees %v", sql, got)
			}
		}
		for _, sql := range []string{"update app.notes set body = 'x' where id in (4, 5)", "delete from app.notes where org_id = 'globex'"} {
			n, err := o.affected(o.olga, "PATCH", sql)
			NoError(t, err)
			if n != 0 {
				t.Errorf("%s: %d rows", sql, n)
			}
		}
		o.wantNotes(t, seed)
		WantUnchanged(t, db, before)
	})

	t.Run("moving a row out of the tenant or into another tenant's name is refused, and the row stays", func(t *testing.T) {
		o := o.in(t)
		seed := o.seed()
		before := Snapshot(t, db)
		for _, sql := range []string{
			"update app.notes set org_id = 'globex' where id = 1",
			"update app.notes set org_id = 'globex', body = 'moved' where owner_id = '" + o.aliceID + "'",
			"update app.notes set org_id = null where id = 1",
			"update app.notes set org_id = 'ACME' where id = 1",
		} {
			_, err := o.affected(o.alice, "PATCH", sql)
			WantError(t, err, tenantFixed)
		}
		_, err := o.affected(o.alice, "POST", "insert into app.notes (body, org_id) values ('x', 'globex')")
		WantError(t, err, forgedTenant)
		o.wantNotes(t, seed)
		WantUnchanged(t, db, before)
	})

	t.Run("a group spanning tenants: each side reads only its own tenant's rows of it", func(t *testing.T) {
		o := o.in(t)
		o.seed()
		for _, c := range []struct {
			who  Person
			want []int64
		}{{o.alice, []int64{2}}, {o.bob, []int64{2}}, {o.gary, []int64{4}}} {
			for _, q := range []struct{ path, sql string }{
				{"/notes", "select id from app.notes where group_id = {team} order by id"},
				{"/rpc/notes_page", "select id from app.notes_page(group_id => {team}) order by id"},
			} {
				got, err := o.ids(c.who, q.path, q.sql)
				NoError(t, err)
				if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s: %s (-want +got):\n%s", c.who.Name, q.sql, diff)
				}
			}
		}
		// gary puts a note into the team: it is globex's, and acme's members
		// do not see it.
		n, err := o.affected(o.gary, "POST", "insert into app.notes (body, group_id) values ('for the team', {team})")
		NoError(t, err)
		if n != 1 {
			t.Fatalf("gary's insert into team: %d rows", n)
		}
		if got := Scalar[string](t, db, "select org_id from app.notes where body = 'for the team'"); got != "globex" {
			t.Errorf("gary's note is in %s, want globex", got)
		}
		for _, who := range []Person{o.alice, o.bob, o.olga} {
			got, err := o.ids(who, "/notes", "select id from app.notes where body = 'for the team'")
			NoError(t, err)
			if len(got) != 0 {
				t.Errorf("%s sees gary's globex note in the team", who.Name)
			}
		}
	})

	t.Run("a blocked org-admin is refused (the role does not outrank the deny list)", func(t *testing.T) {
		o := o.in(t)
		o.seed()
		db.Exec(t, "select iam.block_subject($1, 'test')", o.olgaID)
		defer db.Exec(t, "select iam.unblock_subject($1)", o.olgaID)
		_, err := o.ids(o.olga, "/notes", "select id from app.notes")
		WantSQLError(t, err, "28000", "this user is blocked")
	})

	t.Run("the page function answers every caller as the table does", func(t *testing.T) {
		o := o.in(t)
		o.seed()
		for _, who := range []Person{o.alice, o.bob, o.olga, o.mallory, o.gary, o.greta} {
			for _, group := range []any{nil, o.team} {
				want, err := o.ids(who, "/notes", "select id from app.notes where ($1::bigint is null or group_id = $1) order by id desc limit 50", group)
				NoError(t, err)
				got, err := o.ids(who, "/rpc/notes_page", "select id from app.notes_page(group_id => $1)", group)
				NoError(t, err)
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s, group %v (-table +page function):\n%s", who.Name, group, diff)
				}
			}
		}
	})
}

// TestNoteQueriesUseTheTenantIndexes: with 200,000 notes of 2,000 users in
// 100 organisations, the count of a user, and of an org-admin, is a
// BitmapOr of the tenant-led indexes, the caller's id, groups, tenant and
// role each computed once per statement (InitPlans), no function called per
// row; a read by id is the primary key; the page function reads a page,
// whatever the caller sees.
func TestNoteQueriesUseTheTenantIndexes(t *testing.T) {
	db := NewDatabase(t, "noteplans", "schema.sql")
	script, err := BuildScript(".")
	NoError(t, err)
	_, err = ApplyScript(t.Context(), db.Server, "noteplans", script)
	NoError(t, err)
	// User k (0..1999) is in organisation org-<k % 100>; group g (1..300)
	// has 10 members, users (g + 200 j) % 2000, all of organisation
	// org-<g % 100>. Note i is user (i % 2000)'s; a tenth of them are in a
	// group of its organisation (100 + t or 200 + t for organisation t).
	db.Exec(t, `
		create function pg_temp.uid(k int) returns text language sql immutable
		    as $$ select format('00000000-0000-4000-8000-%s', lpad(k::text, 12, '0')) $$;
		insert into iam.groups (id, name, created_by)
		select g, 'group ' || g, pg_temp.uid(g % 2000) from generate_series(1, 300) g;
		insert into iam.group_members (group_id, user_id, role, added_by)
		select g, pg_temp.uid((g + 200 * j) % 2000), case j when 0 then 'owner' else 'member' end, pg_temp.uid(g % 2000)
		from generate_series(1, 300) g, generate_series(0, 9) j;
		set session_replication_role = replica;
		insert into app.notes (org_id, owner_id, group_id, body)
		select 'org-' || (i % 2000) % 100, pg_temp.uid(i % 2000)::uuid,
		       case when (i / 2000) % 10 = 0 then (i % 2000) % 100 + 100 * (1 + (i / 20000) % 2) end, 'note ' || i
		from generate_series(1, 200000) i;
		reset session_replication_role;
		analyze app.notes;
		analyze iam.groups;
		analyze iam.group_members;`)
	user := tenantUser("user101", "00000000-0000-4000-8000-000000000101", "org-1")
	admin := tenantUser("admin1", "00000000-0000-4000-8000-000000000001", "org-1", "org-admin")
	wantCount := map[string]int64{
		"user101": Scalar[int64](t, db, "select count(*) from app.notes where org_id = 'org-1' and (owner_id = $1::uuid or group_id = any(array(select group_id from iam.group_members where user_id = $1::text)))", UserID(user)),
		"admin1":  Scalar[int64](t, db, "select count(*) from app.notes where org_id = 'org-1'"),
	}
	// The tenant (PostgreSQL computes the arms' one sub-select once), the
	// user id, the groups, the role's tenant: 4.
	const initPlans = 4
	tenantIndexes := []string{"notes_org_id_owner_id_id_iam_idx", "notes_org_id_group_id_id_iam_idx", "notes_org_id_id_iam_idx"}
	for _, who := range []Person{user, admin} {
		t.Run(who.Name+": the count is a BitmapOr of the tenant-led indexes", func(t *testing.T) {
			var count int64
			err := Requester{T: t, DB: db, Who: who, Path: "/notes"}.Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), "select count(*) from app.notes").Scan(&count)
			})
			NoError(t, err)
			if count != wantCount[who.Name] || count == 0 {
				t.Fatalf("%s counts %d notes, want %d", who.Name, count, wantCount[who.Name])
			}
			plan, text := ExplainWith(t, db, who, "", "select count(*) from app.notes")
			t.Logf("%s:\n%s", who.Name, text)
			if problems := PlanProblems(plan, initPlans, tenantIndexes...); len(problems) > 0 {
				t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
			}
			if !slices.Contains(plan.Nodes, "BitmapOr") {
				t.Errorf("plan %+v: no BitmapOr", plan)
			}
		})
		t.Run(who.Name+": a read by id is one probe (the primary key, or (org_id, id) with both)", func(t *testing.T) {
			plan := explainAs(t, db, who, "select * from app.notes where id = $1", int64(1101))
			if problems := PlanProblems(plan, initPlans); len(problems) > 0 {
				t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
			}
			if len(plan.Indexes) != 1 || plan.Indexes[0] != "notes_pkey" && plan.Indexes[0] != "notes_org_id_id_iam_idx" {
				t.Errorf("plan %+v: want one index scan of notes_pkey or notes_org_id_id_iam_idx", plan)
			}
		})
	}
	t.Run("the table's list page of a user is a BitmapOr of the tenant-led indexes, not a walk of the primary key", func(t *testing.T) {
		// The role arm's tenant key would count as a whole tenant to the
		// planner without the tenant's equality before it (tenant.go).
		plan, text := ExplainWith(t, db, user, "", "select * from app.notes order by id desc limit 50")
		t.Logf("%s", text)
		if problems := PlanProblems(plan, initPlans, tenantIndexes...); len(problems) > 0 || !slices.Contains(plan.Nodes, "BitmapOr") {
			t.Errorf("plan %+v: no BitmapOr:\n%s", plan, strings.Join(problems, "\n"))
		}
		if slices.Contains(plan.Indexes, "notes_pkey") {
			t.Errorf("plan %+v walks the primary key", plan)
		}
	})
	t.Run("the page function reads a page per arm: the org-admin's one walk of (org_id, id), the user's of (org_id, owner_id, id) and (org_id, group_id, id)", func(t *testing.T) {
		groups := Scalar[[]int64](t, db, "select coalesce(array_agg(group_id order by group_id), '{}') from iam.group_members where user_id = $1", UserID(user))
		own := float64(Scalar[int64](t, db, "select count(*) from app.notes where owner_id = $1::uuid and group_id = any($2)", UserID(user), groups))
		for _, c := range []struct {
			who     Person
			limit   float64
			indexes []string
		}{
			{admin, 50, tenantIndexes[2:]},
			{user, 50*float64(1+len(groups)) + own, tenantIndexes[:2]},
		} {
			plan := explainPage(t, db, c.who, "notes", "t.org_id = page.tenant", "select * from app.notes_page()")
			t.Logf("%s: %+v (at most %.0f rows)", c.who.Name, plan, c.limit)
			if problems := pageProblems(plan, c.limit, c.indexes...); len(problems) > 0 {
				t.Errorf("%s: plan %+v:\n%s", c.who.Name, plan, strings.Join(problems, "\n"))
			}
			want, err := o2ids(t, db, c.who, "select id from app.notes order by id desc limit 50")
			NoError(t, err)
			got, err := o2ids(t, db, c.who, "select id from app.notes_page()")
			NoError(t, err)
			if diff := cmp.Diff(want, got); diff != "" || len(got) != 50 {
				t.Errorf("%s: a page of %d rows (-table +page function):\n%s", c.who.Name, len(got), diff)
			}
		}
	})
}

func o2ids(t *testing.T, db *Database, who Person, sql string) ([]int64, error) {
	return pageIDs(t, db, who, "/notes", sql)
}
