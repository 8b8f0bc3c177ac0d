// Package stdlib holds the iam runtime: the SQL every generated policy
// relies on, embedded in the iamc binary.
package stdlib

import (
	_ "embed"
	"strconv"
	"strings"
)

// Version is the runtime version this binary installs, the one place that
// holds it: runtime.sql says {{version}} wherever it needs the number. Bump
// it with every change to runtime.sql and teach the runtime to upgrade
// from the last one.
const Version = 4

//go:embed runtime.sql
var runtimeSQL string

// Runtime is the runtime SQL, to be run in the iam schema as the owner role,
// with its version filled in.
var Runtime = strings.ReplaceAll(runtimeSQL, "{{version}}", strconv.Itoa(Version))

// Schema is where the runtime lives.
const Schema = "iam"

// Functions the runtime roles call as themselves, with their argument
// types, so the compiler can grant EXECUTE on exactly these: those named in
// policies, the group API's views and the page functions, and those the
// invoker helpers and the row guard trigger call (a trigger function runs
// as the caller; what it calls needs the caller's EXECUTE). Functions
// called only from SECURITY DEFINER functions run as the owner and are not
// here. Each answers only about the caller (their id, token, groups, role
// in a group) or about constants; none may answer about other people's
// data (policies/exposure_test.go lists every grant and why).
var RequestFunctions = []string{
	"iam.claims()",
	"iam.user_id_text(text)",
	"iam.user_id_uuid(text)",
	"iam.bypasses_rls()",
	"iam.caller_id()",
	"iam.identity_claim()",
	"iam.has_realm_role(text)",
	"iam.is_admin()",
	"iam.role_rank(text)",
	"iam.my_groups()",
	"iam.group_ids(text)",
	"iam.group_role(bigint)",
	"iam.check_group_entry(name, name, text, bigint, text, boolean)",
	"iam.privileged()",
	"iam.may_enter_group(bigint, text, boolean)",
}

// APIFunctions are the group API functions the API schema's wrappers call
// as the caller; each checks the caller's rights itself.
var APIFunctions = []string{
	"iam.create_group(text)",
	"iam.add_group_member(bigint, text, text)",
	"iam.remove_group_member(bigint, text)",
	"iam.set_group_member_role(bigint, text, text)",
	"iam.leave_group(bigint)",
	"iam.delete_group(bigint)",
}

// PreRequest is the function to configure as PostgREST's db-pre-request
// (policies/postgrest.conf does): it refuses planner-estimate counts on
// protected relations, tokens without the declared audience or without
// exp, and subjects on the deny list (iam.blocked_subjects). Both runtime
// roles may call it, because PostgREST calls it for anonymous requests too.
const PreRequest = "iam.check_request"

// PreRequestSignature is PreRequest with its argument types, for grants.
const PreRequestSignature = PreRequest + "()"
