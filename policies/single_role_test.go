package policies_test

// Single-role mode (`single role web_user` in the roles block): every
// request runs as web_user, signed in or not, as when PostgREST's
// db-anon-role is web_user too or a serverless pooler allows one role; a
// request whose claims carry no sub is anonymous. The owner and the group
// matrices run in this mode and in the usual one, directly and through
// pgbouncer in transaction pooling mode.

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/internal/pgtest"

	. "github.com/iamc/iamc/internal/exampletest"
)

// singleAnonymous is an anonymous request in single-role mode: PostgREST
// with db-anon-role = web_user sends only the role claim.
var singleAnonymous = Person{Name: "anonymous", Role: "web_user", Claims: map[string]any{"role": "web_user"}}

// singleRoleIAM is the example's iam.iam with the roles block in
// single-role mode.
func singleRoleIAM(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir, "iam.iam"))
	NoError(t, err)
	const slots = "  authenticated web_user\n  anonymous web_anon\n"
	if !strings.Contains(string(b), slots) {
		t.Fatalf("iam.iam has no roles block with %q", slots)
	}
	return strings.Replace(string(b), slots, "  single role web_user\n", 1)
}

// singleRoleColumns is a file of the example without its column reads:
// they are grants to a database role, which in single-role mode serves
// requests with and without a token alike, so the checker refuses them
// there (SPEC §5, column rules); the stores' anonymous rule goes.
func singleRoleColumns(text string) string {
	return strings.Replace(text, "  anonymous can read (id, name)\n", "", 1)
}

// exampleWith is a copy of the example's .iam files in a temporary
// directory, with iamText as its iam.iam (the settings), to build.
func exampleWith(t *testing.T, iamText string) string {
	t.Helper()
	dir := t.TempDir()
	paths, err := filepath.Glob(filepath.Join(Dir, "*.iam"))
	NoError(t, err)
	for _, p := range paths {
		name, text := filepath.Base(p), iamText
		if name != "iam.iam" {
			b, err := os.ReadFile(p)
			NoError(t, err)
			text = singleRoleColumns(string(b))
		}
		NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	return dir
}

var singleRole struct {
	once sync.Once
	db   *Database
	err  error
}

// singleRoleDB is schema.sql with the example built in single-role mode.
func singleRoleDB(t *testing.T) *Database {
	t.Helper()
	s := Server(t)
	dir := exampleWith(t, singleRoleIAM(t))
	singleRole.once.Do(func() {
		var script string
		if singleRole.db, singleRole.err = CreateDatabase(s, "singlerole", "schema.sql"); singleRole.err != nil {
			return
		}
		if script, singleRole.err = BuildScript(dir); singleRole.err != nil {
			return
		}
		_, singleRole.err = ApplyScript(t.Context(), s, "singlerole", script)
	})
	if singleRole.err != nil {
		t.Fatalf("setting up the single-role database: %v", singleRole.err)
	}
	return singleRole.db
}

// singleRoleAnonymous: the anonymous column of the group matrix in
// single-role mode. The request runs as web_user without a user id: it
// sees no row and reaches none, and the row guard refuses to create one
// (28000), where the usual mode refuses every request (42501, no privilege).
func singleRoleAnonymous() map[string]map[string]Outcome {
	noUserID := Fails("28000", "without a user id")
	column := map[string]Outcome{
		"list": Sees(), "read one": Sees(),
		"insert": noUserID, "insert into a group": noUserID,
		"update": NoRowSeen, "move to another group": NoRowSeen, "take out of its group": NoRowSeen,
		"change owner": NoRowSeen, "delete": NoRowSeen,
	}
	return map[string]map[string]Outcome{"app.todos": column, "app.chats": column}
}

// pooledClient connects as authenticator (PostgREST's login role) through
// b, in a query mode pgbouncer's transaction pooling keeps working with
// (no named prepared statements: pgbouncer 1.18).
func pooledClient(t *testing.T, b *pgtest.PgBouncer, db, mode string) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(b.URL(db, "authenticator"))
	NoError(t, err)
	u.User = url.UserPassword("authenticator", "mypass")
	q := u.Query()
	q.Set("default_query_exec_mode", mode)
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(t.Context(), u.String())
	if err != nil {
		t.Fatalf("connecting through pgbouncer: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// throughPgBouncer is db with its API connection through pgbouncer in
// transaction pooling mode (a pool of two server connections), without
// named prepared statements as pgbouncer 1.18 needs.
func throughPgBouncer(t *testing.T, db *Database) *Database {
	t.Helper()
	b := pgtest.NewPgBouncer(t, db.Server, pgtest.PgBouncerOptions{PoolSize: 2})
	pooled := *db
	pooled.API = pooledClient(t, b, db.Name, "exec")
	return &pooled
}

// TestSingleRoleMatrices: the owner and group matrices in single-role
// mode, directly and through pgbouncer; and in the usual mode through
// pgbouncer (TestOwnerMatrix and TestGroupMatrix run it directly).
func TestSingleRoleMatrices(t *testing.T) {
	t.Run("single role, directly", func(t *testing.T) {
		db := singleRoleDB(t)
		t.Run("owner matrix", func(t *testing.T) { runOwnerMatrix(t, db, singleAnonymous, true) })
		t.Run("group matrix", func(t *testing.T) { runGroupMatrix(t, db, singleAnonymous, singleRoleAnonymous()) })
	})
	t.Run("single role, through pgbouncer", func(t *testing.T) {
		db := throughPgBouncer(t, singleRoleDB(t))
		t.Run("owner matrix", func(t *testing.T) { runOwnerMatrix(t, db, singleAnonymous, true) })
		t.Run("group matrix", func(t *testing.T) { runGroupMatrix(t, db, singleAnonymous, singleRoleAnonymous()) })
	})
	t.Run("two roles, through pgbouncer", func(t *testing.T) {
		db := throughPgBouncer(t, GroupsDB(t))
		t.Run("owner matrix", func(t *testing.T) { runOwnerMatrix(t, db, Anonymous, false) })
		t.Run("group matrix", func(t *testing.T) { runGroupMatrix(t, db, Anonymous, nil) })
	})
}

// TestSingleRoleIdentity: in single-role mode the claims alone say who is
// signed in. Claims without sub are anonymous even when they list token
// groups or a realm role (in the usual mode PostgREST runs such a verified
// token as the authenticated role, and the token group counts); a request
// with sub is the user, whatever role claim it carries.
func TestSingleRoleIdentity(t *testing.T) {
	single, usual := singleRoleDB(t), GroupsDB(t)
	for _, c := range []struct {
		name      string
		db        *Database
		want      []int64
		moderates bool // the realm role counts without a user id
	}{{"single role", single, nil, false}, {"two roles", usual, []int64{1}, true}} {
		t.Run(c.name+": claims with a token group but no sub", func(t *testing.T) {
			db := c.db
			owner := KeycloakUser("owner", "7e570000-0000-4000-8000-000000000001")
			gid := CreateGroup(t, db, owner, "tokened")
			db.Exec(t, "update iam.groups set token_name = '/single-role-test-'||id where id = $1", gid)
			defer db.Exec(t, "update iam.groups set token_name = null where id = $1", gid)
			db.Exec(t, "truncate app.todos restart identity cascade")
			db.Exec(t, "insert into app.todos (title, owner_id, group_id) values ('shared', $1, $2)", UserID(owner), gid)
			db.Exec(t, "truncate app.chats restart identity")
			db.Exec(t, "insert into app.chats (body, owner_id, group_id) values ('in the room', $1, $2)", UserID(owner), gid)
			who := Person{Name: "no sub", Role: "web_user", Claims: map[string]any{
				"role": "web_user", "groups": []string{"/single-role-test-" + strconv.FormatInt(gid, 10)},
				"realm_access": map[string]any{"roles": []string{"moderator"}},
			}}
			got, err := pageIDs(t, db, who, "/todos", "select id from app.todos")
			NoError(t, err)
			if len(got) != len(c.want) {
				t.Errorf("claims without sub see %v, want %v", got, c.want)
			}
			got, err = pageIDs(t, db, who, "/chats", "select id from app.chats")
			NoError(t, err)
			total := Scalar[int64](t, db, "select count(*) from app.chats")
			if c.moderates && int64(len(got)) != total || !c.moderates && len(got) != 0 {
				t.Errorf("claims without sub but with the moderator role see chats %v of %d", got, total)
			}
		})
	}
	t.Run("single role: the signed-in user is the sub, whatever role claim", func(t *testing.T) {
		db := single
		owner := KeycloakUser("owner", "7e570000-0000-4000-8000-000000000002")
		owner.Claims["role"] = "something_else"
		db.Exec(t, "truncate app.todos restart identity cascade")
		db.Exec(t, "insert into app.todos (title, owner_id) values ('mine', $1)", UserID(owner))
		got, err := pageIDs(t, db, owner, "/todos", "select id from app.todos")
		NoError(t, err)
		if len(got) != 1 {
			t.Errorf("the owner sees %v, want their todo", got)
		}
	})
}
