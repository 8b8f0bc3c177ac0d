package policies_test

// The Keycloak and PostgREST files shipped with the example
// (keycloak/realm-export.json, postgrest.conf) and the token payloads that
// realm issues (testdata/keycloak/*.json) agree with each other and with
// iam.iam. stdlib/keycloak_test.go runs the tokens against the runtime.

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/iamc/iamc/compiler"
	. "github.com/iamc/iamc/internal/exampletest"
	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/stdlib"
)

// ---------------------------------------------------------------------------
// The shipped files.
// ---------------------------------------------------------------------------

// realmExport is the part of a Keycloak realm export the example relies on.
type realmExport struct {
	Realm string `json:"realm"`
	Roles struct {
		Realm []struct {
			Name       string `json:"name"`
			Composites struct {
				Realm []string `json:"realm"`
			} `json:"composites"`
		} `json:"realm"`
	} `json:"roles"`
	DefaultRole struct {
		Name string `json:"name"`
	} `json:"defaultRole"`
	Groups []struct {
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"groups"`
	Clients []struct {
		ClientID        string `json:"clientId"`
		PublicClient    bool   `json:"publicClient"`
		ProtocolMappers []struct {
			Name           string            `json:"name"`
			ProtocolMapper string            `json:"protocolMapper"`
			Config         map[string]string `json:"config"`
		} `json:"protocolMappers"`
	} `json:"clients"`
	Users []struct {
		ID         string              `json:"id"`
		Username   string              `json:"username"`
		Email      string              `json:"email"`
		Groups     []string            `json:"groups"`
		RealmRoles []string            `json:"realmRoles"`
		Attributes map[string][]string `json:"attributes"`
	} `json:"users"`
}

func readRealm(t *testing.T) realmExport {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("keycloak", "realm-export.json"))
	if err != nil {
		t.Fatalf("reading the shipped realm export: %v", err)
	}
	var r realmExport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("keycloak/realm-export.json: %v", err)
	}
	return r
}

// mapper returns the config of the app client's mapper of a type, failing
// unless there is exactly one.
func (r realmExport) mapper(t *testing.T, kind string) map[string]string {
	t.Helper()
	if len(r.Clients) != 1 {
		t.Fatalf("the realm export has %d clients, want the app's only", len(r.Clients))
	}
	var found []map[string]string
	for _, m := range r.Clients[0].ProtocolMappers {
		if m.ProtocolMapper == kind {
			found = append(found, m.Config)
		}
	}
	if len(found) != 1 {
		t.Fatalf("client %s has %d %s mappers, want 1", r.Clients[0].ClientID, len(found), kind)
	}
	return found[0]
}

func exampleModel(t *testing.T) *lang.Model {
	t.Helper()
	out, err := compiler.Compile(".")
	NoError(t, err)
	return out.Model
}

// ---------------------------------------------------------------------------
// The files agree with each other, with iam.iam and with the fixtures.
// ---------------------------------------------------------------------------

func TestKeycloakFilesAgree(t *testing.T) {
	conf, realm, model, fixtures := PostgRESTConf(t), readRealm(t), exampleModel(t), TokenFixtures(t)
	audience := realm.mapper(t, "oidc-audience-mapper")
	groupsMapper := realm.mapper(t, "oidc-group-membership-mapper")
	roleMapper := realm.mapper(t, "oidc-hardcoded-claim-mapper")
	client := realm.Clients[0]

	var realmRoles []string
	var defaultRoles []string
	for _, r := range realm.Roles.Realm {
		realmRoles = append(realmRoles, r.Name)
		if r.Name == realm.DefaultRole.Name {
			defaultRoles = r.Composites.Realm
		}
	}
	var groupPaths []string
	for _, g := range realm.Groups {
		groupPaths = append(groupPaths, g.Path)
	}
	var schemas []string
	for _, r := range model.Resources {
		schemas = append(schemas, r.Schema)
	}
	if model.Groups.APISchema != "" {
		schemas = append(schemas, model.Groups.APISchema)
	}

	checks := []struct {
		what      string
		got, want any
	}{
		{"postgrest.conf db-anon-role is iam.iam's anonymous role", conf["db-anon-role"], model.Roles.Anonymous},
		{"postgrest.conf jwt-aud is the audience the realm's mapper adds", conf["jwt-aud"], audience["included.custom.audience"]},
		{"iam.iam's audience is postgrest.conf jwt-aud (PostgREST checks aud only when present; the runtime refuses tokens without it)", model.Identity.Audience, conf["jwt-aud"]},
		{"iam.iam requires exp (PostgREST accepts tokens without one)", model.Identity.ExpiryOptional, false},
		{"postgrest.conf runs the runtime's db-pre-request", conf["db-pre-request"], stdlib.PreRequest},
		{"postgrest.conf jwt-role-claim-key reads the hard-coded claim", conf["jwt-role-claim-key"], "." + roleMapper["claim.name"]},
		{"the hard-coded role claim is iam.iam's authenticated role", roleMapper["claim.value"], model.Roles.Authenticated},
		{"the role claim is in access tokens", roleMapper["access.token.claim"], "true"},
		{"the audience is in access tokens", audience["access.token.claim"], "true"},
		{"the groups mapper's claim is iam.iam's token claim", groupsMapper["claim.name"], model.Groups.TokenClaim},
		{"the groups claim lists full paths (/team-a), as token_name expects", groupsMapper["full.path"], "true"},
		{"the groups claim is in access tokens", groupsMapper["access.token.claim"], "true"},
		{"iam.iam identifies users by Keycloak's sub", model.Identity.Claim, "sub"},
		{"the authenticated role is a realm role every user gets by default", slices.Contains(defaultRoles, model.Roles.Authenticated), true},
		{"the app client is public (a browser app holds no secret)", client.PublicClient, true},
		{"the JWT key comes from a file, not the config", strings.HasPrefix(conf["jwt-secret"], "@$("), true},
		{"the database URI comes from the environment", strings.HasPrefix(conf["db-uri"], "$("), true},
	}
	if model.Groups.AdminRole != "" {
		checks = append(checks, struct {
			what      string
			got, want any
		}{"iam.iam's admin role is a realm role", slices.Contains(realmRoles, model.Groups.AdminRole), true})
	}
	for _, schema := range schemas {
		checks = append(checks, struct {
			what      string
			got, want any
		}{"postgrest.conf db-schemas serves schema " + schema, slices.Contains(strings.Split(conf["db-schemas"], ","), schema), true})
	}
	for _, p := range groupPaths {
		checks = append(checks, struct {
			what      string
			got, want any
		}{"realm group " + p + " is a full path", strings.HasPrefix(p, "/"), true})
	}

	// Every realm role a rule names is a role of the realm (client roles
	// would name the realm's clients: the example has none), and every
	// tenant claim is a string the realm's mapper puts in access tokens.
	var tenantClaims []string
	for _, r := range model.Resources {
		for _, rule := range r.Rules {
			if role, ok := rule.Subject.(lang.RoleSubject); ok {
				checks = append(checks, struct {
					what      string
					got, want any
				}{fmt.Sprintf("%s of %s is a realm role (client roles: none in the example)", role, r.QualifiedName()), role.Client == "" && slices.Contains(realmRoles, role.Name), true})
			}
		}
		if r.Tenant != nil {
			tenantClaims = append(tenantClaims, r.Tenant.Claim)
			attr := realm.mapper(t, "oidc-usermodel-attribute-mapper")
			for _, c := range []struct{ key, want string }{
				{"claim.name", r.Tenant.Claim}, {"jsonType.label", "String"}, {"multivalued", "false"}, {"access.token.claim", "true"},
			} {
				checks = append(checks, struct {
					what      string
					got, want any
				}{"the attribute mapper of " + r.QualifiedName() + "'s tenant claim: " + c.key, attr[c.key], c.want})
			}
		}
	}
	// Keycloak expands composite roles into the token: a fixture of a
	// realm user lists the user's roles and those their composites hold.
	composites := map[string][]string{}
	for _, r := range realm.Roles.Realm {
		composites[r.Name] = r.Composites.Realm
	}
	expand := func(roles []string) []string {
		var out []string
		var add func(string)
		add = func(r string) {
			if slices.Contains(out, r) {
				return
			}
			out = append(out, r)
			for _, c := range composites[r] {
				add(c)
			}
		}
		for _, r := range roles {
			add(r)
		}
		slices.Sort(out)
		return out
	}

	users := map[string]string{}
	userRoles := map[string][]string{}
	userAttributes := map[string]map[string][]string{}
	for _, u := range realm.Users {
		users[u.Username] = u.ID
		userRoles[u.Username] = expand(u.RealmRoles)
		userAttributes[u.Username] = u.Attributes
		for _, g := range u.Groups {
			checks = append(checks, struct {
				what      string
				got, want any
			}{"user " + u.Username + "'s group " + g + " is a realm group", slices.Contains(groupPaths, g), true})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fixtures)) {
		c := fixtures[name]
		check := func(what string, got, want any) {
			checks = append(checks, struct {
				what      string
				got, want any
			}{name + ": " + what, got, want})
		}
		aud, _ := c["aud"].([]any)
		check("aud lists jwt-aud", slices.Contains(aud, any(conf["jwt-aud"])), true)
		_, expIsNumber := c["exp"].(float64)
		check("exp is a number", expIsNumber, true)
		check("azp is the realm's client", c["azp"], client.ClientID)
		iss, _ := c["iss"].(string)
		check("iss is the realm", strings.HasSuffix(iss, "/realms/"+realm.Realm), true)
		_, subIsString := c["sub"].(string)
		check("sub is a string", subIsString, true)
		if role, ok := c["role"]; ok {
			check("the role claim is the hard-coded one", role, roleMapper["claim.value"])
		}
		roles, _ := c["realm_access"].(map[string]any)["roles"].([]any)
		check("realm_access.roles has the authenticated role", slices.Contains(roles, any(model.Roles.Authenticated)), true)
		if groups, ok := c[groupsMapper["claim.name"]].([]any); ok {
			for _, g := range groups {
				check(fmt.Sprintf("group %v is a realm group", g), slices.Contains(groupPaths, fmt.Sprint(g)), true)
			}
		}
		// Local users are the realm's users, with the same ids.
		username, _ := c["preferred_username"].(string)
		if id, ok := users[username]; ok {
			check("sub is the id of realm user "+username, c["sub"], id)
			var got []string
			for _, r := range roles {
				got = append(got, fmt.Sprint(r))
			}
			slices.Sort(got)
			check("realm_access.roles are realm user "+username+"'s, composites expanded", got, userRoles[username])
			for _, claim := range tenantClaims {
				want := any(nil)
				if v := userAttributes[username][claim]; len(v) == 1 {
					want = v[0]
				}
				check("the tenant claim "+claim+" is realm user "+username+"'s attribute", c[claim], want)
			}
		}
	}

	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.what, diff)
		}
	}
	t.Logf("%d checks of postgrest.conf, keycloak/realm-export.json, iam.iam and %d token fixtures", len(checks), len(fixtures))
}
