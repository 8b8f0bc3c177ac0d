package catalog

import (
	"testing"

	"github.com/iamc/iamc/lang"
)

// TestTypeMatches: text identities accept text and varchar columns, uuid
// identities only uuid.
func TestTypeMatches(t *testing.T) {
	for colType, ok := range map[string]bool{"text": true, "character varying": true, "character varying(64)": true, "uuid": false, "character(36)": false} {
		if typeMatches(lang.Text, colType) != ok {
			t.Errorf("typeMatches(text, %q) = %v", colType, !ok)
		}
	}
	if !typeMatches(lang.UUID, "uuid") || typeMatches(lang.UUID, "text") {
		t.Error("typeMatches(uuid, ...)")
	}
}
