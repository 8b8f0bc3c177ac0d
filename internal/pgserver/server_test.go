package pgserver

import "testing"

func TestVersionLess(t *testing.T) {
	if !versionLess("9.6", "15") || versionLess("16", "15") || !versionLess("15", "17") {
		t.Fatal("versionLess ordering wrong")
	}
}
