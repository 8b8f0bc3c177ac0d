package lang

import (
	"github.com/alecthomas/participle/v2/lexer"
)

// People (SPEC §11, "People"): what the groups block says about the user
// directory, and the transfer permission of a resource.
//
//	groups {
//	  api schema app
//	  username claim 'preferred_username'   # the defaults
//	  email claim 'email'
//	  name claim 'name'
//	  members see email                      # default: nobody sees emails
//	  max invitations per group 100
//	}
//
//	resource app.todos {
//	  owner can read, create, write, delete, transfer
//	}

// ProfileClaim names the token claim the user directory keeps for one
// profile field: `username claim 'preferred_username'`, `email claim none`.
type ProfileClaim struct {
	Pos   lexer.Position
	Field string  `parser:"@('username' | 'email' | 'name') 'claim'"`
	Claim *String `parser:"( @@"`
	None  bool    `parser:"| @'none' )"`
}

// Text is the item in canonical form.
func (p *ProfileClaim) Text() string {
	if p.None {
		return p.Field + " claim none"
	}
	return p.Field + " claim " + p.Claim.Raw
}

// ProfileClaims are the token claims the user directory keeps: "" keeps
// none of that field.
type ProfileClaims struct {
	Username string // looked up by add_group_member {"username"}, shown to group members
	Email    string // looked up when verified (email_verified); shown only with members see email
	Name     string // the display name, shown to group members
}

// DefaultProfileClaims are Keycloak's: its access token carries
// preferred_username always, email and name with the default scopes.
var DefaultProfileClaims = ProfileClaims{Username: "preferred_username", Email: "email", Name: "name"}

// Transfer is the permission to hand a row to another user (POST
// /rpc/<table>_transfer). Only its owner has it (`owner can transfer`),
// and it compiles to a policy of its own, which only a transfer in
// progress opens: no rule widens what ordinary updates may do.
const Transfer Perm = "transfer"

// profileClaim records one profile claim item of the groups block.
func (c *checker) profileClaim(p *ProfileClaim, pos lexer.Position, seen map[string]lexer.Position) {
	if !c.once(seen, p.Field+" claim", pos) {
		return
	}
	claim := ""
	if !p.None {
		claim = c.literal(p.Claim, "claim")
		if claim == "" {
			c.errs.add(p.Claim.Pos, "the %s claim is empty: name the token claim (Keycloak's is %s), or write %s claim none to keep no %s", p.Field, defaultProfileClaim(p.Field), p.Field, p.Field)
			return
		}
	}
	switch p.Field {
	case "username":
		c.model.Groups.Profile.Username = claim
	case "email":
		c.model.Groups.Profile.Email = claim
	default:
		c.model.Groups.Profile.Name = claim
	}
}

func defaultProfileClaim(field string) string {
	switch field {
	case "username":
		return "'" + DefaultProfileClaims.Username + "'"
	case "email":
		return "'" + DefaultProfileClaims.Email + "'"
	}
	return "'" + DefaultProfileClaims.Name + "'"
}

// membersSeeEmail records `members see email`.
func (c *checker) membersSeeEmail(pos lexer.Position, seen map[string]lexer.Position) {
	if c.once(seen, "members see email", pos) {
		c.model.Groups.MembersSeeEmail = true
	}
}

// transferPerm checks `transfer` in a rule: only the owner hands a row over.
func (c *checker) transferPerm(subject Subject, id *Ident) bool {
	if _, ok := subject.(OwnerSubject); !ok {
		c.errs.add(id.Pos, "%s cannot be granted transfer: only a row's owner hands it over (owner can transfer)", subject)
		return false
	}
	return true
}

// transfers checks, once every file is read, what a transfer needs: the
// owner must read the row (the transfer is an update, and PostgreSQL lets
// an update reach only rows the caller reads), and a groups block (the
// user directory, where the recipient is found, is part of it).
func (c *checker) transfers() {
	for _, res := range c.model.Resources {
		if !res.TransferPos.IsValid() {
			continue
		}
		if !res.Can(OwnerSubject{}, Read) {
			c.errs.addAt(res.TransferPos, "owner can transfer but not read in %s: the transfer updates the row, and PostgreSQL only lets UPDATE reach rows the caller can read; add read", res.QualifiedName())
		}
		if !c.model.Groups.Declared {
			c.errs.addAt(res.TransferPos, "owner can transfer in %s needs a groups block: the transfer function finds the recipient in the user directory, part of the group API (add `groups { api schema %s }`)", res.QualifiedName(), quoteForHint(res.Schema))
		}
	}
}
