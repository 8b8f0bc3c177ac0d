package lint

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyCalls(t *testing.T) {
	cases := []struct {
		expr string
		want []call
	}{
		// What iamc generates, as pg_get_expr prints it back.
		{`(owner_id = ( SELECT iam.user_id_uuid('sub'::text) AS user_id_uuid))`,
			[]call{{Schema: "iam", Name: "user_id_uuid", Args: 1}}},
		{`((owner_id = ( SELECT iam.user_id_uuid('sub'::text) AS user_id_uuid)) OR (group_id = ANY (( SELECT iam.group_ids('member'::text) AS group_ids))::bigint[]))`,
			[]call{{Schema: "iam", Name: "user_id_uuid", Args: 1}, {Schema: "iam", Name: "group_ids", Args: 1}}},
		{`true`, nil},
		// Per row.
		{`(owner_id = app.me())`, []call{{Schema: "app", Name: "me", PerRow: true}}},
		{`app.is_mine(owner_id)`, []call{{Schema: "app", Name: "is_mine", Args: 1, PerRow: true, RowArgs: true}}},
		{`(random() < (0.5)::double precision)`, []call{{Name: "random", PerRow: true}}},
		{`(lower(title) = pg_catalog.lower('X'::text))`, []call{
			{Name: "lower", Args: 1, PerRow: true, RowArgs: true}, {Name: "lower", Args: 1, PerRow: true}}},
		// Nested: the outer call per row, the inner one too (it is an argument).
		{`app.f(app.g(1, 2))`, []call{{Schema: "app", Name: "f", Args: 1, PerRow: true}, {Schema: "app", Name: "g", Args: 2, PerRow: true}}},
		// A sub-select without FROM naming a column is correlated: per row.
		{`( SELECT app.is_mine(t.owner_id) AS is_mine)`, []call{{Schema: "app", Name: "is_mine", Args: 1, PerRow: true, RowArgs: true}}},
		// With FROM it is taken as uncorrelated; the IN's left side is per row.
		{`(app.key(owner_id) IN ( SELECT m.user_id FROM app.members m WHERE (m.user_id = app.me())))`, []call{
			{Schema: "app", Name: "key", Args: 1, PerRow: true, RowArgs: true}, {Schema: "app", Name: "me"}}},
		{`(EXISTS ( SELECT 1 FROM app.members m WHERE (m.user_id = app.me())))`, []call{{Schema: "app", Name: "me"}}},
		// Inside CASE, COALESCE, casts, boolean tests: still per row.
		{`(COALESCE(app.flag(), false) IS TRUE AND CASE WHEN app.x() THEN true ELSE (app.y())::boolean END)`, []call{
			{Schema: "app", Name: "flag", PerRow: true}, {Schema: "app", Name: "x", PerRow: true}, {Schema: "app", Name: "y", PerRow: true}}},
		{`"Weird Schema"."F"()`, []call{{Schema: "Weird Schema", Name: "F", PerRow: true}}},
	}
	for _, tc := range cases {
		got, err := policyCalls(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.expr, diff)
		}
	}
	if _, err := policyCalls(`owner_id = (`); err == nil {
		t.Error("a broken expression parsed")
	}
}

func TestIsTrue(t *testing.T) {
	for expr, want := range map[string]bool{
		"true": true, "(true)": true, " ( TRUE ) ": true, "": false, "false": false,
		"(true) AND (x)": false, "(a = b)": false,
	} {
		if got := isTrue(expr); got != want {
			t.Errorf("isTrue(%q) = %v, want %v", expr, got, want)
		}
	}
}
