package catalog

import "github.com/iamc/iamc/lang"

// catalogCode is one kind of finding of the catalog check (IAM300-IAM399),
// and the message formats reported with it.
type catalogCode struct {
	lang.Code
	formats []string
}

// Codes lists the catalog check's diagnostic codes, in order. Their
// examples describe the database that gets them.
func Codes() []lang.Code {
	out := make([]lang.Code, len(codes))
	for i, c := range codes {
		out[i] = c.Code
	}
	return out
}

func code(id, level, title, example string, formats ...string) catalogCode {
	return catalogCode{Code: lang.Code{ID: id, Level: level, Title: title, Example: example}, formats: formats}
}

var codes = []catalogCode{
	// Roles and the group API schema.
	code("IAM300", LevelError, "a declared role, or the authenticator, does not exist",
		"roles { authenticated web_user } where no role web_user exists",
		"role %s does not exist", "role %s does not exist: PostgREST logs in as it (--authenticator)"),
	code("IAM301", LevelError, "a runtime role or the authenticator is a superuser",
		"alter role web_user superuser",
		"%s %s is a superuser: it can become any role, so a token whose role claim names any role runs as that role",
		"%s %s is a superuser: %s skips row-level security and every privilege check"),
	code("IAM302", LevelError, "a runtime role or the authenticator has BYPASSRLS",
		"alter role web_anon bypassrls",
		"%s %s has BYPASSRLS: whatever runs as it rather than as a runtime role skips row-level security",
		"%s %s has BYPASSRLS: %s skips row-level security"),
	code("IAM303", LevelError, "the authenticator cannot become a runtime role",
		"revoke web_user from authenticator",
		"%s cannot become %s: PostgREST logs in as %s and switches to %s for %s"),
	code("IAM304", LevelWarning, "the owner role is also a runtime role",
		"roles { anonymous api_owner owner api_owner }",
		"the owner role %s is also %s: requests run as the owner of every resource's table, with every privilege on it and the power to turn row-level security off"),
	code("IAM305", LevelWarning, "a runtime role or the authenticator can become the owner role",
		"grant api_owner to web_user",
		"%s can become the owner role %s: a token whose role claim is %s makes PostgREST run the request as the owner of every resource's table",
		"%s %s can become the owner role %s: requests get every privilege on the resources' tables and the power to turn row-level security off"),
	code("IAM306", LevelError, "the groups API schema does not exist",
		"groups { api schema api } where no schema api exists",
		"the groups API schema %s does not exist: iamc build creates the group functions and views there, and PostgREST must serve it"),
	code("IAM307", LevelError, "the owner role cannot create in the groups API schema",
		"create schema api authorization postgres",
		"the owner role %s cannot create in the groups API schema %s: applying iamc build would fail there"),

	// Tables and columns.
	code("IAM310", LevelError, "a resource's table does not exist",
		"resource app.notes { } where no table app.notes exists",
		"table %s does not exist"),
	code("IAM311", LevelError, "a resource is not a table",
		"resource app.todo_view { } where app.todo_view is a view",
		"%s is not a table (relkind %s): row-level security applies to tables only"),
	code("IAM312", LevelError, "a resource's table is not owned by the owner role",
		"alter table app.todos owner to postgres",
		"table %s is owned by %s, not by the owner role %s"),
	code("IAM313", LevelError, "an owner, group or page-key column does not exist",
		"owner column owner_id where app.todos has no column owner_id",
		"column %s does not exist in %s"),
	code("IAM314", LevelError, "an owner or group column of the wrong type",
		"owner_id text where the identity type is uuid",
		"column %s.%s is %s, but %s"),
	code("IAM315", LevelWarning, "row-level security is off (expected before the first build)",
		"a table the build was not applied to yet",
		"row-level security is off on %s: every role with a privilege on it sees and changes every row"),
	code("IAM316", LevelWarning, "a resource's table has no primary key",
		"create table app.log (owner_id uuid, line text)",
		"table %s has no primary key: PostgREST needs one for PUT, upserts (Prefer: resolution=...) and the Location header of POST; PATCH and DELETE by filter still work"),
	code("IAM317", LevelWarning, "a trigger iamc did not write",
		"create trigger zz_fix before update on app.todos ...",
		"table %s has trigger %s, which iamc did not write: a BEFORE ROW trigger firing after %s (triggers fire in name order) can change the owner or group column the guard checked"),
	code("IAM318", LevelWarning, "a permissive policy iamc did not write",
		"create policy everyone on app.todos using (true)",
		"table %s has policy %q, which iamc did not write: PostgreSQL ORs permissive policies, so it can let requests see or change rows the rules do not allow"),
	code("IAM319", LevelWarning, "a restrictive policy iamc did not write",
		"create policy office_hours on app.todos as restrictive using (...)",
		"table %s has restrictive policy %q, which iamc did not write: it takes away access the rules give"),
	code("IAM320", LevelWarning, "no index for a column the policies look rows up by (expected before the first build)",
		"a table the build was not applied to yet",
		"no index of %s leads with %s: %s, so without one every request reads the whole table"),
	code("IAM321", LevelError, "a page key that is not an integer column",
		"page by title",
		"page key %s of %s is not an integer column: the page function's cursor is an integer"),
	code("IAM322", LevelError, "a page key that is not unique and not null on its own (of a partitioned table: nor an identity column generated always)",
		"page by position, where position is not unique",
		"page key %s of %s is not a unique, not-null column on its own: pages ordered by it would repeat or skip rows",
		"page key %s of %s is neither unique on its own nor an identity column generated always: %s is partitioned (%s), so a unique index must hold the partition key, and pages ordered by %s would repeat or skip rows that share a value"),
	code("IAM323", LevelWarning, "a group column without its foreign key to iam.groups (expected before the first build)",
		"a table the build was not applied to yet",
		"column %s.%s has no foreign key to iam.groups(id): rows can name groups that do not exist, and deleting a group leaves its id in them"),
	code("IAM324", LevelWarning, "a group column's foreign key with another ON DELETE than iamc's",
		"foreign key (group_id) references iam.groups on delete restrict",
		"the foreign key %s of %s.%s is on delete %s: %s, where iamc expects that %s"),
	code("IAM325", LevelError, "a parent column that is not a foreign key to the parent's key",
		"parent app.stores via store_id, where store_id has no foreign key to app.stores(id)",
		"column %s of %s is not a foreign key to %s.%s.%s: the parent rules follow it to one parent row"),
	code("IAM326", LevelError, "a share key that is not unique and not null on its own",
		"share by position with users, where position is not unique",
		"share key %s of %s is not a unique, not-null column on its own: a share names one row by it, and the share table's foreign key refers to it"),

	// The schemas PostgREST serves.
	code("IAM330", LevelWarning, "an exposed table with no resource and row-level security off",
		"create table app.notes (...) in a schema PostgREST serves, declared in no .iam file",
		"table %s.%s in exposed schema %s has row-level security off and no resource in the .iam files: every role with a privilege on it sees and changes every row"),
	code("IAM331", LevelWarning, "an exposed table with no resource",
		"a table of schema app with policies written by hand",
		"table %s.%s in exposed schema %s has no resource in the .iam files: its policies are not iamc's, and nothing checks them"),

	// Partitioned resources: every partition is reached only through its
	// table (SPEC §5, "Partitioned tables").
	code("IAM340", LevelError, "a resource that is a partition of another table",
		"resource app.chats_2025_01 { } where app.chats_2025_01 is a partition of app.chats",
		"%s is a partition of %s: requests through %s never meet the policies of a partition, and iamc locks every partition of a resource down"),
	code("IAM341", LevelError, "a partition of a resource not owned by the owner role",
		"create table app.chats_2025_01 partition of app.chats ... run by postgres, without the event trigger",
		"%s is owned by %s, not by the owner role %s: iamc build cannot lock it down, nor change %s (its trigger and the owner column's default reach every partition)"),
	code("IAM342", LevelError, "a partition the runtime roles reach with row-level security off",
		"pg_partman's inherit_privileges copying grant select on app.chats to the new partition, without the event trigger",
		"%s has row-level security off and %s: queried directly (PostgREST serves every table of its schemas), it skips the policies of %s and shows every row in it"),
	code("IAM343", LevelError, "a partition the runtime roles reach through policies of its own",
		"grant select on app.chats_2025_01 to web_user; create policy p on app.chats_2025_01 using (true)",
		"%s has policies of its own (%s) and %s: queried directly, its policies decide, not the rules of %s"),
	code("IAM344", LevelWarning, "a partition with row-level security off (expected before the first build)",
		"a partition the build was not applied to yet",
		"%s has row-level security off: the first privilege granted on it (pg_partman's inherit_privileges, default privileges, a GRANT) opens the rows in it to direct queries, past the policies of %s"),
	code("IAM345", LevelWarning, "a partition with row-level security not forced",
		"alter table app.chats_2025_01 no force row level security",
		"%s has row-level security not forced: its owner %s, and its views and SECURITY DEFINER functions, read and change it directly past the policies of %s"),
	code("IAM346", LevelWarning, "a partition with privileges for roles other than its owner",
		"grant select on app.chats_2025_01 to reporting",
		"%s grants privileges to %s: a partition is reached through %s, whose grants and policies apply; queried directly only its own do"),
	code("IAM347", LevelWarning, "a partition with a policy of its own",
		"create policy p on app.chats_2025_01 using (true)",
		"%s has policy %q: a partition queried directly is decided by its own policies, not by the rules of %s (iamc revokes every privilege on it, so it opens nothing until someone grants one)"),
	code("IAM348", LevelWarning, "a partition with a trigger of its own",
		"create trigger touch before insert on app.chats_2025_01 ...",
		"%s has trigger %s of its own, which iamc did not write: it fires for the rows of %s stored there, and a BEFORE ROW trigger firing after %s can change the owner or group column the guard checked"),
	code("IAM349", LevelWarning, "new partitions are not locked down as they are made (no event trigger)",
		"a partitioned resource whose build was applied by the owner role, never by a superuser",
		"new partitions of %s are not locked down when they are created: %s, so a partition made later (by hand or by pg_partman) has row-level security off until the next build is applied, and a privilege granted on it meanwhile opens every row in it"),
}

// codeOf is the code of each message format.
var codeOf = map[string]string{}

func init() {
	for _, c := range codes {
		for _, f := range c.formats {
			codeOf[f] = c.ID
		}
	}
}

// IsCode reports whether code is one the catalog check reports.
func IsCode(code string) bool {
	for _, c := range codes {
		if c.ID == code {
			return true
		}
	}
	return false
}
