package deploy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iamc/iamc/stdlib"
)

// RuntimeTooNewError: the database holds a runtime newer than this iamc
// installs. Applying older SQL over it could remove protections it added.
type RuntimeTooNewError struct {
	Installed, Supported int
}

func (e *RuntimeTooNewError) Error() string {
	return fmt.Sprintf("the iam runtime in this database is version %d, newer than the one this iamc installs (version %d): "+
		"refusing to put older policies over it, they could remove protections it added; nothing was changed "+
		"(use the iamc release that installed it, or a newer one)", e.Installed, e.Supported)
}

// MissingTablesError: resources whose table does not exist.
type MissingTablesError struct{ Tables []string }

func (e *MissingTablesError) Error() string {
	return fmt.Sprintf("no such table for %d resource(s): %s; create the tables first (iamc check --db says what the database lacks)",
		len(e.Tables), strings.Join(e.Tables, ", "))
}

// LockTimeoutError: a lock was not granted within lock_timeout.
type LockTimeoutError struct {
	Timeout time.Duration
	Doing   string
	Apply   bool
	Err     error
}

func (e *LockTimeoutError) Error() string {
	s := fmt.Sprintf("lock_timeout (%s) reached %s: another session holds a conflicting lock (a long transaction on the table, or another apply)", e.Timeout, e.Doing)
	if e.Apply {
		s += "; nothing was changed, the transaction was rolled back"
	}
	return s + "; retry when it is done, or raise --lock-timeout"
}

func (e *LockTimeoutError) Unwrap() error { return e.Err }

// StatementError: a statement of the build failed.
type StatementError struct {
	Doing string
	Apply bool
	Err   *pgconn.PgError
}

func (e *StatementError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s (SQLSTATE %s)", e.Doing, e.Err.Message, e.Err.Code)
	if e.Err.Detail != "" {
		b.WriteString("\n  detail: " + e.Err.Detail)
	}
	if e.Err.Hint != "" {
		b.WriteString("\n  hint: " + e.Err.Hint)
	}
	if e.Apply {
		b.WriteString("\nNothing was changed: the transaction was rolled back.")
	}
	return b.String()
}

func (e *StatementError) Unwrap() error { return e.Err }

// explain turns a server error into one that says what iamc was doing.
func (r *run) explain(err error, doing string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	switch {
	case pgErr.Code == "55P03":
		return &LockTimeoutError{Timeout: r.opts.LockTimeout, Doing: "while " + doing, Apply: r.apply, Err: err}
	case pgErr.Code == "55000" && strings.Contains(pgErr.Message, "iam runtime"):
		// The runtime's own guard (a runtime installed while we planned).
		e := &RuntimeTooNewError{Supported: stdlib.Version}
		fmt.Sscanf(pgErr.Message, "the iam runtime in this database is version %d", &e.Installed)
		return e
	}
	return &StatementError{Doing: doing, Apply: r.apply, Err: pgErr}
}
