package lang_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/lang"
)

const shareGroups = "groups {\n  api schema app\n}\n"

// TestShareErrors: each input about shares gives exactly these errors.
func TestShareErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"shared rules and share without a share item",
			shareGroups + "resource app.t {\n  owner column o\n  owner can read, share\n  shared can read\n}",
			[]string{
				"p/a.iam:7:3: shared rules in app.t need rows that can be shared: add `share by id with users, groups` (the key column, and with whom)",
			}},
		{"share without a share item",
			shareGroups + "resource app.t {\n  owner column o\n  owner can read, share\n}",
			[]string{"p/a.iam:6:19: owner can share in app.t, which declares no shares: add `share by id with users, groups`"}},
		{"a share item: nobody shares, shares grant nothing",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  owner can read\n}",
			[]string{
				"p/a.iam:6:3: shares of app.t would grant nothing: add a rule such as `shared can read` (a share grants read and, per share, what the shared rules allow)",
				"p/a.iam:6:3: nobody may share rows of app.t: add `owner can share` (or `group admin can share`)",
			}},
		{"only recipients may share: nobody makes the first share",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  owner can read\n  shared can read, share\n}",
			[]string{"p/a.iam:6:3: nobody may share rows of app.t: add `owner can share` (or `group admin can share`)"}},
		{"share needs read; shared cannot create; write needs read",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  owner can create, share\n  shared can create, write\n}",
			[]string{
				"p/a.iam:7:21: owner can share but not read in app.t: one shares rows one can read; add read",
				"p/a.iam:8:14: shared callers cannot be granted create: a share is of a row that exists; a share grants read, write, delete (and share, to re-share)",
				"p/a.iam:8:22: shared can write but not read in app.t: PostgreSQL only lets UPDATE and DELETE reach rows the caller can read; add read (every share grants read)",
			}},
		{"share item: twice, bad key, unknown recipient, recipient twice",
			shareGroups + "resource app.t {\n  owner column o\n  share by o with users, users, friends\n  share by id with groups\n  owner can read, share\n  shared can read\n}",
			[]string{
				"p/a.iam:6:12: share by o in app.t: a share points at a row by a unique key such as the primary key, not by the owner or group column",
				"p/a.iam:6:26: users is listed twice in share ... with",
				"p/a.iam:6:33: unknown share recipient \"friends\": expected users, groups or both (share by o with users, groups)",
				"p/a.iam:7:3: share is declared twice in app.t (first at p/a.iam:6:3)",
			}},
		{"a key named like a parameter of the share API",
			shareGroups + "resource app.t {\n  owner column o\n  share by user_id with users\n  owner can read, share\n  shared can read\n}",
			[]string{"p/a.iam:6:12: share by user_id in app.t: the share API has a parameter of that name (user_id, group_id, permissions); share by another unique column"}},
		{"limits: known, whole, once, with shares",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  max shares per row 0\n  max shares per user 5\n  max shares per recipient 5\n  max shares per recipient 6\n  owner can read, share\n  shared can read\n}\n" +
				"resource app.u {\n  owner column o\n  max shares per row 5\n  owner can read\n}",
			[]string{
				"p/a.iam:7:22: bad limit 0: max shares per row takes a whole number from 1 to 1000000",
				"p/a.iam:8:7: unknown limit \"max shares per user\": a resource takes max shares per row N or max shares per recipient N",
				"p/a.iam:10:3: max shares per recipient is set twice (first at p/a.iam:9:3)",
				"p/a.iam:16:3: max shares in app.u, which declares no shares: add `share by id with users` or remove the limit",
			}},
		{"an unknown permission lists share where rows are shared",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  owner can read, shar\n  shared can read\n}",
			[]string{
				"p/a.iam:6:3: nobody may share rows of app.t: add `owner can share` (or `group admin can share`)",
				"p/a.iam:7:19: unknown permission \"shar\": expected read, create, write, delete or share",
			}},
		{"authenticated cannot share",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  authenticated can read, share\n  owner can read, share\n  shared can read\n}",
			[]string{"p/a.iam:7:27: authenticated callers can only be granted read: letting every signed-in user change every row defeats ownership; grant write and delete to owner"}},
		{"group share without a group column",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  owner can read, share\n  group admin can share\n  shared can read\n}",
			[]string{
				"p/a.iam:8:19: group admin can share but not read in app.t: one shares rows one can read; grant read to group admin (or a lower role)",
				"p/a.iam:8:19: group rules need a group column in app.t: add `group column group_id`",
			}},
		{"two resources of one table name share: their APIs would clash",
			shareGroups + "resource app.t {\n  owner column o\n  share by id with users\n  owner can read, share\n  shared can read\n}\n" +
				"resource other.t {\n  owner column o\n  share by id with users\n  owner can read, share\n  shared can read\n}",
			[]string{"p/a.iam:12:3: app.t and other.t both declare shares: their share APIs would both be t_share, t_unshare and t_shares in schema app; share one of them only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := parseAll(t, src{"p/a.iam", tt.text})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = lang.Check(files)
			if err == nil {
				t.Fatalf("Check succeeded, want errors")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestShareNeedsGroupsBlock: the share API lives in the groups block's
// api schema.
func TestShareNeedsGroupsBlock(t *testing.T) {
	files, _ := parseAll(t, src{"p/a.iam", "resource app.t {\n  owner column o\n  share by id with users\n  owner can read, share\n  shared can read\n}"})
	_, err := lang.Check(files)
	want := "p/a.iam:3:3: app.t declares shares but no groups block says where the share API goes: add `groups { api schema app }` (the schema PostgREST serves)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// TestShareModel: what a share item and its rules mean.
func TestShareModel(t *testing.T) {
	files, err := parseAll(t, src{"p/a.iam", shareGroups + `resource app.todos {
  owner column owner_id
  group column group_id
  share by id with groups, users
  max shares per recipient 50
  owner can read, create, write, delete, share
  group member can read
  group admin can share
  shared can read, write, share
}`})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Resources[0]
	sh := r.Shares
	sh.Pos, sh.KeyPos = lang.Pos{}, lang.Pos{}
	want := lang.Shares{Declared: true, Key: "id", Users: true, Groups: true, Limits: lang.ShareLimits{PerRow: 100, PerRecipient: 50}}
	if diff := cmp.Diff(want, sh); diff != "" {
		t.Errorf("shares (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		s    lang.Subject
		perm lang.Perm
		want bool
	}{
		{lang.SharedSubject{}, lang.Read, true}, {lang.SharedSubject{}, lang.Write, true}, {lang.SharedSubject{}, lang.Delete, false},
		{lang.SharedSubject{}, lang.Share, true}, {lang.OwnerSubject{}, lang.Share, true}, {lang.GroupSubject{Role: lang.Admin}, lang.Share, true},
		{lang.GroupSubject{Role: lang.Member}, lang.Share, false},
	} {
		if got := r.Can(c.s, c.perm); got != c.want {
			t.Errorf("%s can %s: %v, want %v", c.s, c.perm, got, c.want)
		}
	}
	if got := r.GroupMinRole(lang.Share); got != lang.Admin {
		t.Errorf("lowest group role that shares: %q", got)
	}
}

// TestShareFormat: the share items print in canonical form and round-trip.
func TestShareFormat(t *testing.T) {
	text := "groups {\n  api schema app\n}\nresource app.t {\n  owner column o\n  share   by \"Id\"  with users ,groups  # both\n  max shares per row  7\n  owner can read, share\n  shared can read\n}\n"
	checkRoundTrip(t, text)
	got := lang.Format(mustParse(t, "p.iam", text))
	want := "groups {\n  api schema app\n}\n\nresource app.t {\n  owner column o\n  share by \"Id\" with users, groups  # both\n  max shares per row 7\n  owner can read, share\n  shared can read\n}\n"
	if got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
}
