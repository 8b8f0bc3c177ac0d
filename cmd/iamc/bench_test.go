package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iamc/iamc/bench"
)

// TestBenchHTTP runs `iamc bench --http` end to end on a tiny data set: a
// throwaway PostgreSQL, the example applied, a real PostgREST. It checks
// that every request kind was timed on both sides and that the answers
// were verified first; no timings are checked.
func TestBenchHTTP(t *testing.T) {
	if _, err := exec.LookPath("postgrest"); err != nil {
		t.Skip("postgrest not on PATH: `iamc bench --http` needs a PostgREST 12 binary (see README, 'Benchmark')")
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	stdout, stderr, err := run(t, "bench", "--ephemeral", "--policies", "../../policies", "--http",
		"--rows", "2000", "--duration", "200ms", "--clients", "8", "--json", out) // 8: more clients than pgxpool.New would give connections
	if err != nil {
		t.Fatalf("iamc bench --http: %v\n%s\n%s", err, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Sizes) != 1 || rep.Sizes[0].HTTP == nil {
		t.Fatalf("the report has no http key:\n%s", data)
	}
	hr := rep.Sizes[0].HTTP
	if hr.Verified == 0 {
		t.Error("no request was verified before timing")
	}
	if len(rep.Sizes[0].Configs) != 0 {
		t.Error("--http also ran the in-process benchmark")
	}
	timed := map[string]bool{}
	for _, r := range hr.Results {
		if r.RLS.N == 0 || r.FloorS.N == 0 || r.RLS.MedianMS <= 0 || r.FloorS.MedianMS <= 0 {
			t.Errorf("%s, %s: %d RLS and %d floor requests (medians %v, %v)", r.Key, r.User, r.RLS.N, r.FloorS.N, r.RLS.MedianMS, r.FloorS.MedianMS)
		}
		if r.User == bench.ClassRandom {
			timed[r.Key] = true
		}
	}
	for _, q := range bench.Queries() {
		if !timed[q.Key] {
			t.Errorf("%s was not timed over HTTP for random users", q.Key)
		}
	}
	for _, want := range []string{"over HTTP", "RLS med ms", "floor TPS", "GET /rpc/todos_page"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the printed report lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{"todos: done", "verified"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the progress lacks %q:\n%s", want, stderr)
		}
	}
}

// TestBenchHTTPWithoutPostgREST: without a binary, --http says how to get
// one, before it starts anything.
func TestBenchHTTPWithoutPostgREST(t *testing.T) {
	_, _, err := run(t, "bench", "--ephemeral", "--http", "--postgrest", filepath.Join(t.TempDir(), "postgrest"))
	if err == nil || !strings.Contains(err.Error(), "github.com/PostgREST/postgrest/releases") {
		t.Errorf("err = %v, want the way to get PostgREST", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, _, err = run(t, "bench", "--db", "postgres://nowhere/x", "--http")
	if err == nil || !strings.Contains(err.Error(), "postgrest not found on PATH") {
		t.Errorf("err = %v, want postgrest not found on PATH", err)
	}
}
