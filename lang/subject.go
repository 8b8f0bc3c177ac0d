package lang

import "fmt"

// Subject is who a rule is about. Each kind of subject is one type (this
// file holds today's four); how a kind compiles to SQL is the compiler's
// business (compiler/subject_*.go), keyed by the type. Subjects are
// comparable values: two rules about the same subject compare equal.
type Subject interface {
	// String is the subject as the files spell it: "owner", "group admin".
	String() string
	// Anonymous reports whether requests of this subject run as the
	// anonymous role (every other subject is a signed-in caller).
	Anonymous() bool
	// OnlyRead is why the subject may be granted nothing but read, or ""
	// when any permission may be granted.
	OnlyRead() string
	// ReadsFor reports whether a read granted to this subject lets other
	// read too (a rule for a group role applies to the roles above it;
	// what everyone may read, each subject may read). UPDATE and DELETE
	// reach only rows the caller can read, so a write needs such a read.
	ReadsFor(other Subject) bool
	// ReadHint is how to fix a write without a read, said to the author.
	ReadHint() string
}

// OwnerSubject is the caller whose id is in the row's owner column.
type OwnerSubject struct{}

// AuthenticatedSubject is every signed-in caller.
type AuthenticatedSubject struct{}

// AnonymousSubject is a caller without a token.
type AnonymousSubject struct{}

// GroupSubject is a member of the row's group with Role or a higher role.
type GroupSubject struct{ Role GroupRole }

func (OwnerSubject) String() string         { return "owner" }
func (AuthenticatedSubject) String() string { return "authenticated" }
func (AnonymousSubject) String() string     { return "anonymous" }
func (s GroupSubject) String() string       { return "group " + string(s.Role) }

func (OwnerSubject) Anonymous() bool         { return false }
func (AuthenticatedSubject) Anonymous() bool { return false }
func (AnonymousSubject) Anonymous() bool     { return true }
func (GroupSubject) Anonymous() bool         { return false }

func (OwnerSubject) OnlyRead() string { return "" }
func (AuthenticatedSubject) OnlyRead() string {
	return "letting every signed-in user change every row defeats ownership; grant write and delete to owner"
}
func (AnonymousSubject) OnlyRead() string {
	return "an anonymous request has no user id to own or answer for a row"
}
func (GroupSubject) OnlyRead() string { return "" }

func (OwnerSubject) ReadsFor(other Subject) bool         { return other == OwnerSubject{} }
func (AuthenticatedSubject) ReadsFor(other Subject) bool { return !other.Anonymous() }
func (AnonymousSubject) ReadsFor(Subject) bool           { return true }

// ReadsFor ranks the roles by the default order (member < admin < owner);
// a resource's own order is ResourceModel.ReadCovers's.
func (s GroupSubject) ReadsFor(other Subject) bool {
	g, ok := other.(GroupSubject)
	return ok && GroupRoles.Rank(g.Role) >= GroupRoles.Rank(s.Role)
}

func (OwnerSubject) ReadHint() string         { return "add read" }
func (AuthenticatedSubject) ReadHint() string { return "add read" }
func (AnonymousSubject) ReadHint() string     { return "add read" }
func (s GroupSubject) ReadHint() string {
	return fmt.Sprintf("grant read to group %s (or a lower role)", s.Role)
}

// Grants is what the rules of r grant subject, as written (a group rule
// for a lower role is not counted: see ReadsFor and GroupMinRole).
func (r *ResourceModel) Grants(subject Subject) PermSet {
	set := PermSet{}
	for _, rule := range r.Rules {
		if rule.Subject == subject {
			for _, p := range rule.Perms {
				set[p] = true
			}
		}
	}
	return set
}

// Can reports whether a rule grants subject perm, as written.
func (r *ResourceModel) Can(subject Subject, perm Perm) bool {
	for _, rule := range r.Rules {
		if rule.Subject == subject {
			for _, p := range rule.Perms {
				if p == perm {
					return true
				}
			}
		}
	}
	return false
}

// EveryoneCan reports whether every caller, anonymous or signed in, has
// perm on every row (only read can be granted so).
func (r *ResourceModel) EveryoneCan(perm Perm) bool {
	return r.Can(AuthenticatedSubject{}, perm) || r.Can(AnonymousSubject{}, perm)
}

// HasOwnerRules reports whether rows have an owner column some rule uses.
func (r *ResourceModel) HasOwnerRules() bool {
	return r.OwnerColumn != "" && len(r.Grants(OwnerSubject{})) > 0
}

// HasGroupRules reports whether any rule is about a group role.
func (r *ResourceModel) HasGroupRules() bool {
	for _, rule := range r.Rules {
		if _, ok := rule.Subject.(GroupSubject); ok {
			return true
		}
	}
	return false
}

// GroupMinRole is the lowest membership role that has perm (rules for a
// role apply to the roles above it), or "" when no group role has it.
func (r *ResourceModel) GroupMinRole(perm Perm) GroupRole {
	for _, role := range r.Roles() {
		if r.Can(GroupSubject{role}, perm) {
			return role
		}
	}
	return ""
}

// ParentSubject is a subject on the row's parent (the resource its parent
// item names): Of is the parent's owner (OwnerSubject), a role of the
// parent's group (GroupSubject), or everyone the parent's rules give a
// permission on it (ParentAudience). `parent owner can write` on products:
// the owner of a product's store may change the product.
type ParentSubject struct{ Of Subject }

// ParentAudience is everyone the parent's own rules (its parent's
// included) give Perm on the parent row: `parent writers`.
type ParentAudience struct{ Perm Perm }

// parentAudiences are the audiences as written.
var parentAudiences = map[string]Perm{"readers": Read, "writers": Write, "deleters": Delete}

func (s ParentSubject) String() string { return "parent " + s.Of.String() }
func (ParentSubject) Anonymous() bool  { return false }
func (ParentSubject) OnlyRead() string { return "" }
func (s ParentSubject) ReadsFor(other Subject) bool {
	o, ok := other.(ParentSubject)
	return ok && s.Of.ReadsFor(o.Of)
}
func (s ParentSubject) ReadHint() string {
	return "grant read to " + s.String() + " (or to authenticated)"
}

func (a ParentAudience) String() string {
	for word, p := range parentAudiences {
		if p == a.Perm {
			return word
		}
	}
	return string(a.Perm) + "ers"
}
func (ParentAudience) Anonymous() bool  { return false }
func (ParentAudience) OnlyRead() string { return "" }

// ReadsFor: whoever may write or delete a row may read it (PostgreSQL
// lets UPDATE and DELETE reach only readable rows), so the parent's
// readers include its writers and deleters.
func (a ParentAudience) ReadsFor(other Subject) bool {
	o, ok := other.(ParentAudience)
	return ok && (a.Perm == Read || a == o)
}
func (ParentAudience) ReadHint() string { return "add read" }

// ReadCovers reports whether a read granted to reader lets writer read
// too (Subject.ReadsFor), with group roles ranked by r's order: a rule for
// a role applies to the roles above it, on the row's group or on the
// parent's.
func (r *ResourceModel) ReadCovers(reader, writer Subject) bool {
	switch a := reader.(type) {
	case GroupSubject:
		b, ok := writer.(GroupSubject)
		return ok && r.Roles().Rank(b.Role) >= r.Roles().Rank(a.Role)
	case ParentSubject:
		b, ok := writer.(ParentSubject)
		return ok && r.ReadCovers(a.Of, b.Of)
	}
	return reader.ReadsFor(writer)
}
