// Package stdlib holds the iam runtime: the SQL every generated policy
// relies on, embedded in the iamc binary.
package stdlib

import _ "embed"

// Version is the runtime version this binary installs. Bump it with every
// change to runtime.sql and teach the runtime to upgrade from the last one.
const Version = 1

// Runtime is the runtime SQL, to be run in the iam schema as the owner role.
//
//go:embed runtime.sql
var Runtime string

// Schema is where the runtime lives.
const Schema = "iam"

// Functions the runtime roles call (from policies and triggers), with their
// argument types, so the compiler can grant EXECUTE on exactly these.
var RequestFunctions = []string{
	"iam.claims()",
	"iam.user_id_text(text)",
	"iam.user_id_uuid(text)",
	"iam.bypasses_rls()",
}
