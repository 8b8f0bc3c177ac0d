package e2e

// Keycloak-shaped access tokens, signed with the standard library only.

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"
)

var b64 = base64.RawURLEncoding

// signer signs JWTs with one key.
type signer struct {
	alg  string // JWS "alg" header: HS256 or RS256
	kid  string // "kid" header, naming the key in the JWKS; "" for none
	sign func(input []byte) ([]byte, error)
}

// hs256 signs with HMAC-SHA256 and a shared secret.
func hs256(secret string) signer {
	return signer{alg: "HS256", sign: func(input []byte) ([]byte, error) {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(input)
		return mac.Sum(nil), nil
	}}
}

// rs256 signs with RSASSA-PKCS1-v1_5 and SHA-256, as Keycloak does by default.
func rs256(key *rsa.PrivateKey, kid string) signer {
	return signer{alg: "RS256", kid: kid, sign: func(input []byte) ([]byte, error) {
		digest := sha256.Sum256(input)
		return rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	}}
}

// token encodes and signs claims as a compact JWS.
func (s signer) token(t testing.TB, claims map[string]any) string {
	t.Helper()
	header := map[string]any{"alg": s.alg, "typ": "JWT"}
	if s.kid != "" {
		header["kid"] = s.kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	sig, err := s.sign([]byte(input))
	if err != nil {
		t.Fatalf("signing a JWT: %v", err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// newRSAKey generates an RSA-2048 key.
func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// jwks is the JSON Web Key Set publishing pub, as Keycloak serves it at
// /realms/<realm>/protocol/openid-connect/certs (without the x5c chain).
func jwks(t testing.TB, pub *rsa.PublicKey, kid string) string {
	t.Helper()
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA",
		"kid": kid,
		"alg": "RS256",
		"use": "sig",
		"n":   b64.EncodeToString(pub.N.Bytes()),
		"e":   b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	j, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

// roleStyle is how a token tells PostgREST which database role to run as.
// Keycloak puts no "role" claim in an access token by default, so a real
// deployment does one of these two.
type roleStyle int

const (
	// realmRoles: the realm role web_user comes first in
	// realm_access.roles and PostgREST is configured with
	// jwt-role-claim-key = ".realm_access.roles[0]". (Keycloak does not
	// promise an order for realm roles, so a deployment relying on [0]
	// must give users web_user as their only or first realm role.)
	realmRoles roleStyle = iota
	// roleClaim: a Keycloak "Hardcoded claim" mapper adds a top-level
	// "role": "web_user" claim, which PostgREST reads by default (.role).
	roleClaim
)

const (
	issuer = "http://keycloak.local/realms/demo"
	// audience is jwt-aud of the shipped postgrest.conf, added to aud by
	// the realm's audience mapper (beside Keycloak's own "account").
	audience = "todo-api"
)

// user is a Keycloak user: a username and the id Keycloak puts in sub.
type user struct {
	username string
	sub      string
}

var (
	alice = user{"alice", "a11ce000-0000-4000-8000-000000000001"}
	// Bob's and Carol's ids are the ones of README's "Sharing with groups".
	bob   = user{"bob", "b0b00000-0000-4000-8000-000000000b0b"}
	carol = user{"carol", "c0c00000-0000-4000-8000-00000000c0c0"}
	// Dave is in no group's membership table; he is in Keycloak group
	// /team-a when his token says so.
	dave = user{"dave", "da7e0000-0000-4000-8000-00000000da7e"}
	// A user from an LDAP user federation provider without an imported id:
	// Keycloak names such users "f:<provider>:<username>", not a uuid.
	federatedAlice = user{"alice", "f:ldap:alice"}
)

// claims are the claims of an access token Keycloak issues to u, valid from
// issuedAt for five minutes.
func (u user) claims(style roleStyle, issuedAt time.Time) map[string]any {
	realm := []string{"default-roles-demo", "offline_access", "uma_authorization", "web_user"}
	if style == realmRoles {
		// PostgREST takes the first element, so web_user must come first.
		realm = []string{"web_user", "default-roles-demo", "offline_access", "uma_authorization"}
	}
	c := map[string]any{
		"exp":                issuedAt.Add(5 * time.Minute).Unix(),
		"iat":                issuedAt.Unix(),
		"auth_time":          issuedAt.Unix(),
		"jti":                "onrtac:" + u.username + "-" + issuedAt.Format("150405.000000"),
		"iss":                issuer,
		"aud":                []string{audience, "account"},
		"sub":                u.sub,
		"typ":                "Bearer",
		"azp":                "todo-app",
		"sid":                "0b3a6c52-5d5e-4b8f-9d0b-2b1f6f3f1a77",
		"acr":                "1",
		"scope":              "openid profile email",
		"email_verified":     true,
		"preferred_username": u.username,
		"email":              u.username + "@example.com",
		"realm_access":       map[string]any{"roles": realm},
		"resource_access":    map[string]any{"account": map[string]any{"roles": []string{"manage-account", "view-profile"}}},
	}
	if style == roleClaim {
		c["role"] = "web_user"
	}
	// Keycloak's User Attribute mapper of policies/keycloak: the user's
	// organisation (notes.iam's tenant).
	if org, ok := userOrgs[u.username]; ok {
		c["org_id"] = org
	}
	return c
}

// userOrgs are the org_id attributes of the realm's users.
var userOrgs = map[string]string{"alice": "acme", "bob": "acme", "carol": "globex", "dave": "globex"}

// withRealmRole is claims with one more realm role (after the others: with
// realmRoles, PostgREST's role stays the first).
func withRealmRole(c map[string]any, role string) map[string]any {
	ra := c["realm_access"].(map[string]any)
	roles := append([]string{}, ra["roles"].([]string)...)
	c["realm_access"] = map[string]any{"roles": append(roles, role)}
	return c
}
