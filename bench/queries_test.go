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

func TestClasses(t *testing.T) {
	got := map[string][]UserClass{}
	for _, q := range Queries() {
		got[q.Key] = q.Classes()
	}
	all := []UserClass{ClassRandom, ClassMany, ClassBig, ClassMany500, ClassMany2000, ClassShares}
	special := []UserClass{ClassRandom, ClassMany, ClassBig}
	random := []UserClass{ClassRandom}
	want := map[string][]UserClass{
		"q1-todos": all, "q1-todos-page": all,
		"q1-chats": special, "q1-chats-page": special, "q4-count": special,
		"q2-read": {ClassRandom, ClassShares}, "q3-update": random, "q5-todo": random, "q5-chat": random, "q6-delete": random,
		"q7-notes": random, "q7-notes-page": random, "q7-notes-admin-page": random, "q8-notes-read": random,
		"q9-products": random, "q9-products-page": random, "q10-product-read": random, "q10-product-update": random, "q11-product-insert": random,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classes per query (-want +got):\n%s", diff)
	}
}
