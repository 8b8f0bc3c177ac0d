package policytest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/iamc/iamc/lang"
)

// Formats are the output formats of iamc test.
var Formats = []string{"text", "json", "junit"}

// Message is a failed expectation's line after its position and code:
// what was expected and what the database did.
func (r Result) Message() string {
	x := r.Expectation
	s := "expected: " + x.String()
	switch {
	case x.Listing && x.Can:
		s += " (access listing)"
	case x.Listing:
		s += " (not in the access listing)"
	}
	return s + "; actual: " + r.Actual.String()
}

// Line is a failure as one line, in the text form of every iamc
// diagnostic: file:line:col: error CODE: expected: ...; actual: ...
func (r Result) Line() string {
	return fmt.Sprintf("%s: error %s: %s", r.Expectation.Pos, r.Expectation.FailureCode(), r.Message())
}

// Summary is the last line of a text report.
func (r *Report) Summary() string {
	failed := len(r.Failed())
	timing := fmt.Sprintf("%.1fs", r.Elapsed.Seconds())
	if r.Server > 0 {
		timing += fmt.Sprintf(", of which %.1fs starting PostgreSQL", r.Server.Seconds())
	}
	files := strings.Join(r.Files, ", ")
	if failed > 0 && r.NotRun > 0 {
		return fmt.Sprintf("FAIL: %d of %d expectations failed in %s, %d not run after the first failure (%s)", failed, len(r.Results), files, r.NotRun, timing)
	}
	if failed > 0 {
		return fmt.Sprintf("FAIL: %d of %d expectations failed in %s (%s)", failed, len(r.Results), files, timing)
	}
	return fmt.Sprintf("ok: %d expectations in %s (%s)", len(r.Results), files, timing)
}

// WriteText writes every failure, then the summary; verbose writes every
// expectation that passed too.
func WriteText(w io.Writer, r *Report, verbose bool) error {
	for _, n := range r.Notes {
		if _, err := fmt.Fprintln(w, "note: "+n); err != nil {
			return err
		}
	}
	for _, res := range r.Results {
		line := ""
		switch {
		case !res.Passed:
			line = res.Line()
		case verbose:
			line = fmt.Sprintf("%s: ok %s; actual: %s", res.Expectation.Pos, res.Expectation, res.Actual)
		default:
			continue
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

// jsonReport is the --format json document.
type jsonReport struct {
	OK           bool         `json:"ok"`
	Files        []string     `json:"files"`
	Expectations int          `json:"expectations"`
	Failures     int          `json:"failures"`
	NotRun       int          `json:"not_run"`
	Seconds      float64      `json:"seconds"`
	ServerStart  float64      `json:"server_start_seconds"`
	Notes        []string     `json:"notes"`
	Errors       []jsonError  `json:"errors"`
	Results      []jsonResult `json:"results"`
}

type jsonResult struct {
	File        string `json:"file"`
	Line        int    `json:"line"`
	Col         int    `json:"col"`
	Expectation string `json:"expectation"`
	Listing     bool   `json:"listing"`
	Expected    string `json:"expected"`
	Actual      string `json:"actual"`
	SQLState    string `json:"sqlstate,omitempty"`
	Passed      bool   `json:"passed"`
	Code        string `json:"code,omitempty"`
}

type jsonError struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON writes the report (or, with errs, the problems that stopped
// the run) as one JSON object.
func WriteJSON(w io.Writer, r *Report, errs lang.ErrorList) error {
	doc := jsonReport{OK: true, Notes: []string{}, Errors: []jsonError{}, Results: []jsonResult{}, Files: []string{}}
	if r != nil {
		doc.Files = append(doc.Files, r.Files...)
		doc.Notes = append(doc.Notes, r.Notes...)
		doc.Expectations = len(r.Results)
		doc.NotRun = r.NotRun
		doc.Seconds = r.Elapsed.Seconds()
		doc.ServerStart = r.Server.Seconds()
		for _, res := range r.Results {
			x := res.Expectation
			jr := jsonResult{
				File: x.Pos.Filename, Line: x.Pos.Line, Col: x.Pos.Column,
				Expectation: x.String(), Listing: x.Listing, Expected: canWord(x.Can),
				Actual: res.Actual.String(), SQLState: res.Actual.SQLState, Passed: res.Passed,
			}
			if !res.Passed {
				jr.Code = x.FailureCode()
				doc.Failures++
				doc.OK = false
			}
			doc.Results = append(doc.Results, jr)
		}
	}
	for _, e := range sortedErrors(errs) {
		doc.Errors = append(doc.Errors, jsonError{File: e.Pos.Filename, Line: e.Pos.Line, Col: e.Pos.Column, Code: e.Code, Message: e.Msg})
		doc.OK = false
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func canWord(can bool) string {
	if can {
		return "can"
	}
	return "cannot"
}

func sortedErrors(errs lang.ErrorList) lang.ErrorList {
	out := append(lang.ErrorList(nil), errs...)
	sort.SliceStable(out, func(i, j int) bool { return lang.PosLess(out[i].Pos, out[j].Pos) })
	return out
}

// JUnit XML, as CI systems read it (one testsuite per test file, one
// testcase per expectation).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report (or, with errs, the problems that stopped
// the run, as errored test cases) as JUnit XML.
func WriteJUnit(w io.Writer, r *Report, errs lang.ErrorList) error {
	doc := junitSuites{Name: "iamc test"}
	suites := map[string]*junitSuite{}
	var order []string
	suite := func(file string) *junitSuite {
		if s, ok := suites[file]; ok {
			return s
		}
		suites[file] = &junitSuite{Name: file, Time: "0"}
		order = append(order, file)
		return suites[file]
	}
	var elapsed time.Duration
	if r != nil {
		elapsed = r.Elapsed
		for _, f := range r.Files {
			suite(f)
		}
		for _, res := range r.Results {
			x := res.Expectation
			s := suite(x.Pos.Filename)
			c := junitCase{
				Name:      fmt.Sprintf("%s (line %d)", x, x.Pos.Line),
				Classname: strings.TrimSuffix(x.Pos.Filename, lang.TestExtension),
				File:      x.Pos.Filename, Line: x.Pos.Line,
			}
			if !res.Passed {
				c.Failure = &junitProblem{Message: res.Message(), Type: x.FailureCode(), Text: res.Line()}
				s.Failures++
				doc.Failures++
			}
			s.Tests++
			doc.Tests++
			s.Cases = append(s.Cases, c)
		}
	}
	for _, e := range sortedErrors(errs) {
		s := suite(e.Pos.Filename)
		s.Cases = append(s.Cases, junitCase{
			Name:      fmt.Sprintf("%s (line %d)", e.Code, e.Pos.Line),
			Classname: strings.TrimSuffix(e.Pos.Filename, lang.TestExtension),
			File:      e.Pos.Filename, Line: e.Pos.Line,
			Error: &junitProblem{Message: e.Msg, Type: e.Code, Text: e.Error()},
		})
		s.Tests++
		s.Errors++
		doc.Tests++
		doc.Errors++
	}
	doc.Time = fmt.Sprintf("%.3f", elapsed.Seconds())
	for _, f := range order {
		doc.Suites = append(doc.Suites, *suites[f])
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
