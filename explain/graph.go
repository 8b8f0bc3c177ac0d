package explain

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/iamc/iamc/lang"
)

// Graph is what the files declare as a picture (iamc explain --graph):
// the subjects, the resources, the group table, and the relations between
// them.
type Graph struct {
	Nodes []Node
	Edges []Edge
}

// Node is a subject, a resource or the group table.
type Node struct {
	ID, Label string
	Kind      string // subject, resource, groups, claim
}

// Edge is a relation: a subject's permissions on a resource ("grants"), a
// group role that has a lower one's rights ("includes"), a token claim
// that makes members ("makes"), a resource's group column ("in group").
type Edge struct {
	From, To, Label string
	Dashed          bool // implied, not a rule
}

// GraphOf builds the graph of m.
func GraphOf(m *lang.Model) Graph {
	var g Graph
	seen := map[string]bool{}
	node := func(id, label, kind string) string {
		if !seen[id] {
			seen[id] = true
			g.Nodes = append(g.Nodes, Node{ID: id, Label: label, Kind: kind})
		}
		return id
	}
	subjectNode := func(s lang.Subject) string {
		label := s.String()
		switch s.(type) {
		case lang.AnonymousSubject:
			label = "anonymous (" + m.Roles.Anonymous + ")"
		case lang.AuthenticatedSubject:
			label = "authenticated (" + m.Roles.Authenticated + ")"
		case lang.OwnerSubject:
			label = "row owner"
		case lang.ParentSubject:
			label = s.String() + " (of the row's parent)"
		}
		return node(graphID("s_"+s.String()), label, "subject")
	}
	groupRolesUsed := map[lang.GroupRole]bool{}
	anyGroups := false
	for _, r := range m.Resources {
		res := node(graphID("r_"+r.QualifiedName()), r.QualifiedName(), "resource")
		perms := map[lang.Subject][]string{}
		var order []lang.Subject
		for _, rule := range r.Rules {
			if _, ok := perms[rule.Subject]; !ok {
				order = append(order, rule.Subject)
			}
			for _, p := range rule.Perms {
				perms[rule.Subject] = append(perms[rule.Subject], string(p))
			}
			if gs, ok := rule.Subject.(lang.GroupSubject); ok {
				groupRolesUsed[gs.Role] = true
			}
		}
		for _, s := range order {
			g.Edges = append(g.Edges, Edge{From: subjectNode(s), To: res, Label: strings.Join(sortPerms(perms[s]), ", ")})
		}
		if r.GroupColumn != "" {
			anyGroups = true
			label := r.GroupColumn
			if r.GroupRequired {
				label += " (required)"
			}
			g.Edges = append(g.Edges, Edge{From: res, To: node("groups", "iam.groups", "groups"), Label: label})
		}
		if l := r.Parent; l != nil {
			g.Edges = append(g.Edges, Edge{From: res, To: node(graphID("r_"+l.Schema+"."+l.Table), l.Schema+"."+l.Table, "resource"), Label: "parent via " + l.Column})
		}
		if len(r.Rules) == 0 {
			g.Edges = append(g.Edges, Edge{From: node("nobody", "nobody", "subject"), To: res, Label: "no rules: denied", Dashed: true})
		}
	}
	if anyGroups || m.Groups.Declared {
		// The role order: a rule for a role applies to the roles above it.
		order := m.Groups.Order() // the groups block's order of roles
		for i := len(order) - 1; i > 0; i-- {
			hi, lo := order[i], order[i-1]
			if groupRolesUsed[hi] || groupRolesUsed[lo] || i == 1 && len(groupRolesUsed) > 0 {
				g.Edges = append(g.Edges, Edge{From: subjectNode(lang.GroupSubject{Role: hi}), To: subjectNode(lang.GroupSubject{Role: lo}),
					Label: "has the rights of", Dashed: true})
			}
		}
		for _, role := range order {
			if !groupRolesUsed[role] {
				continue
			}
			g.Edges = append(g.Edges, Edge{From: subjectNode(lang.GroupSubject{Role: role}), To: node("groups", "iam.groups", "groups"), Label: "membership", Dashed: true})
		}
		if c := m.Groups.TokenClaim; c != "" {
			claim := node("claim", "token claim '"+c+"'", "claim")
			g.Edges = append(g.Edges, Edge{From: claim, To: subjectNode(lang.GroupSubject{Role: m.Groups.TokenRole}), Label: "makes", Dashed: true})
		}
		if a := m.Groups.AdminRole; a != "" {
			admin := node("admin", "realm role '"+a+"'", "claim")
			for _, r := range m.Resources {
				g.Edges = append(g.Edges, Edge{From: admin, To: graphID("r_" + r.QualifiedName()), Label: "every row", Dashed: true})
			}
		}
	}
	if anyPerm(m, lang.AnonymousSubject{}) && anyPerm(m, lang.AuthenticatedSubject{}) {
		g.Edges = append(g.Edges, Edge{From: subjectNode(lang.AuthenticatedSubject{}), To: subjectNode(lang.AnonymousSubject{}), Label: "reads what it reads", Dashed: true})
	}
	// Stable output: dashed relations after the rules, each list sorted.
	sort.SliceStable(g.Edges, func(i, j int) bool { return !g.Edges[i].Dashed && g.Edges[j].Dashed })
	return g
}

func anyPerm(m *lang.Model, s lang.Subject) bool {
	for _, r := range m.Resources {
		if len(r.Grants(s)) > 0 {
			return true
		}
	}
	return false
}

func sortPerms(perms []string) []string {
	var out []string
	for _, p := range lang.AllPerms {
		for _, q := range perms {
			if q == string(p) {
				out = append(out, q)
				break
			}
		}
	}
	return out
}

// graphID is a node id both DOT and Mermaid take bare.
func graphID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "_%x_", r)
		}
	}
	return b.String()
}

// WriteMermaid writes the graph as a Mermaid flowchart (GitHub renders a
// ```mermaid block in a pull request).
func WriteMermaid(w io.Writer, g Graph) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, n := range g.Nodes {
		label := strings.ReplaceAll(n.Label, `"`, "#quot;")
		switch n.Kind {
		case "resource":
			fmt.Fprintf(&b, "  %s[\"%s\"]\n", n.ID, label)
		case "groups":
			fmt.Fprintf(&b, "  %s[(\"%s\")]\n", n.ID, label)
		case "claim":
			fmt.Fprintf(&b, "  %s>\"%s\"]\n", n.ID, label)
		default:
			fmt.Fprintf(&b, "  %s([\"%s\"])\n", n.ID, label)
		}
	}
	for _, e := range g.Edges {
		label := strings.ReplaceAll(e.Label, `"`, "#quot;")
		if e.Dashed {
			fmt.Fprintf(&b, "  %s -. \"%s\" .-> %s\n", e.From, label, e.To)
		} else {
			fmt.Fprintf(&b, "  %s -- \"%s\" --> %s\n", e.From, label, e.To)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDOT writes the graph for Graphviz (dot -Tsvg).
func WriteDOT(w io.Writer, g Graph) error {
	var b strings.Builder
	b.WriteString("digraph iam {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n")
	q := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	for _, n := range g.Nodes {
		shape := "ellipse"
		switch n.Kind {
		case "resource":
			shape = "box"
		case "groups":
			shape = "cylinder"
		case "claim":
			shape = "note"
		}
		fmt.Fprintf(&b, "  %s [label=%s, shape=%s];\n", n.ID, q(n.Label), shape)
	}
	for _, e := range g.Edges {
		style := ""
		if e.Dashed {
			style = ", style=dashed"
		}
		fmt.Fprintf(&b, "  %s -> %s [label=%s%s];\n", e.From, e.To, q(e.Label), style)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
