package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgrest"
)

// Investigation compares ways of getting good plans for the list pages
// (Q1) on a default install.
type Investigation struct {
	Notes   []string      `json:"notes"`
	Options []*PlanOption `json:"options"`
}

// PlanOption is one way, measured end to end like the main runs.
type PlanOption struct {
	Name     string            `json:"name"`
	Settings map[string]string `json:"settings,omitempty"`
	Setup    []string          `json:"setup,omitempty"`
	Cells    []*PlanCell       `json:"cells"`
}

// PlanCell is one list query for one user class under one option.
type PlanCell struct {
	Result
	RLSPlan string `json:"rls_plan"`
}

type planOption struct {
	name     string
	setup    []string          // as the superuser, before
	teardown []string          // after
	settings map[string]string // connection settings of both sides
}

func planOptions() []planOption {
	rpc := map[string]string{"random_page_cost": "1.1"}
	custom := map[string]string{"plan_cache_mode": "force_custom_plan"}
	both := map[string]string{"random_page_cost": "1.1", "plan_cache_mode": "force_custom_plan"}
	indexes := []string{
		`create index bench_todos_owner_id_id on app.todos (owner_id, id)`,
		`create index bench_todos_group_id_id on app.todos (group_id, id)`,
		`create index bench_chats_owner_id_id on app.chats (owner_id, id)`,
		`create index bench_chats_group_id_id on app.chats (group_id, id)`,
	}
	dropIndexes := []string{
		`drop index app.bench_todos_owner_id_id, app.bench_todos_group_id_id, app.bench_chats_owner_id_id, app.bench_chats_group_id_id`,
	}
	return []planOption{
		{name: "default"},
		{name: "random_page_cost 1.1", settings: rpc},
		{name: "plan_cache_mode force_custom_plan", settings: custom},
		{name: "random_page_cost 1.1 + force_custom_plan", settings: both},
		{name: "+(owner_id, id), (group_id, id) indexes", setup: indexes, teardown: dropIndexes},
		{name: "+(owner_id, id), (group_id, id) indexes, random_page_cost 1.1 + force_custom_plan", setup: indexes, teardown: dropIndexes, settings: both},
		// The planner estimates group_id = any(<unknown array>) as 10 groups of
		// (1 - null_frac) / n_distinct rows each; one big group inflates that.
		{name: "todos.group_id n_distinct = 5000 (statistics override)",
			setup: []string{
				`alter table app.todos alter column group_id set (n_distinct = 5000)`,
				`analyze app.todos`},
			teardown: []string{
				`alter table app.todos alter column group_id reset (n_distinct)`,
				`analyze app.todos`}},
		{name: "statistics target 1000 on owner_id, group_id",
			setup: []string{
				`alter table app.todos alter column owner_id set statistics 1000, alter column group_id set statistics 1000`,
				`alter table app.chats alter column owner_id set statistics 1000, alter column group_id set statistics 1000`,
				`analyze app.todos, app.chats`},
			teardown: []string{
				`alter table app.todos alter column owner_id set statistics -1, alter column group_id set statistics -1`,
				`alter table app.chats alter column owner_id set statistics -1, alter column group_id set statistics -1`,
				`analyze app.todos, app.chats`}},
	}
}

// Investigate runs the list pages (Q1 todos, Q1 chats) for random users
// and the special users each is run for in the main tables (Query.Classes)
// under each plan option: one client, interleaved with the fastest floor,
// as the main runs.
// Settings are given to both sides as connection settings, which is what
// PostgREST >= 11.1 does per request for the settings of web_user (alter
// role web_user set ...), in the statement that sets the claims.
func Investigate(ctx context.Context, t Target, su *pgx.Conn, ds *Dataset, dur time.Duration, log io.Writer) (*Investigation, error) {
	inv := &Investigation{}
	note, err := roleSettingNote(ctx, t, su, ds)
	if err != nil {
		return nil, err
	}
	inv.Notes = append(inv.Notes, note)
	queries := Queries()[:2]
	warm := max(500*time.Millisecond, dur/10)
	for _, opt := range planOptions() {
		fmt.Fprintf(log, "[plans] %s ...\n", opt.name)
		po, err := func() (*PlanOption, error) {
			for _, s := range opt.setup {
				if _, err := su.Exec(ctx, s); err != nil {
					return nil, fmt.Errorf("%s: %w", s, err)
				}
			}
			defer func() {
				for _, s := range opt.teardown {
					if _, err := su.Exec(context.Background(), s); err != nil {
						fmt.Fprintf(log, "warning: %s: %v\n", s, err)
					}
				}
			}()
			p, err := openPools(ctx, t, Config{Name: opt.name, Settings: opt.settings}, 1)
			if err != nil {
				return nil, err
			}
			defer p.close()
			po := &PlanOption{Name: opt.name, Settings: opt.settings, Setup: opt.setup}
			// Settings and indexes must not change answers; checked all the same.
			if _, err := Verify(ctx, p, ds, queries, verifyUsers(ds, 10, uint64(ds.Seed)), uint64(ds.Seed)); err != nil {
				return nil, err
			}
			if err := Cleanup(ctx, su); err != nil {
				return nil, err
			}
			for _, q := range queries {
				for _, class := range q.Classes() {
					seed := uint64(ds.Seed)
					f, _, err := calibrate(ctx, p, ds, q, class, max(300*time.Millisecond, dur/10), seed)
					if err != nil {
						return nil, err
					}
					res, err := measure(ctx, p, ds, q, f, class, 1, warm, dur, seed)
					if err != nil {
						return nil, err
					}
					shape, err := preparedPlan(ctx, p, ds, q, class, seed)
					if err != nil {
						return nil, err
					}
					po.Cells = append(po.Cells, &PlanCell{Result: *res, RLSPlan: shape})
				}
			}
			return po, nil
		}()
		if err != nil {
			return inv, fmt.Errorf("plan option %q: %w", opt.name, err)
		}
		inv.Options = append(inv.Options, po)
	}
	return inv, nil
}

// roleSettingNote checks what `alter role web_user set random_page_cost`
// does for a request made the way pgrest (and PostgREST before 11.1) makes
// it: nothing, because role settings are applied at login, to the login
// role, and not by SET ROLE.
func roleSettingNote(ctx context.Context, t Target, su *pgx.Conn, ds *Dataset) (string, error) {
	if _, err := su.Exec(ctx, `alter role web_user set random_page_cost = 1.1`); err != nil {
		return "", err
	}
	defer su.Exec(context.Background(), `alter role web_user reset random_page_cost`) //nolint:errcheck
	api, err := connectAs(ctx, t.DB, t.APIUser, t.APIPassword)
	if err != nil {
		return "", err
	}
	defer api.Close(context.Background())
	var v string
	req := pgrest.Request{Method: "GET", Path: "/todos", Role: AuthenticatedRole, Claims: ds.Normal[0].Claims}
	err = pgrest.Do(ctx, api, req, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `select current_setting('random_page_cost')`).Scan(&v)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("after `alter role web_user set random_page_cost = 1.1`, a request made as pgrest makes it sees random_page_cost = %s "+
		"(role settings apply at login, to authenticator; PostgREST >= 11.1 reads web_user's settings and applies them per request with set_config, "+
		"so pgrest would have to do the same: the options below give both sides the settings as connection settings)", v), nil
}

// preparedPlan is the plan the RLS side's prepared statement runs once the
// plan cache has settled (after five executions PostgreSQL may switch to a
// generic plan), as EXPLAIN (ANALYZE, TIMING OFF) EXECUTE shows it.
func preparedPlan(ctx context.Context, p *pools, ds *Dataset, q *Query, class UserClass, seed uint64) (string, error) {
	r := rand.New(rand.NewPCG(seed, 17))
	j := ds.newJob(r, q, class)
	decl, args := "", ""
	if q.Kind == kindChatsList {
		decl, args = "(bigint)", fmt.Sprintf("(%d)", j.group)
	}
	var shape string
	req := pgrest.Request{Method: q.Method, Path: q.Path, Role: AuthenticatedRole, Claims: j.user.Claims}
	err := pgrest.Do(ctx, p.rls, req, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "prepare bench_plan"+decl+" as "+q.RLS); err != nil {
			return err
		}
		defer tx.Exec(ctx, "deallocate bench_plan") //nolint:errcheck
		for range 6 {
			if _, err := tx.Exec(ctx, "execute bench_plan"+args); err != nil {
				return err
			}
		}
		var raw []byte
		if err := tx.QueryRow(ctx, "explain (analyze, timing off, format json) execute bench_plan"+args).Scan(&raw); err != nil {
			return err
		}
		var doc []struct {
			Plan planNode `json:"Plan"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		if len(doc) != 1 {
			return fmt.Errorf("unexpected EXPLAIN output: %s", raw)
		}
		shape = doc[0].Plan.shape()
		return nil
	})
	return shape, err
}

func connectAs(ctx context.Context, url, user, password string) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if user != "" {
		cc.User, cc.Password = user, password
	}
	cc.RuntimeParams["application_name"] = "iamc bench (plans)"
	return pgx.ConnectConfig(ctx, cc)
}

type planNode struct {
	NodeType  string     `json:"Node Type"`
	Index     string     `json:"Index Name"`
	Direction string     `json:"Scan Direction"`
	Parent    string     `json:"Parent Relationship"`
	Plans     []planNode `json:"Plans"`
}

// shape is a one-line plan: "Limit > Sort > Bitmap Heap Scan > BitmapOr[...]",
// without InitPlans.
func (n planNode) shape() string {
	name := n.NodeType
	if n.Direction == "Backward" {
		name += " Backward"
	}
	if n.Index != "" {
		name += " (" + n.Index + ")"
	}
	var kids []string
	for _, c := range n.Plans {
		if c.Parent == "InitPlan" || c.Parent == "SubPlan" {
			continue
		}
		kids = append(kids, c.shape())
	}
	switch len(kids) {
	case 0:
		return name
	case 1:
		return name + " > " + kids[0]
	}
	return name + "[" + strings.Join(kids, "; ") + "]"
}
