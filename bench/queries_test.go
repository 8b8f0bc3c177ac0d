package bench

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSelectQueries(t *testing.T) {
	var all []string
	for _, q := range Queries() {
		all = append(all, q.Key)
	}
	cases := []struct {
		name    string
		keys    []string
		want    []string
		wantErr string
	}{
		{"none: all of them", nil, all, ""},
		{"report order, not the order asked", []string{"q4-count", "q1-todos-page"}, []string{"q1-todos-page", "q4-count"}, ""},
		{"an unknown key names the known ones", []string{"q1-todos", "q9"}, nil, `no query "q9": the keys are q1-todos, `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			qs, err := SelectQueries(c.keys)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, q := range qs {
				got = append(got, q.Key)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
}
