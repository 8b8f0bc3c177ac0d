package lang

import "strings"

// Code is one kind of diagnostic the language reports: a stable code that
// CI, suppressions (# iamc:ignore IAMxxx reason) and docs can name. The
// message says what is wrong in the case at hand; the code says which
// kind of problem it is, and stays when a message's wording changes.
type Code struct {
	ID      string // IAM100
	Level   string // LevelError or LevelWarning
	Title   string // what is wrong, in a few words
	Example string // a policy file that gets it (docs/diagnostics.md shows it; a test compiles it)
	// formats are the checker's message formats reported with this code.
	formats []string
}

// Codes lists the language's diagnostic codes, in order: IAM100-IAM179
// are errors (the files are refused), IAM180-IAM199 warnings. The catalog
// check (IAM300-IAM399), iamc fmt (IAM400), iamc test (IAM200-IAM299) and
// iamc lint (IAM001-IAM099) have their own.
func Codes() []Code {
	out := make([]Code, len(codes))
	copy(out, codes)
	for i := range out {
		out[i].formats = nil
	}
	return out
}

var codes = []Code{
	// Syntax: parser.go.
	{ID: "IAM100", Level: LevelError, Title: "syntax error: a token where another was expected",
		Example: "resource app.todos {\n  permit read\n}\n"},
	{ID: "IAM101", Level: LevelError, Title: "a character no token starts with",
		Example: "resource app.café {\n}\n"},
	{ID: "IAM102", Level: LevelError, Title: "a string or quoted identifier not closed on its line",
		Example: "identity {\n  claim 'sub\n}\n"},

	// Names.
	{ID: "IAM110", Level: LevelError, Title: "a resource name without its schema",
		Example: "resource todos {\n}\n",
		formats: []string{"resource name must be schema.table (e.g. app.todos), got %d part(s)"}},
	{ID: "IAM111", Level: LevelError, Title: "an empty quoted identifier",
		Example: "resource app.\"\" {\n}\n",
		formats: []string{"bad %s: a quoted identifier cannot be empty"}},
	{ID: "IAM112", Level: LevelError, Title: "a control character or invalid UTF-8 in a name or string",
		Example: "identity {\n  claim 'sub\tx'\n}\n",
		formats: []string{
			"bad %s %s: names may not contain control characters or invalid UTF-8",
			"bad %s %s: control characters and invalid UTF-8 are not allowed",
		}},
	{ID: "IAM113", Level: LevelError, Title: "a bare name that is not an identifier",
		Example: "resource app.2todos {\n}\n",
		formats: []string{"bad %s %s: an unquoted identifier starts with a letter or _ (quote it as %q if the name really is that)"}},
	{ID: "IAM114", Level: LevelError, Title: "a name longer than PostgreSQL's 63 bytes",
		Example: "resource app.a_table_name_that_is_longer_than_sixty_three_bytes_which_postgres_cuts {\n}\n",
		formats: []string{"bad %s: %s is longer than PostgreSQL's limit of %d; PostgreSQL would silently cut it to %d bytes, so shorten it"}},
	{ID: "IAM115", Level: LevelError, Title: "a role name PostgreSQL reserves",
		Example: "roles {\n  authenticated public\n}\n",
		formats: []string{
			"bad role name %s: %s",
			"bad role name %s: names starting with pg_ are PostgreSQL's own roles",
		}},

	// Settings blocks.
	{ID: "IAM120", Level: LevelError, Title: "a settings block declared twice",
		Example: "roles {\n}\nroles {\n}\n",
		formats: []string{
			"identity is declared twice (first at %s): declare it once per policy directory",
			"roles are declared twice (first at %s): declare them once per policy directory",
			"groups are declared twice (first at %s): declare them once per policy directory",
		}},
	{ID: "IAM121", Level: LevelError, Title: "a setting given twice in its block",
		Example: "identity {\n  claim 'sub'\n  claim 'uid'\n}\n",
		formats: []string{"%s is set twice (first at %s)"}},
	{ID: "IAM122", Level: LevelError, Title: "an empty claim, audience or role",
		Example: "identity {\n  claim ''\n}\n",
		formats: []string{
			"the identity claim is empty: name the JWT claim holding the user id, e.g. claim 'sub'",
			"the audience is empty: name the value tokens must carry in aud (PostgREST's jwt-aud), e.g. audience 'todo-api'",
			"the token groups claim is empty: name the claim holding the groups, e.g. token claim 'groups' as member",
			"the admin role is empty: name a Keycloak realm role, e.g. admin role 'iam-admin'",
			"the %s claim is empty: name the JWT claim whose string value the column holds, e.g. claim 'org_id'",
			"the role name is empty: name a Keycloak role, e.g. role 'moderator'",
			"the client is empty: name the Keycloak client (its clientId, the key under resource_access), e.g. role 'editor' of client 'todo-app'",
		}},
	{ID: "IAM123", Level: LevelError, Title: "an identity type other than uuid or text",
		Example: "identity {\n  type integer\n}\n",
		formats: []string{"unknown identity type %q: expected uuid or text"}},
	{ID: "IAM124", Level: LevelError, Title: "an expiry other than required or optional",
		Example: "identity {\n  expiry never\n}\n",
		formats: []string{"unknown expiry %q: expected required (the default: tokens must carry exp) or optional"}},
	{ID: "IAM125", Level: LevelError, Title: "a role slot other than authenticated, anonymous or owner",
		Example: "roles {\n  admin web_admin\n}\n",
		formats: []string{"unknown role slot %q: expected authenticated, anonymous or owner"}},
	{ID: "IAM126", Level: LevelError, Title: "the same role for signed-in and anonymous requests",
		Example: "roles {\n  authenticated web_user\n  anonymous web_user\n}\n",
		formats: []string{"the authenticated and anonymous roles must differ (both are %q); for one role with and without a token, write `single role %s`"}},
	{ID: "IAM127", Level: LevelError, Title: "a timeout that is not a whole number and a unit",
		Example: "roles {\n  statement timeout '5 seconds'\n}\n",
		formats: []string{"bad %s %s: write a whole number and a unit (ms, s, min, h), e.g. %s 5s, or 0 for none"}},
	{ID: "IAM128", Level: LevelError, Title: "a group quota iamc does not know",
		Example: "groups {\n  api schema app\n  max groups per group 5\n}\n",
		formats: []string{"unknown limit %q: expected max groups created per user N, max groups per user N, max members per group N or max invitations per group N"}},
	{ID: "IAM129", Level: LevelError, Title: "a group quota that is not a whole number from 1 to 1000000",
		Example: "groups {\n  api schema app\n  max members per group 0\n}\n",
		formats: []string{"bad limit %s: max %s takes a whole number from 1 to %d"}},
	{ID: "IAM130", Level: LevelError, Title: "a groups block without its api schema",
		Example: "groups {\n  token claim 'groups' as member\n}\n",
		formats: []string{"the groups block needs `api schema NAME`: the schema PostgREST serves, where the group functions and views are created"}},
	{ID: "IAM131", Level: LevelError, Title: "a group column without a groups block",
		Example: "resource app.todos {\n  owner column owner_id\n  group column group_id\n  owner can read, create\n  group member can read\n}\n",
		formats: []string{"%s has a group column but no groups block declares the group API: add `groups { api schema %s }` (the schema PostgREST serves)"}},
	{ID: "IAM132", Level: LevelError, Title: "an empty profile claim of the user directory",
		Example: "groups {\n  api schema app\n  email claim ''\n}\n",
		formats: []string{"the %s claim is empty: name the token claim (Keycloak's is %s), or write %s claim none to keep no %s"}},
	{ID: "IAM133", Level: LevelError, Title: "owner can transfer without a groups block",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can read, transfer\n}\n",
		formats: []string{"owner can transfer in %s needs a groups block: the transfer function finds the recipient in the user directory, part of the group API (add `groups { api schema %s }`)"}},

	// Resources.
	{ID: "IAM140", Level: LevelError, Title: "a resource declared twice",
		Example: "resource app.todos {\n}\nresource app.TODOS {\n}\n",
		formats: []string{"resource %s is declared twice (first at %s)"}},
	{ID: "IAM141", Level: LevelError, Title: "an owner column, group column or page key declared twice",
		Example: "resource app.todos {\n  owner column owner_id\n  owner column user_id\n}\n",
		formats: []string{
			"owner column is declared twice in %s (first at %s)",
			"group column is declared twice in %s (first at %s)",
			"page by is declared twice in %s (first at %s)",
		}},
	{ID: "IAM142", Level: LevelError, Title: "the group column is the owner column",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  owner column owner_id\n  group column owner_id\n}\n",
		formats: []string{"the group column cannot also be the owner column"}},
	{ID: "IAM143", Level: LevelError, Title: "owner rules without an owner column",
		Example: "resource app.todos {\n  owner can read\n}\n",
		formats: []string{"resource %s has owner rules but no owner column: add `owner column owner_id` (the column holding the creator's user id)"}},
	{ID: "IAM144", Level: LevelError, Title: "group rules without a group column",
		Example: "resource app.todos {\n  group member can read\n}\n",
		formats: []string{"group rules need a group column in %s: add `group column group_id`"}},
	{ID: "IAM145", Level: LevelError, Title: "page by the owner or group column",
		Example: "resource app.todos {\n  owner column owner_id\n  page by owner_id\n  owner can read\n}\n",
		formats: []string{"page by %s in %s: pages are ordered by a unique key such as the primary key, not by the owner or group column"}},
	{ID: "IAM146", Level: LevelError, Title: "a group column named like a parameter of the page function",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  owner column owner_id\n  group column before\n  page by id\n  owner can read\n}\n",
		formats: []string{"group column %s in %s: the page function has a parameter of that name; rename the column or remove page by"}},
	{ID: "IAM147", Level: LevelError, Title: "page by on a resource nobody can read",
		Example: "resource app.todos {\n  owner column owner_id\n  page by id\n  owner can create\n}\n",
		formats: []string{"page by in %s: nobody can read its rows, so a page would always be empty; add a read rule or remove page by"}},
	{ID: "IAM148", Level: LevelError, Title: "transfer granted to a subject other than the owner",
		Example: "resource app.todos {\n  owner column owner_id\n  authenticated can read, transfer\n}\n",
		formats: []string{"%s cannot be granted transfer: only a row's owner hands it over (owner can transfer)"}},
	{ID: "IAM149", Level: LevelError, Title: "owner can transfer without owner can read",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  owner column owner_id\n  owner can create, transfer\n}\n",
		formats: []string{"owner can transfer but not read in %s: the transfer updates the row, and PostgreSQL only lets UPDATE reach rows the caller can read; add read"}},

	// Rules.
	{ID: "IAM150", Level: LevelError, Title: "a permission other than read, create, write or delete (or share, where rows are shared)",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can read, wirte\n}\n",
		formats: []string{"unknown permission %q: expected %s%s"}},
	{ID: "IAM151", Level: LevelError, Title: "a group role the groups block does not declare (member, admin or owner unless it says roles)",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  group column group_id\n  group boss can read\n}\n",
		formats: []string{formatUnknownGroupRole}},
	{ID: "IAM152", Level: LevelError, Title: "a permission granted twice to the same subject",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can read\n  owner can write, read\n}\n",
		formats: []string{"%s is already granted %s (at %s)"}},
	{ID: "IAM153", Level: LevelError, Title: "anonymous or authenticated granted more than read",
		Example: "resource app.guestbook {\n  anonymous can read, create\n}\n",
		formats: []string{"%s callers can only be granted read: %s"}},
	{ID: "IAM154", Level: LevelError, Title: "write or delete without read",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can create, write\n}\n",
		formats: []string{"%s can %s but not read in %s: PostgreSQL only lets UPDATE and DELETE reach rows the caller can read; %s"}},
	{ID: "IAM155", Level: LevelError, Title: "group create without owner create",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  owner column owner_id\n  group column group_id\n  owner can read\n  group member can read, create\n}\n",
		formats: []string{"group %s can create needs owner can create in %s: whoever puts a row into a group creates it and owns it"}},
	{ID: "IAM156", Level: LevelError, Title: "a required group column no group role can create in",
		Example: "groups {\n  api schema app\n}\nresource app.chats {\n  owner column owner_id\n  group column group_id required\n  owner can read, create\n  group member can read\n}\n",
		formats: []string{"the group column of %s is required, but no group role can create: nobody could insert a row; add e.g. `group member can create`"}},

	// Custom group roles: grouproles.go.
	{ID: "IAM157", Level: LevelError, Title: "a bad order of group roles: a name declared twice, not a bare word, one a rule would misread, or not ending with owner",
		Example: "groups {\n  api schema app\n  roles viewer < editor\n}\n",
		formats: []string{formatRoleTwice, formatRoleNotOwnerLast, formatRoleQuoted, formatRoleReserved}},
	{ID: "IAM158", Level: LevelError, Title: "a bad token subgroup: a path rather than a name, declared twice, or without the token claim",
		Example: "groups {\n  api schema app\n  token claim 'groups' as member\n  token subgroup '/campus/managers' as admin\n}\n",
		formats: []string{formatSubgroupBad, formatSubgroupTwice, formatSubgroupNoClaim}},
	{ID: "IAM159", Level: LevelError, Title: "a role move from a role still declared, or from one role to two",
		Example: "groups {\n  api schema app\n  role admin becomes member\n}\n",
		formats: []string{formatMoveTwice, formatMoveDeclared}},

	// Parents.
	{ID: "IAM160", Level: LevelError, Title: "a parent declared twice",
		Example: "resource app.b {\n}\nresource app.a {\n  parent app.b via b_id\n  parent app.b via other_id\n}\n",
		formats: []string{"parent is declared twice in %s (first at %s): a row takes access from one parent"}},
	{ID: "IAM161", Level: LevelError, Title: "a parent that is not a resource",
		Example: "resource app.c {\n  parent app.missing via m_id\n  parent owner can read\n}\n",
		formats: []string{"parent %s of %s is not a resource: declare `resource %s { ... }` with its rules, or name another parent"}},
	{ID: "IAM162", Level: LevelError, Title: "a resource that is its own parent",
		Example: "resource app.e {\n  owner column owner_id\n  parent app.e via e_id\n}\n",
		formats: []string{"%s cannot be its own parent"}},
	{ID: "IAM163", Level: LevelError, Title: "a parent column that is also the owner or group column",
		Example: "resource app.b {\n}\nresource app.a {\n  owner column b_id\n  parent app.b via b_id\n}\n",
		formats: []string{"the parent column %s of %s is also its owner or group column"}},
	{ID: "IAM164", Level: LevelError, Title: "parents that go round in a cycle",
		Example: "resource app.a {\n  parent app.b via b_id\n  parent readers can read\n}\nresource app.b {\n  parent app.a via a_id\n  parent readers can read\n}\n",
		formats: []string{"parents of %s go round in a cycle (%s): a row's access must come from somewhere else in the end"}},
	{ID: "IAM165", Level: LevelError, Title: "parent rules without a parent",
		Example: "resource app.d {\n  parent owner can read\n}\n",
		formats: []string{"%s: %s has no parent: add `parent schema.table via column` (the foreign key column pointing at the parent)"}},
	{ID: "IAM166", Level: LevelError, Title: "a parent rule about an owner or group column the parent does not have",
		Example: "resource app.g {\n  authenticated can read\n}\nresource app.f {\n  parent app.g via g_id\n  parent owner can read\n}\n",
		formats: []string{"%s: the parent %s has no owner column", "%s: the parent %s has no group column"}},

	// Row shares: share.go.
	{ID: "IAM167", Level: LevelError, Title: "a share item that is wrong or that nobody could use",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  owner column owner_id\n  share by owner_id with users, friends\n  owner can read\n}\n",
		formats: []string{
			"share is declared twice in %s (first at %s)",
			"unknown share recipient %q: expected users, groups or both (share by %s with users, groups)",
			"%s is listed twice in share ... with",
			"share by %s in %s: a share points at a row by a unique key such as the primary key, not by the owner or group column",
			"share by %s in %s: the share API has a parameter of that name (user_id, group_id, permissions); share by another unique column",
			"shares of %s would grant nothing: add a rule such as `shared can read` (a share grants read and, per share, what the shared rules allow)",
			"nobody may share rows of %s: add `owner can share` (or `group admin can share`)",
			"%s declares shares but no groups block says where the share API goes: add `groups { api schema %s }` (the schema PostgREST serves)",
			"%s and %s both declare shares: their share APIs would both be %s_share, %s_unshare and %s_shares in schema %s; share one of them only",
			"%s and %s both declare shares: both share tables would be iam.%s_%s_shares; share one of them only",
		}},
	{ID: "IAM168", Level: LevelError, Title: "a share rule without shares, or a permission sharing cannot have",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can read, share\n  shared can read\n}\n",
		formats: []string{
			"shared rules in %s need rows that can be shared: add `share by id with users, groups` (the key column, and with whom)",
			"%s can share in %s, which declares no shares: add `share by id with users, groups`",
			"shared callers cannot be granted create: a share is of a row that exists; a share grants read, write, delete (and share, to re-share)",
			"%s can share but not read in %s: one shares rows one can read; %s",
		}},
	{ID: "IAM169", Level: LevelError, Title: "a share limit that is unknown or without shares",
		Example: "resource app.todos {\n  owner column owner_id\n  max shares per row 5\n  owner can read\n}\n",
		formats: []string{
			"unknown limit %q: a resource takes max shares per row N or max shares per recipient N",
			"max shares in %s, which declares no shares: add `share by id with users` or remove the limit",
		}},

	// Keycloak roles, claims, tenants, single-role mode: keycloak.go.
	{ID: "IAM170", Level: LevelError, Title: "single role beside the authenticated or anonymous role",
		Example: "roles {\n  single role web_user\n  anonymous web_anon\n}\n",
		formats: []string{
			"single role names the role of every request (at %s); the %s role cannot be set too: keep one of them",
			"single role names the role of every request; the %s role is set too (at %s): keep one of them",
		}},
	{ID: "IAM171", Level: LevelError, Title: "a claim name with an empty part between dots",
		Example: "resource app.records {\n  keeper = claim 'org..id' can read\n}\n",
		formats: []string{"bad claim %s: an empty name between dots (Keycloak nests claims at dots, as org.id; write \\. for a dot inside a name)"}},
	{ID: "IAM172", Level: LevelError, Title: "a claim that is never a string compared with a column",
		Example: "resource app.records {\n  keeper = claim 'exp' can read\n}\n",
		formats: []string{
			"claim %s is never a string: %s is %s; a column compared with it would match no row",
			"claim '%s' is never a string: the groups block reads it as the token's list of groups; a column compared with it would match no row",
		}},
	{ID: "IAM173", Level: LevelError, Title: "a tenant column declared twice",
		Example: "resource app.notes {\n  tenant column org_id from claim 'org_id'\n  tenant column org from claim 'org'\n}\n",
		formats: []string{"tenant column is declared twice in %s (first at %s)"}},
	{ID: "IAM174", Level: LevelError, Title: "a tenant column that is also the owner, group or page-key column",
		Example: "resource app.notes {\n  tenant column owner_id from claim 'org_id'\n  owner column owner_id\n  owner can read\n}\n",
		formats: []string{"the tenant column of %s cannot also be its %s column"}},
	{ID: "IAM175", Level: LevelError, Title: "anonymous readers of a resource with a tenant column",
		Example: "resource app.notes {\n  tenant column org_id from claim 'org_id'\n  anonymous can read\n}\n",
		formats: []string{"anonymous can read in %s: a request without a token has no tenant claim, so it could read no row of a resource with a tenant column; remove the rule (or the tenant column)"}},

	// Column rules: columns.go.
	{ID: "IAM176", Level: LevelError, Title: "a column list where columns cannot be limited: on create or delete, on a read other than anonymous's or authenticated's, beside a whole-row read of the authenticated role, in single-role mode, or for a page function",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can read (id, title), create\n}\n",
		formats: []string{formatColumnsPerm, formatColumnsReadSubject, formatColumnsReadWhole, formatColumnsAnonWhole, formatColumnsSingle, formatColumnsPage}},
	{ID: "IAM177", Level: LevelError, Title: "a column listed twice, or the owner column in a write list",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can read, write (title, title)\n}\n",
		formats: []string{formatColumnTwice, formatColumnOwner}},

	// Warnings: warnings.go, ignore.go.
	{ID: "IAM180", Level: LevelWarning, Title: "a group rule that can never apply: no request can put a row into a group",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  owner column owner_id\n  group column group_id\n  owner can read, create\n  group member can read\n}\n",
		formats: []string{formatNeverApplies}},
	{ID: "IAM181", Level: LevelWarning, Title: "a redundant grant: another rule already grants it",
		Example: "groups {\n  api schema app\n}\nresource app.todos {\n  owner column owner_id\n  group column group_id\n  owner can read, create\n  group member can read, create\n  group admin can read\n}\n",
		formats: []string{formatRedundant}},
	{ID: "IAM182", Level: LevelWarning, Title: "a token groups claim no resource uses",
		Example: "groups {\n  api schema app\n  token claim 'groups' as member\n}\nresource app.todos {\n  owner column owner_id\n  owner can read\n}\n",
		formats: []string{formatClaimUnused}},
	{ID: "IAM183", Level: LevelWarning, Title: "a resource no request can reach",
		Example: "resource app.archive {\n}\n",
		formats: []string{formatUnreachable}},
	{ID: "IAM190", Level: LevelWarning, Title: "an iamc:ignore comment that suppresses nothing",
		Example: "resource app.todos {\n  owner column owner_id\n  owner can read  # iamc:ignore IAM181 kept for clarity\n}\n",
		formats: []string{formatUnusedIgnore}},
	{ID: "IAM191", Level: LevelWarning, Title: "an iamc:ignore comment without a known warning code and a reason",
		Example: "resource app.archive {  # iamc:ignore IAM183\n}\n",
		formats: []string{formatBadIgnore}},
}

// codeOf is the code of each message format; codeByID each code.
var (
	codeOf   = map[string]string{}
	codeByID = map[string]Code{}
)

func init() {
	for _, c := range codes {
		codeByID[c.ID] = c
		for _, f := range c.formats {
			codeOf[f] = c.ID
		}
	}
}

// syntaxCode is the code of a parse error, by its message (parser.go).
func syntaxCode(msg string) string {
	switch {
	case strings.HasPrefix(msg, "unterminated"):
		return "IAM102"
	case strings.HasPrefix(msg, "unexpected character"):
		return "IAM101"
	}
	return "IAM100"
}
