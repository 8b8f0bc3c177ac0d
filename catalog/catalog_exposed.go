package catalog

import (
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// exposedSchemas are the schemas PostgREST serves: the ones asked for
// (each must exist), or the resources' schemas and the groups API schema.
func (c *catalogCheck) exposedSchemas() ([]string, error) {
	if len(c.opts.Schemas) > 0 {
		rows, err := c.db.Query(c.ctx, `
select s from pg_catalog.unnest($1::text[]) s
where not exists (select from pg_catalog.pg_namespace n where n.nspname = s)`, c.opts.Schemas)
		if err != nil {
			return nil, fmt.Errorf("looking up the exposed schemas: %w", err)
		}
		missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("looking up the exposed schemas: %w", err)
		}
		if len(missing) > 0 {
			return nil, &SchemaError{Schemas: missing}
		}
		return c.opts.Schemas, nil
	}
	set := map[string]bool{}
	for _, r := range c.m.Resources {
		set[r.Schema] = true
	}
	if c.m.Groups.Declared && c.m.Groups.APISchema != "" {
		set[c.m.Groups.APISchema] = true
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

// checkExposed warns about each table of an exposed schema that no .iam
// file declares as a resource: nothing here guards it, and with
// row-level security off whoever holds a privilege on it reads every row.
// The finding has no line: it is reported at the policy directory.
// Partitions are left out: requests reach them through their parent
// (directly only with privileges granted on the partition itself).
func (c *catalogCheck) checkExposed() error {
	schemas, err := c.exposedSchemas()
	if err != nil || len(schemas) == 0 {
		return err
	}
	rows, err := c.db.Query(c.ctx, `
select n.nspname, c.relname, c.relrowsecurity
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any ($1::text[]) and c.relkind in ('r', 'p') and not c.relispartition
  and not exists (select from pg_catalog.pg_depend d
      where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and d.objid = c.oid and d.deptype = 'e')
order by n.nspname collate "C", c.relname collate "C"`, schemas)
	if err != nil {
		return fmt.Errorf("listing the tables of the exposed schemas: %w", err)
	}
	type table struct {
		Schema, Name string
		RLS          bool
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		return fmt.Errorf("listing the tables of the exposed schemas: %w", err)
	}
	declared := map[[2]string]bool{}
	for _, r := range c.m.Resources {
		declared[[2]string{r.Schema, r.Table}] = true
	}
	for _, t := range tables {
		if declared[[2]string{t.Schema, t.Name}] {
			continue // its row-level security is checked with the resource
		}
		name := compiler.Qualify(t.Schema, t.Name)
		hint := fmt.Sprintf("declare it in a .iam file (`resource %s { }` denies everything until rules are added) and apply iamc build, or move it out of the schemas PostgREST serves", name)
		if !t.RLS {
			c.add(lang.Pos{}, LevelWarning, hint,
				"table %s.%s in exposed schema %s has row-level security off and no resource in the .iam files: every role with a privilege on it sees and changes every row",
				t.Schema, t.Name, t.Schema)
		} else {
			c.add(lang.Pos{}, LevelWarning, hint,
				"table %s.%s in exposed schema %s has no resource in the .iam files: its policies are not iamc's, and nothing checks them",
				t.Schema, t.Name, t.Schema)
		}
	}
	return nil
}
