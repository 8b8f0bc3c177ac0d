package lang

import (
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Row shares: a resource may let a row be shared with any number of users
// and groups, each share granting its own subset of what the `shared`
// rules allow (SPEC §21).
//
//	resource app.todos {
//	  ...
//	  share by id with users, groups
//	  max shares per row 100
//	  owner can read, create, write, delete, share
//	  shared can read, write, delete
//	}

// ShareItem is the `share by <key> with users, groups` item.
type ShareItem struct {
	Pos  lexer.Position
	Key  *Ident   `parser:"'by' @@"`
	With []*Ident `parser:"'with' @@ (',' @@)*"`
}

// ShareLimit is a quota of the share API: `max shares per row 100`.
type ShareLimit struct {
	Pos   lexer.Position
	What  []string `parser:"@('shares' | 'per' | 'row' | 'recipient' | 'user' | 'group')+"`
	Value *Ident   `parser:"@@"`
}

// shareText is the item in canonical form.
func shareText(s *ShareItem) string {
	with := make([]string, len(s.With))
	for i, w := range s.With {
		with[i] = ident(w)
	}
	return "share by " + ident(s.Key) + " with " + strings.Join(with, ", ")
}

// Phrase is the limit's words as written, single-spaced.
func (l *ShareLimit) Phrase() string { return strings.Join(l.What, " ") }

// Share is the permission to share a row (and to unshare what one may
// manage). It compiles to no policy of the resource: the share table's
// policies and the share API check it.
const Share Perm = "share"

// SharedSubject is a caller a row is shared with: a user a share of the
// row names, or a member (any role, token groups too) of a group one
// names. Each share grants read and its own subset of the other
// permissions the `shared` rules give.
type SharedSubject struct{}

func (SharedSubject) String() string              { return "shared" }
func (SharedSubject) Anonymous() bool             { return false }
func (SharedSubject) OnlyRead() string            { return "" }
func (SharedSubject) ReadsFor(other Subject) bool { return other == SharedSubject{} }
func (SharedSubject) ReadHint() string            { return "add read (every share grants read)" }

// Shares is a resource's `share` item and its quotas.
type Shares struct {
	Declared bool
	Pos      Pos    // the share item
	Key      string // the column a share points at: a unique, not-null integer
	KeyPos   Pos
	Users    bool // rows may be shared with users
	Groups   bool // rows may be shared with groups (the caller's own)
	Limits   ShareLimits
}

// ShareLimits are the quotas of the share API: one user cannot make rows
// with thousands of shares, nor flood another user's list (and policies)
// with shared rows.
type ShareLimits struct {
	PerRow       int // shares of one row
	PerRecipient int // shares one user (or one group) receives, of this resource
}

// DefaultShareLimits apply when a resource sets none. PerRecipient bounds
// the array a shared arm compares with (the caller's shared rows): the
// benchmark measures a user with 10,000.
var DefaultShareLimits = ShareLimits{PerRow: 100, PerRecipient: 10000}

var shareLimitPhrases = map[string]func(*ShareLimits) *int{
	"shares per row":       func(l *ShareLimits) *int { return &l.PerRow },
	"shares per recipient": func(l *ShareLimits) *int { return &l.PerRecipient },
}

// shareParams are the share API's parameters besides the key: a key column
// of one of these names would clash with them.
var shareParams = []string{"user_id", "group_id", "permissions"}

// SharePerms are the permissions a share may carry, in order (read always).
var SharePerms = []Perm{Read, Write, Delete}

// declaresShares reports whether a resource block has a share item: the
// error for an unknown permission then lists share too.
func declaresShares(r *Resource) bool {
	for _, it := range r.Items {
		if it.Share != nil {
			return true
		}
	}
	return false
}

// share reads the share item.
func (c *checker) share(res *ResourceModel, it *ResourceItem, name []string) {
	s := it.Share
	if res.Shares.Declared {
		c.errs.add(it.Pos, "share is declared twice in %s (first at %s)", displayName(name), whereAt(res.Shares.Pos))
		return
	}
	res.Shares.Declared, res.Shares.Pos = true, posOf(it.Pos)
	if res.Shares.Limits == (ShareLimits{}) {
		res.Shares.Limits = DefaultShareLimits
	}
	if c.ident(s.Key, "column name") {
		res.Shares.Key, res.Shares.KeyPos = s.Key.Name(), posOf(s.Key.Pos)
	}
	for _, w := range s.With {
		var seen *bool
		switch w.Name() {
		case "users":
			seen = &res.Shares.Users
		case "groups":
			seen = &res.Shares.Groups
		default:
			c.errs.add(w.Pos, "unknown share recipient %q: expected users, groups or both (share by %s with users, groups)", w.Raw, s.Key.Raw)
			continue
		}
		if *seen {
			c.errs.add(w.Pos, "%s is listed twice in share ... with", w.Name())
		}
		*seen = true
	}
}

// shareLimit reads a `max shares per ...` item.
func (c *checker) shareLimit(res *ResourceModel, l *ShareLimit, pos lexer.Position, seen map[string]lexer.Position) {
	phrase := l.Phrase()
	field, ok := shareLimitPhrases[phrase]
	if !ok {
		c.errs.add(l.Pos, "unknown limit %q: a resource takes max shares per row N or max shares per recipient N", "max "+phrase)
		return
	}
	if !c.once(seen, "max "+phrase, pos) {
		return
	}
	n, err := strconv.Atoi(l.Value.Raw)
	if err != nil || n < 1 || n > maxLimit {
		c.errs.add(l.Value.Pos, "bad limit %s: max %s takes a whole number from 1 to %d", l.Value.Raw, phrase, maxLimit)
		return
	}
	if res.Shares.Limits == (ShareLimits{}) {
		res.Shares.Limits = DefaultShareLimits
	}
	*field(&res.Shares.Limits) = n
}

// shareRules checks a resource's shares and the rules about them, once
// every item is read.
func (c *checker) shareRules(res *ResourceModel, name []string, granted map[string]map[Perm]lexer.Position, limitPos *lexer.Position) {
	sh := res.Shares
	shared := granted[SharedSubject{}.String()]
	if !sh.Declared {
		if limitPos != nil {
			c.errs.add(*limitPos, "max shares in %s, which declares no shares: add `share by id with users` or remove the limit", displayName(name))
		}
		for _, rule := range res.Rules {
			if rule.Subject == (SharedSubject{}) {
				c.errs.addAt(rule.Pos, "shared rules in %s need rows that can be shared: add `share by id with users, groups` (the key column, and with whom)", displayName(name))
				return
			}
		}
		for _, rule := range res.Rules {
			if pos, ok := granted[rule.Subject.String()][Share]; ok {
				c.errs.add(pos, "%s can share in %s, which declares no shares: add `share by id with users, groups`", rule.Subject, displayName(name))
				return
			}
		}
		return
	}
	if sh.Key != "" && (sh.Key == res.OwnerColumn || sh.Key == res.GroupColumn) {
		c.errs.addAt(sh.KeyPos, "share by %s in %s: a share points at a row by a unique key such as the primary key, not by the owner or group column", sh.Key, displayName(name))
	}
	for _, p := range shareParams {
		if sh.Key == p {
			c.errs.addAt(sh.KeyPos, "share by %s in %s: the share API has a parameter of that name (user_id, group_id, permissions); share by another unique column", sh.Key, displayName(name))
		}
	}
	if len(shared) == 0 {
		c.errs.addAt(sh.Pos, "shares of %s would grant nothing: add a rule such as `shared can read` (a share grants read and, per share, what the shared rules allow)", displayName(name))
	}
	if pos, ok := shared[Create]; ok {
		c.errs.add(pos, "shared callers cannot be granted create: a share is of a row that exists; a share grants read, write, delete (and share, to re-share)")
	}
	// Someone other than a recipient must be able to make the first share.
	sharers := 0
	for _, rule := range res.Rules {
		if _, ok := granted[rule.Subject.String()][Share]; ok && rule.Subject != (SharedSubject{}) {
			sharers++
		}
	}
	if sharers == 0 {
		c.errs.addAt(sh.Pos, "nobody may share rows of %s: add `owner can share` (or `group admin can share`)", displayName(name))
	}
}

// sharesAcrossResources checks what resources with shares need together:
// a groups block (the share API is created in its api schema), and names
// apart (the API's functions are <table>_share, ... in that one schema;
// the share tables are iam.<schema>_<table>_shares).
func (c *checker) sharesAcrossResources() {
	apis, tables := map[string]*ResourceModel{}, map[string]*ResourceModel{}
	for _, r := range c.model.Resources {
		if !r.Shares.Declared {
			continue
		}
		if !c.model.Groups.Declared {
			c.errs.addAt(r.Shares.Pos, "%s declares shares but no groups block says where the share API goes: add `groups { api schema %s }` (the schema PostgREST serves)", r.QualifiedName(), quoteForHint(r.Schema))
			return
		}
		if prev, dup := apis[r.Table]; dup {
			c.errs.addAt(r.Shares.Pos, "%s and %s both declare shares: their share APIs would both be %s_share, %s_unshare and %s_shares in schema %s; share one of them only",
				prev.QualifiedName(), r.QualifiedName(), r.Table, r.Table, r.Table, c.model.Groups.APISchema)
			continue
		}
		if prev, dup := tables[r.Schema+"_"+r.Table]; dup {
			c.errs.addAt(r.Shares.Pos, "%s and %s both declare shares: both share tables would be iam.%s_%s_shares; share one of them only",
				prev.QualifiedName(), r.QualifiedName(), r.Schema, r.Table)
			continue
		}
		apis[r.Table], tables[r.Schema+"_"+r.Table] = r, r
	}
}

// permList is the permissions an unknown one is compared with: share too
// in a resource that declares shares.
func permList(shares bool) string {
	if shares {
		return "read, create, write, delete or share"
	}
	return "read, create, write or delete"
}
