package mcpauth

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestChallenge(t *testing.T) {
	plain := &Config{APIKeys: []APIKey{{Principal: "a", Hash: HashKey("k")}}}
	scoped := &Config{APIKeys: plain.APIKeys, RequiredScopes: []string{"mcp:tools", "mcp:read"}}
	for _, tt := range []struct {
		name     string
		c        *Config
		resource string
		f        *Failure
		want     string
	}{
		{"no credentials", plain, testResource, &Failure{Status: 401, Description: "no credentials"},
			`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		{"no credentials, required scopes", scoped, testResource, &Failure{Status: 401, Description: "no credentials"},
			`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:read"`},
		{"invalid token", plain, testResource, &Failure{Status: 401, Code: "invalid_token", Description: "token expired at 2026-11-21T19:00:00Z"},
			`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="token expired at 2026-11-21T19:00:00Z"`},
		{"insufficient scope", scoped, testResource, &Failure{Status: 403, Code: "insufficient_scope", Description: `principal "bob" lacks scope mcp:admin`, Scopes: []string{"mcp:admin"}},
			`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:admin", error="insufficient_scope", error_description="principal 'bob' lacks scope mcp:admin"`},
		{"a description that would break the header", plain, testResource, &Failure{Status: 401, Code: "invalid_token", Description: "issuer \"a\\\"\r\nSet-Cookie: x=y\" is not \"é\""},
			`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="issuer 'a/'??Set-Cookie: x=y' is not '?'"`},
		{"resource from the request", plain, "", &Failure{Status: 401, Description: "no credentials"},
			`Bearer resource_metadata="http://gw.example.com/.well-known/oauth-protected-resource/servers/a/mcp"`},
	} {
		h := http.Header{}
		tt.c.Challenge(h, httptest.NewRequest(http.MethodPost, "http://GW.example.com:80/servers/a/mcp/", nil), tt.resource, tt.f)
		if got := h.Values("WWW-Authenticate"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestMetadataURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example.com/mcp":           "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com/servers/a/mcp": "https://mcp.example.com/.well-known/oauth-protected-resource/servers/a/mcp",
		"https://mcp.example.com":               "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com/":              "https://mcp.example.com/.well-known/oauth-protected-resource",
		"http://127.0.0.1:8080/api":             "http://127.0.0.1:8080/.well-known/oauth-protected-resource/api",
		"https://mcp.example.com/mcp?tenant=a":  "https://mcp.example.com/.well-known/oauth-protected-resource/mcp?tenant=a",
		"https://mcp.example.com/a%20b/mcp":     "https://mcp.example.com/.well-known/oauth-protected-resource/a%20b/mcp",
		"/mcp":                                  "",
		"not a url at all":                      "",
	} {
		if got := MetadataURL(in); got != want {
			t.Errorf("MetadataURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResourceURI(t *testing.T) {
	c := &Config{}
	for _, tt := range []struct {
		target string
		tls    bool
		path   string
		want   string
	}{
		{"http://example.com/mcp", false, "/mcp", "http://example.com/mcp"},
		{"https://Example.COM/mcp", true, "/mcp", "https://example.com/mcp"},
		{"https://example.com:443/x", true, "/mcp/", "https://example.com/mcp"},
		{"http://example.com:80/x", false, "/mcp", "http://example.com/mcp"},
		{"http://example.com:443/x", false, "/mcp", "http://example.com:443/mcp"},
		{"https://example.com:8443/x", true, "/servers/a/mcp", "https://example.com:8443/servers/a/mcp"},
		{"http://[::1]:80/x", false, "/mcp", "http://[::1]/mcp"},
		{"http://[::1]:8080/x", false, "/mcp", "http://[::1]:8080/mcp"},
		{"http://example.com/x", false, "/mcp?q=1#f", "http://example.com/mcp"},
		{"http://example.com/x", false, "/", "http://example.com"},
	} {
		r := httptest.NewRequest(http.MethodGet, tt.target, nil)
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		} else {
			r.TLS = nil
		}
		if got := c.ResourceURI(r, tt.path); got != tt.want {
			t.Errorf("ResourceURI(%s, %q) = %q, want %q", tt.target, tt.path, got, tt.want)
		}
	}
	fixed := &Config{Resource: "https://mcp.example.com/mcp"}
	if got := fixed.ResourceURI(httptest.NewRequest(http.MethodGet, "http://internal:8080/mcp", nil), "/other"); got != fixed.Resource {
		t.Errorf("with resource set: %q", got)
	}
}

func TestServeMetadata(t *testing.T) {
	is := standardIssuer(t)
	withJWT := provision(t, &Config{JWT: &JWT{Issuer: testIssuer, JWKSURL: is.url()}, ScopesSupported: []string{"mcp:tools", "mcp:admin"}, ResourceName: "Team MCP"})
	explicit := provision(t, &Config{JWT: withJWT.JWT, AuthorizationServers: []string{"https://a.example", "https://b.example"}})
	keysOnly := provision(t, &Config{APIKeys: []APIKey{{Principal: "a", Hash: HashKey("k")}}})
	for _, tt := range []struct {
		name     string
		c        *Config
		target   string
		resource string
		want     string
	}{
		{"jwt", withJWT, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", testResource,
			`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://id.example.com"],"scopes_supported":["mcp:tools","mcp:admin"],"bearer_methods_supported":["header"],"resource_name":"Team MCP"}`},
		{"authorization servers given", explicit, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", testResource,
			`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://a.example","https://b.example"],"bearer_methods_supported":["header"]}`},
		{"API keys only, resource from the path", keysOnly, "http://gw.example.com/.well-known/oauth-protected-resource/servers/a/mcp", "",
			`{"resource":"http://gw.example.com/servers/a/mcp","bearer_methods_supported":["header"]}`},
	} {
		rec := httptest.NewRecorder()
		tt.c.ServeMetadata(rec, httptest.NewRequest(http.MethodGet, tt.target, nil), tt.resource)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v", tt.name, rec.Code, rec.Header())
		}
		var got, want any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v: %s", tt.name, err, rec.Body)
		}
		_ = json.Unmarshal([]byte(tt.want), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, rec.Body, tt.want)
		}
	}

	rec := httptest.NewRecorder()
	withJWT.ServeMetadata(rec, httptest.NewRequest(http.MethodOptions, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil), testResource)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Methods") != "GET, OPTIONS" || rec.Header().Get("Access-Control-Allow-Origin") != "*" || rec.Body.Len() != 0 {
		t.Errorf("OPTIONS: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	rec = httptest.NewRecorder()
	withJWT.ServeMetadata(rec, httptest.NewRequest(http.MethodHead, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil), testResource)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	withJWT.ServeMetadata(rec, httptest.NewRequest(http.MethodPost, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil), testResource)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("POST: %d %v", rec.Code, rec.Header())
	}
}
