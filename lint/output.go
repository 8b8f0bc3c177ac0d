package lint

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteText writes one line per finding:
//
//	IAM004 warning app.todos policy "x": calls app.is_mine(uuid) (plpgsql, volatile) for every row; hint: ...
func WriteText(w io.Writer, findings []Finding) error {
	for _, f := range findings {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the findings as a JSON array ([] when there are none).
func WriteJSON(w io.Writer, findings []Finding) error {
	if findings == nil {
		findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(findings)
}

// WriteRules lists the rules: id, level, name and description.
func WriteRules(w io.Writer) error {
	for _, r := range Rules() {
		if _, err := fmt.Fprintf(w, "%s %-7s %-32s %s\n", r.ID, r.Level, r.Name, r.Description); err != nil {
			return err
		}
	}
	return nil
}
