package exampletest_test

import (
	"os"
	"testing"

	"github.com/iamc/iamc/internal/exampletest"
)

// The helpers' own tests (the snapshot, the plan walker) run on the shared
// cluster like the tests that use them.
func TestMain(m *testing.M) { os.Exit(exampletest.Main(m)) }
