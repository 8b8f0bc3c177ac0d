package compiler

import (
	"context"
	"fmt"
	"sort"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/lang"
)

// Finding is one problem the catalog check found, at the .iam position
// that it concerns.
type Finding struct {
	Pos   lexer.Position
	Level string // "error" or "warning"
	Msg   string
	Hint  string
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s:%d:%d: %s: %s", f.Pos.Filename, f.Pos.Line, f.Pos.Column, f.Level, f.Msg)
	if f.Pos.Line == 0 { // a default, declared nowhere
		s = fmt.Sprintf("%s: %s: %s", f.Pos.Filename, f.Level, f.Msg)
	}
	if f.Hint != "" {
		s += "\n  hint: " + f.Hint
	}
	return s
}

// Querier is what the catalog check needs from a connection.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CheckCatalog compares a model with a live database: the roles exist,
// every resource's table exists and is owned by the owner role, and the
// owner column exists with the identity's type.
func CheckCatalog(ctx context.Context, db Querier, m *lang.Model) ([]Finding, error) {
	rolesPos := m.RolesPos
	var out []Finding
	for _, role := range []string{m.Roles.Authenticated, m.Roles.Anonymous, m.Roles.Owner} {
		var exists bool
		if err := db.QueryRow(ctx, "select exists (select from pg_catalog.pg_roles where rolname = $1)", role).Scan(&exists); err != nil {
			return nil, fmt.Errorf("looking up role %s: %w", role, err)
		}
		if !exists {
			out = append(out, Finding{Pos: rolesPos, Level: "error",
				Msg:  fmt.Sprintf("role %s does not exist", role),
				Hint: fmt.Sprintf("create role %s nologin; (or name an existing role in the roles block)", quoteIdent(role))})
		}
	}
	for _, r := range m.Resources {
		found, err := checkResource(ctx, db, m, r)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return out, nil
}

func checkResource(ctx context.Context, db Querier, m *lang.Model, r *lang.ResourceModel) ([]Finding, error) {
	var (
		exists bool
		owner  string
		kind   string
	)
	err := db.QueryRow(ctx, `
select true, pg_catalog.pg_get_userbyid(c.relowner), c.relkind::text
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2`, r.Schema, r.Table).Scan(&exists, &owner, &kind)
	if err == pgx.ErrNoRows {
		return []Finding{{Pos: r.Pos, Level: "error",
			Msg:  fmt.Sprintf("table %s does not exist", r.QualifiedName()),
			Hint: "create the table before applying policies, or fix the resource name"}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up table %s: %w", r.QualifiedName(), err)
	}
	var out []Finding
	if kind != "r" && kind != "p" {
		out = append(out, Finding{Pos: r.Pos, Level: "error",
			Msg:  fmt.Sprintf("%s is not a table (relkind %s): row-level security applies to tables only", r.QualifiedName(), kind),
			Hint: "protect the underlying table; views should be security_invoker"})
	}
	if owner != m.Roles.Owner {
		out = append(out, Finding{Pos: r.Pos, Level: "error",
			Msg:  fmt.Sprintf("table %s is owned by %s, not by the owner role %s", r.QualifiedName(), owner, m.Roles.Owner),
			Hint: fmt.Sprintf("alter table %s owner to %s;", qualify(r.Schema, r.Table), quoteIdent(m.Roles.Owner))})
	}
	if r.OwnerColumn != "" {
		f, err := checkColumn(ctx, db, r, r.OwnerColumn, r.OwnerPos, string(m.Identity.Type), func(t string) bool { return typeMatches(m.Identity.Type, t) },
			"the identity type is "+string(m.Identity.Type), fmt.Sprintf("change the column to %s, or declare `identity { type ... }` to match", m.Identity.Type))
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	if r.GroupColumn != "" {
		f, err := checkColumn(ctx, db, r, r.GroupColumn, r.GroupPos, "bigint", func(t string) bool { return t == "bigint" },
			"group ids (iam.groups.id) are bigint", "alter the column to bigint")
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	return out, nil
}

// checkColumn reports a missing column, or one whose type ok refuses.
func checkColumn(ctx context.Context, db Querier, r *lang.ResourceModel, column string, pos lexer.Position,
	wantType string, ok func(string) bool, why, hint string) ([]Finding, error) {
	var colType string
	err := db.QueryRow(ctx, `
select pg_catalog.format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_attribute a
where a.attrelid = pg_catalog.format('%I.%I', $1::text, $2::text)::regclass
  and a.attname = $3 and a.attnum > 0 and not a.attisdropped`, r.Schema, r.Table, column).Scan(&colType)
	if err == pgx.ErrNoRows {
		return []Finding{{Pos: pos, Level: "error",
			Msg:  fmt.Sprintf("column %s does not exist in %s", column, r.QualifiedName()),
			Hint: fmt.Sprintf("alter table %s add column %s %s;", qualify(r.Schema, r.Table), quoteIdent(column), wantType)}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up column %s.%s: %w", r.QualifiedName(), column, err)
	}
	if !ok(colType) {
		return []Finding{{Pos: pos, Level: "error",
			Msg:  fmt.Sprintf("column %s.%s is %s, but %s", r.QualifiedName(), column, colType, why),
			Hint: hint}}, nil
	}
	return nil, nil
}

func typeMatches(id lang.IdentityType, colType string) bool {
	switch id {
	case lang.UUID:
		return colType == "uuid"
	default:
		return colType == "text" || colType == "character varying" || len(colType) > 18 && colType[:18] == "character varying("
	}
}
