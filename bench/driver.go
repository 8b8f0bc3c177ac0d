package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/stdlib"
)

// AuthenticatedRole is the role PostgREST switches to for a request with a
// JWT (policies/iam.iam).
const AuthenticatedRole = "web_user"

// Config is a set of planner settings both sides run with: every
// connection of both pools gets them as startup parameters.
type Config struct {
	Name     string            `json:"name"`
	Settings map[string]string `json:"settings"`
}

// Configs are the two configurations the report compares.
func Configs() []Config {
	return []Config{
		{Name: "default", Settings: map[string]string{}},
		{Name: "tuned", Settings: map[string]string{"random_page_cost": "1.1"}},
	}
}

// Target is where the requests go.
type Target struct {
	DB          string // superuser URL: set-up, and the floor (switching to FloorRole)
	APIUser     string // PostgREST's login role
	APIPassword string
	// PreRequest: the RLS side also runs the db-pre-request
	// (iam.check_request), as the shipped postgrest.conf configures it.
	PreRequest bool
}

// pools are the two sides of one configuration.
type pools struct {
	cfg        Config
	preRequest bool          // Target.PreRequest
	rls        *pgxpool.Pool // as authenticator, switching to web_user per request
	floor      *pgxpool.Pool // as the superuser, switching to FloorRole per request
	shown      map[string]string
}

func openPools(ctx context.Context, t Target, cfg Config, size int) (*pools, error) {
	mk := func(user, password string) (*pgxpool.Pool, error) {
		pc, err := pgxpool.ParseConfig(t.DB)
		if err != nil {
			return nil, err
		}
		if user != "" {
			pc.ConnConfig.User, pc.ConnConfig.Password = user, password
		}
		pc.ConnConfig.RuntimeParams["application_name"] = "iamc bench"
		for k, v := range cfg.Settings {
			pc.ConnConfig.RuntimeParams[k] = v
		}
		pc.MaxConns, pc.MinConns = int32(size), 0
		return pgxpool.NewWithConfig(ctx, pc)
	}
	p := &pools{cfg: cfg, preRequest: t.PreRequest, shown: map[string]string{}}
	var err error
	if p.rls, err = mk(t.APIUser, t.APIPassword); err != nil {
		return nil, fmt.Errorf("connecting as %s: %w", t.APIUser, err)
	}
	if p.floor, err = mk("", ""); err != nil {
		p.rls.Close()
		return nil, err
	}
	for _, name := range []string{"random_page_cost", "seq_page_cost", "effective_cache_size", "shared_buffers", "work_mem", "jit"} {
		var v string
		if err := p.rls.QueryRow(ctx, "select current_setting($1)", name).Scan(&v); err != nil {
			p.close()
			return nil, fmt.Errorf("connecting as %s: %w", t.APIUser, err)
		}
		p.shown[name] = v
	}
	return p, nil
}

func (p *pools) close() {
	p.rls.Close()
	p.floor.Close()
}

// side is one of the two ways to answer a request.
type side struct {
	role string
	sql  string
	args func(*job) []any
	// preRequest is PostgREST's db-pre-request, "" for none.
	preRequest string
}

// The RLS side runs the request's query as PostgREST does; the runtime
// checks the deny list where it computes the caller's id (inside the timed
// query). With Target.PreRequest it also runs iam.check_request, the
// db-pre-request of the shipped policies/postgrest.conf (the tokens carry
// the aud and exp it requires).
func rlsSide(q *Query, preRequest bool) side {
	s := side{AuthenticatedRole, q.RLS, q.RLSArgs, ""}
	if preRequest {
		s.preRequest = stdlib.PreRequest
	}
	return s
}

func floorSide(f Floor) side { return side{FloorRole, f.SQL, f.Args, ""} }

// request runs one request exactly as PostgREST would (pgrest.Do), reading
// every row, and returns its latency and how many rows it returned or
// changed.
func request(ctx context.Context, db pgrest.Beginner, q *Query, s side, j *job) (time.Duration, int64, error) {
	req := pgrest.Request{Method: q.Method, Path: q.Path, Role: s.role, Claims: j.user.Claims, PreRequest: s.preRequest}
	var n int64
	start := time.Now()
	err := pgrest.Do(ctx, db, req, func(tx pgx.Tx) error {
		if !q.Rows {
			tag, err := tx.Exec(ctx, s.sql, s.args(j)...)
			n = tag.RowsAffected()
			return err
		}
		rows, err := tx.Query(ctx, s.sql, s.args(j)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			_ = rows.RawValues()
			n++
		}
		return rows.Err()
	})
	return time.Since(start), n, err
}

// expectOne: requests that must touch exactly one row by construction.
func (q *Query) expectOne() bool {
	switch q.Kind {
	case kindReadByID, kindUpdate, kindInsertTodo, kindInsertChat, kindDelete, kindNotesRead,
		kindProductRead, kindProductUpdate, kindProductInsert:
		return true
	}
	return false
}

// deletePool hands out rows for deletes: inserted (as the superuser, not
// timed) in batches of two per user, so that both sides delete a row of the
// same user.
type deletePool struct {
	ds    *Dataset
	pairs [][2]int64
	users []*User
}

func (d *deletePool) next(ctx context.Context, su *pgxpool.Conn, r *rand.Rand) (*User, [2]int64, error) {
	if len(d.pairs) == 0 {
		const batch = 50
		users := make([]*User, batch)
		ids := make([]string, 0, 2*batch)
		for i := range users {
			users[i] = pick(r, d.ds.Normal)
			ids = append(ids, users[i].ID, users[i].ID)
		}
		rows, err := su.Query(ctx, `insert into app.todos (title, owner_id)
select 'bench delete', u from unnest($1::uuid[]) with ordinality as x(u, o) order by o
returning id, owner_id::text`, ids)
		if err != nil {
			return nil, [2]int64{}, fmt.Errorf("inserting rows to delete: %w", err)
		}
		byOwner := map[string][]int64{}
		for rows.Next() {
			var id int64
			var owner string
			if err := rows.Scan(&id, &owner); err != nil {
				return nil, [2]int64{}, err
			}
			byOwner[owner] = append(byOwner[owner], id)
		}
		if err := rows.Err(); err != nil {
			return nil, [2]int64{}, err
		}
		for _, u := range users {
			ids := byOwner[u.ID]
			if len(ids) < 2 {
				continue
			}
			d.pairs = append(d.pairs, [2]int64{ids[0], ids[1]})
			d.users = append(d.users, u)
			byOwner[u.ID] = ids[2:]
		}
	}
	n := len(d.pairs) - 1
	u, p := d.users[n], d.pairs[n]
	d.pairs, d.users = d.pairs[:n], d.users[:n]
	return u, p, nil
}

// Stats are the latencies of one side of one run.
type Stats struct {
	N        int     `json:"n"`
	MedianMS float64 `json:"median_ms"`
	P95MS    float64 `json:"p95_ms"`
	TPS      float64 `json:"tps"`
}

func summarize(lat []time.Duration, clients int) Stats {
	if len(lat) == 0 {
		return Stats{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	q := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1
		i = min(max(i, 0), len(lat)-1)
		return float64(lat[i].Microseconds()) / 1000
	}
	return Stats{
		N:        len(lat),
		MedianMS: q(0.5),
		P95MS:    q(0.95),
		// Throughput of this side alone: its requests over the time the
		// clients spent in them (the run interleaves both sides).
		TPS: float64(len(lat)) / (sum.Seconds() / float64(clients)),
	}
}

// Result is one (query, user class, clients) cell of the report.
type Result struct {
	Query   string    `json:"query"`
	Key     string    `json:"key"`
	User    UserClass `json:"user"`
	Clients int       `json:"clients"`
	Floor   string    `json:"floor"`
	RLS     Stats     `json:"rls"`
	FloorS  Stats     `json:"floor_stats"`
	Ratio   float64   `json:"ratio"` // median RLS / median floor
}

// measure runs q for dur with clients workers. Each worker draws a request,
// then runs it both ways, RLS and floor, alternating which goes first.
func measure(ctx context.Context, p *pools, ds *Dataset, q *Query, f Floor, class UserClass, clients int, warm, dur time.Duration, seed uint64) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type perWorker struct{ rls, floor []time.Duration }
	out := make([]perWorker, clients)
	errs := make([]error, clients)
	var ready, wg sync.WaitGroup
	ready.Add(clients)
	start := make(chan struct{})
	var t0 time.Time
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = func() error {
				rc, err := p.rls.Acquire(ctx)
				if err != nil {
					ready.Done()
					return err
				}
				defer rc.Release()
				fc, err := p.floor.Acquire(ctx)
				if err != nil {
					ready.Done()
					return err
				}
				defer fc.Release()
				ready.Done()
				<-start
				r := rand.New(rand.NewPCG(seed, uint64(w)+1))
				pool := &deletePool{ds: ds}
				rs, fs := rlsSide(q, p.preRequest), floorSide(f)
				for i := 0; ; i++ {
					now := time.Now()
					if ctx.Err() != nil {
						return ctx.Err()
					}
					// The window ends, but not before one timed request: on
					// a loaded machine the warm-up can fill a short window.
					if now.Sub(t0) >= warm+dur && len(out[w].rls) > 0 {
						return nil
					}
					timed := now.Sub(t0) >= warm
					j := ds.newJob(r, q, class)
					if q.Kind == kindDelete {
						u, ids, err := pool.next(ctx, fc, r)
						if err != nil {
							return err
						}
						j.user, j.id, j.id2 = u, ids[0], ids[1]
					}
					order := []struct {
						s    side
						db   *pgxpool.Conn
						into *[]time.Duration
					}{{rs, rc, &out[w].rls}, {fs, fc, &out[w].floor}}
					if i%2 == 1 {
						order[0], order[1] = order[1], order[0]
					}
					for _, o := range order {
						d, n, err := request(ctx, o.db, q, o.s, j)
						if err != nil {
							return fmt.Errorf("%s (%s, user %d): %w", q.Name, o.s.role, j.user.N, err)
						}
						if q.expectOne() && n != 1 {
							return fmt.Errorf("%s (%s, user %d): touched %d rows, want 1: a wrong answer", q.Name, o.s.role, j.user.N, n)
						}
						if timed {
							*o.into = append(*o.into, d)
						}
					}
				}
			}()
			if errs[w] != nil {
				cancel()
			}
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rl, fl []time.Duration
	for _, o := range out {
		rl = append(rl, o.rls...)
		fl = append(fl, o.floor...)
	}
	res := &Result{Query: q.Name, Key: q.Key, User: class, Clients: clients, Floor: f.Name,
		RLS: summarize(rl, clients), FloorS: summarize(fl, clients)}
	if res.FloorS.MedianMS > 0 {
		res.Ratio = res.RLS.MedianMS / res.FloorS.MedianMS
	}
	return res, nil
}

// Calibration is how fast each floor candidate was; the fastest is timed.
type Calibration struct {
	Query    string             `json:"query"`
	User     UserClass          `json:"user"`
	MedianMS map[string]float64 `json:"median_ms"`
	Chosen   string             `json:"chosen"`
}

// calibrate times every floor candidate of q (one client, interleaved per
// request, the same requests for all) and returns the fastest.
func calibrate(ctx context.Context, p *pools, ds *Dataset, q *Query, class UserClass, dur time.Duration, seed uint64) (Floor, *Calibration, error) {
	if len(q.Floors) == 1 {
		return q.Floors[0], nil, nil
	}
	fc, err := p.floor.Acquire(ctx)
	if err != nil {
		return Floor{}, nil, err
	}
	defer fc.Release()
	r := rand.New(rand.NewPCG(seed, 99))
	lat := make([][]time.Duration, len(q.Floors))
	t0 := time.Now()
	for i := 0; time.Since(t0) < dur || i < 20; i++ {
		j := ds.newJob(r, q, class)
		for k := range q.Floors {
			c := (k + i) % len(q.Floors)
			d, _, err := request(ctx, fc, q, floorSide(q.Floors[c]), j)
			if err != nil {
				return Floor{}, nil, fmt.Errorf("%s, floor %q: %w", q.Name, q.Floors[c].Name, err)
			}
			if i >= 3 { // the first requests prepare the statements
				lat[c] = append(lat[c], d)
			}
		}
	}
	cal := &Calibration{Query: q.Name, User: class, MedianMS: map[string]float64{}}
	best := -1
	for k, f := range q.Floors {
		cal.MedianMS[f.Name] = summarize(lat[k], 1).MedianMS
		if best < 0 || cal.MedianMS[f.Name] < cal.MedianMS[q.Floors[best].Name] {
			best = k
		}
	}
	cal.Chosen = q.Floors[best].Name
	return q.Floors[best], cal, nil
}
