// Package stdlib holds the iam runtime: the SQL every generated policy
// relies on, embedded in the iamc binary.
package stdlib

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// Version is the runtime version this binary installs, the one place that
// holds it: runtime.sql says {{version}} wherever it needs the number. Bump
// it with every change to runtime.sql or a new step in migrations/; a step
// is numbered with the version that brings it.
const Version = 4

//go:embed runtime.sql
var runtimeSQL string

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one step of stdlib/migrations: a change of the runtime's
// tables or of their stored data, which a database gets once. Its number is
// the runtime version that brought it, so a database records which steps it
// has by its version alone (iam.runtime): runtimes 1 to 3, released before
// there were steps, hold exactly the tables of the steps up to their
// version. A step runs where the installed version is lower than its
// number, and is written so that running it again changes nothing (IF NOT
// EXISTS, or a look at the catalog first): a database whose version was
// set back by hand comes out the same.
//
// A version may bring more than one step while it is unreleased (work on
// separate tables lands separately): NNNN_words.sql first, then
// NNNNb_words.sql, NNNNc_words.sql ..., all run where the installed
// version is older than NNNN, in that order.
type Migration struct {
	Version int    // runs where the installed runtime is older
	Part    string // "" for the version's first step, then "b", "c", ...
	Name    string // the file name without .sql, e.g. 0002_deny_list
	Body    string // the file: the statements of a PL/pgSQL block
}

// Migrations are the steps, in the order they run.
var Migrations = loadMigrations()

var migrationName = regexp.MustCompile(`^([0-9]{4})([b-z]?)_[a-z0-9_]+\.sql$`)

func loadMigrations() []Migration {
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	var out []Migration
	for _, f := range files { // fs.Glob sorts: numbers ascend, NNNN_ before NNNNb_
		name := strings.TrimPrefix(f, "migrations/")
		m := migrationName.FindStringSubmatch(name)
		if m == nil {
			panic(fmt.Sprintf("stdlib/migrations/%s: a step is named NNNN_words.sql (or NNNNb_words.sql, a version's second step)", name))
		}
		body, err := migrationFiles.ReadFile(f)
		if err != nil {
			panic(err)
		}
		n, _ := strconv.Atoi(m[1])
		out = append(out, Migration{Version: n, Part: m[2], Name: strings.TrimSuffix(name, ".sql"), Body: string(body)})
	}
	return out
}

// SQL is the step as the build runs it: a DO block (a script cannot skip
// statements otherwise; psql's \if is not available to iamc apply) that
// returns at once where the installed runtime (iam.runtime, read before
// this build records its own version) is not older than the step, and
// otherwise runs the file and notes the step in iam.migrations. The file
// is indented by four spaces, so a step holds no string that spans lines
// (stdlib_test.go checks).
func (m Migration) SQL() string {
	lines := strings.Split(strings.TrimSpace(m.Body), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return fmt.Sprintf(`-- stdlib/migrations/%[2]s.sql: runs only where the installed
-- runtime is older than version %[1]d.
do $step$
begin
    if (select coalesce(max(r.version), 0) from iam.runtime r) >= %[1]d then
        return;
    end if;

%[3]s

    insert into iam.migrations (name, step) values ('%[2]s', %[1]d)
    on conflict (name) do update set step = excluded.step, applied_at = now();
end
$step$;`, m.Version, m.Name, strings.Join(lines, "\n"))
}

// Runtime is the runtime SQL, to be run in the iam schema as the owner role,
// with its version filled in and its steps in place.
var Runtime = runtime()

func runtime() string {
	steps := make([]string, len(Migrations))
	for i, m := range Migrations {
		steps[i] = m.SQL()
	}
	s := strings.ReplaceAll(runtimeSQL, "{{version}}", strconv.Itoa(Version))
	return strings.Replace(s, "{{migrations}}", strings.Join(steps, "\n\n"), 1)
}

// Schema is where the runtime lives.
const Schema = "iam"

//go:embed partition_guard.sql
var partitionGuardSQL string

// The event trigger that locks down new partitions of tables with
// row-level security (partition_guard.sql), and the schema of its
// function, which a superuser owns.
const (
	PartitionTrigger = "iam_lock_partitions"
	DDLSchema        = "iam_ddl"
)

// PartitionGuard is the DO block that installs the event trigger
// PartitionTrigger when a superuser runs it and one of tables (regclass
// expressions, e.g. pg_catalog.to_regclass('app.chats')) is partitioned;
// for anyone else it does nothing. It must run before the build switches
// to the owner role.
func PartitionGuard(tables []string) string {
	list := "'{}'"
	if len(tables) > 0 {
		list = "array[" + strings.Join(tables, ", ") + "]"
	}
	return strings.ReplaceAll(strings.TrimSpace(partitionGuardSQL), "{{tables}}", list)
}

// Functions the runtime roles call as themselves, with their argument
// types, so the compiler can grant EXECUTE on exactly these: those named in
// policies, the group API's views and the page functions, and those the
// invoker helpers and the row guard trigger call (a trigger function runs
// as the caller; what it calls needs the caller's EXECUTE). Functions
// called only from SECURITY DEFINER functions run as the owner and are not
// here. Each answers only about the caller (their id, token, groups, role
// in a group) or about constants; none may answer about other people's
// data (exposure_test.go lists every grant and why).
var RequestFunctions = []string{
	"iam.claims()",
	"iam.user_id_text(text)",
	"iam.user_id_uuid(text)",
	// The caller's context (runtime.sql): the readers above are inlined
	// into the policies, so their key and their computing halves are
	// called as the caller.
	"iam.caller_key()",
	"iam.compute_user_id_text(text)",
	"iam.compute_user_id_uuid(text)",
	"iam.compute_group_ids(text)",
	"iam.compute_caller_id()",
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
	"iam.has_client_role(text, text)",
	"iam.claim_text(text[])",
	"iam.claim_match(text[])",
	"iam.guard_tenant(anyelement, jsonb, text, text[], name, name)",
	// People (SPEC §11): the views of invitations and the audit trail, and
	// the row guard's and the transfer policy's questions about a transfer.
	"iam.managed_group_ids()",
	"iam.transfer_pending(regclass)",
	"iam.take_transfer(oid, jsonb, text, text, bigint, text)",
}

// APIFunctions are the group API functions the API schema's wrappers call
// as the caller; each checks the caller's rights itself.
var APIFunctions = []string{
	"iam.create_group(text)",
	"iam.add_group_member(bigint, text, text, text, text)",
	"iam.remove_group_member(bigint, text)",
	"iam.set_group_member_role(bigint, text, text)",
	"iam.leave_group(bigint)",
	"iam.delete_group(bigint)",
	// People (SPEC §11): the directory, invitations, ownership transfer
	// (a resource's <table>_transfer runs as the caller, under the table's
	// policies, and calls the two definers around its update).
	"iam.sync_profile()",
	"iam.create_invitation(bigint, text, interval, integer)",
	"iam.accept_invitation(text)",
	"iam.revoke_invitation(bigint)",
	"iam.transfer_group(bigint, text, text, text)",
	"iam.grant_transfer(regclass, text, text, text, text)",
	"iam.finish_transfer(regclass)",
	"iam.transfer_recipient(regclass)",
	"iam.refuse_not_owner(text, text, text)",
}

// PreRequest is the function to configure as PostgREST's db-pre-request
// (policies/postgrest.conf does): it refuses planner-estimate counts on
// protected relations, tokens without the declared audience or without
// exp, and subjects on the deny list (iam.blocked_subjects). Both runtime
// roles may call it, because PostgREST calls it for anonymous requests too.
const PreRequest = "iam.check_request"

// PreRequestSignature is PreRequest with its argument types, for grants.
const PreRequestSignature = PreRequest + "()"
