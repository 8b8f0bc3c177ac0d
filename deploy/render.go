package deploy

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the plan for a terminal: one line per change, grouped
// by resource (the runtime and the group API first), in a stable order.
//
//   - create  the object is missing
//     ~ replace the object differs (what differs follows the colon)
//   - drop    the object goes
//     ! drift   changed outside iamc, and apply leaves it
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan for %s on database %s.\n", p.Label, p.Database)
	switch {
	case p.Record == nil:
		b.WriteString("No earlier iamc apply is recorded (iam.applied): changes made outside iamc cannot be told apart from changes of the files.\n")
	case !p.DriftKnown:
		fmt.Fprintf(&b, "The last apply (#%d) was recorded by another PostgreSQL major version or iamc snapshot format: drift is not reported until the next apply.\n", p.Record.ID)
	}

	removed := map[string]bool{}
	for _, t := range p.Removed {
		removed[t.Name] = true
	}
	section := "\x00"
	creates, replaces, drops, drifted := 0, 0, 0, 0
	for _, c := range p.Changes {
		if c.Object.Table != section {
			section = c.Object.Table
			b.WriteString("\n")
			switch {
			case section == "":
				b.WriteString("iam runtime and group API:\n")
			case removed[section]:
				fmt.Fprintf(&b, "%s, no longer in the files (iamc's objects on it go; row level security stays enabled and forced, "+
					"so only superusers and BYPASSRLS roles see its rows; no row is touched):\n", section)
			default:
				b.WriteString(section + ":\n")
			}
		}
		switch c.Action {
		case Create:
			creates++
			b.WriteString("  + create " + describe(c.Object))
		case Replace:
			replaces++
			b.WriteString("  ~ replace " + describeChange(c.Object, c.Attrs))
		case Drop:
			drops++
			b.WriteString("  - drop " + describe(c.Object))
		}
		if c.Drift != NoDrift {
			drifted++
			if c.Reverts {
				fmt.Fprintf(&b, "  [drift: %s; apply reverts it]", c.Drift)
			} else {
				fmt.Fprintf(&b, "  [drift: %s; the files change it too]", c.Drift)
			}
		}
		b.WriteString("\n")
	}

	if len(p.GroupRoles) > 0 {
		b.WriteString("\nGroup roles: " + p.GroupRoles[0] + "\n")
		for _, n := range p.GroupRoles[1:] {
			b.WriteString("  " + n + "\n")
		}
	}

	if len(p.Drift) > 0 {
		b.WriteString("\nDrift that apply does not repair:\n")
		for _, d := range p.Drift {
			what := describe(d.Object)
			if d.Way == Changed {
				what = describeChange(d.Object, d.Attrs)
			}
			fmt.Fprintf(&b, "  ! %s: %s; %s\n", d.Way, what, d.Why)
		}
	}
	if len(p.Warnings) > 0 {
		b.WriteString("\nWarnings:\n")
		for _, w := range p.Warnings {
			b.WriteString("  ! " + w + "\n")
		}
	}

	b.WriteString("\n")
	if !p.HasChanges() {
		fmt.Fprintf(&b, "No changes. The database matches %s.\n", p.Label)
	} else {
		fmt.Fprintf(&b, "Plan: %d to create, %d to replace, %d to drop", creates, replaces, drops)
		if drifted > 0 {
			fmt.Fprintf(&b, " (%d of them drift)", drifted)
		}
		b.WriteString(".\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// describe names an object, with its value when it is short.
func describe(o Object) string {
	switch o.Kind {
	case "grant":
		return "grant " + o.Attrs["privileges"] + " " + o.Name
	case "runtime":
		return "iam runtime version " + o.Attrs["version"]
	case "settings":
		return "iam settings"
	case "rls":
		return "row level security on " + o.Name + ": " + o.Attrs["state"]
	case "partition":
		return "partition " + o.Name + " of " + o.Attrs["of"] + ": row level security " + o.Attrs["row level security"] + ", owner " + o.Attrs["owner"]
	}
	return o.Kind + " " + o.Name
}

// describeChange names an object and what differs.
func describeChange(o Object, attrs []Attr) string {
	name := o.Kind + " " + o.Name
	switch o.Kind {
	case "grant":
		name = "grant " + o.Name
	case "runtime":
		name = "iam runtime"
	case "settings":
		name = "iam settings"
	case "rls":
		name = "row level security on " + o.Name
	case "partition":
		name = "partition " + o.Name + " of " + o.Attrs["of"]
	}
	parts := make([]string, len(attrs))
	for i, a := range attrs {
		if short(a.Before) && short(a.After) {
			parts[i] = fmt.Sprintf("%s %s -> %s", a.Name, orNone(a.Before), orNone(a.After))
			if len(attrs) == 1 && (o.Kind == "grant" || o.Kind == "rls") {
				parts[i] = fmt.Sprintf("%s -> %s", orNone(a.Before), orNone(a.After))
			}
		} else {
			parts[i] = a.Name
		}
	}
	return name + ": " + strings.Join(parts, "; ")
}

func short(s string) bool { return len(s) <= 40 && !strings.Contains(s, "\n") }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// WriteText prints what apply did: the indexes it built concurrently, the
// plan, and the outcome.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, ix := range r.Concurrent {
		fmt.Fprintf(&b, "Built index %s concurrently, before the transaction.\n", ix)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if r.Plan == nil {
		return nil
	}
	if err := r.Plan.WriteText(w); err != nil {
		return err
	}
	var end string
	switch {
	case r.Applied:
		end = fmt.Sprintf("Applied: %d change(s) committed in one transaction, recorded as iam.applied #%d.\n", len(r.Changes), r.RecordID)
	case r.RecordID != 0:
		end = fmt.Sprintf("Apply: no changes; recorded the database's state as iam.applied #%d (drift is measured against it).\n", r.RecordID)
	default:
		end = "Apply: no changes; nothing was committed.\n"
	}
	_, err := io.WriteString(w, end)
	return err
}
