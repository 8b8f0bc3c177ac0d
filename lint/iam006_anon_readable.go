package lint

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// IAM006: the anonymous role (requests without a JWT) can SELECT from a
// table, view or materialized view of an exposed schema, through a grant
// to it, to a role it belongs to, or to PUBLIC (a privilege on some columns
// counts).
//
// Levels: warning when nothing filters the rows (a table without row-level
// security, a view that is not security_invoker, a materialized view, a
// foreign table); info when row-level security decides which rows (a table
// with RLS, a security_invoker view). Skipped when the anonymous role does
// not exist.
var ruleAnonReadable = Rule{
	ID:          "IAM006",
	Name:        "anonymous_readable",
	Level:       Warning,
	Description: "table or view in an exposed schema readable by the anonymous role",
	check:       checkAnonReadable,
}

func checkAnonReadable(ctx context.Context, e *env) ([]Finding, error) {
	if e.anonymous == "" || len(e.exposed) == 0 {
		return nil, nil
	}
	rows, err := e.tx.Query(ctx, `
select pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::text, c.relrowsecurity,
       coalesce(c.reloptions @> '{security_invoker=true}' or c.reloptions @> '{security_invoker=on}', false),
       pg_catalog.has_any_column_privilege('public', c.oid, 'SELECT'),
       pg_catalog.has_schema_privilege($1, n.oid, 'USAGE'),
       pg_catalog.current_setting('server_version_num')::int >= 150000
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($2::text[])
  and c.relkind in ('r', 'p', 'v', 'm', 'f')
  and pg_catalog.has_any_column_privilege($1, c.oid, 'SELECT')
  and `+notExtensionMember("pg_catalog.pg_class", "c.oid")+`
order by 1`, e.anonymous, e.exposed)
	if err != nil {
		return nil, err
	}
	type rel struct {
		Name        string
		Kind        string
		RLS         bool
		Invoker     bool
		Public      bool
		SchemaUsage bool
		// CanInvoke: the server has security_invoker views (PostgreSQL 15+).
		CanInvoke bool
	}
	rels, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rel])
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, r := range rels {
		kind := map[string]string{"r": "table", "p": "table", "v": "view", "m": "materialized view", "f": "foreign table"}[r.Kind]
		via := ""
		from := quoteIdent(e.anonymous)
		if r.Public {
			via = " (granted to PUBLIC)"
			from = "public, " + from
		}
		f := Finding{
			Level:       Warning,
			Object:      r.Name,
			Remediation: fmt.Sprintf("if it is not meant to be public: revoke select on table %s from %s;", r.Name, from),
		}
		switch {
		case (r.Kind == "r" || r.Kind == "p") && r.RLS:
			f.Level = Info
			f.Message = fmt.Sprintf("%s can read this %s%s; row-level security decides which rows", e.anonymous, kind, via)
		case r.Kind == "v" && r.Invoker:
			f.Level = Info
			f.Message = fmt.Sprintf("%s can read this security_invoker view%s; the row-level security of its tables decides which rows", e.anonymous, via)
		case r.Kind == "r" || r.Kind == "p":
			f.Message = fmt.Sprintf("%s can read every row of this table%s: row-level security is off", e.anonymous, via)
		case r.Kind == "v" && r.CanInvoke:
			f.Message = fmt.Sprintf("%s can read this view%s, which reads its tables as its owner (not security_invoker)", e.anonymous, via)
		case r.Kind == "v":
			f.Message = fmt.Sprintf("%s can read this view%s, which reads its tables as its owner (security_invoker views need PostgreSQL 15)", e.anonymous, via)
		default:
			f.Message = fmt.Sprintf("%s can read every row of this %s%s", e.anonymous, kind, via)
		}
		if !r.SchemaUsage {
			f.Level = Info
			f.Message += fmt.Sprintf(" (not reachable yet: %s has no USAGE on the schema)", e.anonymous)
		}
		out = append(out, f)
	}
	return out, nil
}
