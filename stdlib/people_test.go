package stdlib_test

// People (SPEC §11, "People"): the user directory filled from the token,
// finding people by username or email without telling strangers apart from
// nobody, invitations, ownership transfer of groups and rows, and the audit
// trail. Every refused call is checked to leave the tables as they were.
// The people of these tests have usernames no other test uses (the
// directory is shared by the whole database).

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/internal/pgrest"
)

// ---------------------------------------------------------------------------
// The cast and the calls.
// ---------------------------------------------------------------------------

var personSeq atomic.Int64

// errRolledBack ends a request that must change nothing.
var errRolledBack = errors.New("rolled back by the test")

// person is a signed-in user nobody else in the database is: a user id
// and a username of their own (name plus a number), email
// <username>@example.com, verified.
func person(name string) Person {
	n := personSeq.Add(1)
	p := KeycloakUser(fmt.Sprintf("%s%d", name, n), fmt.Sprintf("%08d-0000-4000-9000-%012d", n, n))
	p.Claims["name"] = strings.ToUpper(name[:1]) + name[1:] + " Example"
	return p
}

// withClaim is who with one claim set (nil: removed).
func withClaim(who Person, claim string, value any) Person {
	claims := make(map[string]any, len(who.Claims))
	for k, v := range who.Claims {
		claims[k] = v
	}
	if value == nil {
		delete(claims, claim)
	} else {
		claims[claim] = value
	}
	who.Claims = claims
	return who
}

func username(who Person) string { return who.Claims["preferred_username"].(string) }
func email(who Person) string    { return who.Claims["email"].(string) }

// rpcCall is POST /rpc/fn as who, with named arguments: the function's result
// as text ("" for void), or the database's refusal.
func rpcCall(t *testing.T, db *Database, who Person, fn string, args ...any) (string, error) {
	t.Helper()
	return callAs(t, db, who, "POST", "", fn, args...)
}

// callAs is rpcCall with the method and the db-pre-request PostgREST uses.
func callAs(t *testing.T, db *Database, who Person, method, preRequest, fn string, args ...any) (string, error) {
	t.Helper()
	sql, values := rpcStatement(fn, args...)
	sql = strings.Replace(sql, "select app."+fn+"(", "select coalesce(app."+fn+"(", 1) + "::text, '')"
	var out string
	req := pgrest.Request{Method: method, Path: "/rpc/" + fn, Role: who.Role, Claims: who.Claims, PreRequest: preRequest}
	err := pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), sql, values...).Scan(&out)
	})
	return out, err
}

// mustCall is rpcCall that must succeed.
func mustCall(t *testing.T, db *Database, who Person, fn string, args ...any) string {
	t.Helper()
	out, err := rpcCall(t, db, who, fn, args...)
	if err != nil {
		t.Fatalf("%s: POST /rpc/%s %v: %v", who.Name, fn, args, err)
	}
	return out
}

// invitation is what create_invitation answers.
type invitation struct {
	ID      int64  `json:"invitation_id"`
	Token   string `json:"token"`
	Group   int64  `json:"group_id"`
	Role    string `json:"role"`
	MaxUses int    `json:"max_uses"`
	Expires string `json:"expires_at"`
}

func invite(t *testing.T, db *Database, who Person, gid int64, role string, maxUses int) invitation {
	t.Helper()
	var inv invitation
	out := mustCall(t, db, who, "create_invitation", "group_id", gid, "role", role, "expires_in", "7 days", "max_uses", maxUses)
	NoError(t, json.Unmarshal([]byte(out), &inv))
	return inv
}

// refusal is a database error as a client sees it: SQLSTATE, message,
// detail, hint.
type refusal struct{ Code, Message, Detail, Hint string }

func refusalOf(t *testing.T, err error) refusal {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("got %v, want a refusal from the database", err)
	}
	return refusal{pgErr.Code, pgErr.Message, pgErr.Detail, pgErr.Hint}
}

// peopleState is what a refused call must leave as it was: every table of
// the group runtime and the people (as the superuser reads them), and the
// example's rows.
func peopleState(t *testing.T, db *Database) string {
	t.Helper()
	return Scalar[string](t, db, `select concat_ws(E'\n',
	    (select string_agg(format('%s %s %s', group_id, user_id, role), ', ' order by group_id, user_id) from iam.group_members),
	    (select string_agg(format('%s %s', id, name), ', ' order by id) from iam.groups),
	    (select string_agg(format('%s %s %s %s %s %s', id, group_id, role, uses, max_uses, revoked_at), ', ' order by id) from iam.invitations),
	    (select count(*) from iam.audit_log),
	    (select string_agg(format('%s %s %s', id, owner_id, group_id), ', ' order by id) from app.todos),
	    (select count(*) from iam.transfer_grants))`)
}

// wantRefused checks that err is a refusal with code and message, and that
// the tables are as before.
func wantRefused(t *testing.T, db *Database, before string, err error, code, msg string) {
	t.Helper()
	wantErr(t, "the call", err, code, msg)
	if after := peopleState(t, db); after != before {
		t.Errorf("a refused call changed the tables:\nbefore %s\nafter  %s", before, after)
	}
}

// The people database: the example built and applied, shared by the
// people tests (the audit trail test makes its own).
var peopleExample struct {
	once sync.Once
	db   *Database
	err  error
}

func peopleDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	peopleExample.once.Do(func() {
		var script string
		if peopleExample.db, peopleExample.err = CreateDatabase(s, "people", "schema.sql"); peopleExample.err != nil {
			return
		}
		if script, peopleExample.err = BuildScript(Dir); peopleExample.err != nil {
			return
		}
		_, peopleExample.err = ApplyScript(t.Context(), s, "people", script)
	})
	if peopleExample.err != nil {
		t.Fatalf("setting up the people database: %v", peopleExample.err)
	}
	return peopleExample.db
}

// newGroup is create_group as who; the caller is synced into the directory
// by it, as by every call of the group API.
func newGroup(t *testing.T, db *Database, who Person, name string) int64 {
	t.Helper()
	return CreateGroup(t, db, who, name)
}

// ---------------------------------------------------------------------------
// The directory.
// ---------------------------------------------------------------------------

type profile struct {
	Username, Email, Name *string
	Verified              bool
}

func directoryRow(t *testing.T, db *Database, who Person) (profile, bool) {
	t.Helper()
	var p profile
	err := db.SU.QueryRow(t.Context(), `select username, email, name, email_verified from iam.users where user_id = $1`, UserID(who)).
		Scan(&p.Username, &p.Email, &p.Name, &p.Verified)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false
	}
	NoError(t, err)
	return p, true
}

// TestDirectoryFromTheToken: a user enters the directory with their first
// write request (the db-pre-request) or POST /rpc/sync_profile, never with
// a read (PostgREST runs GET and HEAD READ ONLY: nothing may write there);
// their profile follows their token; claims that are not clean strings
// are not kept; no runtime role reads the directory.
func TestDirectoryFromTheToken(t *testing.T) {
	db := peopleDB(t)
	bob := withClaim(person("bob"), "aud", "todo-api") // the example's audience, which the pre-request checks

	// A read writes nothing, with or without the pre-request.
	for _, method := range []string{"GET", "HEAD"} {
		req := pgrest.Request{Method: method, Path: "/todos", Role: bob.Role, Claims: bob.Claims, PreRequest: "iam.check_request"}
		NoError(t, pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
			_, err := tx.Exec(t.Context(), "select * from app.todos_page()")
			return err
		}))
	}
	if _, found := directoryRow(t, db, bob); found {
		t.Fatal("a read request put bob into the directory")
	}

	// A write request, any write, through the pre-request.
	_, err := (Requester{T: t, DB: db, Who: bob, Path: "/todos"}).Exec("POST", "insert into app.todos (title) values ('first')")
	NoError(t, err)
	if _, found := directoryRow(t, db, bob); found {
		t.Fatal("a write without the db-pre-request synced bob (only the pre-request and the people API do)")
	}
	req := pgrest.Request{Method: "POST", Path: "/todos", Role: bob.Role, Claims: bob.Claims, PreRequest: "iam.check_request"}
	NoError(t, pgrest.Do(t.Context(), db.API, req, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), "insert into app.todos (title) values ('second')")
		return err
	}))
	got, found := directoryRow(t, db, bob)
	want := profile{Username: str(username(bob)), Email: str(email(bob)), Name: str("Bob Example"), Verified: true}
	if !found || !cmp.Equal(got, want) {
		t.Fatalf("bob's profile after a write: %v %+v, want %+v", found, got, want)
	}
	firstSeen := Scalar[string](t, db, `select first_seen::text || ' ' || last_seen::text from iam.users where user_id = $1`, UserID(bob))

	// The same token again within a minute: read, not written.
	_, err = callAs(t, db, bob, "POST", "iam.check_request", "create_group", "name", "bob's")
	NoError(t, err)
	if again := Scalar[string](t, db, `select first_seen::text || ' ' || last_seen::text from iam.users where user_id = $1`, UserID(bob)); again != firstSeen {
		t.Errorf("an unchanged profile was written again: %s, before %s", again, firstSeen)
	}

	// Keycloak renames bob and unverifies a new email: the next write says so.
	renamed := withClaim(withClaim(withClaim(bob, "preferred_username", "robert"+UserID(bob)[:4]), "email", "Robert@Example.com"), "email_verified", false)
	out, err := callAs(t, db, renamed, "POST", "", "sync_profile")
	NoError(t, err)
	var mine map[string]any
	NoError(t, json.Unmarshal([]byte(out), &mine))
	if mine["username"] != "robert"+UserID(bob)[:4] || mine["email"] != "Robert@Example.com" || mine["email_verified"] != false || mine["user_id"] != UserID(bob) {
		t.Errorf("sync_profile answered %s", out)
	}
	if again := Scalar[string](t, db, `select first_seen::text || ' ' || last_seen::text from iam.users where user_id = $1`, UserID(bob)); again == firstSeen ||
		!strings.HasPrefix(again, strings.Fields(firstSeen)[0]+" "+strings.Fields(firstSeen)[1]) {
		t.Errorf("after sync_profile: first and last seen %s, before %s (first seen stays, last seen moves)", again, firstSeen)
	}

	// Claims that are not clean strings are not kept; the request goes on.
	odd := withClaim(withClaim(withClaim(person("odd"), "preferred_username", 42), "name", "tab\there"), "email", strings.Repeat("x", 321))
	_, err = callAs(t, db, odd, "POST", "", "sync_profile")
	NoError(t, err)
	if got, _ := directoryRow(t, db, odd); got.Username != nil || got.Name != nil || got.Email != nil || got.Verified {
		t.Errorf("odd claims were kept: %+v", got)
	}

	// Nobody reads the directory: not web_user, not web_anon.
	for _, who := range []Person{bob, Anonymous} {
		_, err := (Requester{T: t, DB: db, Who: who, Path: "/rpc/f"}).Exec("GET", "select * from iam.users")
		wantErr(t, who.Name+" reads iam.users", err, "42501", "permission denied")
	}
	// sync_profile needs a user id.
	_, err = rpcCall(t, db, NoSub, "sync_profile")
	wantErr(t, "sync_profile without sub", err, "28000", "groups need a signed-in user")
	_, err = rpcCall(t, db, Anonymous, "sync_profile")
	wantErr(t, "sync_profile anonymous", err, "42501", "permission denied")
}

// TestProfilesOfGroupMembers: GET /group_members shows the username and
// name of the people in the caller's groups, never their email unless the
// groups block says members see email, and then only a verified one; the
// caller's strangers are not listed at all.
func TestProfilesOfGroupMembers(t *testing.T) {
	type member struct {
		User           string
		Username, Name *string
		Email          *string
	}
	members := func(db *Database, who Person, gid int64) []member {
		t.Helper()
		var got []member
		err := (Requester{T: t, DB: db, Who: who, Path: "/group_members"}).Do("GET", func(tx pgx.Tx) error {
			rows, err := tx.Query(t.Context(), `select user_id, username, name, email from app.group_members where group_id = $1 order by username`, gid)
			if err != nil {
				return err
			}
			got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[member])
			return err
		})
		NoError(t, err)
		return got
	}
	iamText, err := os.ReadFile(File("iam.iam"))
	NoError(t, err)
	for _, seeEmail := range []bool{false, true} {
		t.Run(fmt.Sprintf("members see email %v", seeEmail), func(t *testing.T) {
			db := peopleDB(t)
			if seeEmail {
				text := strings.Replace(string(iamText), "  name claim 'name'\n", "  name claim 'name'\n  members see email\n", 1)
				if text == string(iamText) {
					t.Fatal("policies/iam.iam has no name claim line to add members see email after")
				}
				script, err := BuildScript(exampleWith(t, text))
				NoError(t, err)
				db = NewDatabase(t, "people_emails", "schema.sql")
				CloseWhenDone(t, db)
				out, err := ApplyScript(t.Context(), db.Server, db.Name, script)
				NoError(t, errors.Join(err, errorsIf(err != nil, string(out))))
			}
			alice, bob, carol, otto := person("alice"), person("bob"), withClaim(person("carol"), "email_verified", false), person("otto")
			gid := newGroup(t, db, alice, "home")
			for _, p := range []Person{bob, carol} {
				mustCall(t, db, p, "sync_profile")
				AddMember(t, db, alice, gid, UserID(p), "member")
			}
			emailOf := func(p Person, verified bool) *string {
				if seeEmail && verified {
					return str(email(p))
				}
				return nil
			}
			want := []member{
				{UserID(alice), str(username(alice)), str("Alice Example"), emailOf(alice, true)},
				{UserID(bob), str(username(bob)), str("Bob Example"), emailOf(bob, true)},
				{UserID(carol), str(username(carol)), str("Carol Example"), emailOf(carol, false)},
			}
			for _, who := range []Person{alice, bob} {
				if diff := cmp.Diff(want, members(db, who, gid)); diff != "" {
					t.Errorf("%s's GET /group_members (-want +got):\n%s", who.Name, diff)
				}
			}
			if got := members(db, otto, gid); len(got) != 0 {
				t.Errorf("a stranger sees the group's members: %+v", got)
			}
		})
	}
}

func errorsIf(cond bool, msg string) error {
	if cond {
		return errors.New(msg)
	}
	return nil
}

// TestFindPeopleWithoutEnumeration: add_group_member takes a username or an
// email, found only among the people who share a group with the caller.
// Someone who exists but shares no group, an address nobody verified, and
// a name nobody has get the same answer, word for word (but the name
// echoed back); a stranger to the group, or a member who may not add, is
// refused before any name is looked up; nothing changes on a refusal.
func TestFindPeopleWithoutEnumeration(t *testing.T) {
	db := peopleDB(t)
	alice, bob, carol, dave, otto, mia := person("alice"), person("bob"), person("carol"), person("dave"), person("otto"), person("mia")
	unverified := withClaim(dave, "email_verified", false)
	home := newGroup(t, db, alice, "home")
	side := newGroup(t, db, alice, "side")
	for _, p := range []Person{bob, unverified, carol, mia} {
		mustCall(t, db, p, "sync_profile")
	}
	// bob and dave share side with alice; carol is in the directory but
	// shares nothing with her; mia is a plain member of home.
	AddMember(t, db, alice, side, UserID(bob), "member")
	AddMember(t, db, alice, side, UserID(dave), "member")
	AddMember(t, db, alice, home, UserID(mia), "member")

	t.Run("a co-member, by username (any case) and by verified email", func(t *testing.T) {
		mustCall(t, db, alice, "add_group_member", "group_id", home, "username", strings.ToUpper(username(bob)))
		mustCall(t, db, alice, "remove_group_member", "group_id", home, "user_id", UserID(bob))
		mustCall(t, db, alice, "add_group_member", "group_id", home, "email", strings.ToUpper(email(bob)), "role", "admin")
		if got := Scalar[string](t, db, `select role from iam.group_members where group_id = $1 and user_id = $2`, home, UserID(bob)); got != "admin" {
			t.Errorf("bob's role in home: %s", got)
		}
	})

	t.Run("strangers, unverified addresses and nobody answer alike", func(t *testing.T) {
		before := peopleState(t, db)
		tries := []struct{ what, param, value string }{
			{"carol's username (in the directory, no shared group)", "username", username(carol)},
			{"carol's verified email", "email", email(carol)},
			{"a username nobody has", "username", "nobody" + UserID(carol)[:8]},
			{"an email nobody has", "email", "nobody" + UserID(carol)[:8] + "@example.com"},
			{"dave's unverified email (he shares side)", "email", email(dave)},
		}
		var first refusal
		for i, try := range tries {
			_, err := rpcCall(t, db, alice, "add_group_member", "group_id", home, try.param, try.value)
			wantRefused(t, db, before, err, "PT404", "no one who shares a group with you has the "+try.param+" "+try.value)
			r := refusalOf(t, err)
			r.Message = strings.Replace(strings.Replace(r.Message, try.value, "<name>", 1), try.param, "<param>", 1)
			if i == 0 {
				first = r
			} else if r != first {
				t.Errorf("%s: answered %+v, %s answered %+v", try.what, r, tries[0].what, first)
			}
		}
	})

	t.Run("only the group's owners and admins look anyone up", func(t *testing.T) {
		before := peopleState(t, db)
		for _, name := range []string{username(carol), "nobody" + UserID(carol)[:8], username(bob)} {
			_, err := rpcCall(t, db, otto, "add_group_member", "group_id", home, "username", name)
			wantRefused(t, db, before, err, "PT404", fmt.Sprintf("you are not a member of group %d", home))
			_, err = rpcCall(t, db, mia, "add_group_member", "group_id", home, "username", name)
			wantRefused(t, db, before, err, "42501", fmt.Sprintf("only owners and admins of group %d can add members", home))
		}
	})

	t.Run("one person, named once", func(t *testing.T) {
		before := peopleState(t, db)
		_, err := rpcCall(t, db, alice, "add_group_member", "group_id", home, "username", username(carol), "email", email(carol))
		wantRefused(t, db, before, err, "22023", "name one person")
		_, err = rpcCall(t, db, alice, "add_group_member", "group_id", home)
		wantRefused(t, db, before, err, "22023", "user_id is required")
	})

	t.Run("a renamed username is its new holder's", func(t *testing.T) {
		// Keycloak renames sam; the name goes to sammy, whose token says so
		// later. The directory still holds sam's old profile: the name
		// is the one seen last.
		name := "sam" + UserID(carol)[:8]
		sam, sammy := withClaim(person("sam"), "preferred_username", name), withClaim(person("sammy"), "preferred_username", name)
		mustCall(t, db, sam, "sync_profile")
		mustCall(t, db, sammy, "sync_profile")
		AddMember(t, db, alice, side, UserID(sam), "member")
		AddMember(t, db, alice, side, UserID(sammy), "member")
		mustCall(t, db, alice, "add_group_member", "group_id", home, "username", name)
		if got := Scalar[bool](t, db, `select exists (select from iam.group_members where group_id = $1 and user_id = $2)`, home, UserID(sammy)); !got {
			t.Error("the name found its old holder, not its new one")
		}
	})
}

// ---------------------------------------------------------------------------
// Invitations.
// ---------------------------------------------------------------------------

var base64url = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// TestInvitations: the flow (create, list, accept, use up, revoke), the
// token (43 base64url characters carrying 244 random bits, stored only as
// its SHA-256), and every refusal, each leaving the tables as they were.
func TestInvitations(t *testing.T) {
	db := peopleDB(t)
	olivia, adam, mia, otto, newcomer, second := person("olivia"), person("adam"), person("mia"), person("otto"), person("newcomer"), person("second")
	team := newGroup(t, db, olivia, "team")
	AddMember(t, db, olivia, team, UserID(adam), "admin")
	AddMember(t, db, olivia, team, UserID(mia), "member")

	inv := invite(t, db, adam, team, "member", 1)
	t.Run("the token: 43 base64url characters, stored only as its SHA-256", func(t *testing.T) {
		if !base64url.MatchString(inv.Token) {
			t.Fatalf("token %q is not 43 base64url characters", inv.Token)
		}
		raw, err := base64.RawURLEncoding.DecodeString(inv.Token)
		NoError(t, err)
		if len(raw) != 32 || raw[6]>>4 != 4 || raw[22]>>4 != 4 {
			t.Errorf("token %q: %d bytes, want 32 from two version-4 uuids", inv.Token, len(raw))
		}
		sum := sha256.Sum256([]byte(inv.Token))
		if got := Scalar[[]byte](t, db, `select token_sha256 from iam.invitations where id = $1`, inv.ID); string(got) != string(sum[:]) {
			t.Errorf("stored %x, want the token's SHA-256 %x", got, sum)
		}
		if n := Scalar[int64](t, db, `select count(*) from iam.invitations i where strpos(i::text, $1) > 0`, inv.Token); n != 0 {
			t.Error("the token itself is stored")
		}
		if inv.Group != team || inv.Role != "member" || inv.MaxUses != 1 || inv.ID < 1 || inv.ID >= 1<<53 {
			t.Errorf("create_invitation answered %+v", inv)
		}
		// Two invitations never share a token.
		other := invite(t, db, adam, team, "member", 1)
		if other.Token == inv.Token {
			t.Error("two invitations got the same token")
		}
		mustCall(t, db, adam, "revoke_invitation", "invitation_id", other.ID)
	})

	t.Run("GET /group_invitations: owners and admins, never the token", func(t *testing.T) {
		list := func(who Person) string {
			var got string
			err := (Requester{T: t, DB: db, Who: who, Path: "/group_invitations"}).Do("GET", func(tx pgx.Tx) error {
				return tx.QueryRow(t.Context(), `select coalesce(string_agg(format('%s %s %s/%s', id, role, uses, max_uses), ', ' order by id), '') from app.group_invitations where group_id = $1`, team).Scan(&got)
			})
			NoError(t, err)
			return got
		}
		want := fmt.Sprintf("%d member 0/1", inv.ID)
		for _, who := range []Person{olivia, adam} {
			if got := list(who); got != want {
				t.Errorf("%s lists %q, want %q", who.Name, got, want)
			}
		}
		for _, who := range []Person{mia, otto} {
			if got := list(who); got != "" {
				t.Errorf("%s lists %q, want nothing", who.Name, got)
			}
		}
		cols := Scalar[string](t, db, `select string_agg(column_name::text, ' ' order by ordinal_position) from information_schema.columns where table_schema = 'app' and table_name = 'group_invitations'`)
		if strings.Contains(cols, "token") {
			t.Errorf("GET /group_invitations has columns %s", cols)
		}
	})

	t.Run("accept: the caller becomes a member; the token is used up", func(t *testing.T) {
		out := mustCall(t, db, newcomer, "accept_invitation", "token", inv.Token)
		if out != fmt.Sprintf(`{"role": "member", "group_id": %d}`, team) {
			t.Errorf("accept_invitation answered %s", out)
		}
		if got := Scalar[string](t, db, `select role || ' ' || added_by from iam.group_members where group_id = $1 and user_id = $2`, team, UserID(newcomer)); got != "member "+UserID(adam) {
			t.Errorf("the newcomer's membership: %s, want member added by adam", got)
		}
		if _, found := directoryRow(t, db, newcomer); !found {
			t.Error("accepting did not put the newcomer into the directory")
		}
		before := peopleState(t, db)
		_, err := rpcCall(t, db, second, "accept_invitation", "token", inv.Token)
		wantRefused(t, db, before, err, "PT404", "this invitation is not valid")
	})

	t.Run("unknown, expired, revoked and used up: one answer", func(t *testing.T) {
		expired, revoked := invite(t, db, adam, team, "member", 5), invite(t, db, adam, team, "member", 5)
		db.Exec(t, `update iam.invitations set expires_at = now() - interval '1 second' where id = $1`, expired.ID)
		mustCall(t, db, olivia, "revoke_invitation", "invitation_id", revoked.ID)
		unknown := "A" + inv.Token[1:]
		if unknown == inv.Token {
			unknown = "B" + inv.Token[1:]
		}
		before := peopleState(t, db)
		var first refusal
		for i, token := range []string{unknown, expired.Token, revoked.Token, inv.Token, "short", strings.Repeat("x", 5000)} {
			_, err := rpcCall(t, db, second, "accept_invitation", "token", token)
			wantRefused(t, db, before, err, "PT404", "this invitation is not valid")
			if r := refusalOf(t, err); i == 0 {
				first = r
			} else if r != first {
				t.Errorf("token %d answered %+v, the unknown one %+v", i, r, first)
			}
		}
		_, err := rpcCall(t, db, second, "accept_invitation", "token", nil)
		wantRefused(t, db, before, err, "22023", "token is required")
	})

	t.Run("an invitation never lowers a role; a higher one raises it", func(t *testing.T) {
		member := invite(t, db, olivia, team, "member", 5)
		before := peopleState(t, db)
		_, err := rpcCall(t, db, adam, "accept_invitation", "token", member.Token)
		wantRefused(t, db, before, err, "23505", fmt.Sprintf("you are already a member of group %d, as admin", team))
		_, err = rpcCall(t, db, mia, "accept_invitation", "token", member.Token)
		wantRefused(t, db, before, err, "23505", fmt.Sprintf("you are already a member of group %d, as member", team))
		admin := invite(t, db, olivia, team, "admin", 1)
		mustCall(t, db, mia, "accept_invitation", "token", admin.Token)
		if got := Scalar[string](t, db, `select role from iam.group_members where group_id = $1 and user_id = $2`, team, UserID(mia)); got != "admin" {
			t.Errorf("mia's role after an admin invitation: %s", got)
		}
		mustCall(t, db, olivia, "set_group_member_role", "group_id", team, "user_id", UserID(mia), "role", "member")
	})

	t.Run("who may invite, and how", func(t *testing.T) {
		before := peopleState(t, db)
		tries := []struct {
			who       Person
			args      []any
			code, msg string
		}{
			{mia, []any{"group_id", team}, "42501", fmt.Sprintf("only owners and admins of group %d can invite people", team)},
			{otto, []any{"group_id", team}, "PT404", fmt.Sprintf("you are not a member of group %d", team)},
			{adam, []any{"group_id", team, "role", "owner"}, "42501", fmt.Sprintf("only owners of group %d can invite owners", team)},
			{olivia, []any{"group_id", team, "role", "boss"}, "22023", "unknown group role boss"},
			{olivia, []any{"group_id", team, "expires_in", "0 seconds"}, "22023", "expires_in must be more than 0 and at most 30 days"},
			{olivia, []any{"group_id", team, "expires_in", "31 days"}, "22023", "expires_in must be more than 0 and at most 30 days"},
			{olivia, []any{"group_id", team, "max_uses", 0}, "22023", "max_uses must be from 1 to 1000"},
			{olivia, []any{"group_id", team, "max_uses", 1001}, "22023", "max_uses must be from 1 to 1000"},
			{olivia, []any{"group_id", nil}, "22023", "group_id is required"},
			{olivia, []any{"group_id", 1<<53 - 1}, "PT404", fmt.Sprintf("you are not a member of group %d", 1<<53-1)},
			{Anonymous, []any{"group_id", team}, "42501", "permission denied"},
			{NoSub, []any{"group_id", team}, "28000", "groups need a signed-in user"},
		}
		for _, try := range tries {
			_, err := rpcCall(t, db, try.who, "create_invitation", try.args...)
			wantRefused(t, db, before, err, try.code, try.msg)
		}
	})

	t.Run("revoke: owners and admins; other groups' invitations are not there", func(t *testing.T) {
		open := invite(t, db, olivia, team, "member", 3)
		clubInv := invite(t, db, otto, newGroup(t, db, otto, "club"), "member", 1)
		before := peopleState(t, db)
		_, err := rpcCall(t, db, mia, "revoke_invitation", "invitation_id", open.ID)
		wantRefused(t, db, before, err, "42501", fmt.Sprintf("only owners and admins of group %d can revoke invitations", team))
		var first refusal
		for i, id := range []int64{clubInv.ID, 1<<53 - 1} {
			_, err = rpcCall(t, db, adam, "revoke_invitation", "invitation_id", id)
			wantRefused(t, db, before, err, "PT404", fmt.Sprintf("invitation %d is not an invitation of your groups", id))
			r := refusalOf(t, err)
			r.Message = strings.Replace(r.Message, fmt.Sprint(id), "<id>", 1)
			if i == 0 {
				first = r
			} else if r != first {
				t.Errorf("an id nobody has answered %+v, another group's invitation %+v", r, first)
			}
		}
		mustCall(t, db, adam, "revoke_invitation", "invitation_id", open.ID)
		mustCall(t, db, adam, "revoke_invitation", "invitation_id", open.ID) // again: nothing to do
		if n := Scalar[int64](t, db, `select count(*) from iam.audit_log where action = 'invitation.revoke' and object = $1`, fmt.Sprint("invitation ", open.ID)); n != 1 {
			t.Errorf("%d revoke entries for one revocation", n)
		}
		_, err = rpcCall(t, db, second, "accept_invitation", "token", open.Token)
		wantErr(t, "accepting a revoked invitation", err, "PT404", "this invitation is not valid")
	})

	t.Run("a deleted group takes its invitations", func(t *testing.T) {
		gone := newGroup(t, db, olivia, "gone")
		goneInv := invite(t, db, olivia, gone, "member", 1)
		mustCall(t, db, olivia, "delete_group", "group_id", gone)
		before := peopleState(t, db)
		_, err := rpcCall(t, db, second, "accept_invitation", "token", goneInv.Token)
		wantRefused(t, db, before, err, "PT404", "this invitation is not valid")
		_, err = rpcCall(t, db, olivia, "create_invitation", "group_id", gone)
		wantRefused(t, db, before, err, "PT404", fmt.Sprintf("you are not a member of group %d", gone))
	})

	t.Run("max uses: that many people, then no more", func(t *testing.T) {
		three := invite(t, db, olivia, team, "member", 3)
		people := []Person{person("p"), person("p"), person("p"), person("p")}
		for _, p := range people[:3] {
			mustCall(t, db, p, "accept_invitation", "token", three.Token)
		}
		before := peopleState(t, db)
		_, err := rpcCall(t, db, people[3], "accept_invitation", "token", three.Token)
		wantRefused(t, db, before, err, "PT404", "this invitation is not valid")
		if got := Scalar[string](t, db, `select uses || '/' || max_uses from iam.invitations where id = $1`, three.ID); got != "3/3" {
			t.Errorf("uses: %s", got)
		}
	})
}

// TestInvitationClock: whether an invitation can be accepted is a
// function of a time the caller passes (accept_invitation passes now()):
// usable up to the moment before expires_at, not at it, not after, and
// never once revoked or used up, whatever the time.
func TestInvitationClock(t *testing.T) {
	db := peopleDB(t)
	olivia := person("olivia")
	team := newGroup(t, db, olivia, "team")
	inv := invite(t, db, olivia, team, "member", 2)
	at := func(offset string) bool {
		t.Helper()
		return Scalar[bool](t, db, `select iam.invitation_usable(i, i.expires_at + $2::interval) from iam.invitations i where id = $1`, inv.ID, offset)
	}
	for offset, want := range map[string]bool{"-7 days": true, "-1 microsecond": true, "0": false, "1 microsecond": false, "1 year": false} {
		if got := at(offset); got != want {
			t.Errorf("usable at expires_at %s: %v, want %v", offset, got, want)
		}
	}
	db.Exec(t, `update iam.invitations set uses = 2 where id = $1`, inv.ID)
	if at("-1 day") {
		t.Error("a used-up invitation is usable")
	}
	db.Exec(t, `update iam.invitations set uses = 0, revoked_at = now() where id = $1`, inv.ID)
	if at("-1 day") {
		t.Error("a revoked invitation is usable")
	}
	// The runtime roles cannot ask (it is the owner's helper).
	_, err := (Requester{T: t, DB: db, Who: olivia, Path: "/rpc/f"}).Exec("POST", `select iam.invitation_usable(null::iam.invitations, now())`)
	wantErr(t, "web_user asks invitation_usable", err, "42501", "permission denied")
}

// TestInvitationQuota: a group has at most max invitations per group open
// invitations (PT429); invitations that can no longer be used do not count
// and are cleared when the next one is made.
func TestInvitationQuota(t *testing.T) {
	iamText, err := os.ReadFile(File("iam.iam"))
	NoError(t, err)
	text := strings.Replace(string(iamText), "max invitations per group 100", "max invitations per group 2", 1)
	if text == string(iamText) {
		t.Fatal("policies/iam.iam does not say max invitations per group 100")
	}
	script, err := BuildScript(exampleWith(t, text))
	NoError(t, err)
	db := NewDatabase(t, "people_quota", "schema.sql")
	CloseWhenDone(t, db)
	if out, err := ApplyScript(t.Context(), db.Server, db.Name, script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	olivia := person("olivia")
	team := newGroup(t, db, olivia, "team")
	first, _ := invite(t, db, olivia, team, "member", 1), invite(t, db, olivia, team, "member", 1)
	before := peopleState(t, db)
	_, err = rpcCall(t, db, olivia, "create_invitation", "group_id", team)
	wantRefused(t, db, before, err, "PT429", fmt.Sprintf("group %d has 2 open invitations, the most it may have", team))
	mustCall(t, db, person("x"), "accept_invitation", "token", first.Token) // used up: no longer open
	invite(t, db, olivia, team, "member", 1)
	if n := Scalar[int64](t, db, `select count(*) from iam.invitations where group_id = $1`, team); n != 2 {
		t.Errorf("%d invitations kept, want the 2 open ones (the used one cleared)", n)
	}
}

// TestConcurrentAcceptsOfASingleUseInvitation: two people accept one
// single-use invitation at once. The first to lock the group wins; the
// second waits for it (confirmed in pg_stat_activity, no sleep) and then
// finds the invitation used up: exactly one new member, one use, one
// entry. Then many at once, released together: still exactly one.
func TestConcurrentAcceptsOfASingleUseInvitation(t *testing.T) {
	db := peopleDB(t)
	olivia, first, second := person("olivia"), person("first"), person("second")
	team := newGroup(t, db, olivia, "team")
	inv := invite(t, db, olivia, team, "member", 1)

	held := hold(t, db, first, "POST", "/rpc/accept_invitation")
	NoError(t, held.step(func(tx pgx.Tx) error { return rpcStep("accept_invitation", "token", inv.Token)(t.Context(), tx) }))
	racer := start(t, db, second, "POST", "/rpc/accept_invitation", rpcStep("accept_invitation", "token", inv.Token))
	if blockers := waitForLock(t, db, racer.pid); len(blockers) != 1 || blockers[0] != held.pid {
		t.Fatalf("the second accept waits for %v, want the first (%d)", blockers, held.pid)
	}
	NoError(t, held.commit())
	wantErr(t, "the second accept", <-racer.done, "PT404", "this invitation is not valid")
	if got := Scalar[string](t, db, `select string_agg(user_id, ' ' order by user_id) from iam.group_members where group_id = $1 and role = 'member'`, team); got != UserID(first) {
		t.Errorf("members after two accepts: %s, want the first only", got)
	}
	if got := Scalar[string](t, db, `select uses::text from iam.invitations where id = $1`, inv.ID); got != "1" {
		t.Errorf("uses after two accepts: %s", got)
	}
	if got := Scalar[int64](t, db, `select count(*) from iam.audit_log where action = 'invitation.accept' and group_id = $1`, team); got != 1 {
		t.Errorf("%d accept entries, want 1", got)
	}

	// Many at once.
	stress := invite(t, db, olivia, team, "member", 1)
	const n = 8
	release := make(chan struct{})
	results := make([]async, n)
	for i := range results {
		results[i] = start(t, db, person("racer"), "POST", "/rpc/accept_invitation", func(ctx context.Context, tx pgx.Tx) error {
			<-release
			_, err := tx.Exec(ctx, "select app.accept_invitation(token => $1)", stress.Token)
			return err
		})
	}
	close(release)
	won := 0
	for _, r := range results {
		err := <-r.done
		if err == nil {
			won++
			continue
		}
		wantErr(t, "a losing accept", err, "PT404", "this invitation is not valid")
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent accepts of a single-use invitation succeeded, want 1", won, n)
	}
	if got := Scalar[string](t, db, `select uses::text from iam.invitations where id = $1`, stress.ID); got != "1" {
		t.Errorf("uses after %d concurrent accepts: %s", n, got)
	}
}

// ---------------------------------------------------------------------------
// Ownership transfer.
// ---------------------------------------------------------------------------

// TestTransferGroup: an owner hands the group to another member, who
// becomes an owner; the caller steps down to admin (the group keeps an
// owner and its old owner keeps managing it). Nobody else may; the
// recipient must be a member.
func TestTransferGroup(t *testing.T) {
	db := peopleDB(t)
	olivia, adam, mia, otto := person("olivia"), person("adam"), person("mia"), person("otto")
	team := newGroup(t, db, olivia, "team")
	AddMember(t, db, olivia, team, UserID(adam), "admin")
	AddMember(t, db, olivia, team, UserID(mia), "member")
	mustCall(t, db, otto, "sync_profile")
	mustCall(t, db, mia, "sync_profile")
	roles := func() string {
		return Scalar[string](t, db, `select string_agg(role, ' ' order by user_id) from iam.group_members where group_id = $1`, team)
	}

	before := peopleState(t, db)
	for _, try := range []struct {
		who       Person
		args      []any
		code, msg string
	}{
		{adam, []any{"user_id", UserID(mia)}, "42501", fmt.Sprintf("only owners of group %d can hand the group over", team)},
		{otto, []any{"user_id", UserID(otto)}, "PT404", fmt.Sprintf("you are not a member of group %d", team)},
		{olivia, []any{"user_id", UserID(otto)}, "PT404", fmt.Sprintf("%s is not a member of group %d", UserID(otto), team)},
		{olivia, []any{"username", username(otto)}, "PT404", "no one who shares a group with you has the username"},
		{olivia, []any{"user_id", UserID(olivia)}, "22023", fmt.Sprintf("you already own group %d", team)},
		{olivia, []any{}, "22023", "user_id is required"},
	} {
		_, err := rpcCall(t, db, try.who, "transfer_group", append([]any{"group_id", team}, try.args...)...)
		wantRefused(t, db, before, err, try.code, try.msg)
	}

	mustCall(t, db, olivia, "transfer_group", "group_id", team, "username", username(mia))
	want := map[string]string{UserID(olivia): "admin", UserID(adam): "admin", UserID(mia): "owner"}
	got := map[string]string{}
	rows, err := db.SU.Query(t.Context(), `select user_id, role from iam.group_members where group_id = $1`, team)
	NoError(t, err)
	for rows.Next() {
		var u, r string
		NoError(t, rows.Scan(&u, &r))
		got[u] = r
	}
	if !cmp.Equal(got, want) {
		t.Errorf("roles after olivia handed team to mia: %v, want %v (%s)", got, want, roles())
	}
	if by := Scalar[string](t, db, `select created_by from iam.groups where id = $1`, team); by != UserID(olivia) {
		t.Errorf("created_by after the transfer: %s, want olivia (who created it)", by)
	}
	// The new owner can now do what owners do; the old one cannot.
	_, err = rpcCall(t, db, olivia, "delete_group", "group_id", team)
	wantErr(t, "olivia deletes team after handing it over", err, "42501", "only owners of group")
	mustCall(t, db, mia, "set_group_member_role", "group_id", team, "user_id", UserID(adam), "role", "owner")
}

// TestTransferRow: POST /rpc/todos_transfer, from both sides. The owner
// hands a todo to someone (by user id in the directory, by username or
// email among people who share a group with them): the recipient owns it,
// the giver no longer sees it unless a group shows it. Nobody hands over
// a row that is not theirs, to someone not in the directory, to a
// stranger by name, or into a group the recipient may not own rows in;
// and the owner column stays fixed to every other path.
func TestTransferRow(t *testing.T) {
	db := peopleDB(t)
	alice, bob, carol, dave, otto := person("alice"), person("bob"), person("carol"), person("dave"), person("otto")
	side := newGroup(t, db, alice, "side")
	for _, p := range []Person{bob, carol, otto} {
		mustCall(t, db, p, "sync_profile")
	}
	AddMember(t, db, alice, side, UserID(bob), "member")
	insert := func(who Person, title string, gid any) int64 {
		t.Helper()
		var id int64
		err := (Requester{T: t, DB: db, Who: who, Path: "/todos"}).Do("POST", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), `insert into app.todos (title, group_id) values ($1, $2) returning id`, title, gid).Scan(&id)
		})
		NoError(t, err)
		return id
	}
	sees := func(who Person, id int64) bool {
		t.Helper()
		n, err := (Requester{T: t, DB: db, Who: who, Path: "/todos"}).Exec("GET", `select from app.todos where id = $1`, id)
		NoError(t, err)
		return n == 1
	}
	owner := func(id int64) string {
		return Scalar[string](t, db, `select owner_id::text from app.todos where id = $1`, id)
	}
	mine, inSide, bobs := insert(alice, "alice's", nil), insert(alice, "alice's, in side", side), insert(bob, "bob's", nil)
	alsoInSide := insert(alice, "alice's too, in side", side)

	t.Run("refused, nothing changed", func(t *testing.T) {
		before := peopleState(t, db)
		for _, try := range []struct {
			what      string
			who       Person
			args      []any
			code, msg string
		}{
			{"someone else's row", alice, []any{"id", bobs, "user_id", UserID(carol)}, "PT404", fmt.Sprintf("you own no row of app.todos with id %d", bobs)},
			{"a row that does not exist", alice, []any{"id", 1 << 40, "user_id", UserID(carol)}, "PT404", fmt.Sprintf("you own no row of app.todos with id %d", int64(1<<40))},
			{"to a user id the directory does not know", alice, []any{"id", mine, "user_id", UserID(dave)}, "PT404", UserID(dave) + " is not in the user directory"},
			{"to a stranger by username", alice, []any{"id", mine, "username", username(carol)}, "PT404", "no one who shares a group with you has the username"},
			{"to nobody by email", alice, []any{"id", mine, "email", "nobody@example.com"}, "PT404", "no one who shares a group with you has the email"},
			{"to oneself", alice, []any{"id", mine, "user_id", UserID(alice)}, "22023", "you cannot hand a row to yourself"},
			{"into a group the recipient is not in", alice, []any{"id", inSide, "user_id", UserID(carol)}, "42501", fmt.Sprintf("cannot own a row of group %d", side)},
			{"anonymous", Anonymous, []any{"id", mine, "user_id", UserID(carol)}, "42501", "permission denied"},
			{"without a user id", NoSub, []any{"id", mine, "user_id", UserID(carol)}, "28000", "groups need a signed-in user"},
		} {
			_, err := rpcCall(t, db, try.who, "todos_transfer", try.args...)
			wantRefused(t, db, before, err, try.code, try.msg)
		}
		// The owner column stays fixed to a plain update, also in a
		// transaction (a developer's RPC) that holds a grant: a grant
		// hands over one row (both rows here are in side, which bob may
		// own rows of and alice still sees), and a plain update that
		// takes a row from its owner's sight fails the select policy.
		_, err := (Requester{T: t, DB: db, Who: alice, Path: "/todos"}).Exec("PATCH", `update app.todos set owner_id = $1 where id = $2`, UserID(carol), mine)
		wantRefused(t, db, before, err, "42501", "cannot be changed")
		for _, ids := range [][]int64{{inSide, alsoInSide}, {mine}} {
			err = (Requester{T: t, DB: db, Who: alice, Path: "/rpc/f"}).Do("POST", func(tx pgx.Tx) error {
				if _, err := tx.Exec(t.Context(), `select iam.grant_transfer('app.todos', $1, $2, null, null)`, fmt.Sprint(ids[0]), UserID(bob)); err != nil {
					return err
				}
				_, err := tx.Exec(t.Context(), `update app.todos set owner_id = $1 where id = any($2)`, UserID(bob), ids)
				return err
			})
			msg := "cannot be changed"
			if len(ids) == 1 {
				msg = "new row violates row-level security policy"
			}
			wantRefused(t, db, before, err, "42501", msg)
		}
		// The row guard's question, asked outside a trigger, says no: it
		// neither uses a grant up nor records a transfer.
		err = (Requester{T: t, DB: db, Who: alice, Path: "/rpc/f"}).Do("POST", func(tx pgx.Tx) error {
			if _, err := tx.Exec(t.Context(), `select iam.grant_transfer('app.todos', $1, $2, null, null)`, fmt.Sprint(inSide), UserID(bob)); err != nil {
				return err
			}
			var granted bool
			if err := tx.QueryRow(t.Context(), `select iam.take_transfer('app.todos'::regclass, jsonb_build_object('id', $1::bigint), $2, $3, $4, 'member')`,
				inSide, UserID(alice), UserID(bob), side).Scan(&granted); err != nil {
				return err
			}
			if granted {
				return errors.New("take_transfer granted a transfer outside the row guard")
			}
			return errRolledBack
		})
		if !errors.Is(err, errRolledBack) {
			t.Errorf("take_transfer outside a trigger: %v", err)
		}
		if after := peopleState(t, db); after != before {
			t.Errorf("take_transfer outside a trigger changed the tables:\nbefore %s\nafter  %s", before, after)
		}
	})

	t.Run("to a user id in the directory", func(t *testing.T) {
		mustCall(t, db, alice, "todos_transfer", "id", mine, "user_id", UserID(carol))
		if owner(mine) != UserID(carol) || sees(alice, mine) || !sees(carol, mine) {
			t.Errorf("after the transfer: owner %s, alice sees it %v, carol sees it %v", owner(mine), sees(alice, mine), sees(carol, mine))
		}
		// Carol owns it now: full CRUD, and she hands it on.
		n, err := (Requester{T: t, DB: db, Who: carol, Path: "/todos"}).Exec("PATCH", `update app.todos set done = true where id = $1`, mine)
		NoError(t, err)
		if n != 1 {
			t.Error("carol cannot edit the todo she was given")
		}
		if n := Scalar[int64](t, db, `select count(*) from iam.transfer_grants`); n != 0 {
			t.Errorf("%d transfer grants left after the transaction", n)
		}
	})

	t.Run("in a group, to a member by username: the group stays", func(t *testing.T) {
		mustCall(t, db, alice, "todos_transfer", "id", inSide, "username", username(bob))
		got := Scalar[string](t, db, `select owner_id::text || ' ' || group_id from app.todos where id = $1`, inSide)
		if got != fmt.Sprintf("%s %d", UserID(bob), side) {
			t.Errorf("after the transfer: %s, want bob's, still in side", got)
		}
		if !sees(alice, inSide) || !sees(bob, inSide) {
			t.Error("side's members no longer see the todo")
		}
	})

	t.Run("a former member cannot hand over a row of the group", func(t *testing.T) {
		mustCall(t, db, alice, "add_group_member", "group_id", side, "user_id", UserID(otto))
		theirs := insert(otto, "otto's, in side", side)
		mustCall(t, db, otto, "leave_group", "group_id", side)
		before := peopleState(t, db)
		_, err := rpcCall(t, db, otto, "todos_transfer", "id", theirs, "user_id", UserID(alice))
		wantRefused(t, db, before, err, "42501", fmt.Sprintf("it is in group %d, which you are not in", side))
	})
}

// ---------------------------------------------------------------------------
// The audit trail.
// ---------------------------------------------------------------------------

// entry is one row of iam.audit_log, by name.
type entry struct {
	Actor, Action, Group, Subject, Object, Old, New string
}

// TestAuditTrail: a scripted session of every kind of change of who may
// do what, in a database of its own, and the exact entries it leaves, in
// order: each with its actor, group, subject, object, old and new values,
// in the transaction of its change. A refused change leaves neither change
// nor entry.
func TestAuditTrail(t *testing.T) {
	script, err := BuildScript(Dir)
	NoError(t, err)
	db := NewDatabase(t, "people_audit", "schema.sql")
	CloseWhenDone(t, db)
	if out, err := ApplyScript(t.Context(), db.Server, db.Name, script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	olivia, adam, mia, newcomer := person("olivia"), person("adam"), person("mia"), person("newcomer")
	names := map[string]string{UserID(olivia): "olivia", UserID(adam): "adam", UserID(mia): "mia", UserID(newcomer): "newcomer"}

	team := newGroup(t, db, olivia, "team")
	AddMember(t, db, olivia, team, UserID(adam), "member")
	mustCall(t, db, olivia, "set_group_member_role", "group_id", team, "user_id", UserID(adam), "role", "admin")
	mustCall(t, db, adam, "sync_profile")
	mustCall(t, db, mia, "sync_profile")
	AddMember(t, db, adam, team, UserID(mia), "")
	inv := invite(t, db, adam, team, "member", 2)
	mustCall(t, db, newcomer, "accept_invitation", "token", inv.Token)
	mustCall(t, db, olivia, "revoke_invitation", "invitation_id", inv.ID)
	var todo int64
	NoError(t, (Requester{T: t, DB: db, Who: mia, Path: "/todos"}).Do("POST", func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `insert into app.todos (title, group_id) values ('mia''s', $1) returning id`, team).Scan(&todo)
	}))
	mustCall(t, db, mia, "todos_transfer", "id", todo, "username", username(newcomer))
	// Refused: adam (admin) may not add an owner. Nothing happens, nothing is written.
	before := peopleState(t, db)
	_, err = rpcCall(t, db, adam, "add_group_member", "group_id", team, "username", username(newcomer), "role", "owner")
	wantRefused(t, db, before, err, "42501", "only owners of group")
	mustCall(t, db, olivia, "transfer_group", "group_id", team, "user_id", UserID(adam))
	mustCall(t, db, adam, "remove_group_member", "group_id", team, "user_id", UserID(mia))
	mustCall(t, db, newcomer, "leave_group", "group_id", team)
	db.Exec(t, `set role api_owner`)
	db.Exec(t, `select iam.block_subject($1, 'spam')`, UserID(mia))
	db.Exec(t, `select iam.unblock_subject($1)`, UserID(mia))
	db.Exec(t, `update iam.groups set token_name = '/team' where id = $1`, team)
	db.Exec(t, `reset role`)
	mustCall(t, db, adam, "delete_group", "group_id", team)

	rows, err := db.SU.Query(t.Context(), `select coalesce(actor, '-'), action, coalesce(group_id::text, '-'), coalesce(subject, '-'), coalesce(object, '-'),
	        coalesce(old_value::text, '-'), coalesce(new_value::text, '-')
	    from iam.audit_log order by id`)
	NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[entry])
	NoError(t, err)
	g := fmt.Sprint(team)
	invObj := fmt.Sprint("invitation ", inv.ID)
	name := func(s string) string {
		for id, n := range names {
			s = strings.ReplaceAll(s, id, n)
		}
		return strings.ReplaceAll(s, g, "team")
	}
	for i := range got {
		e := &got[i]
		e.Actor, e.Group, e.Subject, e.Object, e.Old, e.New = name(e.Actor), name(e.Group), name(e.Subject), name(e.Object), name(e.Old), name(e.New)
		if e.Action == "invitation.create" {
			e.New = regexp.MustCompile(`"expires_at": "[^"]*"`).ReplaceAllString(e.New, `"expires_at": "…"`)
		}
		if e.Action == "invitation.revoke" {
			e.Old = regexp.MustCompile(`"expires_at": "[^"]*"`).ReplaceAllString(e.Old, `"expires_at": "…"`)
		}
	}
	invObj = name(invObj)
	want := []entry{
		{"olivia", "group.create", "team", "olivia", "-", "-", `{"name": "team", "role": "owner"}`},
		{"olivia", "member.add", "team", "adam", "-", "-", `{"role": "member"}`},
		{"olivia", "member.role", "team", "adam", "-", `{"role": "member"}`, `{"role": "admin"}`},
		{"adam", "member.add", "team", "mia", "-", "-", `{"role": "member"}`},
		{"adam", "invitation.create", "team", "-", invObj, "-", `{"role": "member", "max_uses": 2, "expires_at": "…"}`},
		{"newcomer", "invitation.accept", "team", "newcomer", invObj, "-", `{"role": "member", "invited_by": "adam"}`},
		{"olivia", "invitation.revoke", "team", "-", invObj, `{"role": "member", "uses": 1, "max_uses": 2, "expires_at": "…"}`, "-"},
		{"mia", "row.transfer", "team", "newcomer", fmt.Sprint("app.todos ", todo), `{"owner": "mia"}`, `{"owner": "newcomer"}`},
		{"olivia", "group.transfer", "team", "adam", "-", `{"role": "admin", "owner_role": "owner"}`, `{"role": "owner", "owner_role": "admin"}`},
		{"adam", "member.remove", "team", "mia", "-", `{"role": "member"}`, "-"},
		{"newcomer", "member.leave", "team", "newcomer", "-", `{"role": "member"}`, "-"},
		{"-", "subject.block", "-", "mia", "-", "-", `{"reason": "spam", "tokens_issued_before": null}`},
		{"-", "subject.unblock", "-", "mia", "-", "-", "-"},
		{"-", "group.link", "team", "-", "-", `{"token_name": null}`, `{"token_name": "/team"}`},
		{"adam", "group.delete", "team", "-", "-", `{"name": "team", "members": [{"role": "admin", "user_id": "olivia"}, {"role": "owner", "user_id": "adam"}]}`, "-"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("iam.audit_log (-want +got):\n%s", diff)
	}
	// Each entry's transaction id is its change's: one transaction, one
	// change, in order; the login role is PostgREST's (or the DBA's).
	if n := Scalar[int64](t, db, `select count(distinct txid) from iam.audit_log`); n != int64(len(want)) {
		t.Errorf("%d transaction ids for %d changes", n, len(want))
	}
	if got := Scalar[string](t, db, `select string_agg(distinct db_role, ' ' order by db_role) from iam.audit_log`); got != "authenticator postgres" {
		t.Errorf("login roles: %s", got)
	}
}

// TestAuditLogIsAppendOnly: no role, the owner role and superusers
// included, updates, deletes or truncates an entry through SQL; only
// iam.purge_audit_log (owner role only) removes entries older than N days,
// and records that it did. The runtime roles neither read the log nor
// purge it.
func TestAuditLogIsAppendOnly(t *testing.T) {
	script, err := BuildScript(Dir)
	NoError(t, err)
	db := NewDatabase(t, "people_append_only", "schema.sql")
	CloseWhenDone(t, db)
	if out, err := ApplyScript(t.Context(), db.Server, db.Name, script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	olivia := person("olivia")
	newGroup(t, db, olivia, "team")
	db.Exec(t, `insert into iam.audit_log (at, action) values (now() - interval '10 days', 'test.old'), (now() - interval '3 days', 'test.recent')`)
	count := func() int64 { return Scalar[int64](t, db, `select count(*) from iam.audit_log`) }
	n := count()
	for _, role := range []string{"postgres", "api_owner"} {
		for _, sql := range []string{
			`update iam.audit_log set action = 'forged'`,
			`delete from iam.audit_log`,
			`delete from iam.audit_log where action = 'test.old'`,
			`truncate iam.audit_log`,
		} {
			_, err := db.SU.Exec(t.Context(), fmt.Sprintf("begin; set local role %s; %s; commit", role, sql))
			_, _ = db.SU.Exec(t.Context(), "rollback")
			wantErr(t, role+": "+sql, err, "42501", "iam.audit_log is append-only")
		}
		_, err := db.SU.Exec(t.Context(), fmt.Sprintf("begin; set local role %s; select iam.purge_audit_log(0); commit", role))
		_, _ = db.SU.Exec(t.Context(), "rollback")
		wantErr(t, role+": purge 0 days", err, "22023", "days must be at least 1")
	}
	if count() != n {
		t.Fatalf("entries changed: %d, before %d", count(), n)
	}
	for _, who := range []Person{olivia, Anonymous} {
		for _, sql := range []string{`select count(*) from iam.audit_log`, `select iam.purge_audit_log(1)`} {
			_, err := (Requester{T: t, DB: db, Who: who, Path: "/rpc/f"}).Exec("POST", sql)
			wantErr(t, who.Name+": "+sql, err, "42501", "permission denied")
		}
	}
	db.Exec(t, `set role api_owner`)
	removed := Scalar[int64](t, db, `select iam.purge_audit_log(5)`)
	db.Exec(t, `reset role`)
	if removed != 1 {
		t.Errorf("purge_audit_log(5) removed %d entries, want the one 10 days old", removed)
	}
	if got := Scalar[string](t, db, `select string_agg(action, ' ' order by id) from iam.audit_log where action like 'test.%' or action = 'audit.purge'`); got != "test.recent audit.purge" {
		t.Errorf("after the purge: %s", got)
	}
}

// TestGroupAudit: GET /group_audit shows a group's entries to its owners
// and admins, and nothing to its members, strangers and anonymous callers;
// it shows no entry id or transaction id (counters of the whole database).
func TestGroupAudit(t *testing.T) {
	db := peopleDB(t)
	olivia, adam, mia, otto := person("olivia"), person("adam"), person("mia"), person("otto")
	team := newGroup(t, db, olivia, "team")
	AddMember(t, db, olivia, team, UserID(adam), "admin")
	AddMember(t, db, olivia, team, UserID(mia), "member")
	newGroup(t, db, otto, "club")
	read := func(who Person) (string, error) {
		var got string
		err := (Requester{T: t, DB: db, Who: who, Path: "/group_audit"}).Do("GET", func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), `select coalesce(string_agg(action || ' ' || coalesce(subject, '-'), ', ' order by at, action), '') from app.group_audit where group_id = $1`, team).Scan(&got)
		})
		return got, err
	}
	want := fmt.Sprintf("group.create %s, member.add %s, member.add %s", UserID(olivia), UserID(adam), UserID(mia))
	for _, who := range []Person{olivia, adam} {
		got, err := read(who)
		NoError(t, err)
		if got != want {
			t.Errorf("%s reads %q, want %q", who.Name, got, want)
		}
	}
	for _, who := range []Person{mia, otto} {
		if got, err := read(who); err != nil || got != "" {
			t.Errorf("%s reads %q (%v), want nothing", who.Name, got, err)
		}
	}
	_, err := read(Anonymous)
	wantErr(t, "anonymous reads /group_audit", err, "42501", "permission denied")
	cols := Scalar[string](t, db, `select string_agg(column_name::text, ' ' order by ordinal_position) from information_schema.columns where table_schema = 'app' and table_name = 'group_audit'`)
	if cols != "at group_id action actor subject object old_value new_value" {
		t.Errorf("GET /group_audit columns: %s", cols)
	}
}

// TestInvitationsFollowRoleChanges: the group roles are the .iam files'
// (custom group roles). A role move (role member becomes viewer) moves the
// open invitations to the role with its memberships; a role the files no
// longer declare that only invitations hold goes, and its invitations
// with it (they would give a role nobody has): the build is not stopped
// by them, as it is by a role members hold.
func TestInvitationsFollowRoleChanges(t *testing.T) {
	// A directory of its own: the example's rules name member.
	build := func(groupsExtra string) string {
		t.Helper()
		dir := t.TempDir()
		NoError(t, os.WriteFile(dir+"/iam.iam", []byte("groups {\n  api schema app\n"+groupsExtra+"}\n"), 0o644))
		NoError(t, os.WriteFile(dir+"/todos.iam", []byte("resource app.todos {\n  owner column owner_id\n  group column group_id\n"+
			"  owner can read, create\n  group owner can read\n}\n"), 0o644))
		script, err := BuildScript(dir)
		NoError(t, err)
		return script
	}
	apply := func(db *Database, script string) {
		t.Helper()
		if out, err := ApplyScript(t.Context(), db.Server, db.Name, script); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	db := NewDatabase(t, "people_roles", "schema.sql")
	CloseWhenDone(t, db)
	apply(db, build(""))
	olivia := person("olivia")
	team := newGroup(t, db, olivia, "team")
	toMember, toAdmin := invite(t, db, olivia, team, "member", 1), invite(t, db, olivia, team, "admin", 1)

	// member becomes viewer: the member invitation now gives viewer.
	apply(db, build("  roles viewer < admin < owner\n  role member becomes viewer\n"))
	roleOf := func(id int64) string {
		return Scalar[string](t, db, `select coalesce((select role from iam.invitations where id = $1), 'gone')`, id)
	}
	if a, b := roleOf(toMember.ID), roleOf(toAdmin.ID); a != "viewer" || b != "admin" {
		t.Errorf("invitations after role member becomes viewer: %s, %s; want viewer, admin", a, b)
	}
	out := mustCall(t, db, person("newcomer"), "accept_invitation", "token", toMember.Token)
	if !strings.Contains(out, `"role": "viewer"`) {
		t.Errorf("accepting the moved invitation: %s, want viewer", out)
	}

	// admin is no longer declared; only the open invitation holds it.
	apply(db, build("  roles viewer < owner\n"))
	if a, b := roleOf(toMember.ID), roleOf(toAdmin.ID); a != "viewer" || b != "gone" {
		t.Errorf("invitations after admin went: %s, %s; want viewer (used), gone", a, b)
	}
}
