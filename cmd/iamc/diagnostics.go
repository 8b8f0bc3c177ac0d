package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/internal/diag"
	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/lint"
)

// diagnosticFormats are the --format values of check and lint.
var diagnosticFormats = []string{"text", "json", "sarif", "github"}

func checkFormat(format string) error {
	for _, f := range diagnosticFormats {
		if f == format {
			return nil
		}
	}
	return usageError(fmt.Errorf("--format must be text, json, sarif or github, not %q", format))
}

// fmtCode is iamc fmt -l's finding: a file not in canonical form.
const fmtCode = "IAM400"

// checkRules are the codes iamc check reports, for SARIF.
func checkRules() []diag.Rule {
	var out []diag.Rule
	for _, c := range append(lang.Codes(), catalog.Codes()...) {
		out = append(out, diag.Rule{ID: c.ID, Level: c.Level, Title: c.Title, Example: c.Example})
	}
	return out
}

// lintRules are lint's rules, for SARIF.
func lintRules() []diag.Rule {
	var out []diag.Rule
	for _, r := range lint.Rules() {
		out = append(out, diag.Rule{ID: r.ID, Name: r.Name, Level: string(r.Level), Title: r.Description})
	}
	return out
}

// langFindings are problems of .iam files as findings.
func langFindings(list lang.ErrorList) []catalog.Finding {
	found, _ := catalog.ErrorFindings(list)
	return found
}

// sortFindings orders findings by file and position, as they are printed.
func sortFindings(fs []catalog.Finding) {
	sort.SliceStable(fs, func(i, j int) bool { return lang.PosLess(fs[i].Pos, fs[j].Pos) })
}

// writeFindings prints check's findings in format. dir is the policy
// directory: findings no .iam line declares are reported at it, and in
// sarif and github output at its first file (GitHub shows only results in
// a file).
func writeFindings(w io.Writer, format, dir string, fs []catalog.Finding) error {
	if format == "json" {
		return catalog.WriteFindingsJSON(w, fs)
	}
	ds := make([]diag.Diagnostic, len(fs))
	for i, f := range fs {
		ds[i] = diag.Diagnostic{Code: f.Code, Level: f.Level, File: f.Pos.Filename, Line: f.Pos.Line, Col: f.Pos.Column, Message: f.Msg, Hint: f.Hint}
		if format != "text" && f.Pos.Line == 0 {
			if file := anchorFile(dir); file != "" {
				ds[i].File, ds[i].Line, ds[i].Col = file, 1, 1
			}
		}
	}
	switch format {
	case "sarif":
		return diag.WriteSARIF(w, ds, checkRules(), version, "")
	case "github":
		return diag.WriteGitHub(w, ds)
	}
	return diag.WriteText(w, ds)
}

// anchorFile is the file of the policy directory that findings about no
// line of it are shown at: iam.iam, else the first .iam file.
func anchorFile(dir string) string {
	if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		return dir
	}
	if _, err := os.Stat(filepath.Join(dir, "iam.iam")); err == nil {
		return filepath.Join(dir, "iam.iam")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+lang.Extension))
	sort.Strings(files)
	if len(files) > 0 {
		return files[0]
	}
	return ""
}

// writeLint prints lint's findings in format; location is the file sarif
// and github output show them at (lint's findings are about database
// objects, not lines).
func writeLint(w io.Writer, format, location string, fs []lint.Finding) error {
	switch format {
	case "json":
		return lint.WriteJSON(w, fs)
	case "text":
		return lint.WriteText(w, fs)
	}
	ds := make([]diag.Diagnostic, len(fs))
	for i, f := range fs {
		ds[i] = diag.Diagnostic{Code: f.Rule, Level: string(f.Level), Object: f.Object, Message: f.Object + ": " + f.Message, Hint: f.Remediation}
		if format == "github" && location != "" {
			ds[i].File, ds[i].Line = location, 1
		}
	}
	if format == "sarif" {
		return diag.WriteSARIF(w, ds, lintRules(), version, location)
	}
	return diag.WriteGitHub(w, ds)
}

// filesFailed prints the problems of the .iam files (with their codes) on
// w and returns the exit-1 error that counts them; any other error is
// returned as it is.
func filesFailed(w io.Writer, err error) error {
	var list lang.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	fs := langFindings(list)
	if werr := writeFindings(w, "text", "", fs); werr != nil {
		return werr
	}
	return &exitError{code: 1, err: fmt.Errorf("%s in the .iam files", countWords(fs))}
}

// countWords is "2 error(s)" or "2 error(s), 1 warning(s)".
func countWords(fs []catalog.Finding) string {
	errs, warnings := catalog.CountFindings(fs)
	if warnings == 0 {
		return fmt.Sprintf("%d error(s)", errs)
	}
	return fmt.Sprintf("%d error(s), %d warning(s)", errs, warnings)
}

// warningsText prints a model's warnings as text (build writes them on
// standard error: standard output is the script).
func warningsText(w io.Writer, m *lang.Model) error {
	if len(m.Warnings) == 0 {
		return nil
	}
	return writeFindings(w, "text", "", langFindings(m.Warnings))
}
