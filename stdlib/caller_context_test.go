package stdlib_test

// The caller's context (runtime.sql, SPEC "The caller's context"): the
// caller's id and groups are computed once per statement and read by every
// policy arm, the row guard and the page functions of that statement. These
// tests check that what is remembered is never stale: not after the
// statement itself changes memberships, not with other claims, not in the
// next statement; and that no statement that may compute it runs in a
// parallel plan (where writing a setting is an error).

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/iamc/iamc/internal/exampletest"
)

// inGroup says whether gid is among the groups where the caller is a member.
const inGroup = `$1::bigint = any (iam.group_ids('member'))`

// TestCallerContextFollowsMembershipChanges: in one statement (a volatile
// function: each of its statements sees what the one before changed), mia
// reads her groups, leaves team, and reads them again: the second read no
// longer lists team. The statement trigger on iam.group_members
// (iam.forget_caller) is what makes it so: with it dropped, the second read
// answers from what the first remembered, which shows the test can fail.
func TestCallerContextFollowsMembershipChanges(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	const leaveAndAsk = `
		create function pg_temp.leave_and_ask(gid bigint) returns boolean[] language plpgsql volatile as $$
		declare
		    before boolean := gid = any (iam.group_ids('member'));
		begin
		    perform app.leave_group(gid);
		    return array[before, gid = any (iam.group_ids('member'))];
		end $$`

	run := func(t *testing.T, dropTrigger bool) (before, after bool) {
		conn, err := pgx.Connect(t.Context(), db.Server.URL(db.Name, "postgres"))
		NoError(t, err)
		defer conn.Close(context.Background())
		tx, err := conn.Begin(t.Context())
		NoError(t, err)
		defer tx.Rollback(context.Background()) //nolint:errcheck // the test changes nothing for good
		_, err = tx.Exec(t.Context(), leaveAndAsk)
		NoError(t, err)
		if dropTrigger {
			_, err = tx.Exec(t.Context(), `drop trigger forget_caller on iam.group_members`)
			NoError(t, err)
		}
		claims, err := json.Marshal(c.Mia.Claims)
		NoError(t, err)
		_, err = tx.Exec(t.Context(), `select set_config('role', 'web_user', true), set_config('request.jwt.claims', $1, true)`, string(claims))
		NoError(t, err)
		var answers []bool
		NoError(t, tx.QueryRow(t.Context(), `select pg_temp.leave_and_ask($1)`, c.Team).Scan(&answers))
		return answers[0], answers[1]
	}

	before, after := run(t, false)
	if !before || after {
		t.Errorf("mia in team before leaving = %v, after = %v; want true, false", before, after)
	}
	before, after = run(t, true)
	if !before || !after {
		t.Errorf("without the trigger: mia in team before leaving = %v, after = %v; want true, true (remembered)", before, after)
	}
}

// TestCallerContextIsPerClaims: a statement that changes the claims half
// way (no request does; a careless function might) gets the new caller's
// groups, not the old caller's.
func TestCallerContextIsPerClaims(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	otto, err := json.Marshal(c.Otto.Claims)
	NoError(t, err)
	var mia, asOtto bool
	err = c.As(c.Mia, "/rpc/x").Do("GET", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(),
			`select `+inGroup+`, set_config('request.jwt.claims', $2, true) is null, `+inGroup,
			c.Team, string(otto)).Scan(&mia, new(bool), &asOtto)
	})
	NoError(t, err)
	if !mia || asOtto {
		t.Errorf("team among mia's groups = %v, among otto's (same statement, his claims) = %v; want true, false", mia, asOtto)
	}
}

// TestCallerContextIsPerStatement: a request's next statement sees a
// membership removed (by someone else) since its previous statement, as it
// did before the context was remembered: READ COMMITTED, one snapshot per
// statement.
func TestCallerContextIsPerStatement(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	var first, second bool
	err := c.As(c.Mia, "/rpc/x").Do("GET", func(tx pgx.Tx) error {
		if err := tx.QueryRow(t.Context(), `select `+inGroup, c.Team).Scan(&first); err != nil {
			return err
		}
		db.Exec(t, `delete from iam.group_members where group_id = $1 and user_id = $2`, c.Team, c.MiaID)
		return tx.QueryRow(t.Context(), `select `+inGroup, c.Team).Scan(&second)
	})
	NoError(t, err)
	if !first || second {
		t.Errorf("team among mia's groups: first statement %v, after her removal %v; want true, false", first, second)
	}
}

// TestCallerContextPagesAndPolicies: a page function remembers the context
// once for its walks, and its rows still follow the memberships of the
// statement: after mia leaves team (in an earlier statement of the same
// request), neither the page function nor the table shows team's chats.
func TestCallerContextPagesAndPolicies(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db).In(t)
	db.Exec(t, `insert into app.chats (body, group_id, owner_id) values ('for team', $1, $2)`, c.Team, c.OliviaID)
	count := func(tx pgx.Tx, sql string) (n int, err error) {
		err = tx.QueryRow(t.Context(), sql, c.Team).Scan(&n)
		return n, err
	}
	var page, table, pageAfter, tableAfter int
	err := c.As(c.Mia, "/rpc/leave_group").Do("POST", func(tx pgx.Tx) error {
		var err error
		if page, err = count(tx, `select count(*) from app.chats_page(group_id => $1)`); err != nil {
			return err
		}
		if table, err = count(tx, `select count(*) from app.chats where group_id = $1`); err != nil {
			return err
		}
		if _, err := tx.Exec(t.Context(), `select app.leave_group($1)`, c.Team); err != nil {
			return err
		}
		if pageAfter, err = count(tx, `select count(*) from app.chats_page(group_id => $1)`); err != nil {
			return err
		}
		tableAfter, err = count(tx, `select count(*) from app.chats where group_id = $1`)
		return err
	})
	NoError(t, err)
	if page == 0 || table != page || pageAfter != 0 || tableAfter != 0 {
		t.Errorf("team's chats mia sees: page %d, table %d; after leaving: page %d, table %d; want n > 0, n, 0, 0",
			page, table, pageAfter, tableAfter)
	}
}

// TestCallerContextNeverInParallel: writing a setting is an error while a
// parallel plan runs, so no function that may compute the caller's context
// may be PARALLEL SAFE, nor may any function that calls one (a policy
// calling it would otherwise be planned in parallel). Found from the
// catalog: the functions whose body names a computing one, to a fixed
// point. Then, with parallel plans forced, a count as a signed-in user
// works and agrees with the count without them.
func TestCallerContextNeverInParallel(t *testing.T) {
	db := ExampleDB(t)
	rows, err := db.SU.Query(t.Context(), `
		select p.oid::regprocedure::text, p.proname, p.proparallel::text, coalesce(p.prosrc, '')
		from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		where n.nspname in ('iam', 'app')`)
	NoError(t, err)
	type fn struct{ Sig, Name, Parallel, Body string }
	fns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fn])
	NoError(t, err)

	computes := map[string]bool{} // function names that may write the context
	for _, f := range fns {
		if strings.Contains(f.Body, "set_config('iam.caller_") {
			computes[f.Name] = true
		}
	}
	if !computes["compute_user_id_uuid"] || !computes["compute_group_ids"] {
		t.Fatalf("the computing functions were not found by their bodies: %v", computes)
	}
	for changed := true; changed; {
		changed = false
		for _, f := range fns {
			if computes[f.Name] {
				continue
			}
			for name := range computes {
				if regexp.MustCompile(`\biam\.` + name + `\(`).MatchString(f.Body) {
					computes[f.Name] = true
					changed = true
					break
				}
			}
		}
	}
	var safe []string
	for _, f := range fns {
		if computes[f.Name] && f.Parallel == "s" {
			safe = append(safe, f.Sig)
		}
	}
	slices.Sort(safe)
	if len(safe) > 0 {
		t.Errorf("PARALLEL SAFE, yet may compute the caller's context (a parallel plan calling them fails): %v", safe)
	}
	for _, must := range []string{"user_id_uuid", "group_ids", "caller_id", "has_realm_role", "app_todos_shared"} {
		if !computes[must] {
			t.Errorf("%s was not found to compute the caller's context: the fixed point misses calls", must)
		}
	}

	// Forced parallel plans: the policies' helpers keep the plan serial.
	force := "force_parallel_mode"
	if Scalar[int](t, db, `select current_setting('server_version_num')::int`) >= 160000 {
		force = "debug_parallel_query"
	}
	counts := map[bool]int{}
	for _, forced := range []bool{false, true} {
		err := Requester{T: t, DB: db, Who: Alice, Path: "/todos"}.Do("GET", func(tx pgx.Tx) error {
			if forced {
				if _, err := tx.Exec(t.Context(), fmt.Sprintf(`select set_config('%s', 'on', true), set_config('parallel_setup_cost', '0', true), set_config('min_parallel_table_scan_size', '0', true)`, force)); err != nil {
					return err
				}
			}
			var n int
			err := tx.QueryRow(t.Context(), `select count(*) from app.todos`).Scan(&n)
			counts[forced] = n
			return err
		})
		NoError(t, err)
	}
	if counts[true] != counts[false] {
		t.Errorf("alice counts %d todos with parallel plans forced, %d without", counts[true], counts[false])
	}
}
