package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
)

// WrongAnswerError is a disagreement between RLS and a floor, or with what
// the data set says a user must see: the benchmark refuses to time it.
type WrongAnswerError struct {
	Query, Floor, Config string
	User                 *User
	Job                  string
	Detail               string
}

func (e *WrongAnswerError) Error() string {
	return fmt.Sprintf("correctness check failed, nothing was timed: %s (config %s, floor %q), user %d (%s), %s: %s. "+
		"A fast wrong answer is a failure: fix the policies or the floor query before measuring.",
		e.Query, e.Config, e.Floor, e.User.N, e.User.ID, e.Job, e.Detail)
}

var errRollback = errors.New("rolled back")

// answer runs a request and returns its rows as text. Writes run with the
// query's RETURNING clause appended and are rolled back.
func answer(ctx context.Context, db pgrest.Beginner, q *Query, s side, j *job) ([]string, error) {
	sql := s.sql
	if !q.ReadOnly() {
		sql += q.Returning
	}
	req := pgrest.Request{Method: q.Method, Path: q.Path, Role: s.role, Claims: j.user.Claims}
	var got []string
	err := pgrest.Do(ctx, db, req, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, s.args(j)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return err
			}
			got = append(got, fmt.Sprint(v...))
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !q.ReadOnly() {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return got, err
}

// verifyUsers is the sample the check runs for: random users, owners of
// stores and members of a store's staff group, users in no group, and the
// special users (a member of the big group and the users in 50, 500 and
// 2,000 groups among them).
func verifyUsers(ds *Dataset, n int, seed uint64) []*User {
	r := rand.New(rand.NewPCG(seed, 7))
	var users []*User
	for i := 0; i < n && i < len(ds.Normal); i++ {
		users = append(users, pick(r, ds.Normal))
	}
	for range 3 {
		p := pick(r, ds.StaffedProducts)
		users = append(users, pick(r, ds.OwnedStores).Owner, pick(r, ds.Staff[ds.Stores[p.Store-1].Group]))
	}
	none := 0
	for _, u := range ds.Normal {
		if len(u.Groups) == 0 && none < 2 {
			users = append(users, u)
			none++
		}
	}
	return append(users, ds.Many, ds.Big, ds.Users[bigMembersEnd-1], ds.Many500, ds.Many2000, ds.Shares)
}

// verifyJobs are the requests checked for a user: for lists, each of a few
// of their groups and a group they are not in; for reads and writes by id,
// rows they can see and random rows (mostly of others). want is the row
// count the data set implies (-1: not known).
func verifyJobs(ds *Dataset, r *rand.Rand, q *Query, u *User, delRow int64) (jobs []*job, want []int) {
	add := func(j *job, n int) {
		j.user = u
		jobs, want = append(jobs, j), append(want, n)
	}
	switch q.Kind {
	case kindTodosList, kindCount:
		add(&job{}, -1)
	case kindChatsList, kindInsertChat:
		for i, g := range u.Groups {
			if i == 3 {
				break
			}
			if q.Kind == kindInsertChat {
				add(&job{group: g, text: fmt.Sprintf("check %d", r.Uint32())}, 1)
			} else {
				add(&job{group: g}, -1)
			}
		}
		if q.Kind == kindChatsList {
			// A group they are not in: the user in 2,000 groups is in every
			// ordinary group, not in the big one.
			if len(u.Groups) >= NumGroups {
				if !slices.Contains(u.Groups, ds.BigGroup) {
					add(&job{group: ds.BigGroup}, -1)
				}
			} else {
				for {
					g := 1 + r.Int64N(NumGroups)
					if !slices.Contains(u.Groups, g) {
						add(&job{group: g}, -1)
						break
					}
				}
			}
		}
	case kindInsertTodo:
		add(&job{text: fmt.Sprintf("check %d", r.Uint32())}, 1)
	case kindNotesList:
		add(&job{}, -1)
	case kindNotesAdminList:
		jobs = append(jobs, &job{user: u.OrgAdmin})
		want = append(want, -1)
		return jobs, want
	case kindNotesRead:
		for i := 0; i < 3 && len(u.VisibleNotes) > 0; i++ {
			add(&job{id: pick(r, u.VisibleNotes)}, 1)
		}
		for range 3 {
			add(&job{id: 1 + r.Int64N(int64(ds.OtherRows))}, -1)
		}
	case kindProductsList:
		for range 2 {
			add(&job{store: 1 + r.Int64N(int64(len(ds.Stores)))}, -1)
		}
	case kindProductRead:
		for range 2 {
			add(&job{id: pick(r, ds.Products).ID}, 1) // every signed-in user reads every product
		}
	case kindProductUpdate:
		// Products of the user's stores and of their staff groups' stores,
		// then random ones (mostly of others: no row).
		mine := ds.writableProducts(u)
		for i := 0; i < 3 && len(mine) > 0; i++ {
			add(&job{id: pick(r, mine)}, 1)
		}
		for range 3 {
			add(&job{id: pick(r, ds.Products).ID}, -1)
		}
	case kindProductInsert:
		// Into their own stores, and into stores of the groups they are an
		// admin or owner of (group admins create products too). A store
		// of another is refused (42501) by RLS, and not compared.
		stores := slices.Clone(u.Stores)
		for _, g := range u.AdminGroups {
			stores = append(stores, ds.groupStores[g]...)
		}
		for i := 0; i < 3 && len(stores) > 0; i++ {
			add(&job{store: pick(r, stores), text: fmt.Sprintf("check %d", r.Uint32()), price: 12.5}, 1)
		}
	case kindReadByID, kindUpdate, kindDelete:
		for i := 0; i < 3 && len(u.Visible) > 0; i++ {
			n := 1
			if q.Kind == kindDelete {
				n = -1 // a group row needs the admin role
			}
			add(&job{id: pick(r, u.Visible)}, n)
		}
		if u == ds.Shares && q.Kind == kindReadByID && len(ds.SharedRows) > 0 {
			add(&job{id: pick(r, ds.SharedRows)}, 1) // read through a share
		}
		for range 3 {
			add(&job{id: 1 + r.Int64N(ds.TodosMax)}, -1)
		}
		if q.Kind == kindDelete {
			add(&job{id: delRow}, 1)
		}
	}
	for _, j := range jobs {
		j.id2 = j.id
	}
	return jobs, want
}

// Verify checks, before anything is timed, that every floor candidate of
// every query returns the same rows as RLS for a sample of users (writes are
// rolled back), and that requests for rows a user can see by construction
// find exactly those rows. It returns the number of requests compared.
func Verify(ctx context.Context, p *pools, ds *Dataset, queries []*Query, users []*User, seed uint64) (int, error) {
	rc, err := p.rls.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Release()
	fc, err := p.floor.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer fc.Release()

	// One committed row per user to delete.
	delRows := map[int]int64{}
	for _, q := range queries {
		if q.Kind != kindDelete {
			continue
		}
		for _, u := range users {
			var id int64
			if err := fc.QueryRow(ctx, `insert into app.todos (title, owner_id) values ('bench check', $1) returning id`, u.ID).Scan(&id); err != nil {
				return 0, fmt.Errorf("inserting rows to delete: %w", err)
			}
			delRows[u.N] = id
		}
		break
	}

	checked := 0
	r := rand.New(rand.NewPCG(seed, 11))
	for _, q := range queries {
		for _, u := range users {
			jobs, want := verifyJobs(ds, r, q, u, delRows[u.N])
			for i, j := range jobs {
				desc := describeJob(q, j)
				fail := func(floor, detail string) error {
					return &WrongAnswerError{Query: q.Name, Floor: floor, Config: p.cfg.Name, User: u, Job: desc, Detail: detail}
				}
				got, err := answer(ctx, rc, q, rlsSide(q, p.preRequest), j)
				if err != nil {
					return checked, fmt.Errorf("%s as %s for user %d (%s): %w", q.Name, AuthenticatedRole, u.N, desc, err)
				}
				if want[i] >= 0 && len(got) != want[i] {
					return checked, fail("(none: RLS alone)", fmt.Sprintf("RLS returned %d rows, the data set says %d", len(got), want[i]))
				}
				for _, f := range q.Floors {
					exp, err := answer(ctx, fc, q, floorSide(f), j)
					if err != nil {
						return checked, fmt.Errorf("%s, floor %q, user %d (%s): %w", q.Name, f.Name, u.N, desc, err)
					}
					if d := diffRows(got, exp); d != "" {
						return checked, fail(f.Name, d)
					}
					checked++
				}
			}
		}
	}
	return checked, nil
}

func describeJob(q *Query, j *job) string {
	switch q.Kind {
	case kindChatsList, kindInsertChat:
		return fmt.Sprintf("group %d", j.group)
	case kindReadByID, kindUpdate, kindDelete:
		return fmt.Sprintf("todo %d", j.id)
	case kindNotesRead:
		return fmt.Sprintf("note %d", j.id)
	case kindProductsList, kindProductInsert:
		return fmt.Sprintf("store %d", j.store)
	case kindProductRead, kindProductUpdate:
		return fmt.Sprintf("product %d", j.id)
	}
	return "the request"
}

// diffRows describes the first difference between RLS's rows and the
// floor's, or returns "".
func diffRows(rls, floor []string) string {
	for i := 0; i < len(rls) || i < len(floor); i++ {
		a, b := "(none)", "(none)"
		if i < len(rls) {
			a = rls[i]
		}
		if i < len(floor) {
			b = floor[i]
		}
		if a != b {
			return fmt.Sprintf("RLS returned %d rows, the floor %d; first difference at row %d: RLS %s, floor %s",
				len(rls), len(floor), i+1, clip(a), clip(b))
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return strings.TrimSpace(s)
}
