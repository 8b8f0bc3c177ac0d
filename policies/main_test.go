package policies_test

// The tests of the example itself: its owner and group rules from both
// sides, its page functions, its plans, its Keycloak and PostgREST files.
// The helpers are internal/exampletest's (imported with a dot); the
// runtime's behaviour is tested in stdlib/.

import (
	"os"
	"testing"

	"github.com/iamc/iamc/internal/exampletest"
)

func TestMain(m *testing.M) { os.Exit(exampletest.Main(m)) }
