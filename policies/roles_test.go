package policies_test

// Keycloak roles and claim matches, against a real PostgreSQL, from both
// sides: chats.iam's realm role moderator on the example; realm and client
// roles (golden/keycloak-roles) and claim matches (golden/claim-match) on
// databases of their own. Malformed role and claim values grant nothing.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// withRealmRoles is who with realm_access set to value (a well-formed
// token has {"roles": [...]}).
func withRealmRoles(who Person, value any) Person {
	return withClaim(who, "realm_access", value)
}

// roleCase is one request of one caller and what it must get: the ids a
// read sees, or the rows a write touches (or its refusal); after a write,
// check (as the superuser) must give wantAfter.
type roleCase struct {
	who       Person
	method    string
	sql       string
	want      Outcome
	check     string // a query returning one text value, as the superuser, after the request
	wantAfter string // what check returns when the write succeeded
}

// run runs c on db, seeded by seed (SQL as the superuser) first, and checks
// both sides: a read sees exactly want.IDs and changes nothing; a refused or
// empty write changes nothing at all; a write that succeeds leaves check
// giving wantAfter.
func (c roleCase) run(t *testing.T, db *Database, path, seed string) {
	t.Helper()
	db.Exec(t, seed)
	before := Snapshot(t, db)
	r := Requester{T: t, DB: db, Who: c.who, Path: path}
	if c.want.Read {
		var got []int64
		err := r.Do(c.method, func(tx pgx.Tx) error {
			rows, err := tx.Query(t.Context(), c.sql)
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		})
		if WantError(t, err, c.want) {
			if diff := cmp.Diff(c.want.IDs, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: ids seen (-want +got):\n%s", c.sql, diff)
			}
		}
		WantUnchanged(t, db, before)
		return
	}
	n, err := r.Exec(c.method, c.sql)
	if WantError(t, err, c.want) && n != c.want.N {
		t.Errorf("%s: %d rows affected, want %d", c.sql, n, c.want.N)
	}
	if !c.want.Changes() {
		WantUnchanged(t, db, before)
		return
	}
	if got := Scalar[string](t, db, c.check); got != c.wantAfter {
		t.Errorf("after %s, %s = %q, want %q", c.sql, c.check, got, c.wantAfter)
	}
}

// TestModerators: chats.iam's `role 'moderator' can read, delete`. A
// moderator reads and deletes any message in any room, edits none and
// posts only where a member; the same role anywhere but realm_access.roles
// (a client role, a string, an object, a nested array) or a blocked
// moderator gets nothing more than a stranger.
func TestModerators(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	mod := withRealmRoles(KeycloakUser("mod", fmt.Sprintf("0dd00000-0000-4000-8000-%012d", len(c.AliceID))), map[string]any{"roles": []string{"offline_access", "moderator"}})
	notMods := map[string]Person{
		"a client role named moderator":   withClaim(withRealmRoles(mod, map[string]any{"roles": []string{"offline_access"}}), "resource_access", map[string]any{"todo-app": map[string]any{"roles": []string{"moderator"}}}),
		"realm_access.roles a string":     withRealmRoles(mod, map[string]any{"roles": "moderator"}),
		"realm_access.roles an object":    withRealmRoles(mod, map[string]any{"roles": map[string]any{"moderator": true}}),
		"realm_access.roles nested":       withRealmRoles(mod, map[string]any{"roles": []any{[]string{"moderator"}, map[string]any{"name": "moderator"}, 7}}),
		"realm_access an array":           withRealmRoles(mod, []string{"moderator"}),
		"the role in another letter case": withRealmRoles(mod, map[string]any{"roles": []string{"Moderator"}}),
	}
	seed := c.Expand(Chats, `truncate app.chats restart identity;
		insert into app.chats (body, owner_id, group_id) values ('alice in team', '`+c.AliceID+`', {team}), ('otto in club', '`+c.OttoID+`', {club});`)
	body := func(id int) string {
		return fmt.Sprintf("select coalesce(string_agg(body, ','), '') from app.chats where id = %d", id)
	}
	count := "select count(*)::text from app.chats"
	cases := map[string]roleCase{
		"the moderator lists every room's messages":            {who: mod, method: "GET", sql: "select id from app.chats order by id", want: Sees(1, 2)},
		"the moderator reads a message of a room he is not in": {who: mod, method: "GET", sql: "select id from app.chats where id = 2", want: Sees(2)},
		"the moderator reads one room by the page function":    {who: mod, method: "GET", sql: c.Expand(Chats, "select id from app.chats_page(group_id => {club})"), want: Sees(2)},
		"the moderator deletes otto's message":                 {who: mod, method: "DELETE", sql: "delete from app.chats where id = 2", want: OneRow, check: count, wantAfter: "1"},
		"the moderator edits nothing":                          {who: mod, method: "PATCH", sql: "update app.chats set body = 'moderated'", want: NoRowSeen},
		"the moderator posts only in rooms he is in":           {who: mod, method: "POST", sql: c.Expand(Chats, "insert into app.chats (body, group_id) values ('hi', {club})"), want: NotInGroup},
		"a stranger lists only the rooms he is in":             {who: c.Otto, method: "GET", sql: "select id from app.chats order by id", want: Sees(2)},
		"a stranger deletes nothing in alice's room":           {who: c.Otto, method: "DELETE", sql: "delete from app.chats where id = 1", want: NoRowSeen},
		"anonymous gets no privilege":                          {who: Anonymous, method: "GET", sql: "select id from app.chats", want: Denied},
	}
	for what, p := range notMods {
		cases["no moderator: "+what+": lists nothing of the rooms"] = roleCase{who: p, method: "GET", sql: "select id from app.chats order by id", want: Sees()}
		cases["no moderator: "+what+": deletes nothing"] = roleCase{who: p, method: "DELETE", sql: "delete from app.chats", want: NoRowSeen}
		cases["no moderator: "+what+": page function"] = roleCase{who: p, method: "GET", sql: "select id from app.chats_page()", want: Sees()}
	}
	_ = body
	for _, name := range sortedKeys(cases) {
		t.Run(name, func(t *testing.T) { cases[name].run(t, db, "/chats", seed) })
	}
	t.Run("the moderator's test is an InitPlan, never a call per row", func(t *testing.T) {
		// Without a tenant column the role arm reads no column, so the
		// planner cannot use the owner and group indexes for an unfiltered
		// count (SPEC §20, plans); what is asserted is that the token is
		// read once per statement.
		for _, who := range []Person{mod, c.Otto} {
			plan, text := ExplainWith(t, db, who, "", "select count(*) from app.chats")
			t.Logf("%s:\n%s", who.Name, text)
			if plan.InitPlans != 3 || plan.SubPlans != 0 {
				t.Errorf("%s: %d InitPlans (want 3: the user id, the groups, the role), %d SubPlans", who.Name, plan.InitPlans, plan.SubPlans)
			}
			for _, f := range plan.Filters {
				if strings.Contains(f, "has_realm_role") || strings.Contains(f, "iam.") {
					t.Errorf("%s: a function is called per row: %s", who.Name, f)
				}
			}
			by := explainAs(t, db, who, "select * from app.chats where id = $1", int64(1))
			if len(by.Indexes) == 0 || len(by.SeqScans) > 0 {
				t.Errorf("%s: a read by id is not an index scan: %+v", who.Name, by)
			}
		}
	})
	t.Run("a blocked moderator is refused", func(t *testing.T) {
		db.Exec(t, "select iam.block_subject($1, 'test')", UserID(mod))
		defer db.Exec(t, "select iam.unblock_subject($1)", UserID(mod))
		roleCase{who: mod, method: "GET", sql: "select id from app.chats", want: Fails("28000", "this user is blocked")}.run(t, db, "/chats", seed)
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

// goldenDB is a database with the tables of a golden case and its build
// applied, made once per case.
var goldenDBs struct {
	mu  sync.Mutex
	dbs map[string]*Database
}

func goldenDB(t *testing.T, name, tables string) *Database {
	t.Helper()
	goldenDBs.mu.Lock()
	defer goldenDBs.mu.Unlock()
	if d := goldenDBs.dbs[name]; d != nil {
		return d
	}
	d := NewDatabase(t, strings.ReplaceAll(name, "-", "_"))
	d.Exec(t, "create schema app authorization api_owner; set role api_owner;"+tables+" reset role;")
	script, err := BuildScript(filepath.Join("..", "golden", name, "policies"))
	NoError(t, err)
	out, err := ApplyScript(t.Context(), d.Server, d.Name, script)
	if err != nil {
		t.Fatalf("applying golden/%s: %v\n%s", name, err, out)
	}
	if goldenDBs.dbs == nil {
		goldenDBs.dbs = map[string]*Database{}
	}
	goldenDBs.dbs[name] = d
	return d
}

// TestRealmAndClientRoles: golden/keycloak-roles. On posts (rooms are
// groups): moderators read and delete every post; editors of the
// forum-app client read and edit them; super admins do everything but
// post into a room they are not in; a role of another client, or the realm
// role of a client role's name, gives nothing. On announcements (read by
// everyone signed in) only publishers write.
func TestRealmAndClientRoles(t *testing.T) {
	db := goldenDB(t, "keycloak-roles", `
		create table app.posts (id bigint generated always as identity primary key, owner_id uuid not null, room_id bigint not null, body text not null);
		create table app.announcements (id bigint generated always as identity primary key, body text not null);`)
	author := KeycloakUser("author", "a0000000-0000-4000-8000-0000000000a1")
	room := CreateGroup(t, db, author, "room")
	user := func(name string, realm []string, client map[string]any) Person {
		p := withRealmRoles(KeycloakUser(name, fmt.Sprintf("e0000000-0000-4000-8000-%012d", len(name))), map[string]any{"roles": realm})
		if client != nil {
			p = withClaim(p, "resource_access", client)
		}
		return p
	}
	var (
		moderator  = user("moderator", []string{"moderator"}, nil)
		editor     = user("editor", nil, map[string]any{"forum-app": map[string]any{"roles": []string{"editor"}}})
		otherEdit  = user("other-editor", nil, map[string]any{"other-app": map[string]any{"roles": []string{"editor"}}})
		realmEdit  = user("realm-editor", []string{"editor"}, nil)
		badEditor  = user("bad-editor", nil, map[string]any{"forum-app": map[string]any{"roles": "editor"}})
		superAdmin = user("super-admin", []string{"super_admin"}, nil)
		publisher  = user("publisher", []string{"publisher"}, nil)
		stranger   = user("stranger", nil, nil)
	)
	seed := fmt.Sprintf(`truncate app.posts, app.announcements restart identity;
		insert into app.posts (owner_id, room_id, body) values ('%s', %d, 'first'), ('%s', %d, 'second');
		insert into app.announcements (body) values ('welcome');`, UserID(author), room, UserID(author), room)
	bodies := "select string_agg(body, ',' order by id) from app.posts"
	news := "select string_agg(body, ',' order by id) from app.announcements"
	cases := map[string]roleCase{
		"a moderator reads every post":                     {who: moderator, method: "GET", sql: "select id from app.posts order by id", want: Sees(1, 2)},
		"a moderator deletes a post":                       {who: moderator, method: "DELETE", sql: "delete from app.posts where id = 1", want: OneRow, check: bodies, wantAfter: "second"},
		"a moderator edits nothing":                        {who: moderator, method: "PATCH", sql: "update app.posts set body = 'x'", want: NoRowSeen},
		"the client's editor reads every post":             {who: editor, method: "GET", sql: "select id from app.posts order by id", want: Sees(1, 2)},
		"the client's editor edits a post":                 {who: editor, method: "PATCH", sql: "update app.posts set body = 'edited' where id = 2", want: OneRow, check: bodies, wantAfter: "first,edited"},
		"the client's editor deletes nothing":              {who: editor, method: "DELETE", sql: "delete from app.posts", want: NoRowSeen},
		"the client's editor cannot move a post":           {who: editor, method: "PATCH", sql: "update app.posts set room_id = room_id where id = 2", want: OneRow, check: bodies, wantAfter: "first,second"},
		"an editor of another client reads nothing":        {who: otherEdit, method: "GET", sql: "select id from app.posts", want: Sees()},
		"a realm role named like the client role: nothing": {who: realmEdit, method: "PATCH", sql: "update app.posts set body = 'x'", want: NoRowSeen},
		"a client's roles as a string: nothing":            {who: badEditor, method: "GET", sql: "select id from app.posts_page()", want: Sees()},
		"a super admin deletes every post":                 {who: superAdmin, method: "DELETE", sql: "delete from app.posts", want: Affects(2), check: "select count(*)::text from app.posts", wantAfter: "0"},
		"a super admin posts only into a room he is in":    {who: superAdmin, method: "POST", sql: fmt.Sprintf("insert into app.posts (body, room_id) values ('x', %d)", room), want: NotInGroup},
		"a stranger reads no post":                         {who: stranger, method: "GET", sql: "select id from app.posts", want: Sees()},
		"everyone signed in reads the announcements":       {who: stranger, method: "GET", sql: "select id from app.announcements", want: Sees(1)},
		"a stranger announces nothing":                     {who: stranger, method: "POST", sql: "insert into app.announcements (body) values ('x')", want: Fails("42501", "row-level security")},
		"a publisher announces":                            {who: publisher, method: "POST", sql: "insert into app.announcements (body) values ('news')", want: OneRow, check: news, wantAfter: "welcome,news"},
		"a publisher edits an announcement":                {who: publisher, method: "PATCH", sql: "update app.announcements set body = 'hello'", want: OneRow, check: news, wantAfter: "hello"},
		"a moderator of posts announces nothing":           {who: moderator, method: "DELETE", sql: "delete from app.announcements", want: NoRowSeen},
	}
	for _, name := range sortedKeys(cases) {
		t.Run(name, func(t *testing.T) { cases[name].run(t, db, "/posts", seed) })
	}
	t.Run("the editor moving a post to another room is refused by the row guard", func(t *testing.T) {
		other := CreateGroup(t, db, author, "other room")
		roleCase{who: editor, method: "PATCH", sql: fmt.Sprintf("update app.posts set room_id = %d where id = 2", other), want: OnlyOwnerMoves}.run(t, db, "/posts", seed)
	})
}

// TestClaimMatches: golden/claim-match. A record is read by the callers
// whose user_type claim names its keeper; shelves by their owner, the
// keeper's callers, and those whose address.region claim (Keycloak's
// address claim, nested) names its region. A claim that is missing, empty
// or not a string (an array, a number, an object) matches nothing; nobody
// changes a row by a claim.
func TestClaimMatches(t *testing.T) {
	db := goldenDB(t, "claim-match", `
		create table app.records (id bigint generated always as identity primary key, keeper text not null, body text not null);
		create table app.shelves (id bigint generated always as identity primary key, owner_id uuid not null, keeper text, region varchar(20), body text not null);`)
	owner := KeycloakUser("owner", "5e1f0000-0000-4000-8000-000000000001")
	librarian := withClaim(KeycloakUser("librarian", "5e1f0000-0000-4000-8000-000000000002"), "user_type", "librarian")
	north := withClaim(KeycloakUser("northerner", "5e1f0000-0000-4000-8000-000000000003"), "address", map[string]any{"region": "north", "country": "x"})
	seed := fmt.Sprintf(`truncate app.records, app.shelves restart identity;
		insert into app.records (keeper, body) values ('librarian', 'catalogue'), ('curator', 'exhibits'), ('', 'nobody''s');
		insert into app.shelves (owner_id, keeper, region, body) values
		    ('%[1]s', null, null, 'own'), ('%[1]s', 'librarian', null, 'kept'), ('%[1]s', null, 'north', 'northern'), ('%[1]s', 'curator', 'south', 'other');`, UserID(owner))
	cases := map[string]roleCase{
		"the librarian reads the librarian's records":              {who: librarian, method: "GET", sql: "select id from app.records order by id", want: Sees(1)},
		"the librarian changes no record":                          {who: librarian, method: "PATCH", sql: "update app.records set body = 'x'", want: Denied},
		"a caller without the claim reads no record":               {who: owner, method: "GET", sql: "select id from app.records", want: Sees()},
		"an empty claim matches no empty keeper":                   {who: withClaim(owner, "user_type", ""), method: "GET", sql: "select id from app.records", want: Sees()},
		"a claim that is an array matches nothing":                 {who: withClaim(owner, "user_type", []string{"librarian"}), method: "GET", sql: "select id from app.records", want: Sees()},
		"a claim that is a number matches nothing":                 {who: withClaim(owner, "user_type", 7), method: "GET", sql: "select id from app.records", want: Sees()},
		"a claim that is an object matches nothing":                {who: withClaim(owner, "user_type", map[string]any{"librarian": true}), method: "GET", sql: "select id from app.records", want: Sees()},
		"the owner reads their shelves":                            {who: owner, method: "GET", sql: "select id from app.shelves order by id", want: Sees(1, 2, 3, 4)},
		"the librarian reads the shelf kept by librarians":         {who: librarian, method: "GET", sql: "select id from app.shelves order by id", want: Sees(2)},
		"the northerner reads the northern shelf (a nested claim)": {who: north, method: "GET", sql: "select id from app.shelves order by id", want: Sees(3)},
		"a region claim at the top level is not address.region":    {who: withClaim(owner, "region", "north"), method: "GET", sql: "select id from app.shelves where owner_id is distinct from owner_id", want: Sees()},
		"the librarian edits no shelf":                             {who: librarian, method: "PATCH", sql: "update app.shelves set body = 'x'", want: NoRowSeen},
		"the page function: the librarian's":                       {who: librarian, method: "GET", sql: "select id from app.shelves_page()", want: Sees(2)},
		"the page function: the northerner's":                      {who: north, method: "GET", sql: "select id from app.shelves_page()", want: Sees(3)},
		"the page function: a caller with both claims":             {who: withClaim(north, "user_type", "librarian"), method: "GET", sql: "select id from app.shelves_page()", want: Sees(3, 2)},
	}
	for _, name := range sortedKeys(cases) {
		t.Run(name, func(t *testing.T) { cases[name].run(t, db, "/records", seed) })
	}
	t.Run("a claim match is an index key, read once per statement", func(t *testing.T) {
		db.Exec(t, `insert into app.records (keeper, body) select 'keeper ' || i % 1000, 'record ' || i from generate_series(1, 50000) i; analyze app.records;`)
		plan := explainAs(t, db, librarian, "select * from app.records order by id desc limit 50")
		if problems := PlanProblems(plan, 1, "records_keeper_iam_idx"); len(problems) > 0 {
			t.Errorf("plan %+v:\n%s", plan, strings.Join(problems, "\n"))
		}
	})
}

// The goldens these tests apply must exist (they are compiled by the
// golden test too).
func init() {
	for _, name := range []string{"keycloak-roles", "claim-match"} {
		if _, err := os.Stat(filepath.Join("..", "golden", name, "policies")); err != nil {
			panic(err)
		}
	}
}
