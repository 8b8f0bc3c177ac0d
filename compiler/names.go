package compiler

import "github.com/iamc/iamc/lang"

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

// GroupForeignKeyName is the foreign key iamc adds from a resource's group
// column to iam.groups(id).
func GroupForeignKeyName(r *lang.ResourceModel) string {
	return derivedName(r.Table, r.GroupColumn, "iam_fk")
}

// GroupDeleteAction is what that foreign key does when a group is deleted:
// a required group takes its rows with it (cascade), any other leaves them
// to their owners (set null). Code is the same as pg_constraint.confdeltype
// spells it ('c' or 'n').
func GroupDeleteAction(r *lang.ResourceModel) (action, code string) {
	if r.GroupRequired {
		return "cascade", "c"
	}
	return "set null", "n"
}

// IndexSuffix ends the name of every index iamc creates:
// <table>_<column>[_<page key>]_iam_idx.
const IndexSuffix = "iam_idx"

// ArmIndexName is the name iamc gives the index of a policy arm's column
// (its IndexColumns: led by the tenant column and ending with the page key
// when there are), before the build makes it unique among the names of its
// schema.
func ArmIndexName(r *lang.ResourceModel, need ColumnNeed) string {
	return derivedName(append(append([]string{r.Table}, need.IndexColumns(r)...), IndexSuffix)...)
}

// PolicyNames lists every policy name iamc may create on a table: a build
// drops all of them before creating the ones the rules call for, and iamc
// apply drops them from a table that is no longer a resource.
func PolicyNames() []string {
	var names []string
	for _, aud := range []string{audienceAuthenticated, audienceAnonymous} {
		for _, c := range commands {
			names = append(names, PolicyName(aud, c.cmd))
		}
	}
	// owner can transfer's (people.go): a policy of its own.
	return append(names, PolicyName(audienceAuthenticated, "transfer"))
}

// PolicyName is the policy iamc creates for an audience and a command:
// a sentence a DBA reads in \d, "iam: authenticated can select".
func PolicyName(audience, cmd string) string {
	return PolicyPrefix + audience + " can " + cmd
}

// PolicyPrefix starts the name of every policy iamc creates.
const PolicyPrefix = "iam: "

// PageFunctionName is the name of a resource's page function (in the
// resource's schema): <table>_page.
func PageFunctionName(r *lang.ResourceModel) string { return derivedName(r.Table, "page") }
