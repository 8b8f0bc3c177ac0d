package pgtest

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestVersionNum: the server's server_version_num is the version of the
// postgres binary in BinDir, so `make test-matrix` (PG_BIN per major)
// really tests the major it names.
func TestVersionNum(t *testing.T) {
	s := New(t)
	got, err := s.VersionNum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(s.BinDir, "postgres"), "--version").Output()
	if err != nil {
		t.Fatalf("postgres --version: %v", err)
	}
	m := regexp.MustCompile(`\(PostgreSQL\) (\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("postgres --version printed %q", out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if want := major*10000 + minor; got != want {
		t.Errorf("VersionNum = %d, want %d (from %q)", got, want, out)
	}
	if got < 140000 {
		t.Errorf("VersionNum = %d: iamc supports PostgreSQL 14 and later", got)
	}
}
