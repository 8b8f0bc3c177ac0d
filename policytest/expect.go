package policytest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/internal/pgrest"
	"github.com/iamc/iamc/lang"
)

// Outcome is what the database did with one request.
type Outcome struct {
	Can  bool
	Perm lang.Perm
	Rows int64 // rows the statement read or changed
	// SQLState and Message when the request was refused with an error.
	SQLState, Message string
	// Note says why a statement that reported a row does not count: what
	// the superuser found afterwards.
	Note string
}

var pastTense = map[lang.Perm]string{lang.Read: "read", lang.Create: "inserted", lang.Write: "updated", lang.Delete: "deleted"}

// String describes the outcome: "can: 1 row deleted", "cannot: refused
// with SQLSTATE 42501: ...".
func (o Outcome) String() string {
	var what string
	switch {
	case o.SQLState != "":
		what = fmt.Sprintf("refused with SQLSTATE %s: %s", o.SQLState, o.Message)
	case o.Perm == lang.Read && o.Rows == 0:
		what = "0 rows read (the policies hide the row)"
	case o.Rows == 0:
		what = fmt.Sprintf("0 rows %s (the policies let the statement reach no row)", pastTense[o.Perm])
	case o.Note != "":
		what = fmt.Sprintf("%d row %s, but %s", o.Rows, pastTense[o.Perm], o.Note)
	default:
		what = fmt.Sprintf("%d row %s", o.Rows, pastTense[o.Perm])
	}
	if o.Can {
		return "can: " + what
	}
	return "cannot: " + what
}

// errUndo ends a request's transaction: every request is rolled back.
var errUndo = errors.New("undo")

// checkError is a failure of the run's own statements inside a request
// (not the caller's): it stops the run.
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

// runSuite loads a test file's fixtures and runs its expectations, each
// request in a savepoint of the file's savepoint; the file's own savepoint
// is undone at the end, so the next file starts from the build alone.
func (e *engine) runSuite(ctx context.Context, t *lang.Tests) (results []Result, notRun int, err error) {
	sp, err := e.savepoint(ctx, "iamc_file", false)
	if err != nil {
		return nil, 0, &SetupError{err}
	}
	defer sp.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // undone whatever happens
	fx, err := e.load(ctx, t)
	if err != nil {
		return nil, 0, err
	}
	claims := map[*lang.FixtureUser]map[string]any{}
	for _, u := range t.Users {
		claims[u] = e.claims(u)
	}
	type key struct {
		who  *lang.FixtureUser
		perm lang.Perm
		row  *lang.FixtureRow
		set  string
	}
	done := map[key]Outcome{}
	var errs lang.ErrorList
	for i, x := range t.Expectations {
		if e.failFast && len(results) > 0 && !results[len(results)-1].Passed {
			notRun = len(t.Expectations) - i
			break
		}
		k := key{x.Who, x.Perm, x.Row, setKey(x.Set)}
		o, ok := done[k]
		if !ok {
			if o, err = e.request(ctx, x, fx, claims[x.Who]); err != nil {
				var list lang.ErrorList
				if errors.As(err, &list) {
					errs = append(errs, list...)
					continue
				}
				return nil, 0, err
			}
			done[k] = o
		}
		results = append(results, Result{Expectation: x, Actual: o, Passed: o.Can == x.Can})
	}
	if len(errs) > 0 {
		return nil, 0, errs
	}
	sort.SliceStable(results, func(i, j int) bool {
		return lang.PosLess(results[i].Expectation.Pos, results[j].Expectation.Pos)
	})
	return results, notRun, nil
}

func setKey(vs []lang.Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Column + "=" + fmt.Sprint(v.Kind) + v.String()
	}
	return strings.Join(parts, ",")
}

// claims are a user's token as Keycloak issues it and PostgREST verifies
// it: the identity claim, the role, aud (the declared audience), exp and
// iat, then the claims the file gives. Anonymous has none (PostgREST sets
// only the role).
func (e *engine) claims(u *lang.FixtureUser) map[string]any {
	if u.Anonymous {
		return nil
	}
	now := time.Now().Unix()
	c := map[string]any{
		e.model.Identity.Claim: u.ID,
		"role":                 e.model.Roles.Authenticated,
		"exp":                  now + 3600,
		"iat":                  now,
	}
	if e.model.Identity.Audience != "" {
		c["aud"] = e.model.Identity.Audience
	}
	for _, claim := range u.Claims {
		c[claim.Name] = claim.Value
	}
	return c
}

// request makes the request an expectation describes, as PostgREST would
// make it, and decides from the statement's answer and from what the
// superuser then finds whether the caller could.
func (e *engine) request(ctx context.Context, x *lang.Expectation, fx *fixtures, claims map[string]any) (Outcome, error) {
	o := Outcome{Perm: x.Perm}
	lr := fx.rows[x.Row]
	t := lr.t
	req := pgrest.Request{Path: t.path, Role: e.model.Roles.Authenticated, Claims: claims, PreRequest: e.preRequest}
	if x.Who.Anonymous {
		req.Role = e.model.Roles.Anonymous
	}
	if x.Perm != lang.Read {
		req.Headers = map[string]string{"Prefer": "return=minimal"}
	}
	var stmt, check string
	switch x.Perm {
	case lang.Read:
		// GET /todos?id=eq.1
		req.Method = "GET"
		stmt = "select count(*) from " + t.name + " where " + lr.where
	case lang.Create:
		// POST /todos {the row's values}: the row as the file describes it,
		// beside the fixture itself; afterwards one more row holds them.
		req.Method = "POST"
		if lr.likeN < 0 {
			n, err := e.countLike(ctx, e.tx, lr)
			if err != nil {
				return o, &SetupError{fmt.Errorf("counting the rows like %s: %w", x.Row.Ref, err)}
			}
			lr.likeN = n
		}
		stmt = lr.insert()
		check = fmt.Sprintf("select count(*) = %d from %s where %s", lr.likeN+1, t.name, lr.like)
	case lang.Write:
		// PATCH /todos?id=eq.1 {the change}: without set, a column set to
		// its own value. Afterwards the row must be a new version (a new
		// ctid: PostgreSQL writes one for every updated row) holding the
		// change.
		req.Method = "PATCH"
		var sets, conds []string
		for _, v := range x.Set {
			val := sqlValue(v, fx)
			sets = append(sets, compiler.QuoteIdent(v.Column)+" = "+val)
			conds = append(conds, compiler.QuoteIdent(v.Column)+" is not distinct from "+val)
		}
		if len(sets) == 0 {
			if t.noop == "" {
				return o, lang.ErrorList{{Pos: x.Pos, Code: lang.CodeExpectationError, Msg: fmt.Sprintf("%s has no column a write can set to itself: say what the write changes with set", t.name)}}
			}
			col := compiler.QuoteIdent(t.noop)
			sets = append(sets, col+" = "+col)
		}
		stmt = "update " + t.name + " set " + strings.Join(sets, ", ") + " where " + lr.where
		check = "select coalesce((select ctid::text <> " + literal(lr.ctid)
		for _, c := range conds {
			check += " and " + c
		}
		check += " from " + t.name + " where " + lr.where + "), false)"
	case lang.Delete:
		// DELETE /todos?id=eq.1; afterwards the row is gone.
		req.Method = "DELETE"
		stmt = "delete from " + t.name + " where " + lr.where
		check = "select not exists (select from " + t.name + " where " + lr.where + ")"
	}

	err := pgrest.Do(ctx, requests{e}, req, func(tx pgx.Tx) error {
		if x.Perm == lang.Read {
			if err := tx.QueryRow(ctx, stmt).Scan(&o.Rows); err != nil {
				return err
			}
			o.Can = o.Rows > 0
			return errUndo
		}
		tag, err := tx.Exec(ctx, stmt)
		if err != nil {
			return err
		}
		o.Rows = tag.RowsAffected()
		if o.Rows == 0 {
			return errUndo
		}
		// The superuser's look: the connection's own role, past the
		// policies, still inside the request's transaction.
		var changed bool
		if _, err := tx.Exec(ctx, "reset role"); err != nil {
			return &checkError{err}
		}
		if err := tx.QueryRow(ctx, check).Scan(&changed); err != nil {
			return &checkError{err}
		}
		o.Can = changed
		if !changed {
			o.Note = map[lang.Perm]string{
				lang.Create: "the superuser finds no new row with its values",
				lang.Write:  "the superuser finds the row unchanged",
				lang.Delete: "the superuser still finds the row",
			}[x.Perm]
		}
		return errUndo
	})
	var ce *checkError
	var pgErr *pgconn.PgError
	switch {
	case err == nil || errors.Is(err, errUndo):
	case errors.As(err, &ce):
		return o, &SetupError{fmt.Errorf("%s: checking %s: %w", x.Pos, x, ce.err)}
	case errors.As(err, &pgErr):
		o.Can, o.Rows = false, 0
		o.SQLState, o.Message = pgErr.Code, pgErr.Message
	default:
		return o, &SetupError{fmt.Errorf("%s: %s: %w", x.Pos, x, err)}
	}
	return o, nil
}
