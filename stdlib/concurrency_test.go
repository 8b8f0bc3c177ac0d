package stdlib_test

// Concurrency of the group rules (SPEC, Concurrency): a membership removed
// while the member's requests are in flight, and membership changes of one
// group racing each other. Every interleaving is made deterministic with
// connections of their own (PostgREST's pool has many): a request is held
// open mid-transaction, and a request that must wait is confirmed waiting
// on a lock in pg_stat_activity before the test goes on; nothing sleeps to
// synchronise. The races also run as stress loops, released together.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
)

// ---------------------------------------------------------------------------
// Connections, held requests, waiting.
// ---------------------------------------------------------------------------

// ownConn is d with a connection of its own as authenticator, so that
// requests on it run concurrently with requests on others.
func ownConn(t *testing.T, d *Database) *Database {
	t.Helper()
	u, err := url.Parse(d.Server.URL(d.Name, "authenticator"))
	NoError(t, err)
	u.User = url.UserPassword("authenticator", "mypass")
	conn, err := pgx.Connect(t.Context(), u.String())
	if err != nil {
		t.Fatalf("connecting as authenticator: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	cp := *d
	cp.API = conn
	return &cp
}

// heldRequest is a request whose transaction the test keeps open: each
// step runs a statement in it; commit ends it as PostgREST would.
type heldRequest struct {
	pid   uint32
	steps chan heldStep
	done  chan error
}

type heldStep struct {
	run func(pgx.Tx) error
	res chan error
}

// hold opens who's request on a connection of its own and keeps it open.
func hold(t *testing.T, d *Database, who Person, method, path string) *heldRequest {
	t.Helper()
	own := ownConn(t, d)
	h := &heldRequest{pid: own.API.PgConn().PID(), steps: make(chan heldStep), done: make(chan error, 1)}
	req := pgrest.Request{Method: method, Path: path, Role: who.Role, Claims: who.Claims}
	go func() {
		h.done <- pgrest.Do(t.Context(), own.API, req, func(tx pgx.Tx) error {
			for s := range h.steps {
				err := s.run(tx)
				s.res <- err
				if err != nil {
					return err
				}
			}
			return nil
		})
	}()
	return h
}

// step runs fn in the held transaction.
func (h *heldRequest) step(fn func(pgx.Tx) error) error {
	res := make(chan error, 1)
	h.steps <- heldStep{run: fn, res: res}
	return <-res
}

// titles reads titles in the held transaction.
func (h *heldRequest) titles(ctx context.Context, sql string, args ...any) ([]string, error) {
	var got []string
	err := h.step(func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return got, err
}

// exec runs a write in the held transaction: rows affected.
func (h *heldRequest) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	err := h.step(func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// commit ends the request: committed unless a step failed.
func (h *heldRequest) commit() error {
	close(h.steps)
	return <-h.done
}

// async is a request running in the background on a connection of its own:
// pid is its backend, done its result.
type async struct {
	pid  uint32
	done chan error
}

func start(t *testing.T, d *Database, who Person, method, path string, fn func(context.Context, pgx.Tx) error) async {
	t.Helper()
	own := ownConn(t, d)
	a := async{pid: own.API.PgConn().PID(), done: make(chan error, 1)}
	req := pgrest.Request{Method: method, Path: path, Role: who.Role, Claims: who.Claims}
	go func() {
		a.done <- pgrest.Do(t.Context(), own.API, req, func(tx pgx.Tx) error { return fn(t.Context(), tx) })
	}()
	return a
}

// rpcStatement is POST /rpc/fn with named arguments as PostgREST runs it.
func rpcStatement(fn string, args ...any) (string, []any) {
	var named []string
	var values []any
	for i := 0; i+1 < len(args); i += 2 {
		values = append(values, args[i+1])
		named = append(named, fmt.Sprintf("%s => $%d", args[i], len(values)))
	}
	return fmt.Sprintf("select app.%s(%s)", fn, strings.Join(named, ", ")), values
}

func rpcStep(fn string, args ...any) func(context.Context, pgx.Tx) error {
	sql, values := rpcStatement(fn, args...)
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, values...)
		return err
	}
}

// waitForLock returns once backend pid waits on a lock, and says which
// sessions block it. It polls pg_stat_activity: the condition is checked,
// not assumed after a sleep. The minute is a guard against a hang only.
func waitForLock(t *testing.T, d *Database, pid uint32) []uint32 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting bool
		var pids []int32
		err := d.SU.QueryRow(t.Context(), `
			select coalesce(wait_event_type = 'Lock', false), pg_blocking_pids(pid)
			from pg_stat_activity where pid = $1`, int32(pid)).Scan(&waiting, &pids)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatalf("reading pg_stat_activity: %v", err)
		}
		if waiting {
			blockers := make([]uint32, len(pids))
			for i, p := range pids {
				blockers[i] = uint32(p)
			}
			return blockers
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d never waited on a lock", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wantErr checks err against an expected SQLSTATE and message fragment; an
// empty code means success.
func wantErr(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code || !strings.Contains(pgErr.Message, msg) {
		t.Errorf("%s: got %v, want SQLSTATE %s with %q", what, err, code, msg)
	}
}

// ---------------------------------------------------------------------------
// A membership removed while the member's requests are in flight.
// ---------------------------------------------------------------------------

// revocation is the table of one revocation test: alice's rows (seed),
// adam's own rows, all as the superuser sees them, by title.
func revocationSetup(t *testing.T) *Crew {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	c.Seed(Todos)
	db.Exec(t, `insert into app.todos (title, owner_id, group_id) values ('adam''s own', $1, null), ('adam''s, in team', $1, $2)`, c.AdamID, c.Team)
	return c
}

func titlesAsSuperuser(t *testing.T, c *Crew) map[string]bool {
	t.Helper()
	rows, err := c.DB.SU.Query(t.Context(), `select title, done from app.todos order by title`)
	NoError(t, err)
	got := map[string]bool{}
	for rows.Next() {
		var title string
		var done bool
		NoError(t, rows.Scan(&title, &done))
		got[title] = done
	}
	NoError(t, rows.Err())
	return got
}

func titles(t *testing.T, c *Crew, who Person) []string {
	t.Helper()
	var got []string
	err := c.In(t).As(who, "/todos").Do("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), "select title from app.todos order by title")
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	NoError(t, err)
	return got
}

func wantTitles(t *testing.T, what string, got, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

var (
	adamSeesAsAdmin = []string{"adam's own", "adam's, in team", "alice's, in team", "mia's, in team"}
	adamSeesAlone   = []string{"adam's own", "adam's, in team"}
	miaSeesInTeam   = []string{"adam's, in team", "alice's, in team", "mia's, in team"}
)

// TestRevocationWhileRequestsRun: olivia removes adam (an admin) from team
// while adam's requests run. Membership is read once per statement, at its
// start: a request (or a statement of one) that starts after the removal
// committed sees none of team's rows and cannot write them, while adam
// keeps his own rows and mia, still a member, keeps hers.
func TestRevocationWhileRequestsRun(t *testing.T) {
	t.Run("next statement and next requests", func(t *testing.T) {
		c := revocationSetup(t)
		ctx := t.Context()
		h := hold(t, c.DB, c.Adam, "GET", "/todos")
		got, err := h.titles(ctx, "select title from app.todos order by title")
		NoError(t, err)
		wantTitles(t, "adam, before the removal", got, adamSeesAsAdmin)

		// A read holds no lock that the removal needs: it commits at once.
		NoError(t, RPC(t, c.DB, c.Olivia, "remove_group_member", "group_id", c.Team, "user_id", c.AdamID))

		got, err = h.titles(ctx, "select title from app.todos order by title")
		NoError(t, err)
		wantTitles(t, "adam's next statement in the same request", got, adamSeesAlone)
		NoError(t, h.commit())

		before := titlesAsSuperuser(t, c)
		wantTitles(t, "adam's next GET", titles(t, c, c.Adam), adamSeesAlone)
		adam := c.In(t).As(c.Adam, "/todos")
		_, err = adam.Exec("POST", "insert into app.todos (title, group_id) values ('adam, after', $1)", c.Team)
		wantErr(t, "adam POSTs into team", err, "42501", "you cannot put rows of app.todos into group")
		n, err := adam.Exec("PATCH", "update app.todos set done = true where title = 'alice''s, in team'")
		NoError(t, err)
		if n != 0 {
			t.Errorf("adam PATCHed %d of team's rows after his removal", n)
		}
		n, err = adam.Exec("DELETE", "delete from app.todos where title = 'mia''s, in team'")
		NoError(t, err)
		if n != 0 {
			t.Errorf("adam DELETEd %d of team's rows after his removal", n)
		}
		if diff := cmp.Diff(before, titlesAsSuperuser(t, c)); diff != "" {
			t.Errorf("adam's refused writes changed app.todos (-before +after):\n%s", diff)
		}
		// His own rows stay his (he still reads both, above), but he edits
		// only the one outside team: an owner writes a row in a group only
		// while a member of it (SPEC §11).
		n, err = adam.Exec("PATCH", "update app.todos set done = true where title in ('adam''s own', 'adam''s, in team')")
		NoError(t, err)
		if n != 1 {
			t.Errorf("adam PATCHed %d of his own rows, want 1 (the one in no group)", n)
		}

		// Mia, still a member, keeps access.
		wantTitles(t, "mia's GET", titles(t, c, c.Mia), miaSeesInTeam)
		mia := c.In(t).As(c.Mia, "/todos")
		n, err = mia.Exec("PATCH", "update app.todos set done = true where title = 'alice''s, in team'")
		NoError(t, err)
		if n != 1 {
			t.Errorf("mia PATCHed %d rows, want 1", n)
		}
		_, err = mia.Exec("POST", "insert into app.todos (title, group_id) values ('mia, after', $1)", c.Team)
		NoError(t, err)
		after := titlesAsSuperuser(t, c)
		if !after["alice's, in team"] || !after["adam's own"] {
			t.Errorf("the allowed writes did not land: %v", after)
		}
		if _, ok := after["mia, after"]; !ok {
			t.Errorf("mia's POST into team did not land: %v", after)
		}
	})

	t.Run("an insert in flight: the removal waits for it", func(t *testing.T) {
		c := revocationSetup(t)
		ctx := t.Context()
		h := hold(t, c.DB, c.Adam, "POST", "/todos")
		n, err := h.exec(ctx, "insert into app.todos (title, group_id) values ('adam, in flight', $1)", c.Team)
		NoError(t, err)
		if n != 1 {
			t.Fatalf("adam's insert: %d rows", n)
		}
		// The insert's foreign key check holds FOR KEY SHARE on team's row
		// of iam.groups; the removal locks it FOR UPDATE, so it waits.
		removal := start(t, c.DB, c.Olivia, "POST", "/rpc/remove_group_member",
			rpcStep("remove_group_member", "group_id", c.Team, "user_id", c.AdamID))
		if blockers := waitForLock(t, c.DB, removal.pid); !slices.Contains(blockers, h.pid) {
			t.Errorf("the removal waits for %v, not for adam's request %d", blockers, h.pid)
		}
		if got := c.GroupMembers(c.Team); !slices.Contains(got, Membership{Group: c.Name(fmt.Sprint(c.Team)), User: "adam", Role: "admin"}) {
			t.Errorf("adam left team before his insert committed: %v", got)
		}
		NoError(t, h.commit())
		NoError(t, <-removal.done)

		if _, ok := titlesAsSuperuser(t, c)["adam, in flight"]; !ok {
			t.Error("adam's insert, authorised before the removal, is lost")
		}
		for _, m := range c.GroupMembers(c.Team) {
			if m.User == "adam" {
				t.Errorf("adam is still in team: %v", m)
			}
		}
		_, err = c.In(t).As(c.Adam, "/todos").Exec("POST", "insert into app.todos (title, group_id) values ('adam, after', $1)", c.Team)
		wantErr(t, "adam's next POST into team", err, "42501", "you cannot put rows of app.todos into group")
		wantTitles(t, "adam's next GET", titles(t, c, c.Adam), []string{"adam's own", "adam's, in team", "adam, in flight"})
	})

	t.Run("an update and a delete in flight: the removal does not wait", func(t *testing.T) {
		c := revocationSetup(t)
		ctx := t.Context()
		h := hold(t, c.DB, c.Adam, "PATCH", "/todos")
		n, err := h.exec(ctx, "update app.todos set done = true where title = 'alice''s, in team'")
		NoError(t, err)
		m, err := h.exec(ctx, "delete from app.todos where title = 'mia''s, in team'")
		NoError(t, err)
		if n != 1 || m != 1 {
			t.Fatalf("adam, still an admin: updated %d, deleted %d rows; want 1, 1", n, m)
		}
		// Updates and deletes of rows already in the group take no lock on
		// the group: the removal commits while they are in flight.
		NoError(t, RPC(t, c.DB, c.Olivia, "remove_group_member", "group_id", c.Team, "user_id", c.AdamID))
		NoError(t, h.commit())
		after := titlesAsSuperuser(t, c)
		if _, gone := after["mia's, in team"]; gone || !after["alice's, in team"] {
			t.Errorf("the writes authorised before the removal did not commit: %v", after)
		}

		n, err = c.In(t).As(c.Adam, "/todos").Exec("PATCH", "update app.todos set done = false where title = 'alice''s, in team'")
		NoError(t, err)
		if n != 0 || !titlesAsSuperuser(t, c)["alice's, in team"] {
			t.Errorf("adam's PATCH after the removal changed %d rows", n)
		}
	})

	t.Run("a statement that started before the removal finishes", func(t *testing.T) {
		c := revocationSetup(t)
		ctx := t.Context()
		// The superuser holds alice's row, so adam's PATCH starts, reads
		// his groups, and then waits for the row.
		lock, err := c.DB.SU.Begin(ctx)
		NoError(t, err)
		defer lock.Rollback(context.Background()) //nolint:errcheck
		_, err = lock.Exec(ctx, "select from app.todos where title = 'alice''s, in team' for update")
		NoError(t, err)
		var n int64
		patch := start(t, c.DB, c.Adam, "PATCH", "/todos", func(ctx context.Context, tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "update app.todos set done = true where title = 'alice''s, in team'")
			n = tag.RowsAffected()
			return err
		})
		waitForLock(t, c.DB, patch.pid)
		NoError(t, RPC(t, c.DB, c.Olivia, "remove_group_member", "group_id", c.Team, "user_id", c.AdamID))
		NoError(t, lock.Rollback(ctx))
		NoError(t, <-patch.done)
		if n != 1 || !titlesAsSuperuser(t, c)["alice's, in team"] {
			t.Errorf("adam's PATCH, started while he was a member, updated %d rows; want 1", n)
		}
	})
}

// ---------------------------------------------------------------------------
// Membership changes racing each other.
// ---------------------------------------------------------------------------

// call is one request of the group API by one of the crew.
type call struct {
	who  string // olivia, adam or mia
	fn   string
	args func(c *Crew, gid int64) []any
}

func setRole(user, role string) func(c *Crew, gid int64) []any {
	return func(c *Crew, gid int64) []any {
		return []any{"group_id", gid, "user_id", idOf(c, user), "role", role}
	}
}

func remove(user string) func(c *Crew, gid int64) []any {
	return func(c *Crew, gid int64) []any { return []any{"group_id", gid, "user_id", idOf(c, user)} }
}

func leave(c *Crew, gid int64) []any { return []any{"group_id", gid} }

func idOf(c *Crew, name string) string {
	switch name {
	case "olivia":
		return c.OliviaID
	case "adam":
		return c.AdamID
	case "mia":
		return c.MiaID
	}
	panic("no such person: " + name)
}

func crewMember(c *Crew, name string) Person {
	switch name {
	case "olivia":
		return c.Olivia
	case "adam":
		return c.Adam
	case "mia":
		return c.Mia
	}
	panic("no such person: " + name)
}

// serial is the outcome of running the two calls one after the other: the
// second call's error (code "" for success) and the group's members after.
type serial struct {
	code, msg string
	members   map[string]string // name -> role
}

// race is two calls on one group; serial[0] is a then b, serial[1] b then a.
type race struct {
	name   string
	admins []string // besides olivia, the owner who creates the group
	owners []string
	a, b   call
	serial [2]serial
}

var races = []race{
	{
		name: "two admins demote each other", admins: []string{"adam", "mia"},
		a: call{"adam", "set_group_member_role", setRole("mia", "member")},
		b: call{"mia", "set_group_member_role", setRole("adam", "member")},
		serial: [2]serial{
			{"42501", "can change roles", map[string]string{"olivia": "owner", "adam": "admin", "mia": "member"}},
			{"42501", "can change roles", map[string]string{"olivia": "owner", "adam": "member", "mia": "admin"}},
		},
	},
	{
		name: "the only two owners demote each other", owners: []string{"adam"},
		a: call{"olivia", "set_group_member_role", setRole("adam", "admin")},
		b: call{"adam", "set_group_member_role", setRole("olivia", "admin")},
		serial: [2]serial{
			{"42501", "can make or unmake owners", map[string]string{"olivia": "owner", "adam": "admin"}},
			{"42501", "can make or unmake owners", map[string]string{"olivia": "admin", "adam": "owner"}},
		},
	},
	{
		name: "two of three owners demote each other", owners: []string{"adam", "mia"},
		a: call{"olivia", "set_group_member_role", setRole("adam", "admin")},
		b: call{"adam", "set_group_member_role", setRole("olivia", "admin")},
		serial: [2]serial{
			{"42501", "can make or unmake owners", map[string]string{"olivia": "owner", "adam": "admin", "mia": "owner"}},
			{"42501", "can make or unmake owners", map[string]string{"olivia": "admin", "adam": "owner", "mia": "owner"}},
		},
	},
	{
		name: "the last two owners leave", owners: []string{"adam"}, admins: []string{"mia"},
		a: call{"olivia", "leave_group", leave},
		b: call{"adam", "leave_group", leave},
		serial: [2]serial{
			{"23514", "must keep at least one owner", map[string]string{"adam": "owner", "mia": "admin"}},
			{"23514", "must keep at least one owner", map[string]string{"olivia": "owner", "mia": "admin"}},
		},
	},
	{
		name: "the last two owners remove each other", owners: []string{"adam"}, admins: []string{"mia"},
		a: call{"olivia", "remove_group_member", remove("adam")},
		b: call{"adam", "remove_group_member", remove("olivia")},
		serial: [2]serial{
			{"PT404", "you are not a member of group", map[string]string{"olivia": "owner", "mia": "admin"}},
			{"PT404", "you are not a member of group", map[string]string{"adam": "owner", "mia": "admin"}},
		},
	},
	{
		name: "one of the last two owners leaves, the other steps down", owners: []string{"adam"}, admins: []string{"mia"},
		a: call{"olivia", "leave_group", leave},
		b: call{"adam", "set_group_member_role", setRole("adam", "admin")},
		serial: [2]serial{
			{"23514", "must keep at least one owner", map[string]string{"adam": "owner", "mia": "admin"}},
			{"23514", "must keep at least one owner", map[string]string{"olivia": "owner", "adam": "admin", "mia": "admin"}},
		},
	},
	{
		name: "an owner leaves while the other demotes them", owners: []string{"adam"}, admins: []string{"mia"},
		a: call{"olivia", "leave_group", leave},
		b: call{"adam", "set_group_member_role", setRole("olivia", "admin")},
		serial: [2]serial{
			{"PT404", "is not a member of group", map[string]string{"adam": "owner", "mia": "admin"}},
			// Demoted first, olivia may leave: both succeed.
			{"", "", map[string]string{"adam": "owner", "mia": "admin"}},
		},
	},
	{
		name: "an owner deletes the group while being demoted", owners: []string{"adam"},
		a: call{"olivia", "set_group_member_role", setRole("adam", "admin")},
		b: call{"adam", "delete_group", leave},
		serial: [2]serial{
			{"42501", "can delete the group", map[string]string{"olivia": "owner", "adam": "admin"}},
			// Deleted first: olivia is in no group any more (PT404, as for any group one is not in).
			{"PT404", "you are not a member of group", map[string]string{}},
		},
	},
	{
		name: "an admin adds a member while being removed", admins: []string{"adam"},
		a: call{"olivia", "remove_group_member", remove("adam")},
		b: call{"adam", "add_group_member", func(c *Crew, gid int64) []any {
			return []any{"group_id", gid, "user_id", c.MiaID, "role", "member"}
		}},
		serial: [2]serial{
			{"PT404", "you are not a member of group", map[string]string{"olivia": "owner"}},
			{"", "", map[string]string{"olivia": "owner", "mia": "member"}},
		},
	},
}

// newRaceGroup is a group created by olivia with the race's members.
func newRaceGroup(t *testing.T, c *Crew, r race) int64 {
	t.Helper()
	gid := CreateGroup(t, c.DB, c.Olivia, "race")
	for _, n := range r.owners {
		AddMember(t, c.DB, c.Olivia, gid, idOf(c, n), "owner")
	}
	for _, n := range r.admins {
		AddMember(t, c.DB, c.Olivia, gid, idOf(c, n), "admin")
	}
	return gid
}

// members is one group's iam.group_members as the superuser sees it.
func members(t *testing.T, c *Crew, gid int64) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, m := range c.GroupMembers(gid) {
		got[m.User] = m.Role
	}
	return got
}

// ownerless lists the groups among gids without an owner.
func ownerless(t *testing.T, d *Database, gids []int64) []int64 {
	t.Helper()
	rows, err := d.SU.Query(t.Context(), `
		select g.id from iam.groups g
		where g.id = any ($1) and not exists (select from iam.group_members m where m.group_id = g.id and m.role = 'owner')
		order by g.id`, gids)
	NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	NoError(t, err)
	return got
}

// TestGroupRacesDeterministic runs each race in both orders: the first
// call's request is held open after its statement (it holds the group's
// lock), the second is confirmed waiting on that lock, then the first
// commits. The second must get the answer it would get run after the
// first, never act on the role it had before the first committed.
func TestGroupRacesDeterministic(t *testing.T) {
	db := GroupsDB(t)
	for _, r := range races {
		for order, first := range []call{r.a, r.b} {
			second := []call{r.b, r.a}[order]
			t.Run(fmt.Sprintf("%s/%s first", r.name, first.who), func(t *testing.T) {
				c := NewCrew(t, db)
				gid := newRaceGroup(t, c, r)
				ctx := t.Context()
				h := hold(t, db, crewMember(c, first.who), "POST", "/rpc/"+first.fn)
				sql, values := rpcStatement(first.fn, first.args(c, gid)...)
				if err := h.step(func(tx pgx.Tx) error { _, err := tx.Exec(ctx, sql, values...); return err }); err != nil {
					t.Fatalf("%s: %s: %v", first.who, first.fn, err)
				}
				waiter := start(t, db, crewMember(c, second.who), "POST", "/rpc/"+second.fn, rpcStep(second.fn, second.args(c, gid)...))
				if blockers := waitForLock(t, db, waiter.pid); !slices.Contains(blockers, h.pid) {
					t.Errorf("%s waits for %v, not for %s's request %d", second.who, blockers, first.who, h.pid)
				}
				NoError(t, h.commit())
				want := r.serial[order]
				wantErr(t, second.who+": "+second.fn, <-waiter.done, want.code, want.msg)
				if diff := cmp.Diff(want.members, members(t, c, gid)); diff != "" {
					t.Errorf("members after (-want +got):\n%s", diff)
				}
				if bad := ownerless(t, db, []int64{gid}); len(bad) > 0 {
					t.Errorf("groups without an owner: %v", bad)
				}
			})
		}
	}
}

// TestGroupRacesStress runs each race for 50 rounds, both calls released
// together by a barrier on connections of their own. Every round must end
// in one of the two serial outcomes, and every group of the test must keep
// an owner after every round.
func TestGroupRacesStress(t *testing.T) {
	const rounds = 50
	db := GroupsDB(t)
	for _, r := range races {
		t.Run(r.name, func(t *testing.T) {
			c := NewCrew(t, db)
			conns := [2]*Database{ownConn(t, db), ownConn(t, db)}
			calls := [2]call{r.a, r.b}
			var gids []int64
			var outcomes [2]int
			for round := range rounds {
				gid := newRaceGroup(t, c, r)
				gids = append(gids, gid)
				barrier := make(chan struct{})
				var errs [2]error
				var wg sync.WaitGroup
				for i, cl := range calls {
					wg.Add(1)
					go func() {
						defer wg.Done()
						sql, values := rpcStatement(cl.fn, cl.args(c, gid)...)
						req := Requester{T: t, DB: conns[i], Who: crewMember(c, cl.who), Path: "/rpc/" + cl.fn}
						<-barrier
						_, errs[i] = req.Exec("POST", sql, values...)
					}()
				}
				close(barrier)
				wg.Wait()

				members := members(t, c, gid)
				matched := -1
				for order, s := range r.serial {
					firstErr, secondErr := errs[order], errs[1-order]
					if firstErr == nil && errorIs(secondErr, s.code, s.msg) && cmp.Equal(s.members, members) {
						matched = order
						break
					}
				}
				if matched < 0 {
					t.Fatalf("round %d: not a serial outcome: %s: %v; %s: %v; members %v",
						round, r.a.who, errs[0], r.b.who, errs[1], members)
				}
				outcomes[matched]++
				if bad := ownerless(t, db, gids); len(bad) > 0 {
					t.Fatalf("round %d: groups without an owner: %v", round, bad)
				}
			}
			t.Logf("%d rounds: %s first %d times, %s first %d times", rounds, r.a.who, outcomes[0], r.b.who, outcomes[1])
		})
	}
}

// errorIs: err is the expected refusal (or nil when code is "").
func errorIs(err error, code, msg string) bool {
	if code == "" {
		return err == nil
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code && strings.Contains(pgErr.Message, msg)
}
