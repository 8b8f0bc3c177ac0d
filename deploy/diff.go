package deploy

import (
	"github.com/iamc/iamc/compiler"
	"sort"
	"strings"
)

// Action is what apply does to an object.
type Action string

// The actions of a plan.
const (
	Create  Action = "create"
	Replace Action = "replace"
	Drop    Action = "drop"
)

// Attr is one attribute of an object that differs between two states.
type Attr struct{ Name, Before, After string }

// Change is one object apply creates, replaces or drops.
type Change struct {
	Action Action
	Object Object   // the desired object (create, replace), or the current one (drop)
	Before *Object  // the current object (replace, drop)
	Attrs  []Attr   // replace: what differs
	Drift  DriftWay // not "": the object was changed outside iamc since the last apply
	// Reverts: with Drift, apply puts back what the last apply left.
	Reverts bool
}

// DriftWay says how an object left the state the last apply recorded.
type DriftWay string

// Ways of drifting.
const (
	NoDrift DriftWay = ""
	Created DriftWay = "created outside iamc"
	Changed DriftWay = "changed outside iamc"
	Dropped DriftWay = "dropped outside iamc"
)

// Drift is an object changed outside iamc that apply leaves as it is.
type Drift struct {
	Way    DriftWay
	Object Object // the current object, or the recorded one when it was dropped
	Attrs  []Attr // Changed: what differs from the record
	Why    string // why apply leaves it
}

func diffAttrs(a, b map[string]string) []Attr {
	var out []Attr
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			out = append(out, Attr{Name: k, Before: v, After: w})
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			out = append(out, Attr{Name: k, After: w})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sameObject(a, b Object, aok, bok bool) bool {
	if aok != bok {
		return false
	}
	return !aok || len(diffAttrs(a.Attrs, b.Attrs)) == 0
}

// diff compares the current state (cur) with the desired one (des). With
// a usable record of the last apply (rec), it also compares the record
// with the current state of the objects the record covered (curRec, read
// with the record's scope): a difference there is drift, a change made
// outside iamc. Drift on an object apply changes marks the change; drift
// apply does not touch is returned apart.
func diff(cur, des, rec, curRec Snapshot, roles []string) ([]Change, []Drift) {
	keys := map[string]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range des {
		keys[k] = true
	}
	changes := map[string]*Change{}
	for k := range keys {
		c, cok := cur[k]
		d, dok := des[k]
		switch {
		case !cok && dok:
			changes[k] = &Change{Action: Create, Object: d}
		case cok && !dok:
			changes[k] = &Change{Action: Drop, Object: c, Before: &c}
		case cok && dok:
			if attrs := diffAttrs(c.Attrs, d.Attrs); len(attrs) > 0 {
				changes[k] = &Change{Action: Replace, Object: d, Before: &c, Attrs: attrs}
			}
		}
	}

	var drifts []Drift
	if rec != nil {
		keys = map[string]bool{}
		for k := range rec {
			keys[k] = true
		}
		for k := range curRec {
			keys[k] = true
		}
		for k := range keys {
			r, rok := rec[k]
			c, cok := curRec[k]
			if sameObject(c, r, cok, rok) || partitionComesOrGoes(r, c, rok, cok) {
				continue
			}
			way := Changed
			switch {
			case cok && !rok:
				way = Created
			case !cok && rok:
				way = Dropped
			}
			if ch := changes[k]; ch != nil {
				d, dok := des[k]
				ch.Drift, ch.Reverts = way, sameObject(d, r, dok, rok)
				continue
			}
			dr := Drift{Way: way, Object: c, Why: "apply leaves it"}
			if way == Dropped {
				dr.Object = r
			}
			if way == Changed {
				dr.Attrs = diffAttrs(r.Attrs, c.Attrs)
			}
			switch {
			case dr.Object.Kind == "grant":
				dr.Why = "apply leaves it: iamc revokes from " + strings.Join(roles, ", ") + " only"
			case dr.Object.Kind == "policy" && !isIamcPolicy(dr.Object):
				dr.Why = "apply leaves it: not an iamc policy (PostgreSQL ORs permissive policies with iamc's, so one can widen access)"
			}
			drifts = append(drifts, dr)
		}
	}
	out := make([]Change, 0, len(changes))
	for _, c := range changes {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return objectLess(out[i].Object, out[j].Object) })
	sort.Slice(drifts, func(i, j int) bool { return objectLess(drifts[i].Object, drifts[j].Object) })
	return out, drifts
}

// partitionComesOrGoes: a partition made or dropped since the last apply
// (by hand, or by pg_partman's maintenance and retention) is not drift;
// what counts is its state, which the plan shows as a change when it is
// not locked down.
func partitionComesOrGoes(rec, cur Object, rok, cok bool) bool {
	if rok == cok {
		return false
	}
	o := rec
	if cok {
		o = cur
	}
	return o.Kind == "partition"
}

// isIamcPolicy: iamc's policies are named compiler.PolicyName (a snapshot
// holds names quoted).
func isIamcPolicy(o Object) bool {
	return strings.HasPrefix(o.Name, `"`+compiler.PolicyPrefix)
}
