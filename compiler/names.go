package compiler

// The quoting and naming rules of the generated SQL, for the packages that
// read back what a build made (catalog checks it against a live database).

// QuoteIdent quotes a name as the generated SQL does: bare when PostgreSQL
// would read it back unchanged, double-quoted otherwise.
func QuoteIdent(name string) string { return quoteIdent(name) }

// Qualify is schema.name, each part quoted as needed.
func Qualify(schema, name string) string { return qualify(schema, name) }

// DerivedName is the name iamc derives from parts (an index, a foreign key,
// a function), cut to PostgreSQL's 63 bytes the way the build cuts it.
func DerivedName(parts ...string) string { return derivedName(parts...) }

// GuardTrigger is the one trigger iamc puts on a resource's table.
const GuardTrigger = "iam_guard_row"
