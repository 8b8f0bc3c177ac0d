package exampletest

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// PostgRESTConf reads postgrest.conf: key = value lines, quotes removed,
// $(VAR) left as written.
func PostgRESTConf(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(File("postgrest.conf"))
	if err != nil {
		t.Fatalf("reading the shipped PostgREST configuration: %v", err)
	}
	defer f.Close()
	conf := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("postgrest.conf:%d: not key = value: %q", n, line)
		}
		value = strings.TrimSpace(value)
		if unquoted, err := strconv.Unquote(value); err == nil {
			value = unquoted
		}
		conf[strings.TrimSpace(key)] = value
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TokenFixtures are the access-token payloads of testdata/keycloak, by file
// name without .json.
func TokenFixtures(t *testing.T) map[string]map[string]any {
	t.Helper()
	paths, err := filepath.Glob(File(filepath.Join("testdata", "keycloak", "*.json")))
	NoError(t, err)
	if len(paths) == 0 {
		t.Fatal("no token fixtures in testdata/keycloak")
	}
	fixtures := map[string]map[string]any{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		NoError(t, err)
		var claims map[string]any
		if err := json.Unmarshal(b, &claims); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		fixtures[strings.TrimSuffix(filepath.Base(p), ".json")] = claims
	}
	return fixtures
}
