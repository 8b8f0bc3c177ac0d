package lang

import "strings"

// Model is the checked meaning of a set of policy files: what the compiler
// turns into SQL. Every name in it is a real (unquoted, case-exact) name.
type Model struct {
	Identity  Identities
	Roles     RoleNames
	RolesPos  Pos // the roles block, or zero when defaults apply
	Groups    GroupSettings
	Timeouts  Timeouts
	Resources []*ResourceModel // sorted by schema, then table
	// Warnings are what the files may say but probably should not (codes
	// IAM180-IAM199), less those an iamc:ignore comment suppresses,
	// sorted by position.
	Warnings ErrorList
	// Suppressions are the files' iamc:ignore comments, for warnings
	// found later (the catalog check's).
	Suppressions *Suppressions
}

// GroupRole is a membership role. Roles are ordered: a rule for a role
// applies to every role above it.
type GroupRole string

// Membership roles, lowest first.
const (
	Member     GroupRole = "member"
	Admin      GroupRole = "admin"
	GroupOwner GroupRole = "owner"
)

// GroupRoles is the default order of the membership roles, lowest first:
// what a groups block without `roles` declares. The order in force is the
// model's (Model.Groups.Roles, and ResourceModel.GroupRoles on each
// resource): read that one.
var GroupRoles = RoleOrder{Member, Admin, GroupOwner}

// GroupSettings is the groups block.
type GroupSettings struct {
	Declared   bool
	Pos        Pos
	APISchema  string    // where the group RPCs and views are created
	TokenClaim string    // JWT claim listing Keycloak group paths; "" for none
	TokenRole  GroupRole // the role token groups confer
	AdminRole  string    // realm role that bypasses the rules; "" for none
	Limits     GroupLimits
	// Roles are the membership roles, lowest first: the groups block's
	// `roles` item, or GroupRoles. The highest is always owner.
	Roles RoleOrder
	// RolesPos is where `roles` was written; zero for the default.
	RolesPos Pos
	// ManagedBy is the lowest role that manages members (adds, removes,
	// changes roles up to its own rank): `members managed by`, or admin
	// when declared, else owner.
	ManagedBy GroupRole
	// ManagedByPos is where `members managed by` was written; zero when
	// the default applies.
	ManagedByPos Pos
	// TokenSubgroups are the Keycloak subgroups that confer a role in the
	// group above them, in the order written.
	TokenSubgroups []TokenSubgroupModel
	// RoleMoves are roles no longer declared whose memberships take
	// another role (`role member becomes viewer`), in the order written.
	RoleMoves []RoleMoveModel
	// The user directory (people.go): which claims it keeps, and whether
	// group members see each other's email.
	Profile         ProfileClaims
	MembersSeeEmail bool
}

// TokenSubgroupModel: a token listing <token name>/<Name> makes its bearer
// Role in the group of that token name.
type TokenSubgroupModel struct {
	Name string
	Role GroupRole
	Pos  Pos
}

// RoleMoveModel: memberships holding From (no longer declared) take To.
type RoleMoveModel struct {
	From, To GroupRole
	Pos      Pos
}

// RoleOrder is a list of membership roles, lowest first. A rule for a
// role applies to every role after it.
type RoleOrder []GroupRole

// Rank is the role's place in the order, from 1 (the lowest); 0 for a role
// not in it.
func (o RoleOrder) Rank(r GroupRole) int {
	for i, g := range o {
		if g == r {
			return i + 1
		}
	}
	return 0
}

// Lowest is the lowest role: every membership has it or a higher one.
func (o RoleOrder) Lowest() GroupRole { return o[0] }

// String is the order as the files write it: "member < admin < owner".
func (o RoleOrder) String() string {
	names := make([]string, len(o))
	for i, r := range o {
		names[i] = string(r)
	}
	return strings.Join(names, " < ")
}

// IsDefault reports whether the order is member < admin < owner.
func (o RoleOrder) IsDefault() bool { return o.String() == GroupRoles.String() }

// GroupLimits are the quotas of the group API: one user cannot make the
// others (or the database) pay for thousands of groups or members.
type GroupLimits struct {
	GroupsCreatedPerUser int // groups one user may have created (and not deleted)
	GroupsPerUser        int // database memberships of one user
	MembersPerGroup      int // database members of one group
	InvitationsPerGroup  int // open invitations of one group
}

// DefaultGroupLimits apply when the groups block sets none. Every policy
// compares a row's group with the caller's groups, so GroupsPerUser bounds
// the per-row cost of the group arm.
var DefaultGroupLimits = GroupLimits{GroupsCreatedPerUser: 100, GroupsPerUser: 200, MembersPerGroup: 1000, InvitationsPerGroup: 100}

// limitPhrases maps each quota as written to its field.
var limitPhrases = map[string]func(*GroupLimits) *int{
	"groups created per user": func(l *GroupLimits) *int { return &l.GroupsCreatedPerUser },
	"groups per user":         func(l *GroupLimits) *int { return &l.GroupsPerUser },
	"members per group":       func(l *GroupLimits) *int { return &l.MembersPerGroup },
	"invitations per group":   func(l *GroupLimits) *int { return &l.InvitationsPerGroup },
}

// Timeouts are set on the runtime roles (ALTER ROLE ... SET), which
// PostgREST applies to every request it runs as them. Values are
// PostgreSQL durations such as '5s'; "0" turns a timeout off.
type Timeouts struct {
	Statement string // statement_timeout: the longest a request's statement may run
	Lock      string // lock_timeout: the longest a statement waits for a lock
}

// DefaultTimeouts: under PostgREST's 10 s pool acquisition timeout, so one
// user's slow requests are cancelled before they starve everyone else's.
var DefaultTimeouts = Timeouts{Statement: "5s", Lock: "2s"}

// GroupsUsed reports whether any resource has a group column.
func (m *Model) GroupsUsed() bool {
	for _, r := range m.Resources {
		if r.GroupColumn != "" {
			return true
		}
	}
	return false
}

// IdentityType is the SQL type of the user id.
type IdentityType string

// Identity types a user id can have.
const (
	UUID IdentityType = "uuid"
	Text IdentityType = "text"
)

// Identities says where the user id comes from, and which tokens the
// runtime's db-pre-request (iam.check_request) accepts.
type Identities struct {
	Claim string       // JWT claim holding the user id; default "sub"
	Type  IdentityType // default uuid (Keycloak's sub)
	// Audience must be in a token's aud (a string, or an array holding it);
	// "" when none is declared (no aud check beyond PostgREST's jwt-aud).
	Audience string
	// ExpiryOptional lets tokens without exp through (`expiry optional`);
	// by default a token must carry a numeric exp.
	ExpiryOptional bool
}

// RoleNames are the database roles the generated SQL names.
type RoleNames struct {
	Authenticated string // what requests with a valid JWT run as
	Anonymous     string // what requests without a JWT run as
	Owner         string // owns the tables and the iam helpers
	// Single: `single role r`, Authenticated and Anonymous are the same
	// role, and a request is anonymous when its claims name no user.
	Single bool
}

// Defaults: Keycloak's `sub` as a uuid, and the role names of the usual
// PostgREST set-up.
var (
	DefaultIdentity = Identities{Claim: "sub", Type: UUID}
	DefaultRoles    = RoleNames{Authenticated: "web_user", Anonymous: "web_anon", Owner: "api_owner"}
)

// Perm is one permission a rule can grant.
type Perm string

// The permissions, in canonical order.
const (
	Read   Perm = "read"   // SELECT the row
	Create Perm = "create" // INSERT a row (owned by the caller)
	Write  Perm = "write"  // UPDATE the row (the owner column stays)
	Delete Perm = "delete" // DELETE the row
)

// AllPerms lists the permissions in canonical order.
var AllPerms = []Perm{Read, Create, Write, Delete}

// PermSet is a set of permissions.
type PermSet map[Perm]bool

// Sorted lists the set in canonical order.
func (s PermSet) Sorted() []Perm {
	var out []Perm
	for _, p := range AllPerms {
		if s[p] {
			out = append(out, p)
		}
	}
	return out
}

// ResourceModel is one protected table.
type ResourceModel struct {
	Schema, Table string
	OwnerColumn   string
	OwnerPos      Pos          // where the owner column was declared
	GroupColumn   string       // "" when rows have no group
	GroupRequired bool         // every row must be in a group
	GroupPos      Pos          // where the group column was declared
	PageKey       string       // "page by" column: list pages newest first by it; "" when none
	PagePos       Pos          // where the page key was declared
	Parent        *ParentLink  // the resource rows take access from; nil when none
	Tenant        *TenantModel // the tenant column; nil when none
	Rules         []RuleModel  // as written, in file order
	Pos           Pos          // where `resource` was written
	TransferPos   Pos          // where `owner can transfer` grants transfer; zero when nothing does
	Shares        Shares       // row shares (share.go); Declared false when none
	// GroupRoles is the model's order of the membership roles (nil in a
	// model built by hand: the default order).
	GroupRoles RoleOrder
}

// Roles is the order of the membership roles in force on r.
func (r *ResourceModel) Roles() RoleOrder {
	if r.GroupRoles == nil {
		return GroupRoles
	}
	return r.GroupRoles
}

// ParentLink is a resource's parent item: each row points at a row of
// the parent resource through a foreign key column, and parent rules give
// access by what holds on that row.
type ParentLink struct {
	Schema, Table string         // the parent's name
	Resource      *ResourceModel // the parent (a declared resource)
	Column        string         // the child's foreign key column
	Key           string         // the parent's key column it references (default id)
	Pos           Pos            // where the parent item was written
}

// RuleModel is one rule as written, kept so generated SQL can cite it.
type RuleModel struct {
	Subject Subject
	Perms   []Perm
	// Columns limits a permission to some columns (`write (stock)`); a
	// permission without an entry covers every column.
	Columns map[Perm][]ColumnRef
	Pos     Pos
}

// ColumnRef is a column named in a rule, where it was written.
type ColumnRef struct {
	Name string
	Pos  Pos
}

// QualifiedName is "schema.table" as a user would type it (unquoted).
func (r *ResourceModel) QualifiedName() string { return r.Schema + "." + r.Table }
