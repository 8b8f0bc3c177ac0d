package stdlib_test

// Behind pgbouncer in transaction pooling mode: many clients share a few
// server connections, so consecutive transactions of one server session
// belong to different users. Every request is made as PostgREST makes it
// (pgrest.Do: role and claims set transaction-locally), and every request
// checks who the database saw and exactly which rows it got.
//
// pgbouncer 1.18 cannot keep protocol-level prepared statements across
// transactions in transaction mode, so these clients never prepare named
// statements: half use pgx's exec mode (unnamed statements, as PostgREST
// with db-prepared-statements = false), half the simple protocol.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/internal/pgtest"
)

// builtDBs are databases holding schema.sql and the build of this
// directory, one per name, made on first use.
var builtDBs struct {
	mu  sync.Mutex
	dbs map[string]*Database
}

func builtDB(t *testing.T, name string) *Database {
	t.Helper()
	s := Server(t)
	builtDBs.mu.Lock()
	defer builtDBs.mu.Unlock()
	if d := builtDBs.dbs[name]; d != nil {
		return d
	}
	d, err := CreateDatabase(s, name, "schema.sql")
	if err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	script, err := BuildScript(Dir)
	if err != nil {
		t.Fatalf("building policies/: %v", err)
	}
	if _, err := ApplyScript(t.Context(), s, name, script); err != nil {
		t.Fatalf("applying the build of policies/ to %s: %v", name, err)
	}
	if builtDBs.dbs == nil {
		builtDBs.dbs = map[string]*Database{}
	}
	builtDBs.dbs[name] = d
	return d
}

// pooledClient connects as authenticator (PostgREST's login role) through
// b, without named prepared statements (see the top of this file).
func pooledClient(t *testing.T, b *pgtest.PgBouncer, db, mode string) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(b.URL(db, "authenticator"))
	NoError(t, err)
	u.User = url.UserPassword("authenticator", "mypass")
	q := u.Query()
	q.Set("default_query_exec_mode", mode)
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(t.Context(), u.String())
	if err != nil {
		t.Fatalf("connecting through pgbouncer: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// superuser is a connection of its own straight to db as the superuser.
func superuser(t *testing.T, db *Database) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), db.Server.URL(db.Name, "postgres"))
	if err != nil {
		t.Fatalf("connecting as the superuser: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

var clientModes = []string{"exec", "simple_protocol"}

// seen is who the database saw in one request, and on which backend.
type seen struct {
	pid    int32
	role   string // current_user
	sub    string // the sub claim of request.jwt.claims
	caller string // iam.caller_id(), the runtime's user id ("" for anonymous)
}

// pooledDo runs fn as who, in the transaction PostgREST opens for method,
// after reading who the database sees.
func pooledDo(ctx context.Context, conn *pgx.Conn, who Person, method, path string, fn func(pgx.Tx) error) (seen, error) {
	var s seen
	req := pgrest.Request{Method: method, Path: path, Role: who.Role, Claims: who.Claims}
	err := pgrest.Do(ctx, conn, req, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `select pg_backend_pid(), current_user::text,
			coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')`).Scan(&s.pid, &s.role, &s.sub); err != nil {
			return fmt.Errorf("reading the request's identity: %w", err)
		}
		if who.Role == "web_user" {
			if err := tx.QueryRow(ctx, "select coalesce(iam.caller_id(), '')").Scan(&s.caller); err != nil {
				return fmt.Errorf("iam.caller_id(): %w", err)
			}
		}
		return fn(tx)
	})
	return s, err
}

// checkSeen: the database saw exactly who.
func checkSeen(who Person, s seen) error {
	want := seen{pid: s.pid, role: who.Role, sub: UserID(who), caller: UserID(who)}
	if want != s {
		return fmt.Errorf("the database saw role %q, sub %q, caller %q; want %q, %q, %q",
			s.role, s.sub, s.caller, want.role, want.sub, want.caller)
	}
	return nil
}

// poolCast is the crew plus anonymous, with what each sees of the rows
// seeded by crew.seed (ids 1-4 of todos and of chats) and of the crew's
// groups.
type poolCast struct {
	who    Person
	rows   []int64   // visible ids among 1-4, for todos and chats alike (see groupMatrix "list")
	groups []MyGroup // GET /groups among the crew's groups
}

func castOf(c *Crew) []poolCast {
	g := func(name, role string) MyGroup { return MyGroup{Name: name, MyRole: role} }
	return []poolCast{
		{c.Alice, []int64{1, 2, 3}, []MyGroup{g("alice's room", "owner"), g("side", "owner"), g("team", "member")}},
		{c.Olivia, []int64{2, 3}, []MyGroup{g("side", "member"), g("team", "owner")}},
		{c.Adam, []int64{2, 3}, []MyGroup{g("side", "member"), g("team", "admin")}},
		{c.Mia, []int64{2, 3}, []MyGroup{g("side", "member"), g("team", "member")}},
		{c.Otto, []int64{4}, []MyGroup{g("otto's club", "owner")}},
		{c.Carol, nil, nil},
		{Anonymous, nil, nil}, // every read refused: 42501
	}
}

// pooledLog records which users each backend served.
type pooledLog struct {
	mu    sync.Mutex
	users map[int32]map[string]bool // backend pid -> names
	n     int
}

func (l *pooledLog) add(s seen, who Person) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users == nil {
		l.users = map[int32]map[string]bool{}
	}
	if l.users[s.pid] == nil {
		l.users[s.pid] = map[string]bool{}
	}
	l.users[s.pid][who.Name] = true
	l.n++
}

// pooledSession makes requests of one client through pgbouncer, checking
// each one's identity and recording its backend.
type pooledSession struct {
	ctx  context.Context
	conn *pgx.Conn // through pgbouncer, as authenticator
	su   *pgx.Conn // straight to PostgreSQL, as the superuser: what really happened
	log  *pooledLog
}

func (p pooledSession) do(who Person, method, path string, fn func(pgx.Tx) error) error {
	s, err := pooledDo(p.ctx, p.conn, who, method, path, fn)
	if s.pid != 0 {
		p.log.add(s, who)
		if e := checkSeen(who, s); e != nil {
			return fmt.Errorf("%s %s as %s: %w", method, path, who.Name, e)
		}
	}
	return err
}

// ids is a read returning ids.
func (p pooledSession) ids(who Person, path, sql string, args ...any) ([]int64, error) {
	var got []int64
	err := p.do(who, "GET", path, func(tx pgx.Tx) error {
		rows, err := tx.Query(p.ctx, sql, args...)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return got, err
}

// wantRead checks a read: exactly want, or 42501 for anonymous.
func wantRead[T any](who Person, what string, got T, err error, want T) error {
	if who.Role == "web_anon" {
		if code := pgrest.SQLState(err); code != "42501" {
			return fmt.Errorf("%s as anonymous: %v, want SQLSTATE 42501", what, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s as %s: %w", what, who.Name, err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		return fmt.Errorf("%s as %s (-want +got):\n%s", what, who.Name, diff)
	}
	return nil
}

// round is one client's turn as one cast member: every kind of request,
// reads checked against the seed, writes checked from both sides.
func (p pooledSession) round(me, other poolCast, tag string) error {
	who := me.who
	// GET /todos, GET /chats: the seeded rows this user sees. Rows other
	// clients create meanwhile have ids above 4.
	for _, tbl := range GroupTables {
		got, err := p.ids(who, tbl.Path, "select id from "+tbl.Name+" where id <= 4 order by id")
		if err := wantRead(who, "GET "+tbl.Path, got, err, me.rows); err != nil {
			return err
		}
		// GET /<table>?id=eq.N for every seeded row: seen or not.
		for n := int64(1); n <= 4; n++ {
			got, err := p.ids(who, tbl.Path, "select id from "+tbl.Name+" where id = $1", n)
			var want []int64
			if slices.Contains(me.rows, n) {
				want = []int64{n}
			}
			if err := wantRead(who, fmt.Sprintf("GET %s?id=eq.%d", tbl.Path, n), got, err, want); err != nil {
				return err
			}
		}
		// HEAD with count=exact.
		var count int64
		err = p.do(who, "HEAD", tbl.Path, func(tx pgx.Tx) error {
			return tx.QueryRow(p.ctx, "select count(*) from "+tbl.Name+" where id <= 4").Scan(&count)
		})
		if err := wantRead(who, "HEAD "+tbl.Path+" (count)", count, err, int64(len(me.rows))); err != nil {
			return err
		}
	}
	// GET /groups: the user's own groups with their role.
	var groups []MyGroup
	err := p.do(who, "GET", "/groups", func(tx pgx.Tx) error {
		rows, err := tx.Query(p.ctx, "select name, my_role from app.groups where name in ('team', 'side', 'alice''s room', 'otto''s club') order by name")
		if err != nil {
			return err
		}
		groups, err = pgx.CollectRows(rows, pgx.RowToStructByPos[MyGroup])
		return err
	})
	if err := wantRead(who, "GET /groups", groups, err, me.groups); err != nil {
		return err
	}

	title := "pooled " + tag
	if who.Role == "web_anon" {
		// POST /todos and POST /rpc/create_group without a JWT: refused,
		// and nothing was written.
		err := p.do(who, "POST", "/todos", func(tx pgx.Tx) error {
			_, err := tx.Exec(p.ctx, "insert into app.todos (title) values ($1)", title)
			return err
		})
		if code := pgrest.SQLState(err); code != "42501" {
			return fmt.Errorf("POST /todos as anonymous: %v, want 42501", err)
		}
		err = p.do(who, "POST", "/rpc/create_group", func(tx pgx.Tx) error {
			_, err := tx.Exec(p.ctx, "select app.create_group(name => $1)", title)
			return err
		})
		if code := pgrest.SQLState(err); code != "42501" {
			return fmt.Errorf("POST /rpc/create_group as anonymous: %v, want 42501", err)
		}
		var n int64
		if err := p.su.QueryRow(p.ctx, "select (select count(*) from app.todos where title = $1) + (select count(*) from iam.groups where name = $1)", title).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("anonymous's refused writes left %d rows", n)
		}
		return nil
	}

	// POST /todos: a todo of mine; PATCH and DELETE by another user reach
	// nothing; mine reach it.
	var todo int64
	err = p.do(who, "POST", "/todos", func(tx pgx.Tx) error {
		return tx.QueryRow(p.ctx, "insert into app.todos (title) values ($1) returning id", title).Scan(&todo)
	})
	if err != nil {
		return fmt.Errorf("POST /todos as %s: %w", who.Name, err)
	}
	write := func(as Person, method, sql string) (int64, error) {
		var n int64
		err := p.do(as, method, "/todos", func(tx pgx.Tx) error {
			tag, err := tx.Exec(p.ctx, sql, todo)
			n = tag.RowsAffected()
			return err
		})
		return n, err
	}
	type state struct {
		Owner, Title string
		Done         bool
	}
	row := func() (state, error) {
		var s state
		err := p.su.QueryRow(p.ctx, "select owner_id::text, title, done from app.todos where id = $1", todo).Scan(&s.Owner, &s.Title, &s.Done)
		return s, err
	}
	for _, w := range []struct {
		as     Person
		method string
		sql    string
		n      int64
		after  state
	}{
		{other.who, "PATCH", "update app.todos set title = 'taken' where id = $1", 0, state{UserID(who), title, false}},
		{other.who, "DELETE", "delete from app.todos where id = $1", 0, state{UserID(who), title, false}},
		{who, "PATCH", "update app.todos set done = true where id = $1", 1, state{UserID(who), title, true}},
	} {
		n, err := write(w.as, w.method, w.sql)
		if err != nil || n != w.n {
			return fmt.Errorf("%s /todos?id=eq.%d as %s: %d rows, %v; want %d rows", w.method, todo, w.as.Name, n, err, w.n)
		}
		got, err := row()
		if err != nil {
			return fmt.Errorf("reading todo %d as the superuser: %w", todo, err)
		}
		if got != w.after {
			return fmt.Errorf("after %s as %s the superuser finds %+v, want %+v", w.method, w.as.Name, got, w.after)
		}
	}
	if n, err := write(who, "DELETE", "delete from app.todos where id = $1"); err != nil || n != 1 {
		return fmt.Errorf("DELETE /todos?id=eq.%d as %s: %d rows, %v; want 1", todo, who.Name, n, err)
	}
	if _, err := row(); !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("todo %d after its owner deleted it: %v, want it gone", todo, err)
	}

	// The group API: POST /rpc/create_group; the new group's members are
	// seen by its owner only; another user cannot add to it.
	var gid int64
	err = p.do(who, "POST", "/rpc/create_group", func(tx pgx.Tx) error {
		return tx.QueryRow(p.ctx, "select app.create_group(name => $1)", title).Scan(&gid)
	})
	if err != nil {
		return fmt.Errorf("POST /rpc/create_group as %s: %w", who.Name, err)
	}
	for _, v := range []struct {
		as   Person
		want []string
	}{{who, []string{UserID(who) + " owner"}}, {other.who, nil}} {
		var got []string
		err := p.do(v.as, "GET", "/group_members", func(tx pgx.Tx) error {
			rows, err := tx.Query(p.ctx, "select user_id || ' ' || role from app.group_members where group_id = $1", gid)
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err := wantRead(v.as, fmt.Sprintf("GET /group_members?group_id=eq.%d", gid), got, err, v.want); err != nil {
			return err
		}
	}
	err = p.do(other.who, "POST", "/rpc/add_group_member", func(tx pgx.Tx) error {
		_, err := tx.Exec(p.ctx, "select app.add_group_member(group_id => $1, user_id => $2)", gid, UserID(other.who))
		return err
	})
	// Not a member: the group looks as if it did not exist (PT404, HTTP 404).
	if code := pgrest.SQLState(err); code != "PT404" {
		return fmt.Errorf("POST /rpc/add_group_member as %s into %s's group: %v, want PT404", other.who.Name, who.Name, err)
	}
	var members []string
	rows, err := p.su.Query(p.ctx, "select user_id || ' ' || role from iam.group_members where group_id = $1", gid)
	if err == nil {
		members, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || !slices.Equal(members, []string{UserID(who) + " owner"}) {
		return fmt.Errorf("members of %s's new group as the superuser sees them: %v, %v; want only %s as owner", who.Name, members, err, who.Name)
	}
	err = p.do(who, "POST", "/rpc/delete_group", func(tx pgx.Tx) error {
		_, err := tx.Exec(p.ctx, "select app.delete_group(group_id => $1)", gid)
		return err
	})
	if err != nil {
		return fmt.Errorf("POST /rpc/delete_group as %s: %w", who.Name, err)
	}
	return nil
}

// TestPoolingInterleavedUsers: six clients through pgbouncer (pool of two
// server connections), each taking every cast member's part in turn, so
// users interleave on every server connection. No request sees another
// user's identity or rows, refused writes change nothing, and the two
// backends each served several users.
func TestPoolingInterleavedUsers(t *testing.T) {
	const poolSize, clients = 2, 6
	db := builtDB(t, "pooling")
	b := pgtest.NewPgBouncer(t, db.Server, pgtest.PgBouncerOptions{PoolSize: poolSize})
	c := NewCrew(t, db).In(t)
	for _, tbl := range GroupTables {
		c.Seed(tbl)
	}
	cast := castOf(c)
	log := &pooledLog{}
	sessions := make([]pooledSession, clients)
	for i := range sessions {
		sessions[i] = pooledSession{ctx: t.Context(), conn: pooledClient(t, b, db.Name, clientModes[i%len(clientModes)]),
			su: superuser(t, db), log: log}
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := sessions[i]
			for k := range cast {
				me := cast[(i+k)%len(cast)]
				other := cast[(i+k+4)%len(cast)] // someone else, never anonymous for a user's write checks
				if other.who.Role == "web_anon" {
					other = cast[(i+k+5)%len(cast)]
				}
				if err := p.round(me, other, fmt.Sprintf("client %d round %d", i, k)); err != nil {
					errs <- fmt.Errorf("client %d (%s): %w", i, clientModes[i%len(clientModes)], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The seeded rows are untouched.
	for _, tbl := range GroupTables {
		if n := Scalar[int64](t, db, "select count(*) from "+tbl.Name+" where id > 4"); n != 0 {
			t.Errorf("%s: %d rows left by the clients", tbl.Name, n)
		}
	}

	// The requests really shared the pool: at most poolSize backends, and
	// a backend that served several users, signed in and anonymous.
	var report []string
	shared := false
	for pid, users := range log.users {
		names := make([]string, 0, len(users))
		for n := range users {
			names = append(names, n)
		}
		sort.Strings(names)
		report = append(report, fmt.Sprintf("backend %d: %s", pid, strings.Join(names, ", ")))
		if len(users) >= 3 && users["anonymous"] {
			shared = true
		}
	}
	t.Logf("%d requests on %d backends:\n%s", log.n, len(log.users), strings.Join(report, "\n"))
	if len(log.users) > poolSize {
		t.Errorf("%d backends served the requests, want at most the pool size %d", len(log.users), poolSize)
	}
	if !shared {
		t.Errorf("no backend served three or more users including anonymous: the requests did not interleave")
	}
}

// TestPoolingLeftoverSessionState: a client that sets the role, the JWT
// claims and the search_path for its session (not for a transaction) on a
// pooled server connection and leaves poisons that connection: the state
// really stays for the next client. Requests made as PostgREST makes them
// on that same connection (a pool of one) still see only their own caller
// and rows: they rely on no session state.
func TestPoolingLeftoverSessionState(t *testing.T) {
	db := builtDB(t, "pooling")
	b := pgtest.NewPgBouncer(t, db.Server, pgtest.PgBouncerOptions{PoolSize: 1})
	c := NewCrew(t, db).In(t)
	for _, tbl := range GroupTables {
		c.Seed(tbl)
	}
	ctx := t.Context()
	aliceClaims := `{"role": "web_user", "sub": "` + c.AliceID + `"}`

	// The careless client: session-level role, claims and search_path.
	careless := pooledClient(t, b, db.Name, "simple_protocol")
	var poisoned int32
	for _, sql := range []string{
		"set role web_user",
		"select set_config('request.jwt.claims', '" + aliceClaims + "', false)",
		"set search_path = app, public",
	} {
		if _, err := careless.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	NoError(t, careless.QueryRow(ctx, "select pg_backend_pid()").Scan(&poisoned))
	NoError(t, careless.Close(ctx))

	// The state is really there for the next client of that connection.
	next := pooledClient(t, b, db.Name, "exec")
	var pid int32
	var role, claims, path string
	NoError(t, next.QueryRow(ctx, "select pg_backend_pid(), current_user::text, current_setting('request.jwt.claims', true), current_setting('search_path')").
		Scan(&pid, &role, &claims, &path))
	if pid != poisoned || role != "web_user" || claims != aliceClaims || path != "app, public" {
		t.Fatalf("next client: backend %d, role %q, claims %s, search_path %q; want backend %d still as web_user with alice's claims and search_path app, public (else this test proves nothing)",
			pid, role, claims, path, poisoned)
	}

	// PostgREST-style requests of others on that connection.
	log := &pooledLog{}
	p := pooledSession{ctx: ctx, conn: next, su: superuser(t, db), log: log}
	other := pooledSession{ctx: ctx, conn: pooledClient(t, b, db.Name, "simple_protocol"), su: p.su, log: log}
	cast := castOf(c)
	for k, me := range cast {
		if me.who.Name == "alice" {
			continue // the poisoned identity: seeing alice's rows would be right for her
		}
		s := []pooledSession{p, other}[k%2]
		if err := s.round(me, cast[0], fmt.Sprintf("after the careless client, %d", k)); err != nil {
			t.Error(err)
		}
	}
	// A write lands with the requester as its owner, not alice.
	var owner string
	err := p.do(c.Otto, "POST", "/todos", func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "insert into app.todos (title) values ('otto after alice') returning owner_id::text").Scan(&owner)
	})
	NoError(t, err)
	if got := Scalar[string](t, db, "select owner_id::text from app.todos where title = 'otto after alice'"); got != c.OttoID || owner != c.OttoID {
		t.Errorf("otto's new todo is owned by %s (RETURNING %s), want otto %s", c.Name(got), c.Name(owner), c.OttoID)
	}
	if len(log.users) != 1 || log.users[poisoned] == nil {
		t.Errorf("requests ran on backends %v, want only the poisoned one %d (pool of one)", log.users, poisoned)
	}
	t.Logf("%d requests on the poisoned backend %d by %d users", log.n, poisoned, len(log.users[poisoned]))
}
