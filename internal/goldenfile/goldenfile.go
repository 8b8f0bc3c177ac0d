// Package goldenfile compares test output with files checked into the
// repository. `go test ./... -update` rewrites them; review the diff.
//
// Every package with tests imports this package (at least blank), so that
// the -update flag exists in every test binary and `go test ./... -update`
// works across the whole module.
package goldenfile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/stdlib"
)

// Update is set by `go test ... -update`.
var Update = flag.Bool("update", false, "rewrite golden files with the current output")

// Check compares got with the file at path, or rewrites the file when
// -update is given.
func Check(t testing.TB, path, got string) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the output (-want +got); run go test -update and review the diff:\n%s", path, diff)
	}
}

// runtimeElided stands where ElideRuntime took the runtime out.
const runtimeElided = "-- [the statements of stdlib/runtime.sql and its steps (stdlib/migrations) stand here, as written there]\n"

// ElideRuntime replaces the embedded runtime (stdlib/runtime.sql, the same
// in every build) by one line, so that a golden build.sql shows what its
// case generates, and a change of the runtime does not rewrite every case.
// It fails the test when the script does not hold the runtime exactly once.
func ElideRuntime(t testing.TB, script string) string {
	t.Helper()
	start, end := runtimeSpan(t, script)
	return script[:start] + runtimeElided + script[end:]
}

func runtimeSpan(t testing.TB, script string) (start, end int) {
	t.Helper()
	first, last := runtimeBounds()
	start = strings.Index(script, first)
	end = strings.Index(script, last)
	if start < 0 || end < start || strings.Count(script, first) != 1 || strings.Count(script, last) != 1 {
		t.Fatalf("the script does not hold the runtime (stdlib/runtime.sql) exactly once")
	}
	return start, end + len(last) + 1
}

// runtimeBounds are the first line and the last line of the runtime's SQL
// as the build prints it.
func runtimeBounds() (first, last string) {
	lines := strings.Split(strings.TrimSpace(stdlib.Runtime), "\n")
	return lines[0], lines[len(lines)-1]
}
