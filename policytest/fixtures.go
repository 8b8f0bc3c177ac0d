package policytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// table is what a run needs to know about a resource's table.
type table struct {
	name    string   // schema-qualified, quoted as needed
	path    string   // the PostgREST path: /todos
	columns []column // in table order
	key     []string // the primary key's columns
	refs    []string // the key columns, then the columns children's parent columns reference
	noop    string   // the column a write without set sets to itself ("" for none)
}

type column struct {
	name, typ  string
	category   string // pg_type.typcategory: S string, N numeric, B boolean, D date/time, U user (uuid)...
	notNull    bool
	hasDefault bool // a default, an identity or a generated column: the insert may leave it out
}

// tableOf reads the columns and the primary key of a resource's table.
func (e *engine) tableOf(ctx context.Context, r *lang.ResourceModel) (*table, error) {
	if t, ok := e.tables[r]; ok {
		return t, nil
	}
	t := &table{name: compiler.Qualify(r.Schema, r.Table), path: "/" + r.Table}
	rows, err := e.tx.Query(ctx, `
		select a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), ty.typcategory::text,
		       a.attnotnull, a.atthasdef or a.attidentity <> '' or a.attgenerated <> '',
		       a.attidentity = 'a' or a.attgenerated <> '',
		       coalesce(a.attnum = any (i.indkey), false)
		from pg_catalog.pg_attribute a
		join pg_catalog.pg_type ty on ty.oid = a.atttypid
		left join pg_catalog.pg_index i on i.indrelid = a.attrelid and i.indisprimary
		where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
		order by a.attnum`, t.name)
	if err != nil {
		return nil, &SetupError{fmt.Errorf("reading the columns of %s: %w", t.name, err)}
	}
	var fixed []bool
	for rows.Next() {
		var c column
		var alwaysGenerated, inKey bool
		if err := rows.Scan(&c.name, &c.typ, &c.category, &c.notNull, &c.hasDefault, &alwaysGenerated, &inKey); err != nil {
			rows.Close()
			return nil, &SetupError{err}
		}
		t.columns = append(t.columns, c)
		fixed = append(fixed, alwaysGenerated)
		if inKey {
			t.key = append(t.key, c.name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, &SetupError{fmt.Errorf("reading the columns of %s: %w", t.name, err)}
	}
	t.refs = append(t.refs, t.key...)
	for _, child := range e.model.Resources {
		if p := child.Parent; p != nil && p.Resource == r && !slices.Contains(t.refs, p.Key) {
			t.refs = append(t.refs, p.Key)
		}
	}
	// A write without set is a no-op PATCH: it sets the first column that
	// is not part of the key, the owner, the group or the tenant (the row
	// guard fires on those), and not generated, to its own value.
	skip := map[string]bool{r.OwnerColumn: true, r.GroupColumn: true}
	if r.Tenant != nil {
		skip[r.Tenant.Column] = true // the row guard fires on it too
	}
	for _, k := range t.key {
		skip[k] = true
	}
	for i, c := range t.columns {
		if !skip[c.name] && !fixed[i] {
			t.noop = c.name
			break
		}
	}
	if t.noop == "" {
		for _, c := range []string{r.GroupColumn, r.OwnerColumn} {
			if c != "" {
				t.noop = c
				break
			}
		}
	}
	e.tables[r] = t
	return t, nil
}

// loadedRow is a fixture row in the database.
type loadedRow struct {
	t      *table
	cols   []string          // the columns the row was inserted with (quoted)
	vals   []string          // their SQL values
	where  string            // finds it by its primary key
	refs   map[string]string // the key's and referenced columns' values, as text
	ctid   string            // its row version after loading
	like   string            // matches rows with the same inserted values
	likeN  int64             // how many rows match like in the loaded fixtures; -1 until counted
	errPos lang.Pos
}

// fixtures is a test file's fixtures, loaded.
type fixtures struct {
	groups map[*lang.FixtureGroup]int64
	rows   map[*lang.FixtureRow]*loadedRow
}

// load inserts a test file's groups, memberships and rows as the
// connection's role (a superuser: the policies do not apply, and the row
// guard lets it set any owner). A group or row the database refuses is a
// problem of the test file, at its position.
func (e *engine) load(ctx context.Context, t *lang.Tests) (*fixtures, error) {
	fx := &fixtures{groups: map[*lang.FixtureGroup]int64{}, rows: map[*lang.FixtureRow]*loadedRow{}}
	var errs lang.ErrorList
	refused := func(pos lang.Pos, what string, err error) error {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return &SetupError{fmt.Errorf("loading %s: %w", what, err)}
		}
		msg := fmt.Sprintf("the database refused %s: %s (SQLSTATE %s)", what, pgErr.Message, pgErr.Code)
		if pgErr.Detail != "" {
			msg += "; " + pgErr.Detail
		}
		errs = append(errs, &lang.Error{Pos: pos, Code: lang.CodeFixtureRefused, Msg: msg})
		return nil
	}
	if len(t.Groups) > 0 && !e.model.Groups.Declared {
		return nil, lang.ErrorList{{Pos: t.Groups[0].Pos, Code: lang.CodeTestBadValue, Msg: "the test declares groups, but the .iam files have no groups block: there is no group runtime to put them in"}}
	}
	for _, g := range t.Groups {
		createdBy := "iamc test"
		for _, m := range g.Members {
			if m.Role == lang.GroupOwner {
				createdBy = m.User.ID
				break
			}
		}
		var token any
		if g.Token != "" {
			token = g.Token
		}
		var id int64
		err := e.inSavepoint(ctx, func() error {
			return e.tx.QueryRow(ctx, `insert into iam.groups (name, token_name, created_by) values ($1, $2, $3) returning id`, g.Name, token, createdBy).Scan(&id)
		})
		if err != nil {
			if err := refused(g.Pos, "group "+g.Name, err); err != nil {
				return nil, err
			}
			continue
		}
		fx.groups[g] = id
		for _, m := range g.Members {
			err := e.inSavepoint(ctx, func() error {
				_, err := e.tx.Exec(ctx, `insert into iam.group_members (group_id, user_id, role, added_by) values ($1, $2, $3, 'iamc test')`, id, m.User.ID, string(m.Role))
				return err
			})
			if err != nil {
				if err := refused(m.Pos, fmt.Sprintf("%s as %s of group %s", m.User.Name, m.Role, g.Name), err); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, row := range parentsFirst(t.Rows) {
		lr, err := e.loadRow(ctx, row, fx)
		if err != nil {
			var list lang.ErrorList
			if errors.As(err, &list) {
				errs = append(errs, list...)
				continue
			}
			if err := refused(row.Pos, "row "+row.Ref, err); err != nil {
				return nil, err
			}
			continue
		}
		fx.rows[row] = lr
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return fx, nil
}

func (e *engine) loadRow(ctx context.Context, row *lang.FixtureRow, fx *fixtures) (*loadedRow, error) {
	t, err := e.tableOf(ctx, row.Resource)
	if err != nil {
		return nil, err
	}
	if len(t.key) == 0 {
		return nil, lang.ErrorList{{Pos: row.Pos, Code: lang.CodeFixtureRefused, Msg: fmt.Sprintf("%s has no primary key: iamc test finds a row by its primary key, as a PostgREST client does", t.name)}}
	}
	lr := &loadedRow{t: t, likeN: -1, errPos: row.Pos}
	given := map[string]bool{}
	var like []string
	for _, v := range row.Values {
		given[v.Column] = true
		val := sqlValue(v, fx)
		lr.cols = append(lr.cols, compiler.QuoteIdent(v.Column))
		lr.vals = append(lr.vals, val)
		like = append(like, compiler.QuoteIdent(v.Column)+" is not distinct from "+val)
	}
	// NOT NULL columns without a default the file leaves out get a value
	// of their type, so that a fixture only says what matters.
	for _, c := range t.columns {
		if given[c.name] || !c.notNull || c.hasDefault {
			continue
		}
		val, ok := filler(c, row)
		if !ok {
			return nil, lang.ErrorList{{Pos: row.Pos, Code: lang.CodeFixtureRefused, Msg: fmt.Sprintf("give %s a value for %s (%s): it is NOT NULL without a default, and iamc test fills only text, numbers, booleans, dates and uuids (write %s '...')", row.Ref, c.name, c.typ, c.name)}}
		}
		lr.cols = append(lr.cols, compiler.QuoteIdent(c.name))
		lr.vals = append(lr.vals, val)
		like = append(like, compiler.QuoteIdent(c.name)+" is not distinct from "+val)
	}
	lr.like = strings.Join(like, " and ")
	if lr.like == "" {
		lr.like = "true"
	}
	returning := []string{"ctid::text"}
	for _, k := range t.refs {
		returning = append(returning, compiler.QuoteIdent(k)+"::text")
	}
	refs := make([]*string, len(t.refs))
	dest := []any{&lr.ctid}
	for i := range refs {
		dest = append(dest, &refs[i])
	}
	err = e.inSavepoint(ctx, func() error {
		return e.tx.QueryRow(ctx, lr.insert()+" returning "+strings.Join(returning, ", ")).Scan(dest...)
	})
	if err != nil {
		return nil, err
	}
	lr.refs = map[string]string{}
	for i, k := range t.refs {
		if refs[i] != nil {
			lr.refs[k] = *refs[i]
		}
	}
	conds := make([]string, len(t.key))
	for i, k := range t.key {
		conds[i] = compiler.QuoteIdent(k) + " = " + literal(lr.refs[k])
	}
	lr.where = strings.Join(conds, " and ")
	return lr, nil
}

// insert is the statement that creates the row as the file describes it.
func (lr *loadedRow) insert() string {
	if len(lr.cols) == 0 {
		return "insert into " + lr.t.name + " default values"
	}
	return fmt.Sprintf("insert into %s (%s) values (%s)", lr.t.name, strings.Join(lr.cols, ", "), strings.Join(lr.vals, ", "))
}

// parentsFirst orders rows so that a parent row is loaded before the rows
// that name it: by the depth of their resource's parent chain, then as
// written.
func parentsFirst(rows []*lang.FixtureRow) []*lang.FixtureRow {
	depth := func(r *lang.ResourceModel) int {
		d := 0
		for p := r.Parent; p != nil && p.Resource != nil && d <= 100; p = p.Resource.Parent {
			d++
		}
		return d
	}
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b *lang.FixtureRow) int { return depth(a.Resource) - depth(b.Resource) })
	return out
}

// sqlValue is a fixture value as SQL: a literal PostgreSQL casts to the
// column's type, a user's id, a group's id, a parent row's key, or null.
func sqlValue(v lang.Value, fx *fixtures) string {
	switch v.Kind {
	case lang.Null:
		return "null"
	case lang.UserID:
		return literal(v.User.ID)
	case lang.GroupID:
		if v.Group == nil {
			return "null"
		}
		id, ok := fx.groups[v.Group]
		if !ok {
			return "null" // the group was refused, and reported
		}
		return strconv.FormatInt(id, 10)
	case lang.RowKey:
		lr, ok := fx.rows[v.Row]
		if !ok {
			return "null" // the parent row was refused, and reported
		}
		key, ok := lr.refs[v.Key]
		if !ok {
			return "null" // the parent's key is null
		}
		return literal(key)
	default:
		return literal(v.Literal)
	}
}

// filler is a value for a NOT NULL column the file leaves out.
func filler(c column, row *lang.FixtureRow) (string, bool) {
	switch {
	case c.typ == "uuid":
		sum := sha256.Sum256([]byte("iamc test row " + row.Ref + " " + c.name))
		h := hex.EncodeToString(sum[:16])
		return literal(h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:]), true
	case c.category == "S":
		return literal(row.Name), true
	case c.category == "N":
		return "0", true
	case c.category == "B":
		return "false", true
	case c.category == "D":
		return literal("now"), true
	}
	return "", false
}

// literal quotes s as an SQL string (standard_conforming_strings is on).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// inSavepoint runs fn in a savepoint, kept when fn succeeds and undone
// when it fails, so that one refused fixture does not end the transaction.
func (e *engine) inSavepoint(ctx context.Context, fn func() error) error {
	if _, err := e.tx.Exec(ctx, "savepoint iamc_fixture"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := e.tx.Conn().PgConn().Exec(ctx, "rollback to savepoint iamc_fixture; release savepoint iamc_fixture").ReadAll(); rerr != nil {
			return rerr
		}
		return err
	}
	_, err := e.tx.Exec(ctx, "release savepoint iamc_fixture")
	return err
}

// countLike counts the rows that hold a fixture row's values.
func (e *engine) countLike(ctx context.Context, tx pgx.Tx, lr *loadedRow) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, "select count(*) from "+lr.t.name+" where "+lr.like).Scan(&n)
	return n, err
}
