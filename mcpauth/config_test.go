package mcpauth

import (
	"strings"
	"testing"
)

// TestProvisionRefuses checks what Provision refuses, naming the field.
func TestProvisionRefuses(t *testing.T) {
	jwt := func(change func(*JWT)) *Config {
		j := &JWT{Issuer: testIssuer, JWKSURL: "https://id.example.com/jwks.json"}
		change(j)
		return &Config{JWT: j}
	}
	key := []APIKey{{Principal: "a", Hash: HashKey("k")}}
	for _, tt := range []struct {
		name string
		c    *Config
		want string
	}{
		{"nothing", &Config{}, "auth: nothing authenticates: configure jwt, api_keys or caddy_identity"},
		{"relative resource", &Config{CaddyIdentity: true, Resource: "/mcp"}, `auth: resource "/mcp": must be an absolute http(s) URI without a fragment`},
		{"resource with a fragment", &Config{CaddyIdentity: true, Resource: "https://h/mcp#x"}, `auth: resource "https://h/mcp#x": must be an absolute http(s) URI`},
		{"authorization server not a URL", &Config{CaddyIdentity: true, AuthorizationServers: []string{"id.example.com"}}, `auth: authorization_servers: "id.example.com" is not an absolute URL`},
		{"scope with a space", &Config{CaddyIdentity: true, RequiredScopes: []string{"a b"}}, `auth: required_scopes: scope "a b": scopes are printable ASCII without spaces, quotes or backslashes`},
		{"empty scope", &Config{CaddyIdentity: true, ScopesSupported: []string{""}}, "auth: scopes_supported: a scope is empty"},
		{"key without a principal", &Config{APIKeys: []APIKey{{Hash: HashKey("k")}}}, "auth: api_keys[0]: principal is required"},
		{"key in clear", &Config{APIKeys: []APIKey{{Principal: "a", Hash: "mcpk_secret"}}}, `auth: api_keys[0] (principal "a"): hash: want sha256:<64 hex digits> of the key (caddy mcp api-key prints one), got 11 characters`},
		{"short hash", &Config{APIKeys: []APIKey{{Principal: "a", Hash: "sha256:abcd"}}}, `auth: api_keys[0] (principal "a"): hash: want sha256:<64 hex digits>`},
		{"same key twice", &Config{APIKeys: append(key, APIKey{Principal: "b", Hash: HashKey("k")})}, `auth: api_keys[1] (principal "b"): the same key as principal "a"'s`},
		{"no issuer", jwt(func(j *JWT) { j.Issuer = "" }), "auth: jwt: issuer is required"},
		{"no jwks_url", jwt(func(j *JWT) { j.JWKSURL = "" }), "auth: jwt: jwks_url is required"},
		{"jwks_url ftp", jwt(func(j *JWT) { j.JWKSURL = "ftp://x" }), `auth: jwt: jwks_url "ftp://x": must be https (http only on loopback)`},
		{"jwks_url http off loopback", jwt(func(j *JWT) { j.JWKSURL = "http://id.example.com/jwks" }), `auth: jwt: jwks_url "http://id.example.com/jwks": must be https (http only on loopback)`},
		{"jwks_url relative", jwt(func(j *JWT) { j.JWKSURL = "/jwks" }), `auth: jwt: jwks_url "/jwks": not an absolute URL`},
		{"alg none", jwt(func(j *JWT) { j.Algorithms = []string{"RS256", "none"} }), `auth: jwt: algorithm "none" is not supported (supported: RS256, RS384, PS256, ES256, ES384, EdDSA)`},
		{"HMAC", jwt(func(j *JWT) { j.Algorithms = []string{"HS256"} }), `auth: jwt: algorithm "HS256" is not supported`},
		{"empty audience", jwt(func(j *JWT) { j.Audiences = []string{""} }), "auth: jwt: audiences: an audience is empty"},
		{"negative skew", jwt(func(j *JWT) { j.ClockSkew = -1 }), "auth: jwt: clock_skew -1ns: must not be negative"},
		{"negative refresh", jwt(func(j *JWT) { j.JWKSRefresh = -1 }), "auth: jwt: jwks_refresh -1ns: must not be negative"},
	} {
		err := provisionErr(t, tt.c)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: got %v\nwant %s", tt.name, err, tt.want)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:9/jwks", "http://[::1]/jwks", "http://localhost:8080/jwks", "https://id.example.com/jwks"} {
		if err := provisionErr(t, jwt(func(j *JWT) { j.JWKSURL = ok })); err != nil {
			t.Errorf("jwks_url %s: %v", ok, err)
		}
	}
}
