package lang_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iamc/iamc/lang"
)

// People in the groups block: the directory's claims (Keycloak's by
// default), members see email, the invitation quota; and owner can
// transfer on a resource.

func TestPeopleSettings(t *testing.T) {
	tests := []struct {
		name    string
		groups  string
		profile lang.ProfileClaims
		email   bool
		invites int
	}{
		{"defaults: Keycloak's claims, no email shown, 100 invitations", "", lang.DefaultProfileClaims, false, 100},
		{"other claims, email shown, a quota",
			"  username claim 'login'\n  email claim 'mail'\n  name claim 'display_name'\n  members see email\n  max invitations per group 5\n",
			lang.ProfileClaims{Username: "login", Email: "mail", Name: "display_name"}, true, 5},
		{"none keeps no email and no name",
			"  email claim none\n  name claim none\n",
			lang.ProfileClaims{Username: "preferred_username"}, false, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "groups {\n  api schema app\n" + tt.groups + "}\n"
			files, err := parseAll(t, src{"p/a.iam", text})
			if err != nil {
				t.Fatal(err)
			}
			m, err := lang.Check(files)
			if err != nil {
				t.Fatal(err)
			}
			g := m.Groups
			if g.Profile != tt.profile || g.MembersSeeEmail != tt.email || g.Limits.InvitationsPerGroup != tt.invites {
				t.Errorf("got profile %+v, members see email %v, invitations %d; want %+v, %v, %d",
					g.Profile, g.MembersSeeEmail, g.Limits.InvitationsPerGroup, tt.profile, tt.email, tt.invites)
			}
			checkRoundTrip(t, text)
		})
	}
}

func TestPeopleErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []src
		want  []string
	}{
		{"a profile claim set twice, or empty",
			[]src{{"p/a.iam", "groups {\n  api schema app\n  username claim 'a'\n  username claim 'b'\n  email claim ''\n  members see email\n  members see email\n}"}},
			[]string{
				`p/a.iam:4:3: username claim is set twice (first at p/a.iam:3:3)`,
				`p/a.iam:5:15: the email claim is empty: name the token claim (Keycloak's is 'email'), or write email claim none to keep no email`,
				`p/a.iam:7:3: members see email is set twice (first at p/a.iam:6:3)`,
			}},
		{"only the owner transfers",
			[]src{{"p/a.iam", "groups {\n  api schema app\n}\nresource app.t {\n  owner column o\n  group column g\n  authenticated can read, transfer\n  group member can read, transfer\n  owner can read\n}"}},
			[]string{
				`p/a.iam:7:27: authenticated cannot be granted transfer: only a row's owner hands it over (owner can transfer)`,
				`p/a.iam:8:26: group member cannot be granted transfer: only a row's owner hands it over (owner can transfer)`,
			}},
		{"transfer needs read and a groups block",
			[]src{{"p/a.iam", "resource app.t {\n  owner column o\n  owner can create, transfer\n}"}},
			[]string{
				`p/a.iam:3:21: owner can transfer but not read in app.t: the transfer updates the row, and PostgreSQL only lets UPDATE reach rows the caller can read; add read`,
				"p/a.iam:3:21: owner can transfer in app.t needs a groups block: the transfer function finds the recipient in the user directory, part of the group API (add `groups { api schema app }`)",
			}},
		{"transfer granted twice",
			[]src{{"p/a.iam", "groups {\n  api schema app\n}\nresource app.t {\n  owner column o\n  owner can read, transfer, transfer\n}"}},
			[]string{`p/a.iam:6:29: owner is already granted transfer (at p/a.iam:6:19)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := parseAll(t, tt.files...)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = lang.Check(files)
			if err == nil {
				t.Fatal("Check succeeded, want errors")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTransferPerm: owner can transfer is recorded where it was written,
// kept with the rule's other permissions (it compiles to a policy of its
// own), and formats back as written.
func TestTransferPerm(t *testing.T) {
	text := "groups {\n  api schema app\n}\n\nresource app.t {\n  owner column o\n  owner can read, write, transfer\n}\n"
	files, err := parseAll(t, src{"p/a.iam", text})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lang.Check(files)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Resources[0]
	if got := r.TransferPos.String(); got != "p/a.iam:7:26" {
		t.Errorf("TransferPos = %s, want p/a.iam:7:26", got)
	}
	if !r.Can(lang.OwnerSubject{}, lang.Transfer) || !r.Can(lang.OwnerSubject{}, lang.Write) {
		t.Errorf("rules %+v: want owner can read, write, transfer", r.Rules)
	}
	if got := lang.Format(files[0]); got != text {
		t.Errorf("Format = %q, want %q", got, text)
	}
	checkRoundTrip(t, text)
}
