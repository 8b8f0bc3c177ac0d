package stdlib_test

// The runtime's behaviour on a real PostgreSQL: the group API, the claims
// and tokens it reads, the deny list and the pre-request, quotas and
// timeouts, grants, pooling, standbys and concurrency. Each test exercises
// it through the example (policies/, built and applied) or a copy of it
// with other settings; the helpers are internal/exampletest's (imported
// with a dot), shared with the example's own tests in policies/.

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/iamc/iamc/internal/exampletest"
)

// TestMain runs the tests on exampletest's shared cluster.
func TestMain(m *testing.M) { os.Exit(Main(m)) }

// exampleWith is a copy of the example's .iam files in a temporary
// directory, with iamText as its iam.iam (the settings), to build.
func exampleWith(t *testing.T, iamText string) string {
	t.Helper()
	dir := t.TempDir()
	paths, err := filepath.Glob(filepath.Join(Dir, "*.iam"))
	NoError(t, err)
	for _, p := range paths {
		name, text := filepath.Base(p), iamText
		if name != "iam.iam" {
			b, err := os.ReadFile(p)
			NoError(t, err)
			text = string(b)
		}
		NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	return dir
}
