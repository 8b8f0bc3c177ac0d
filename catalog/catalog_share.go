package catalog

import (
	"fmt"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// checkShareKey reports a share key (share by k) that is not a unique,
// not-null column on its own: the share table's foreign key refers to it,
// and a share names one row by it. Its type (an integer: the share table's
// row_id is bigint) is checked with the columns the rules need
// (compiler.Columns); a missing column is reported there too.
func (c *catalogCheck) checkShareKey(r *lang.ResourceModel, rel uint32) error {
	key := r.Shares.Key
	exists, integer, unique, err := c.keyFacts(r, rel, key)
	if err != nil {
		return fmt.Errorf("looking up the share key of %s: %w", r.QualifiedName(), err)
	}
	if !exists || !integer || unique {
		return nil
	}
	table := compiler.Qualify(r.Schema, r.Table)
	c.add(r.Shares.KeyPos, LevelError,
		fmt.Sprintf("share by the primary key, or: alter table %s alter column %s set not null, add unique (%s);", table, compiler.QuoteIdent(key), compiler.QuoteIdent(key)),
		"share key %s of %s is not a unique, not-null column on its own: a share names one row by it, and the share table's foreign key refers to it", key, r.QualifiedName())
	return nil
}

// keyFacts says whether column exists in rel, is an integer, and is a
// unique, not-null key on its own (a valid unique index on it alone, no
// predicate, no expression).
func (c *catalogCheck) keyFacts(r *lang.ResourceModel, rel uint32, column string) (exists, integer, unique bool, err error) {
	err = c.db.QueryRow(c.ctx, `
select exists (select from pg_catalog.pg_attribute a where a.attrelid = $1 and a.attname = $2 and a.attnum > 0 and not a.attisdropped),
       exists (select from pg_catalog.pg_attribute a where a.attrelid = $1 and a.attname = $2 and a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)),
       exists (select from pg_catalog.pg_index i
               join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
               where i.indrelid = $1 and a.attname = $2 and a.attnotnull
                 and i.indisunique and i.indisvalid and i.indnkeyatts = 1 and i.indpred is null and i.indexprs is null)`,
		rel, column).Scan(&exists, &integer, &unique)
	return exists, integer, unique, err
}
