package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iamc/iamc/lint"
)

// sarifLog is what the tests read of a SARIF log: the properties SARIF
// 2.1.0 requires and GitHub code scanning reads.
type sarifLog struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
					DefaultConfiguration struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation *struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region *struct {
						StartLine   int `json:"startLine"`
						StartColumn int `json:"startColumn"`
					} `json:"region"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					FullyQualifiedName string `json:"fullyQualifiedName"`
				} `json:"logicalLocations"`
			} `json:"locations"`
		} `json:"results"`
	} `json:"runs"`
}

// readSARIF decodes a log and checks what every log must hold: version
// 2.1.0, one run of iamc, and results whose ruleIndex names their rule.
func readSARIF(t *testing.T, out string) sarifLog {
	t.Helper()
	var log sarifLog
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if log.Version != "2.1.0" || log.Schema == "" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "iamc" {
		t.Fatalf("not a SARIF 2.1.0 log of one iamc run:\n%s", out)
	}
	run := log.Runs[0]
	for _, r := range run.Results {
		if r.RuleIndex < 0 || r.RuleIndex >= len(run.Tool.Driver.Rules) || run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("result %s: ruleIndex %d does not name its rule", r.RuleID, r.RuleIndex)
		}
		if r.Message.Text == "" || r.Level != "error" && r.Level != "warning" && r.Level != "note" {
			t.Errorf("result %s: message %q, level %q", r.RuleID, r.Message.Text, r.Level)
		}
	}
	return log
}

// TestCheckFormats: the files' warnings and errors in every format, with
// their codes and places.
func TestCheckFormats(t *testing.T) {
	noDatabase(t)
	t.Chdir(t.TempDir())
	writeFile(t, "p/a.iam", "resource app.notes {\n}\n")
	stdout, _, err := run(t, "check", "p")
	if err != nil || stdout != "p/a.iam:1:1: warning IAM183: no rule grants anything on app.notes: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served\n"+
		"ok: 1 resources in p (offline: syntax and semantics only) (1 warning(s))\n" {
		t.Errorf("check: %v\n%s", err, stdout)
	}
	if _, _, err := run(t, "check", "p", "--strict"); exitCode(err) != 1 || err.Error() != "0 error(s), 1 warning(s) in the .iam files" {
		t.Errorf("check --strict: %v", err)
	}
	stdout, _, err = run(t, "check", "p", "--format", "github")
	if err != nil || stdout != "::warning file=p/a.iam,line=1,col=1,title=IAM183::no rule grants anything on app.notes: every request is denied (row-level security on, no policy); add rules, or ignore this while the table is not served\n" {
		t.Errorf("check --format github: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "check", "p", "--format", "sarif")
	if err != nil {
		t.Fatal(err)
	}
	log := readSARIF(t, stdout)
	res := log.Runs[0].Results
	if len(res) != 1 || res[0].RuleID != "IAM183" || res[0].Level != "warning" || len(res[0].Locations) != 1 ||
		res[0].Locations[0].PhysicalLocation == nil || res[0].Locations[0].PhysicalLocation.ArtifactLocation.URI != "p/a.iam" ||
		res[0].Locations[0].PhysicalLocation.Region == nil || res[0].Locations[0].PhysicalLocation.Region.StartLine != 1 {
		t.Errorf("check --format sarif results: %+v", res)
	}
	rules := map[string]bool{}
	for _, r := range log.Runs[0].Tool.Driver.Rules {
		rules[r.ID] = r.ShortDescription.Text != ""
	}
	for _, id := range []string{"IAM100", "IAM154", "IAM183", "IAM191", "IAM312", "IAM331"} {
		if !rules[id] {
			t.Errorf("the SARIF rules lack %s (or its description)", id)
		}
	}

	// An ignore comment on the line suppresses the warning; one that
	// suppresses nothing is reported.
	writeFile(t, "p/a.iam", "resource app.notes {  # iamc:ignore IAM183 served from next month\n}\n")
	stdout, _, err = run(t, "check", "p", "--strict")
	if err != nil || stdout != "ok: 1 resources in p (offline: syntax and semantics only)\n" {
		t.Errorf("check with the warning ignored: %v\n%s", err, stdout)
	}
	writeFile(t, "p/a.iam", "resource app.notes {\n  owner column owner_id\n  owner can read  # iamc:ignore IAM183 not here\n}\n")
	stdout, _, err = run(t, "check", "p", "--format", "github")
	if err != nil || stdout != "::warning file=p/a.iam,line=3,col=19,title=IAM190::unused iamc:ignore IAM183: no IAM183 warning on this line\n" {
		t.Errorf("check with an unused ignore: %v\n%s", err, stdout)
	}

	// Errors, in sarif: exit 1, every error a result.
	writeFile(t, "p/a.iam", "resource app.notes {\n  owner can reed\n}\n")
	stdout, _, err = run(t, "check", "p", "--format", "sarif")
	if exitCode(err) != 1 {
		t.Errorf("exit %d, %v", exitCode(err), err)
	}
	res = readSARIF(t, stdout).Runs[0].Results
	if len(res) != 1 || res[0].RuleID != "IAM150" || res[0].Level != "error" {
		t.Errorf("errors in sarif: %+v", res)
	}
	stdout, _, _ = run(t, "check", "p", "--format", "github")
	if !strings.HasPrefix(stdout, "::error file=p/a.iam,line=2,col=13,title=IAM150::unknown permission \"reed\"") {
		t.Errorf("errors as annotations:\n%s", stdout)
	}
}

// TestLintFormats: lint's findings are about database objects: SARIF
// names the object and, with --location, the file they are shown at.
func TestLintFormats(t *testing.T) {
	fs := []lint.Finding{{Rule: "IAM007", Name: "rls_disabled", Level: lint.Error, Object: "app.orders",
		Message: "row-level security is disabled", Remediation: "alter table app.orders enable row level security;"}}
	var b strings.Builder
	if err := writeLint(&b, "sarif", filepath.Join("db", "schema.sql"), fs); err != nil {
		t.Fatal(err)
	}
	res := readSARIF(t, b.String()).Runs[0].Results
	if len(res) != 1 || res[0].RuleID != "IAM007" || res[0].Level != "error" || len(res[0].Locations) != 1 ||
		res[0].Locations[0].PhysicalLocation.ArtifactLocation.URI != "db/schema.sql" ||
		res[0].Locations[0].LogicalLocations[0].FullyQualifiedName != "app.orders" ||
		res[0].Message.Text != "app.orders: row-level security is disabled\nhint: alter table app.orders enable row level security;" {
		t.Errorf("lint sarif: %s", b.String())
	}
	b.Reset()
	if err := writeLint(&b, "github", "", fs); err != nil {
		t.Fatal(err)
	}
	if want := "::error title=IAM007 app.orders::app.orders: row-level security is disabled%0Ahint: alter table app.orders enable row level security;\n"; b.String() != want {
		t.Errorf("lint github:\n%s\nwant\n%s", b.String(), want)
	}
}
