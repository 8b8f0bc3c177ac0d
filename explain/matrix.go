package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/iamc/iamc/lang"
)

// Matrix is the subject x permission table one resource's rules declare
// (iamc explain --matrix): read from the files alone, no database.
type Matrix struct {
	Resource string      `json:"resource"`
	At       string      `json:"at"`
	Perms    []string    `json:"permissions"`
	Rows     []MatrixRow `json:"subjects"`
	Notes    []string    `json:"notes,omitempty"`
}

// MatrixRow is one subject and what it may do.
type MatrixRow struct {
	Subject string `json:"subject"`
	Who     string `json:"who"` // which callers and which rows
	Cells   []Cell `json:"cells"`
}

// Cell is one permission of one subject: granted by a rule of its own
// (At), through another subject's rule (Via), or not at all.
type Cell struct {
	Granted bool   `json:"granted"`
	At      string `json:"at,omitempty"`  // file:line of the rule that grants it
	Via     string `json:"via,omitempty"` // the subject whose rule grants it (a lower group role, anonymous)
}

// Matrices builds the matrix of each resource of m, or of the one named
// (as iamc explain takes a table: schema.table or a table name).
func Matrices(m *lang.Model, only *lang.ResourceModel) []Matrix {
	var out []Matrix
	for _, r := range m.Resources {
		if only != nil && r != only {
			continue
		}
		out = append(out, matrixOf(m, r))
	}
	return out
}

func matrixOf(m *lang.Model, r *lang.ResourceModel) Matrix {
	mx := Matrix{Resource: r.QualifiedName(), At: r.Pos.String()}
	for _, p := range lang.AllPerms {
		mx.Perms = append(mx.Perms, string(p))
	}
	ruleAt := func(s lang.Subject, p lang.Perm) string {
		for _, rule := range r.Rules {
			if rule.Subject == s {
				for _, q := range rule.Perms {
					if q == p {
						return fmt.Sprintf("%s:%d", filepath.Base(rule.Pos.Filename), rule.Pos.Line)
					}
				}
			}
		}
		return ""
	}
	row := func(s lang.Subject, who string, via func(lang.Perm) string) {
		mr := MatrixRow{Subject: s.String(), Who: who}
		for _, p := range lang.AllPerms {
			c := Cell{At: ruleAt(s, p)}
			if c.At == "" && via != nil {
				c.Via = via(p)
			}
			c.Granted = c.At != "" || c.Via != ""
			mr.Cells = append(mr.Cells, c)
		}
		mx.Rows = append(mx.Rows, mr)
	}
	row(lang.AnonymousSubject{}, "callers without a token ("+m.Roles.Anonymous+"), every row", nil)
	row(lang.AuthenticatedSubject{}, "signed-in callers ("+m.Roles.Authenticated+"), every row", func(p lang.Perm) string {
		if r.Can(lang.AnonymousSubject{}, p) {
			return "anonymous"
		}
		return ""
	})
	if r.OwnerColumn != "" {
		row(lang.OwnerSubject{}, "the caller whose id is in "+r.OwnerColumn, nil)
	}
	if r.GroupColumn != "" {
		order := r.Roles() // the groups block's order of roles
		for i, role := range order {
			lower := order[:i]
			row(lang.GroupSubject{Role: role}, fmt.Sprintf("%ss of the row's group (%s)", role, r.GroupColumn), func(p lang.Perm) string {
				for _, l := range lower {
					if r.Can(lang.GroupSubject{Role: l}, p) {
						return "group " + string(l)
					}
				}
				return ""
			})
		}
		if c := m.Groups.TokenClaim; c != "" {
			mx.Notes = append(mx.Notes, fmt.Sprintf("a group listed in the token's %s claim makes the caller a %s of it", c, m.Groups.TokenRole))
		}
		if r.Can(lang.OwnerSubject{}, lang.Write) {
			mx.Notes = append(mx.Notes, "owner write: a row in a group only while the owner is a member of it")
		}
		if role := r.GroupMinRole(lang.Create); role != "" {
			mx.Notes = append(mx.Notes, fmt.Sprintf("group create: the owner puts new rows into groups where they are %s or above", role))
		}
	}
	if l := r.Parent; l != nil {
		// The parent rules as written, one row per subject on the parent.
		seen := map[lang.Subject]bool{}
		for _, rule := range r.Rules {
			ps, ok := rule.Subject.(lang.ParentSubject)
			if !ok || seen[ps] {
				continue
			}
			seen[ps] = true
			row(ps, fmt.Sprintf("%s of the row's parent in %s.%s (%s)", ps.Of, l.Schema, l.Table, l.Column), func(p lang.Perm) string {
				g, ok := ps.Of.(lang.GroupSubject)
				if !ok {
					return ""
				}
				for _, lower := range r.Roles() {
					if lower == g.Role {
						break
					}
					if r.Can(lang.ParentSubject{Of: lang.GroupSubject{Role: lower}}, p) {
						return "parent group " + string(lower)
					}
				}
				return ""
			})
		}
	}
	// Keycloak roles and claim matches (SPEC §17), one row per subject as
	// written.
	seen := map[lang.Subject]bool{}
	for _, rule := range r.Rules {
		if seen[rule.Subject] {
			continue
		}
		switch s := rule.Subject.(type) {
		case lang.RoleSubject:
			seen[s] = true
			where := "realm_access.roles"
			if s.Client != "" {
				where = "resource_access." + s.Client + ".roles"
			}
			row(s, fmt.Sprintf("signed-in callers whose token lists %s in %s, every row", s.Name, where), nil)
		case lang.ClaimSubject:
			seen[s] = true
			row(s, fmt.Sprintf("rows whose %s is the string claim %s of the caller's token", s.Column, s.Claim), nil)
		}
	}
	if t := r.Tenant; t != nil {
		mx.Notes = append(mx.Notes, fmt.Sprintf("tenant: every rule, the admin role's too, holds only on rows whose %s is the token's %s claim", t.Column, t.Claim))
	}
	if role := m.Groups.AdminRole; role != "" {
		mr := MatrixRow{Subject: "admin role " + role, Who: "signed-in callers whose token has the realm role " + role + ", every row"}
		g := fmt.Sprintf("%s:%d", filepath.Base(m.Groups.Pos.Filename), m.Groups.Pos.Line)
		for range lang.AllPerms {
			mr.Cells = append(mr.Cells, Cell{Granted: true, At: g})
		}
		mx.Rows = append(mx.Rows, mr)
	}
	if len(r.Rules) == 0 {
		mx.Notes = append(mx.Notes, "no rules: every request is denied")
	}
	return mx
}

func (c Cell) text() string {
	switch {
	case c.At != "":
		return "yes (" + c.At + ")"
	case c.Via != "":
		return "yes (as " + c.Via + ")"
	}
	return "-"
}

// WriteMatrixText writes each matrix as an aligned table.
func WriteMatrixText(w io.Writer, ms []Matrix) error {
	var b strings.Builder
	for i, mx := range ms {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s (%s)\n", mx.Resource, mx.At)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  subject\t%s\n", strings.Join(mx.Perms, "\t"))
		for _, r := range mx.Rows {
			cells := make([]string, len(r.Cells))
			for j, c := range r.Cells {
				cells[j] = c.text()
			}
			fmt.Fprintf(tw, "  %s\t%s\n", r.Subject, strings.Join(cells, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range mx.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMatrixMarkdown writes each matrix as a GitHub table, for a pull
// request.
func WriteMatrixMarkdown(w io.Writer, ms []Matrix) error {
	var b strings.Builder
	for i, mx := range ms {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "### %s\n\n", mx.Resource)
		fmt.Fprintf(&b, "| subject | who | %s |\n|---|---|%s\n", strings.Join(mx.Perms, " | "), strings.Repeat("---|", len(mx.Perms)))
		for _, r := range mx.Rows {
			cells := make([]string, len(r.Cells))
			for j, c := range r.Cells {
				cells[j] = c.text()
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdEscape(r.Subject), mdEscape(r.Who), strings.Join(cells, " | "))
		}
		if len(mx.Notes) > 0 {
			b.WriteString("\n")
			for _, n := range mx.Notes {
				fmt.Fprintf(&b, "- %s\n", mdEscape(n))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMatrixJSON writes the matrices as a JSON array.
func WriteMatrixJSON(w io.Writer, ms []Matrix) error {
	if ms == nil {
		ms = []Matrix{}
	}
	b, err := json.MarshalIndent(ms, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
