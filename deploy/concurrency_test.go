package deploy

// apply while requests flow (SPEC, Concurrency). Requests are made as
// PostgREST 12 makes them (internal/pgrest), each on a connection of its
// own, as the authenticator role. Waits are confirmed in pg_stat_activity
// and pg_locks, never assumed after a sleep; durations are measured and
// logged, never asserted.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iamc/iamc/internal/pgrest"
)

// The policy change the tests apply: a new resource (notes), and todos'
// owners lose delete (only group admins keep it).
const todosNoOwnerDelete = `resource app.todos {
  owner column owner_id
  group column group_id
  owner can read, create, write
  group member can read, create, write
  group admin can delete
}
`

var (
	oldFiles = without(allFiles, "notes.iam")
	newFiles = with(allFiles, "todos.iam", todosNoOwnerDelete)
)

// apiConn is a connection as authenticator, the role PostgREST logs in as.
func (e *env) apiConn() *pgx.Conn {
	e.t.Helper()
	conn, err := pgx.Connect(e.t.Context(), e.s.URL(e.db, "authenticator"))
	if err != nil {
		e.t.Fatalf("connecting as authenticator: %v", err)
	}
	e.t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// userRequest is method path as the signed-in user sub.
func userRequest(sub, method, path string) pgrest.Request {
	return pgrest.Request{Method: method, Path: path, Role: "web_user",
		Claims: map[string]any{"role": "web_user", "sub": sub}}
}

// waitForLock returns once backend pid waits on a lock, with the sessions
// blocking it. It polls pg_stat_activity; the minute guards against a hang.
func (e *env) waitForLock(pid uint32) []int32 {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting bool
		var blockers []int32
		err := e.conn.QueryRow(e.t.Context(), `
			select coalesce(wait_event_type = 'Lock', false), pg_blocking_pids(pid)
			from pg_stat_activity where pid = $1`, int32(pid)).Scan(&waiting, &blockers)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			e.t.Fatalf("reading pg_stat_activity: %v", err)
		}
		if waiting {
			return blockers
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("backend %d never waited on a lock", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// awaitedLock is the lock backend pid waits for: relation and mode.
func (e *env) awaitedLock(pid uint32) string {
	e.t.Helper()
	return e.query(`select coalesce(relation::regclass::text, locktype) || ' ' || mode from pg_locks where pid = $1 and not granted`, int32(pid))
}

// epoch is which policy set a request's result belongs to.
type epoch int

const (
	either epoch = iota // the same under both
	oldEpoch
	newEpoch
)

func (p epoch) String() string { return [...]string{"either", "old", "new"}[p] }

// timed is one request's outcome.
type timed struct {
	what  string
	epoch epoch
	took  time.Duration
	start time.Time
}

// cycle is one user's round of requests. Each is checked against both
// policy sets: a result right under neither, or any error but the one the
// old set gives, is wrong.
func cycle(ctx context.Context, conn *pgx.Conn, sub string, n int) ([]timed, error) {
	var out []timed
	do := func(method, path, what string, fn func(pgx.Tx) (epoch, error)) error {
		start := time.Now()
		var ep epoch
		err := pgrest.Do(ctx, conn, userRequest(sub, method, path), func(tx pgx.Tx) error {
			var err error
			ep, err = fn(tx)
			return err
		})
		// Without a grant on notes, the old set refuses with 42501.
		if err != nil && strings.HasPrefix(what, "notes") && pgrest.SQLState(err) == "42501" &&
			strings.Contains(err.Error(), "permission denied for table notes") {
			ep, err = oldEpoch, nil
		}
		if err != nil {
			return fmt.Errorf("%s %s (%s): %w", method, path, what, err)
		}
		out = append(out, timed{what: what, epoch: ep, took: time.Since(start), start: start})
		return nil
	}
	owners := func(tx pgx.Tx, sql string) (epoch, error) {
		rows, err := tx.Query(ctx, sql)
		if err != nil {
			return either, err
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return either, err
		}
		for _, o := range got {
			if o != sub {
				return either, fmt.Errorf("%s saw a row of %s", sub, o)
			}
		}
		return newEpoch, nil
	}
	var id int64
	if err := do("POST", "/todos", "todos insert", func(tx pgx.Tx) (epoch, error) {
		var owner string
		if err := tx.QueryRow(ctx, `insert into app.todos (title) values ($1) returning id, owner_id::text`, fmt.Sprint("todo ", n)).Scan(&id, &owner); err != nil {
			return either, err
		}
		if owner != sub {
			return either, fmt.Errorf("the new todo's owner is %s, not %s", owner, sub)
		}
		return either, nil
	}); err != nil {
		return out, err
	}
	if err := do("GET", "/todos", "todos read", func(tx pgx.Tx) (epoch, error) {
		_, err := owners(tx, `select owner_id::text from app.todos`)
		return either, err
	}); err != nil {
		return out, err
	}
	if err := do("DELETE", "/todos", "todos delete", func(tx pgx.Tx) (epoch, error) {
		tag, err := tx.Exec(ctx, `delete from app.todos where id = $1`, id)
		switch {
		case err != nil:
			return either, err
		case tag.RowsAffected() == 1:
			return oldEpoch, nil // owners may delete
		case tag.RowsAffected() == 0:
			return newEpoch, nil // owners may not: the row is invisible to DELETE
		}
		return either, fmt.Errorf("deleted %d rows", tag.RowsAffected())
	}); err != nil {
		return out, err
	}
	if err := do("GET", "/notes", "notes read", func(tx pgx.Tx) (epoch, error) {
		return owners(tx, `select owner_id::text from app.notes`)
	}); err != nil {
		return out, err
	}
	err := do("POST", "/notes", "notes insert", func(tx pgx.Tx) (epoch, error) {
		var owner string
		if err := tx.QueryRow(ctx, `insert into app.notes (body) values ('note') returning owner_id::text`).Scan(&owner); err != nil {
			return either, err
		}
		if owner != sub {
			return either, fmt.Errorf("the new note's owner is %s, not %s", owner, sub)
		}
		return newEpoch, nil
	})
	return out, err
}

// TestApplyWhileRequestsFlow: users' requests run without pause while apply
// installs a new resource and takes a permission away. Every request
// succeeds with a result right under the old or the new policies (never a
// mix, never new then old for one user), or waits; apply succeeds.
func TestApplyWhileRequestsFlow(t *testing.T) {
	e := newEnv(t, oldFiles)
	e.apply(Options{})
	e.files(newFiles)
	in := e.input()
	ctx := t.Context()

	const users = 4
	var (
		wg        sync.WaitGroup
		ready     sync.WaitGroup // every user has run a cycle under the old policies
		applied   = make(chan struct{})
		mu        sync.Mutex
		all       [users][]timed
		failures  []string
		afterDone [users]int
	)
	ready.Add(users)
	for u := range users {
		conn := e.apiConn()
		sub := fmt.Sprintf("00000000-0000-4000-8000-%012d", u+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for n := 0; ; n++ {
				got, err := cycle(ctx, conn, sub, n)
				mu.Lock()
				all[u] = append(all[u], got...)
				if err != nil {
					failures = append(failures, fmt.Sprintf("user %d: %v", u+1, err))
				}
				mu.Unlock()
				if first {
					ready.Done()
					first = false
				}
				if err != nil {
					return
				}
				select {
				case <-applied:
					// A few rounds after apply returned: they must see the new policies.
					if afterDone[u]++; afterDone[u] == 3 {
						return
					}
				default:
				}
			}
		}()
	}
	ready.Wait()

	applyStart := time.Now()
	r, err := Apply(ctx, e.connect(), in, Options{})
	applyTook := time.Since(applyStart)
	close(applied)
	wg.Wait()
	if err != nil {
		t.Fatalf("apply while requests flow: %v", err)
	}
	if !r.Applied {
		t.Fatal("apply changed nothing")
	}
	for _, f := range failures {
		t.Error(f)
	}

	var durations []time.Duration
	var overlapping []time.Duration
	counts := map[string]int{}
	for u, reqs := range all {
		seenNew := false
		for i, q := range reqs {
			counts[q.epoch.String()]++
			durations = append(durations, q.took)
			if q.start.Before(applyStart.Add(applyTook)) && q.start.Add(q.took).After(applyStart) {
				overlapping = append(overlapping, q.took)
			}
			switch q.epoch {
			case newEpoch:
				seenNew = true
			case oldEpoch:
				if seenNew {
					t.Errorf("user %d, request %d (%s): the old policies after the new ones", u+1, i, q.what)
				}
			}
		}
		if len(reqs) == 0 || reqs[0].epoch == newEpoch {
			t.Errorf("user %d made no request under the old policies", u+1)
		}
		if last := reqs[len(reqs)-1]; last.epoch != newEpoch {
			t.Errorf("user %d: the last request (%s) is not under the new policies: %s", u+1, last.what, last.epoch)
		}
	}
	if counts["old"] == 0 || counts["new"] == 0 {
		t.Errorf("requests by policy set: %v; want some under each", counts)
	}
	if p := e.plan(); p.HasChanges() {
		t.Errorf("plan after apply:\n%s", text(t, p))
	}
	slices.Sort(durations)
	slices.Sort(overlapping)
	t.Logf("apply took %s (lock_timeout %s); %d requests (%v); request time median %s, max %s; %d requests overlapped apply, max %s",
		applyTook.Round(time.Millisecond), DefaultLockTimeout, len(durations), counts,
		durations[len(durations)/2].Round(time.Microsecond), durations[len(durations)-1].Round(time.Microsecond),
		len(overlapping), maxOf(overlapping).Round(time.Microsecond))
}

func maxOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// TestApplyGivesUpBehindALongRequest: a request transaction that holds
// app.todos (an insert not yet committed) makes apply wait lock_timeout
// and give up with 55P03, changing nothing; a request that queued behind
// apply's lock request then runs, and succeeds; the long request commits.
func TestApplyGivesUpBehindALongRequest(t *testing.T) {
	e := newEnv(t, oldFiles)
	e.apply(Options{})
	e.files(newFiles)
	ctx := t.Context()
	before := text(t, e.plan())
	policiesBefore := e.query(`select string_agg(polname, ',' order by polname) from pg_policy where polrelid = 'app.todos'::regclass`)

	// The long request: an insert, then the transaction stays open.
	const holder = "00000000-0000-4000-8000-000000000001"
	longConn := e.apiConn()
	inserted := make(chan error, 1)
	release := make(chan struct{})
	long := make(chan error, 1)
	go func() {
		long <- pgrest.Do(ctx, longConn, userRequest(holder, "POST", "/todos"), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `insert into app.todos (title) values ('long')`)
			inserted <- err
			if err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	if err := <-inserted; err != nil {
		t.Fatalf("the long request's insert: %v", err)
	}

	opts := Options{LockTimeout: time.Second}
	applyConn := e.connect()
	applyPID := applyConn.PgConn().PID()
	applied := make(chan error, 1)
	applyStart := time.Now()
	var applyTook time.Duration
	go func() {
		_, err := Apply(ctx, applyConn, e.input(), opts)
		applyTook = time.Since(applyStart)
		applied <- err
	}()
	if blockers := e.waitForLock(applyPID); !slices.Contains(blockers, int32(longConn.PgConn().PID())) {
		t.Errorf("apply waits for %v, not for the long request", blockers)
	}
	if got := e.awaitedLock(applyPID); got != "app.todos AccessExclusiveLock" {
		t.Errorf("apply waits for %q", got)
	}

	// A request arriving now queues behind apply's lock request.
	const reader = "00000000-0000-4000-8000-000000000002"
	readConn := e.apiConn()
	var readRows int
	readStart := time.Now()
	var readTook time.Duration
	read := make(chan error, 1)
	go func() {
		read <- pgrest.Do(ctx, readConn, userRequest(reader, "GET", "/todos"), func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `select count(*) from app.todos`).Scan(&readRows)
			readTook = time.Since(readStart)
			return err
		})
	}()
	if blockers := e.waitForLock(readConn.PgConn().PID()); !slices.Contains(blockers, int32(applyPID)) {
		t.Errorf("the queued request waits for %v, not for apply (%d)", blockers, applyPID)
	}

	err := <-applied
	var lockErr *LockTimeoutError
	var pgErr *pgconn.PgError
	if !errors.As(err, &lockErr) || !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("apply behind a long request: %v, want a lock timeout (55P03)", err)
	}
	if lockErr.Timeout != time.Second || !strings.Contains(err.Error(), "lock_timeout (1s) reached while running") ||
		!strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("apply's error: %v", err)
	}
	if err := <-read; err != nil {
		t.Errorf("the request queued behind apply failed: %v", err)
	}
	if readRows != 0 {
		t.Errorf("the queued request saw %d rows; the reader has none", readRows)
	}
	close(release)
	if err := <-long; err != nil {
		t.Errorf("the long request failed: %v", err)
	}

	// Nothing half-applied.
	if got := e.query(`select count(*)::text from app.todos where title = 'long' and owner_id = $1`, holder); got != "1" {
		t.Errorf("the long request's row: %s", got)
	}
	if got := e.query(`select string_agg(polname, ',' order by polname) from pg_policy where polrelid = 'app.todos'::regclass`); got != policiesBefore {
		t.Errorf("app.todos policies changed: %s, was %s", got, policiesBefore)
	}
	if got := e.query(`select count(*)::text from pg_policy where polrelid = 'app.notes'::regclass`); got != "0" || appliedRows(e) != "1" {
		t.Errorf("the apply that gave up left %s policies on app.notes, %s applies recorded", got, appliedRows(e))
	}
	if diff := cmp.Diff(before, text(t, e.plan())); diff != "" {
		t.Errorf("the plan changed (-before +after):\n%s", diff)
	}
	t.Logf("apply gave up after %s (lock_timeout %s); the queued request waited %s", applyTook.Round(time.Millisecond), opts.LockTimeout, readTook.Round(time.Millisecond))

	// Once the long request is done, apply goes through.
	if r := e.apply(opts); !r.Applied {
		t.Error("apply after the long request did nothing")
	}
}
