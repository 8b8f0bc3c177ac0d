package catalog

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/iamc/iamc/lang"
)

// jsonFinding is the machine form of a finding (iamc check --format json).
type jsonFinding struct {
	File    string `json:"file"`
	Line    int    `json:"line"` // 0 when no .iam line declares it
	Col     int    `json:"col"`
	Code    string `json:"code"`
	Level   string `json:"level"`
	Message string `json:"message"`
	Hint    string `json:"hint"`
}

// MarshalJSON writes {file, line, col, code, level, message, hint}.
func (f Finding) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonFinding{f.Pos.Filename, f.Pos.Line, f.Pos.Column, f.Code, f.Level, f.Msg, f.Hint})
}

// WriteFindingsJSON writes findings as one indented JSON array ([] when
// there are none), followed by a newline.
func WriteFindingsJSON(w io.Writer, findings []Finding) error {
	if findings == nil {
		findings = []Finding{}
	}
	b, err := json.MarshalIndent(findings, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ErrorFindings turns the problems of .iam files (a lang.ErrorList) into
// error-level findings, sorted by position. It reports false for any
// other error.
func ErrorFindings(err error) ([]Finding, bool) {
	var list lang.ErrorList
	if !errors.As(err, &list) {
		return nil, false
	}
	out := make([]Finding, len(list))
	for i, e := range list {
		level := e.Level
		if level == "" {
			level = LevelError
		}
		out[i] = Finding{Pos: e.Pos, Code: e.Code, Level: level, Msg: e.Msg}
	}
	sortFindings(out)
	return out, true
}

// CountFindings returns how many findings are errors and how many warnings.
func CountFindings(findings []Finding) (errs, warnings int) {
	for _, f := range findings {
		switch f.Level {
		case LevelError:
			errs++
		case LevelWarning:
			warnings++
		}
	}
	return errs, warnings
}
