// Package diag prints the diagnostics of iamc check and iamc lint for
// people and for CI: text, SARIF 2.1.0 (for GitHub code scanning) and
// GitHub Actions workflow annotations. Each diagnostic carries its stable
// code (docs/diagnostics.md).
package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Diagnostic is one problem: in a policy file at a position, or (lint)
// about a database object.
type Diagnostic struct {
	Code    string // IAM150
	Level   string // error, warning or info
	File    string // "" when the problem is not in a file
	Line    int    // 0 when no line says it
	Col     int
	Object  string // the database object (lint)
	Message string
	Hint    string
}

// Rule is what a code means, for SARIF's rules.
type Rule struct {
	ID, Name, Level, Title, Example string
}

// WriteText writes file:line:col: level CODE: message, and an indented
// hint, one diagnostic after the other.
func WriteText(w io.Writer, ds []Diagnostic) error {
	var b strings.Builder
	for _, d := range ds {
		where := d.File
		switch {
		case d.Line > 0:
			where = fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Col)
		case d.File == "":
			where = d.Object
		}
		fmt.Fprintf(&b, "%s: %s %s: %s\n", where, d.Level, d.Code, d.Message)
		if d.Hint != "" {
			fmt.Fprintf(&b, "  hint: %s\n", d.Hint)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteGitHub writes GitHub Actions workflow commands: each diagnostic
// becomes an annotation on its file and line in the run and the pull
// request (::error file=F,line=L,col=C,title=CODE::message).
func WriteGitHub(w io.Writer, ds []Diagnostic) error {
	var b strings.Builder
	for _, d := range ds {
		cmd := "notice"
		switch d.Level {
		case "error":
			cmd = "error"
		case "warning":
			cmd = "warning"
		}
		var props []string
		if d.File != "" {
			props = append(props, "file="+escapeProperty(uriOf(d.File)))
			if d.Line > 0 {
				props = append(props, fmt.Sprintf("line=%d", d.Line))
				if d.Col > 0 {
					props = append(props, fmt.Sprintf("col=%d", d.Col))
				}
			}
		}
		title := d.Code
		if d.Object != "" {
			title += " " + d.Object
		}
		props = append(props, "title="+escapeProperty(title))
		msg := d.Message
		if d.Hint != "" {
			msg += "\nhint: " + d.Hint
		}
		fmt.Fprintf(&b, "::%s %s::%s\n", cmd, strings.Join(props, ","), escapeData(msg))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeData and escapeProperty are the workflow commands' escapes.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// uriOf is a path as code scanning and annotations want it: relative to
// the working directory (the repository's root in CI) when it is inside
// it, with forward slashes.
func uriOf(path string) string {
	if filepath.IsAbs(path) {
		if wd, err := filepath.Abs("."); err == nil {
			if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
				path = rel
			}
		}
	}
	return filepath.ToSlash(filepath.Clean(path))
}

// SARIF 2.1.0, the subset GitHub code scanning reads.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool       sarifTool     `json:"tool"`
		ColumnKind string        `json:"columnKind"`
		Results    []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		Version        string      `json:"version,omitempty"`
		InformationURI string      `json:"informationUri,omitempty"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string          `json:"id"`
		Name                 string          `json:"name,omitempty"`
		ShortDescription     sarifText       `json:"shortDescription"`
		FullDescription      sarifText       `json:"fullDescription"`
		Help                 *sarifText      `json:"help,omitempty"`
		DefaultConfiguration sarifRuleConfig `json:"defaultConfiguration"`
		Properties           map[string]any  `json:"properties,omitempty"`
	}
	sarifRuleConfig struct {
		Level string `json:"level"`
	}
	sarifText struct {
		Text     string `json:"text"`
		Markdown string `json:"markdown,omitempty"`
	}
	sarifResult struct {
		RuleID    string          `json:"ruleId"`
		RuleIndex int             `json:"ruleIndex"`
		Level     string          `json:"level"`
		Message   sarifText       `json:"message"`
		Locations []sarifLocation `json:"locations,omitempty"`
	}
	sarifLocation struct {
		PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
		LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
		Message          *sarifText     `json:"message,omitempty"`
	}
	sarifPhysical struct {
		ArtifactLocation sarifArtifact `json:"artifactLocation"`
		Region           *sarifRegion  `json:"region,omitempty"`
	}
	sarifArtifact struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn,omitempty"`
	}
	sarifLogical struct {
		FullyQualifiedName string `json:"fullyQualifiedName"`
	}
)

func sarifLevel(level string) string {
	switch level {
	case "error", "warning":
		return level
	}
	return "note"
}

// WriteSARIF writes one SARIF 2.1.0 log with one run of iamc: every rule
// it knows (so that a result's ruleIndex is stable) and the results. A
// result not in a file (lint's, about a database object) names the object
// as a logical location; anchor, when given, is the file (line 1) such
// results are shown at, since GitHub code scanning shows only results with
// a file.
func WriteSARIF(w io.Writer, ds []Diagnostic, rules []Rule, version, anchor string) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "iamc", Version: version, Rules: []sarifRule{}}},
		ColumnKind: "unicodeCodePoints", Results: []sarifResult{}}
	index := map[string]int{}
	for i, r := range rules {
		index[r.ID] = i
		sr := sarifRule{ID: r.ID, Name: r.Name, ShortDescription: sarifText{Text: r.Title}, FullDescription: sarifText{Text: r.Title},
			DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(r.Level)},
			Properties:           map[string]any{"tags": []string{"security", "iamc"}}}
		if r.Example != "" {
			sr.Help = &sarifText{Text: r.Title + ". Example:\n" + r.Example,
				Markdown: fmt.Sprintf("%s. Example:\n\n```\n%s\n```\n\nSee docs/diagnostics.md (%s).", r.Title, strings.TrimRight(r.Example, "\n"), r.ID)}
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sr)
	}
	for _, d := range ds {
		i, ok := index[d.Code]
		if !ok {
			// A code without a rule still needs one for ruleIndex.
			i = len(run.Tool.Driver.Rules)
			index[d.Code] = i
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{ID: d.Code, ShortDescription: sarifText{Text: d.Code},
				FullDescription: sarifText{Text: d.Code}, DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(d.Level)}})
		}
		msg := d.Message
		if d.Hint != "" {
			msg += "\nhint: " + d.Hint
		}
		res := sarifResult{RuleID: d.Code, RuleIndex: i, Level: sarifLevel(d.Level), Message: sarifText{Text: msg}}
		loc := sarifLocation{}
		file, line, col := d.File, d.Line, d.Col
		if file == "" && anchor != "" {
			file, line, col = anchor, 1, 1
		}
		if file != "" {
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: uriOf(file)}}
			if line > 0 {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: line, StartColumn: col}
			}
		}
		if d.Object != "" {
			loc.LogicalLocations = []sarifLogical{{FullyQualifiedName: d.Object}}
		}
		if loc.PhysicalLocation != nil || loc.LogicalLocations != nil {
			res.Locations = []sarifLocation{loc}
		}
		run.Results = append(run.Results, res)
	}
	log := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
	b, err := json.MarshalIndent(log, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
