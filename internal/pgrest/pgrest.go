// Package pgrest runs SQL the way PostgREST 12 runs a request: one
// transaction per request, READ ONLY for GET and HEAD, the role and the JWT
// claims set transaction-locally with set_config, then the query. Tests,
// the demo and the benchmark use it so that what they measure is what
// PostgREST would do, without needing a PostgREST binary.
package pgrest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Request is one HTTP request as the database sees it.
type Request struct {
	Method string         // GET, HEAD, POST, PATCH, PUT, DELETE
	Path   string         // e.g. "/todos"
	Role   string         // the role PostgREST switches to (from the JWT, or the anonymous role)
	Claims map[string]any // the verified JWT claims; nil for an anonymous request
	// Headers are the request's HTTP headers, e.g. {"Prefer":
	// "count=planned"}. PostgREST 12 hands them to SQL as the JSON object
	// request.headers with lower-case names; nil sends none ({}).
	Headers map[string]string
	// PreRequest is PostgREST's db-pre-request, a schema-qualified function
	// name such as "iam.check_request"; "" when none is configured.
	PreRequest string
}

// Beginner is a connection or pool that can open a transaction.
type Beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// ReadOnly reports whether PostgREST runs the method in a READ ONLY
// transaction.
func (r Request) ReadOnly() bool {
	m := strings.ToUpper(r.Method)
	return m == "GET" || m == "HEAD"
}

// Do runs fn inside the transaction PostgREST would open for req, commits
// when fn succeeds and rolls back when it fails.
func Do(ctx context.Context, db Beginner, req Request, fn func(pgx.Tx) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}
	if req.ReadOnly() {
		opts.AccessMode = pgx.ReadOnly
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit

	claims := req.Claims
	if claims == nil {
		claims = map[string]any{"role": req.Role}
	}
	claimsJSON, err := json.Marshal(claims)
	if err != nil {
		return fmt.Errorf("encoding claims: %w", err)
	}
	// Header names are case-insensitive; PostgREST sends them lower-case.
	headers := make(map[string]string, len(req.Headers))
	for name, value := range req.Headers {
		headers[strings.ToLower(name)] = value
	}
	headersJSON, err := json.Marshal(headers)
	if err != nil {
		return fmt.Errorf("encoding headers: %w", err)
	}
	// The same settings PostgREST 12 sets before every request, then the
	// settings of the role (ALTER ROLE ... SET, "impersonated role
	// settings"; PostgREST reads pg_roles.rolconfig), also transaction-local:
	// the statement and lock timeouts iamc sets on the runtime roles apply.
	_, err = tx.Exec(ctx, `select
  set_config('role', $1, true),
  set_config('request.jwt.claims', $2, true),
  set_config('request.method', $3, true),
  set_config('request.path', $4, true),
  set_config('request.headers', $5, true),
  set_config('request.cookies', '{}', true),
  (select count(set_config(split_part(c, '=', 1), substr(c, strpos(c, '=') + 1), true))
   from pg_catalog.pg_roles r, unnest(r.rolconfig) c where r.rolname = $1)`,
		req.Role, string(claimsJSON), strings.ToUpper(req.Method), req.Path, string(headersJSON))
	if err != nil {
		return fmt.Errorf("setting request context: %w", err)
	}
	// PostgREST 12 calls the pre-request function after the settings, as
	// the request's role, in the same transaction, before the query.
	if req.PreRequest != "" {
		if _, err := tx.Exec(ctx, "select "+pgx.Identifier(strings.Split(req.PreRequest, ".")).Sanitize()+"()"); err != nil {
			return fmt.Errorf("db-pre-request %s: %w", req.PreRequest, err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// SQLState returns the SQLSTATE of a database error, or "" for any other
// error.
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
