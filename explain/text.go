package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as one indented JSON object.
func WriteJSON(w io.Writer, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the report for a reader: who, which row, then each
// command's verdict and why, with the arms under it.
func WriteText(w io.Writer, rep *Report) error {
	var b strings.Builder
	who := "an anonymous caller"
	if !rep.Caller.Anonymous {
		switch {
		case rep.Caller.ID != "":
			who = rep.Caller.ID
		case rep.Caller.IDError != nil:
			who = "a caller the runtime refuses (" + rep.Caller.IDError.String() + ")"
		default:
			who = "a signed-in caller with no user id"
		}
	}
	fmt.Fprintf(&b, "%s as %s (role %s)\n", rep.Resource, who, rep.Role)
	if rep.Caller.Admin != nil {
		fmt.Fprintf(&b, "admin realm role: %s\n", yesNo(*rep.Caller.Admin))
	}
	if r := rep.Row; r != nil {
		if !r.Found {
			fmt.Fprintf(&b, "row %s: not found\n", r.Key)
		} else {
			var parts []string
			if r.Owner != nil {
				owner := *r.Owner
				if owner == rep.Caller.ID {
					owner += " (you)"
				}
				parts = append(parts, "owner "+owner)
			}
			if r.Group != nil {
				role := rep.Caller.GroupRole
				if role == "" {
					role = "not a member"
				}
				parts = append(parts, fmt.Sprintf("group %s (your role: %s)", *r.Group, role))
			}
			vis := "not visible to you"
			if r.Visible {
				vis = "visible to you"
			}
			parts = append(parts, vis)
			fmt.Fprintf(&b, "row %s: %s\n", r.Key, strings.Join(parts, ", "))
		}
	}
	if rep.Visible != nil {
		fmt.Fprintf(&b, "rows you see: %d\n", *rep.Visible)
	}
	b.WriteString("\n")
	for _, ans := range rep.Answers {
		verdict := "denied"
		if ans.Allowed {
			verdict = "allowed"
		}
		label := ans.Command
		switch ans.Change {
		case "group":
			label = "update (move)"
		case "owner":
			label = "update (new owner)"
		}
		fmt.Fprintf(&b, "%-18s %-7s  %s\n", label, verdict, ans.Why)
		if ans.Change != "" {
			fmt.Fprintf(&b, "%-18s          ran: %s\n", "", ans.Probe)
		}
		if len(ans.Arms) > 0 {
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			for _, arm := range ans.Arms {
				state := ""
				switch {
				case arm.Holds != nil:
					state = yesNo(*arm.Holds)
				case arm.Rows != nil:
					state = rowsWord(*arm.Rows)
				}
				var rules []string
				for _, r := range arm.Rules {
					rules = append(rules, r.Rule+" at "+r.At)
				}
				fmt.Fprintf(tw, "                   \t%s\t%s\t%s\t%s\n", arm.Subject, state, arm.Why, strings.Join(rules, "; "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if ans.Disagrees != "" {
			fmt.Fprintf(&b, "%-18s          WARNING: %s\n", "", ans.Disagrees)
		}
	}
	for _, warning := range rep.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", warning)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func rowsWord(n int64) string {
	if n == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}
