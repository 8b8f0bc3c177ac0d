package bench

// The floor over HTTP: an unprotected copy of the tables, served by the
// same PostgREST, and the floor's filter in the query string.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// FloorSchema is the schema of views PostgREST serves as the floor of
// `iamc bench --http` (added to db-schemas, chosen with the Accept-Profile
// and Content-Profile headers). Its views belong to FloorRole, which is
// BYPASSRLS: PostgreSQL checks the row security of a view's tables
// against the view's owner, so the policies of app.todos, app.chats and
// app.notes do not apply to them (setupFloorSchema checks the plans).
const FloorSchema = "bench_open"

// floorPreRequest is the db-pre-request of `--http --pre-request`: iam.check_request
// for the RLS side, nothing for the floor (PostgREST runs one
// db-pre-request for every schema; it sets search_path to the request's
// schema first).
const floorPreRequest = "bench.pre_request"

// setupFloorSchema (re)creates FloorSchema: views over app.todos,
// app.chats, app.notes and app.products (reads, updates and deletes, as
// the SQL floor runs them on the tables as FloorRole) and over the copy
// tables bench.todos_copy, bench.chats_copy and bench.products_copy
// (inserts: no RLS and no row guard, as the SQL floor's; and the update
// of a product: app.products has column rules, so its row guard fires on
// every update, through a view too), granted to web_user; and
// bench.pre_request. It then checks that a read of the view as web_user
// plans no policy.
func setupFloorSchema(ctx context.Context, su *pgx.Conn) error {
	views := []struct{ name, of, grant string }{
		{"todos", "app.todos", "select, update, delete"},
		{"chats", "app.chats", "select"},
		{"notes", "app.notes", "select"},
		{"products", "app.products", "select"},
		{"todos_copy", "bench.todos_copy", "select, insert"},
		{"chats_copy", "bench.chats_copy", "select, insert"},
		{"products_copy", "bench.products_copy", "select, insert, update"},
	}
	sqls := []string{
		`drop schema if exists ` + FloorSchema + ` cascade`,
		fmt.Sprintf(`create schema %s authorization %s`, FloorSchema, FloorRole),
		fmt.Sprintf(`grant usage on schema %s to %s`, FloorSchema, AuthenticatedRole),
		`set role ` + FloorRole,
	}
	for _, v := range views {
		sqls = append(sqls, fmt.Sprintf(`create view %s.%s as select * from %s`, FloorSchema, v.name, v.of))
	}
	sqls = append(sqls, `reset role`)
	for _, v := range views {
		sqls = append(sqls, fmt.Sprintf(`grant %s on %s.%s to %s`, v.grant, FloorSchema, v.name, AuthenticatedRole))
	}
	sqls = append(sqls,
		fmt.Sprintf(`create or replace function %s() returns void language plpgsql as $$
begin
    -- PostgREST sets search_path to the request's schema before the db-pre-request.
    if current_setting('search_path') not like '"%s"%%' then
        perform iam.check_request();
    end if;
end
$$`, floorPreRequest, FloorSchema),
		fmt.Sprintf(`grant usage on schema bench to %s`, AuthenticatedRole),
		fmt.Sprintf(`grant execute on function %s() to %s`, floorPreRequest, AuthenticatedRole),
	)
	for _, sql := range sqls {
		if _, err := su.Exec(ctx, sql); err != nil {
			_, _ = su.Exec(ctx, `reset role`)
			return fmt.Errorf("creating the floor schema %s: %w\n%s", FloorSchema, err, sql)
		}
	}
	// The views really are unprotected: as web_user, each plans as the
	// same statement on the table as FloorRole (BYPASSRLS), not as it does
	// on the table as web_user (the policies' filters). Not the products
	// view: the select policy of app.products is true, so its reads plan
	// alike either way, and its writes go to the copy (no RLS at all).
	for _, c := range []struct{ view, table string }{
		{`select * from %s.todos order by id desc limit 50`, "app"},
		{`select * from %s.todos where id = 1`, "app"},
		{`update %s.todos set done = true where id = 1`, "app"},
		{`delete from %s.todos where id = 1`, "app"},
		{`select * from %s.chats where group_id = 1 order by id desc limit 50`, "app"},
		{`select * from %s.notes order by id desc limit 50`, "app"},
	} {
		view := fmt.Sprintf(c.view, FloorSchema)
		table := fmt.Sprintf(c.view, c.table)
		asView, err := plan(ctx, su, AuthenticatedRole, view)
		if err != nil {
			return err
		}
		asFloor, err := plan(ctx, su, FloorRole, table)
		if err != nil {
			return err
		}
		asRLS, err := plan(ctx, su, AuthenticatedRole, table)
		if err != nil {
			return err
		}
		if asView != asFloor || asView == asRLS {
			return fmt.Errorf("the floor view is not unprotected: as %s, %s plans\n%s\nand %s as %s\n%s", AuthenticatedRole, view, asView, table, FloorRole, asFloor)
		}
	}
	return nil
}

// plan is EXPLAIN (COSTS OFF) of sql as role, in a transaction rolled back.
func plan(ctx context.Context, su *pgx.Conn, role, sql string) (string, error) {
	tx, err := su.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // explain only
	if _, err := tx.Exec(ctx, `set local role `+role); err != nil {
		return "", err
	}
	rows, err := tx.Query(ctx, `explain (costs off) `+sql)
	if err != nil {
		return "", fmt.Errorf("explaining %s as %s: %w", sql, role, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("explaining %s as %s: %w", sql, role, err)
	}
	return strings.Join(lines, "\n"), nil
}

// DropFloorSchema removes what setupFloorSchema made.
func DropFloorSchema(ctx context.Context, su *pgx.Conn) error {
	_, err := su.Exec(ctx, `drop schema if exists `+FloorSchema+` cascade; drop function if exists `+floorPreRequest+`()`)
	return err
}

// floorAccess is what the HTTP floor knows of a user, looked up before
// anything is timed: their groups and the todos shared with them (or with
// their groups), by permission. The SQL floor looks these up in the
// statement; a client of an unprotected API would have to know them.
type floorAccess struct {
	user, org                       string
	groups, adminGroups             []int64
	shared, sharedWrite, sharedDele []int64
	stores                          []int64 // whose products the user may update: their own and their groups'
}

// todosRead is the filter of the todos the user reads: the select policy
// of todos.iam (owner, group member, shared).
func (a *floorAccess) todosRead() string {
	return orFilter("owner_id.eq."+a.user, inArm("group_id", a.groups), inArm("id", a.shared))
}

// todosWrite is the update policy's: the owner's rows in no group, the
// group members' rows, the rows shared with write.
func (a *floorAccess) todosWrite() string {
	return orFilter("and(owner_id.eq."+a.user+",group_id.is.null)", inArm("group_id", a.groups), inArm("id", a.sharedWrite))
}

// todosDelete is the delete policy's: the owner, a group's admins, the
// rows shared with delete.
func (a *floorAccess) todosDelete() string {
	return orFilter("owner_id.eq."+a.user, inArm("group_id", a.adminGroups), inArm("id", a.sharedDele))
}

// chatsRead: the owner and the group's members.
func (a *floorAccess) chatsRead() string {
	return orFilter("owner_id.eq."+a.user, inArm("group_id", a.groups))
}

// notesRead: in the user's organisation, the owner and the group's members.
func (a *floorAccess) notesRead() string {
	return "org_id=eq." + a.org + "&" + orFilter("owner_id.eq."+a.user, inArm("group_id", a.groups))
}

// productsWrite is the update policy of app.products (stores.iam): the
// product's store is the user's, or its staff group is one of theirs
// (members change the stock, the only column the request sets). No store:
// in.() matches no row.
func (a *floorAccess) productsWrite() string {
	return "store_id=in.(" + idList(a.stores) + ")"
}

// orFilter is PostgREST's or=(...) of the arms that are not empty.
func orFilter(arms ...string) string {
	var keep []string
	for _, a := range arms {
		if a != "" {
			keep = append(keep, a)
		}
	}
	return "or=(" + strings.Join(keep, ",") + ")"
}

// inArm is col.in.(ids), or "" for no ids.
func inArm(col string, ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	return col + ".in.(" + idList(ids) + ")"
}

// idList is ids, comma-separated.
func idList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// loadFloorAccess looks up every user's groups and the stores whose
// products they may update (from the data set) and shares (from
// iam.app_todos_shares), untimed.
func loadFloorAccess(ctx context.Context, su *pgx.Conn, ds *Dataset) (map[int]*floorAccess, error) {
	type share struct {
		row           int64
		write, delete bool
	}
	byUser := map[string][]share{}
	byGroup := map[int64][]share{}
	rows, err := su.Query(ctx, `select row_id, user_id::text, group_id, can_write, can_delete from iam.app_todos_shares`)
	if err != nil {
		return nil, fmt.Errorf("reading the shares: %w", err)
	}
	for rows.Next() {
		var s share
		var user *string
		var group *int64
		if err := rows.Scan(&s.row, &user, &group, &s.write, &s.delete); err != nil {
			return nil, fmt.Errorf("reading the shares: %w", err)
		}
		if user != nil {
			byUser[*user] = append(byUser[*user], s)
		}
		if group != nil {
			byGroup[*group] = append(byGroup[*group], s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the shares: %w", err)
	}
	out := make(map[int]*floorAccess, len(ds.Users))
	for _, u := range ds.Users {
		a := &floorAccess{user: u.ID, org: u.Org, groups: u.Groups, adminGroups: u.AdminGroups}
		add := func(ss []share) {
			for _, s := range ss {
				a.shared = append(a.shared, s.row)
				if s.write {
					a.sharedWrite = append(a.sharedWrite, s.row)
				}
				if s.delete {
					a.sharedDele = append(a.sharedDele, s.row)
				}
			}
		}
		add(byUser[u.ID])
		for _, g := range u.Groups {
			add(byGroup[g])
		}
		a.stores = append(a.stores, u.Stores...)
		for _, g := range u.Groups {
			a.stores = append(a.stores, ds.groupStores[g]...)
		}
		for _, ids := range []*[]int64{&a.shared, &a.sharedWrite, &a.sharedDele, &a.stores} {
			slices.Sort(*ids)
			*ids = slices.Compact(*ids)
		}
		out[u.N] = a
	}
	return out, nil
}
