package stdlib

import (
	"fmt"
	"strings"
	"testing"
)

// TestVersionIsOneNumber: the runtime states its version in four places
// (header, refusal of a newer runtime, its message, the row it records);
// each must be Version, or an upgrade would record one number and check
// another. runtime.sql spells them {{version}}; none may be left.
func TestVersionIsOneNumber(t *testing.T) {
	if strings.Contains(Runtime, "{{") {
		t.Errorf("the runtime holds a placeholder that was not filled in")
	}
	for _, want := range []string{
		fmt.Sprintf("-- The iam runtime, version %d:", Version),
		fmt.Sprintf("if installed > %d then", Version),
		fmt.Sprintf("newer than this iamc (version %d)", Version),
		fmt.Sprintf("insert into iam.runtime (version) values (%d)", Version),
	} {
		if !strings.Contains(Runtime, want) {
			t.Errorf("runtime.sql does not say %q (Version is %d)", want, Version)
		}
	}
}
