package compiler

import (
	"testing"

	"github.com/iamc/iamc/lang"
)

// TestIdentityTypeMatches: text identities accept text and varchar columns, uuid
// identities only uuid.
func TestIdentityTypeMatches(t *testing.T) {
	for colType, ok := range map[string]bool{"text": true, "character varying": true, "character varying(64)": true, "uuid": false, "character(36)": false} {
		if identityTypeMatches(lang.Text, colType) != ok {
			t.Errorf("identityTypeMatches(text, %q) = %v", colType, !ok)
		}
	}
	if !identityTypeMatches(lang.UUID, "uuid") || identityTypeMatches(lang.UUID, "text") {
		t.Error("identityTypeMatches(uuid, ...)")
	}
}
