package mcpauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestAttacks sends tokens that must be refused, each with what the
// refusal must say.
func TestAttacks(t *testing.T) {
	keys := testKeys()
	rsaKey := keys["rsa"]
	is := standardIssuer(t)
	// A key the JWKS lists for encryption only: a signature by it is not
	// accepted even though the key is there.
	encKey := signingKey{"enc1", jose.RS256, keys["other"].key}
	encJWK := jose.JSONWebKey{Key: encKey.key.Public(), KeyID: "enc1", Use: "enc"}
	// A key the JWKS pins to ES256, which an RS256 signature contradicts.
	pinned := signingKey{"pinned", jose.RS256, keys["other"].key}
	pinnedJWK := jose.JSONWebKey{Key: pinned.key.Public(), KeyID: "pinned", Algorithm: "ES256"}
	is.serve(t, rsaKey.jwk(), keys["ec"].jwk(), keys["ed"].jwk(), encJWK, pinnedJWK)

	c := provision(t, jwtConfig(is))
	scoped := provision(t, &Config{JWT: &JWT{Issuer: testIssuer, JWKSURL: is.url()}, RequiredScopes: []string{"mcp:tools"}})
	withKeys := provision(t, &Config{JWT: &JWT{Issuer: testIssuer, JWKSURL: is.url()}, APIKeys: []APIKey{{Principal: "ci", Hash: HashKey("mcpk_real")}}})

	with := func(change func(map[string]any)) map[string]any {
		cl := claims()
		change(cl)
		return cl
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	b64 := base64.RawURLEncoding.EncodeToString

	// alg none, built by hand as an attacker would.
	payload, _ := json.Marshal(claims())
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(payload) + "."

	// HS256 keyed with the RSA public key as the JWKS publishes it: a
	// verifier that let the token choose the algorithm would take the
	// public key for an HMAC secret.
	der, err := x509.MarshalPKIXPublicKey(rsaKey.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	confused := signWith(t, jose.HS256, jose.JSONWebKey{Key: pemKey, KeyID: rsaKey.kid}, claims())
	confusedDER := signWith(t, jose.HS256, jose.JSONWebKey{Key: der, KeyID: rsaKey.kid}, claims())

	// A real token whose payload was swapped after signing.
	good := sign(t, rsaKey, claims())
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64(mustJSON(t, with(func(c map[string]any) { c["sub"] = "root" }))) + "." + parts[2]

	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name   string
		c      *Config
		header []string
		status int
		code   string
		desc   string // the description, exactly, or a prefix ending in "…"
	}{
		{"no token", c, nil, 401, "", "no credentials"},
		{"empty bearer", c, []string{"Authorization", "Bearer "}, 401, "invalid_request", "the Bearer token is empty"},
		{"two bearers", c, []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good}, 401, "invalid_request", "more than one Bearer token"},
		{"not a JWT", c, []string{"Authorization", "Bearer just-a-string"}, 401, "invalid_token", "malformed token: not a JWT (header.payload.signature)"},
		{"header not base64", c, []string{"Authorization", "Bearer %%%.e30.sig"}, 401, "invalid_token", "malformed token: header is not base64url: …"},
		{"header not JSON", c, []string{"Authorization", "Bearer " + b64([]byte("alg")) + ".e30.sig"}, 401, "invalid_token", "malformed token: header is not a JSON object: …"},
		{"header without alg", c, []string{"Authorization", "Bearer " + b64([]byte(`{"typ":"JWT"}`)) + ".e30.sig"}, 401, "invalid_token", "malformed token: header has no alg"},
		{"payload not base64", c, []string{"Authorization", "Bearer " + parts[0] + ".%%%." + parts[2]}, 401, "invalid_token", "malformed token: …"},
		{"claims not JSON", c, []string{"Authorization", "Bearer " + signWith(t, jose.RS256, jose.JSONWebKey{Key: rsaKey.key, KeyID: "rsa1"}, nil)}, 401, "invalid_token", "malformed token: the claims are not a JSON object"},
		{"expired", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["exp"] = past.Unix() }))), 401, "invalid_token", "token expired at " + past.UTC().Format(time.RFC3339)},
		{"no expiry", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { delete(c, "exp") }))), 401, "invalid_token", "token has no expiry (exp)"},
		{"expiry not a number", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["exp"] = "tomorrow" }))), 401, "invalid_token", `malformed token: claim "exp" is not a date (seconds since 1970)`},
		{"not yet valid", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["nbf"] = future.Unix() }))), 401, "invalid_token", "token not valid before " + future.UTC().Format(time.RFC3339)},
		{"issued in the future", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["iat"] = future.Unix() }))), 401, "invalid_token", "token issued in the future, at " + future.UTC().Format(time.RFC3339)},
		{"wrong audience", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["aud"] = "https://other.example.com/mcp" }))), 401, "invalid_token", `audience [https://other.example.com/mcp] does not include "https://mcp.example.com/mcp"`},
		{"audience of a neighbour path", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) {
			c["aud"] = []string{"https://mcp.example.com/mcp/other", "https://mcp.example.com"}
		}))), 401, "invalid_token", `audience [https://mcp.example.com/mcp/other https://mcp.example.com] does not include "https://mcp.example.com/mcp"`},
		{"no audience", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { delete(c, "aud") }))), 401, "invalid_token", "token has no audience (aud)"},
		{"wrong issuer", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["iss"] = "https://evil.example" }))), 401, "invalid_token", `issuer "https://evil.example" is not "https://id.example.com"`},
		{"no issuer", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { delete(c, "iss") }))), 401, "invalid_token", `token has no issuer (iss); want "https://id.example.com"`},
		{"alg none", c, withBearer(algNone), 401, "invalid_token", `algorithm "none" is not allowed (allowed: RS256, ES256, EdDSA)`},
		{"HS256 keyed with the RSA public key (PEM)", c, withBearer(confused), 401, "invalid_token", `algorithm "HS256" is not allowed (allowed: RS256, ES256, EdDSA)`},
		{"HS256 keyed with the RSA public key (DER)", c, withBearer(confusedDER), 401, "invalid_token", `algorithm "HS256" is not allowed (allowed: RS256, ES256, EdDSA)`},
		{"algorithm not in the allow-list", c, withBearer(signWith(t, jose.PS256, jose.JSONWebKey{Key: rsaKey.key, KeyID: "rsa1"}, claims())), 401, "invalid_token", `algorithm "PS256" is not allowed (allowed: RS256, ES256, EdDSA)`},
		{"unknown kid", c, withBearer(signWith(t, jose.RS256, jose.JSONWebKey{Key: stranger, KeyID: "ghost"}, claims())), 401, "invalid_token", `no key "ghost" in the JWKS`},
		{"known kid, wrong key", c, withBearer(signWith(t, jose.RS256, jose.JSONWebKey{Key: stranger, KeyID: "rsa1"}, claims())), 401, "invalid_token", "signature invalid"},
		{"no kid, no key fits", c, withBearer(signWith(t, jose.RS256, stranger, claims())), 401, "invalid_token", "signature invalid"},
		{"kid of a key of another type", c, withBearer(signWith(t, jose.ES256, jose.JSONWebKey{Key: keys["ec"].key, KeyID: "rsa1"}, claims())), 401, "invalid_token", `key "rsa1" in the JWKS is not for algorithm ES256`},
		{"key for encryption only", c, withBearer(sign(t, encKey, claims())), 401, "invalid_token", `key "enc1" in the JWKS is not for algorithm RS256`},
		{"key pinned to another alg", c, withBearer(sign(t, pinned, claims())), 401, "invalid_token", `key "pinned" in the JWKS is not for algorithm RS256`},
		{"payload swapped after signing", c, withBearer(tampered), 401, "invalid_token", "signature invalid"},
		{"missing principal claim", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { delete(c, "sub") }))), 401, "invalid_token", `token has no principal: claim "sub" is missing or not a non-empty string`},
		{"empty principal claim", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["sub"] = "" }))), 401, "invalid_token", `token has no principal: claim "sub" is missing or not a non-empty string`},
		{"groups of the wrong type", c, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["groups"] = []any{"a", 1} }))), 401, "invalid_token", `malformed token: claim "groups" holds a non-string`},
		{"missing required scope", scoped, withBearer(sign(t, rsaKey, with(func(c map[string]any) { c["scope"] = "mcp:read other" }))), 403, "insufficient_scope", `principal "alice" lacks scope mcp:tools (required: mcp:tools)`},
		{"unknown API key", withKeys, []string{"Authorization", "Bearer mcpk_guess"}, 401, "invalid_token", "unknown API key"},
		{"unknown API key in X-API-Key", withKeys, []string{"X-API-Key", "mcpk_guess"}, 401, "invalid_token", "unknown API key"},
		{"JWT in X-API-Key", withKeys, []string{"X-API-Key", good}, 401, "invalid_token", "unknown API key"},
		{"two kinds of credentials", withKeys, []string{"Authorization", "Bearer mcpk_real", "X-API-Key", "mcpk_real"}, 401, "invalid_request", "both Authorization and X-API-Key: send one credential"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, f := authenticate(t, tt.c, request(tt.header...))
			if f == nil {
				t.Fatal("accepted")
			}
			if f.Status != tt.status || f.Code != tt.code {
				t.Errorf("refused with %d %q, want %d %q (%s)", f.Status, f.Code, tt.status, tt.code, f.Description)
			}
			if prefix, ok := strings.CutSuffix(tt.desc, "…"); ok {
				if !strings.HasPrefix(f.Description, prefix) || len(f.Description) == len(prefix) {
					t.Errorf("description %q, want %q and details", f.Description, prefix)
				}
			} else if f.Description != tt.desc {
				t.Errorf("description %q\nwant        %q", f.Description, tt.desc)
			}
			for i := 1; i < len(tt.header); i += 2 {
				cred := strings.TrimPrefix(tt.header[i], "Bearer ")
				if len(cred) > 8 && strings.Contains(f.Description+f.Error(), cred) {
					t.Errorf("the failure repeats the credential: %v", f)
				}
			}
			if tt.code == "insufficient_scope" && !reflect.DeepEqual(f.Scopes, []string{"mcp:tools"}) {
				t.Errorf("scopes %q, want the required ones", f.Scopes)
			}
		})
	}
}

// TestGoodTokens accepts tokens of each key type and reads the principal's
// groups and scopes from every form the claims take.
func TestGoodTokens(t *testing.T) {
	keys := testKeys()
	is := standardIssuer(t)
	c := provision(t, jwtConfig(is))
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, tt := range []struct {
		name           string
		key            signingKey
		change         func(map[string]any)
		groups, scopes []string
	}{
		{"RSA", keys["rsa"], nil, nil, nil},
		{"ECDSA P-256", keys["ec"], nil, nil, nil},
		{"Ed25519", keys["ed"], nil, nil, nil},
		{"groups array, scope string", keys["rsa"], func(c map[string]any) {
			c["groups"], c["scope"] = []string{"admins", "ops"}, "mcp:tools  mcp:read"
		}, []string{"admins", "ops"}, []string{"mcp:tools", "mcp:read"}},
		{"groups string, scp array", keys["ec"], func(c map[string]any) {
			c["groups"], c["scp"] = "admins ops", []string{"mcp:tools"}
		}, []string{"admins", "ops"}, []string{"mcp:tools"}},
		{"scope wins over scp", keys["ed"], func(c map[string]any) {
			c["scope"], c["scp"] = "a", []string{"b"}
		}, nil, []string{"a"}},
		{"audience among several", keys["rsa"], func(c map[string]any) {
			c["aud"] = []string{"https://other.example.com", testResource}
		}, nil, nil},
		{"expired within the clock skew", keys["rsa"], func(c map[string]any) {
			c["exp"] = time.Now().Add(-10 * time.Second).Unix()
		}, nil, nil},
		{"not yet valid within the clock skew", keys["rsa"], func(c map[string]any) {
			c["nbf"], c["iat"] = time.Now().Add(10*time.Second).Unix(), time.Now().Add(10*time.Second).Unix()
		}, nil, nil},
		{"no kid: every key of the type is tried", keys["ec"], func(map[string]any) {}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl := claims()
			cl["exp"] = exp.Unix()
			if tt.change != nil {
				tt.change(cl)
			}
			token := sign(t, tt.key, cl)
			if tt.name == "no kid: every key of the type is tried" {
				token = signWith(t, tt.key.alg, tt.key.key, cl)
			}
			p, f := authenticate(t, c, request("Authorization", "Bearer "+token))
			if f != nil {
				t.Fatalf("refused: %v", f)
			}
			want := &Principal{ID: "alice", Method: "jwt", Groups: tt.groups, Scopes: tt.scopes, Expiry: time.Unix(cl["exp"].(int64), 0)}
			if !equalPrincipal(p, want) {
				t.Errorf("principal %+v, want %+v", p, want)
			}
		})
	}
}

// TestJWTOptions checks the options that change what is accepted: the
// principal claim, configured audiences, algorithms and the clock skew.
func TestJWTOptions(t *testing.T) {
	keys := testKeys()
	is := standardIssuer(t)
	cfg := func(change func(*JWT)) *Config {
		c := jwtConfig(is)
		change(c.JWT)
		return provision(t, c)
	}
	token := func(k signingKey, change func(map[string]any)) []string {
		cl := claims()
		change(cl)
		return withBearer(sign(t, k, cl))
	}

	byEmail := cfg(func(j *JWT) { j.PrincipalClaim, j.GroupsClaim, j.ScopesClaim = "email", "roles", "permissions" })
	p, f := authenticate(t, byEmail, request(token(keys["rsa"], func(c map[string]any) {
		c["email"], c["roles"], c["permissions"], c["scope"] = "alice@example.com", []string{"admin"}, "x y", "ignored"
	})...))
	if f != nil || p.ID != "alice@example.com" || !reflect.DeepEqual(p.Groups, []string{"admin"}) || !reflect.DeepEqual(p.Scopes, []string{"x", "y"}) {
		t.Errorf("principal claim email: %+v %v", p, f)
	}
	if _, f := authenticate(t, byEmail, request(token(keys["rsa"], func(map[string]any) {})...)); f == nil || f.Description != `token has no principal: claim "email" is missing or not a non-empty string` {
		t.Errorf("no email claim: %v", f)
	}

	audiences := cfg(func(j *JWT) { j.Audiences = []string{"api://mcp", "api://mcp2"} })
	if _, f := authenticate(t, audiences, request(token(keys["rsa"], func(c map[string]any) { c["aud"] = []string{"api://mcp2"} })...)); f != nil {
		t.Errorf("a configured audience: %v", f)
	}
	if _, f := authenticate(t, audiences, request(token(keys["rsa"], func(map[string]any) {})...)); f == nil || f.Description != `audience [https://mcp.example.com/mcp] does not include any of ["api://mcp" "api://mcp2"]` {
		t.Errorf("configured audiences replace the resource: %v", f)
	}

	ps := cfg(func(j *JWT) { j.Algorithms = []string{"PS256", "ES384"} })
	if _, f := authenticate(t, ps, request(withBearer(signWith(t, jose.PS256, jose.JSONWebKey{Key: keys["rsa"].key, KeyID: "rsa1"}, claims()))...)); f == nil || !strings.Contains(f.Description, `key "rsa1" in the JWKS is not for algorithm PS256`) {
		t.Errorf("a key pinned to RS256 checked a PS256 signature: %v", f)
	}
	if _, f := authenticate(t, ps, request(token(keys["rsa"], func(map[string]any) {})...)); f == nil || f.Description != `algorithm "RS256" is not allowed (allowed: PS256, ES384)` {
		t.Errorf("RS256 not in the list: %v", f)
	}

	tight := cfg(func(j *JWT) { j.ClockSkew = 1 })
	if _, f := authenticate(t, tight, request(token(keys["rsa"], func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() })...)); f == nil || !strings.HasPrefix(f.Description, "token expired at ") {
		t.Errorf("a token 10s past exp with a skew of 1ns: %v", f)
	}
}

func withBearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalPrincipal(a, b *Principal) bool {
	return a.ID == b.ID && a.Method == b.Method && a.Expiry.Equal(b.Expiry) &&
		reflect.DeepEqual(nonNil(a.Groups), nonNil(b.Groups)) && reflect.DeepEqual(nonNil(a.Scopes), nonNil(b.Scopes))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
