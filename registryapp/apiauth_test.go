package registryapp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"
)

// runCaddy runs Caddy in this process with a site on loopback whose
// routes are site, the mcp_registry app on a temporary storage, and the
// API's audit log as JSON in a file. It returns the site's base URL and
// the audit log's path.
func runCaddy(t *testing.T, site string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	audit := filepath.Join(dir, "audit.log")
	src := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	storage file_system %[1]s/storage
	mcp_registry {
		storage file_system %[1]s/registry
		probe off
		allowed_networks loopback
	}
	log audit {
		output file %[2]s
		format json
		level DEBUG
		include http.handlers.mcp_registry_api.audit
	}
}

http://%[3]s {
	bind 127.0.0.1
%[4]s
}
`, dir, audit, addr, site)
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v\n%s", err, src)
	}
	if len(warnings) > 0 {
		t.Errorf("adapting gave warnings: %+v", warnings)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return "http://" + addr, audit
}

// call makes a request with credentials (header name, value) and an
// optional JSON body; it returns the status, the headers and the body.
func call(t *testing.T, method, url string, cred []string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(cred) == 2 {
		req.Header.Set(cred[0], cred[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// apiError decodes the API's {"error": {code, message}}.
func decodeAPIError(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not the API's error shape: %v: %s", err, body)
	}
	return e.Error.Code, e.Error.Message
}

// jwksOnLoopback serves the JWKS of a fresh P-256 key and returns the
// key and the JWKS URL.
func jwksOnLoopback(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	t.Cleanup(srv.Close)
	return key, srv.URL + "/jwks"
}

func jwtFor(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

// auditEntries reads the audit log's entries.
func auditEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestAPIPermissions runs the registry API in Caddy with auth (API keys and
// JWTs from an issuer's JWKS on loopback) and permissions, and checks who
// may do what over real HTTP.
func TestAPIPermissions(t *testing.T) {
	key, jwksURL := jwksOnLoopback(t)
	keys := map[string]string{}
	var apiKeys strings.Builder
	for _, who := range []string{"reader", "registrar", "toggler", "admin"} {
		k, err := mcpauth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[who] = k
		fmt.Fprintf(&apiKeys, "\t\t\t\tapi_key %s %s\n", who, mcpauth.HashKey(k))
	}
	base, audit := runCaddy(t, `	route {
		mcp_registry_api {
			auth {
				jwt {
					issuer https://id.example.com
					jwks_url `+jwksURL+`
				}
`+apiKeys.String()+`			}
			permission read {
				principals reader registrar toggler
				scopes registry:read
			}
			permission register {
				principals registrar
			}
			permission toggle {
				principals toggler
			}
			permission * {
				principals admin
				groups admins
			}
		}
		respond "not the API" 418
	}`)
	resource := base + "/api"
	bearerJWT := func(sub string, extra map[string]any) []string {
		c := map[string]any{"iss": "https://id.example.com", "sub": sub, "aud": resource, "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return []string{"Authorization", "Bearer " + jwtFor(t, key, c)}
	}
	apiKey := func(who string) []string { return []string{"X-API-Key", keys[who]} }
	bearerKey := func(who string) []string { return []string{"Authorization", "Bearer " + keys[who]} }
	server := func(name string) map[string]any { return map[string]any{"name": name, "url": "http://127.0.0.1:9/mcp"} }

	// Public: /health, <prefix>/health, other paths of the site.
	for _, path := range []string{"/health", "/api/health"} {
		if status, _, body := call(t, "GET", base+path, nil, nil); status != http.StatusOK {
			t.Errorf("GET %s without credentials: %d %s", path, status, body)
		}
	}
	if status, _, _ := call(t, "GET", base+"/elsewhere", nil, nil); status != http.StatusTeapot {
		t.Errorf("a path that is not the API's: %d, want the next handler's 418", status)
	}

	// Unauthenticated: 401, the challenge, the API's error shape.
	wantChallenge := `Bearer resource_metadata="` + base + `/.well-known/oauth-protected-resource/api"`
	for _, target := range []string{"/api/servers", "/v0.1/servers", "/api/search?q=x"} {
		status, hdr, body := call(t, "GET", base+target, nil, nil)
		code, msg := decodeAPIError(t, body)
		if status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != wantChallenge || code != "unauthorized" ||
			msg != "no credentials: send Authorization: Bearer <token> or X-API-Key: <key>" {
			t.Errorf("GET %s without credentials: %d %q %s", target, status, hdr.Get("WWW-Authenticate"), body)
		}
	}
	status, hdr, body := call(t, "GET", base+"/api/servers", []string{"X-API-Key", "mcpk_guessed"}, nil)
	if code, msg := decodeAPIError(t, body); status != http.StatusUnauthorized || code != "unauthorized" || msg != "unknown API key" ||
		hdr.Get("WWW-Authenticate") != wantChallenge+`, error="invalid_token", error_description="unknown API key"` {
		t.Errorf("an unknown key: %d %q %s", status, hdr.Get("WWW-Authenticate"), body)
	}
	status, hdr, body = call(t, "GET", base+"/api/servers", bearerJWT("bob", map[string]any{"aud": "https://elsewhere.example.com/api"}), nil)
	if code, msg := decodeAPIError(t, body); status != http.StatusUnauthorized || code != "unauthorized" ||
		msg != `audience [https://elsewhere.example.com/api] does not include "`+resource+`"` || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("a token for another resource: %d %q %s", status, hdr.Get("WWW-Authenticate"), body)
	}

	// The metadata the challenge points to.
	status, _, body = call(t, "GET", base+"/.well-known/oauth-protected-resource/api", nil, nil)
	var meta map[string]any
	_ = json.Unmarshal(body, &meta)
	if status != http.StatusOK || meta["resource"] != resource || fmt.Sprint(meta["authorization_servers"]) != "[https://id.example.com]" {
		t.Errorf("metadata: %d %s", status, body)
	}

	// expect makes a request and checks its status, and for a 403 the
	// API's forbidden error naming the principal and the permission.
	expect := func(who string, cred []string, method, path string, body any, want int, perm string) {
		t.Helper()
		status, _, b := call(t, method, base+path, cred, body)
		if status != want {
			t.Errorf("%s %s by %s: %d, want %d: %s", method, path, who, status, want, b)
			return
		}
		if want == http.StatusForbidden {
			code, msg := decodeAPIError(t, b)
			if wantMsg := fmt.Sprintf("principal %q may not %s (needs permission %s)", who, perm, perm); code != "forbidden" || msg != wantMsg {
				t.Errorf("%s %s by %s: %s %q, want forbidden %q", method, path, who, code, msg, wantMsg)
			}
		}
	}

	// reader: reads everything, writes nothing.
	expect("reader", apiKey("reader"), "GET", "/api/servers", nil, 200, "")
	expect("reader", bearerKey("reader"), "GET", "/v0.1/servers", nil, 200, "")
	expect("reader", apiKey("reader"), "GET", "/api/search?q=demo", nil, 200, "")
	expect("reader", apiKey("reader"), "POST", "/api/servers", server("by-reader"), 403, "register")
	expect("reader", apiKey("reader"), "POST", "/api/import", map[string]any{}, 403, "register")

	// registrar: registers, replaces and refreshes, but neither toggles
	// nor deletes.
	expect("registrar", apiKey("registrar"), "POST", "/api/servers", server("demo"), 201, "")
	expect("registrar", apiKey("registrar"), "POST", "/api/servers", server("doomed"), 201, "")
	expect("registrar", bearerKey("registrar"), "PUT", "/api/servers/demo", map[string]any{"url": "http://127.0.0.1:9/mcp", "title": "Demo"}, 200, "")
	expect("registrar", apiKey("registrar"), "PATCH", "/api/servers/demo", map[string]any{"description": "patched"}, 200, "")
	expect("registrar", apiKey("registrar"), "POST", "/api/servers/demo/disable", nil, 403, "toggle")
	expect("registrar", apiKey("registrar"), "DELETE", "/api/servers/demo", nil, 403, "delete")

	// toggler: disables and enables, but does not delete.
	expect("toggler", apiKey("toggler"), "POST", "/api/servers/demo/disable", nil, 200, "")
	expect("toggler", apiKey("toggler"), "GET", "/api/servers/demo", nil, 200, "")
	expect("toggler", apiKey("toggler"), "POST", "/api/servers/demo/enable", nil, 200, "")
	expect("toggler", apiKey("toggler"), "DELETE", "/api/servers/doomed", nil, 403, "delete")
	expect("toggler", apiKey("toggler"), "POST", "/api/servers", server("by-toggler"), 403, "register")

	// admin (*): everything.
	expect("admin", apiKey("admin"), "POST", "/api/servers", server("by-admin"), 201, "")
	expect("admin", apiKey("admin"), "POST", "/api/servers/by-admin/disable", nil, 200, "")
	expect("admin", apiKey("admin"), "DELETE", "/api/servers/by-admin", nil, 204, "")
	expect("admin", apiKey("admin"), "DELETE", "/api/servers/doomed", nil, 204, "")

	// JWT principals: by group, by scope, and one the permissions do not name.
	expect("alice", bearerJWT("alice", map[string]any{"groups": []string{"admins"}}), "POST", "/api/servers", server("by-alice"), 201, "")
	expect("alice", bearerJWT("alice", map[string]any{"groups": "staff admins"}), "DELETE", "/api/servers/by-alice", nil, 204, "")
	expect("bob", bearerJWT("bob", map[string]any{"scope": "registry:read"}), "GET", "/api/servers/demo/tools", nil, 200, "")
	expect("bob", bearerJWT("bob", map[string]any{"scope": "registry:read"}), "POST", "/api/servers/demo/refresh", nil, 403, "register")
	expect("carol", bearerJWT("carol", nil), "GET", "/api/servers", nil, 403, "read")

	status, _, body = call(t, "GET", base+"/api/servers", apiKey("reader"), nil)
	var list struct {
		Servers []struct {
			Name    string `json:"name"`
			Enabled bool   `json:"enabled"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(body, &list); err != nil || status != 200 || len(list.Servers) != 1 || list.Servers[0].Name != "demo" || !list.Servers[0].Enabled {
		t.Errorf("the registry after it all: %d %s", status, body)
	}

	// The audit log: denials at info, grants at debug, and never a key
	// or a token.
	if err := caddy.Stop(); err != nil { // flushes the log
		t.Fatal(err)
	}
	entries := auditEntries(t, audit)
	raw, _ := os.ReadFile(audit)
	for who, k := range keys {
		if bytes.Contains(raw, []byte(k)) {
			t.Errorf("the audit log holds %s's key", who)
		}
	}
	if bytes.Contains(raw, []byte("eyJ")) {
		t.Error("the audit log holds a token")
	}
	find := func(principal, method, path string) map[string]any {
		for _, e := range entries {
			if e["principal"] == principal && e["method"] == method && e["path"] == path {
				return e
			}
		}
		return nil
	}
	for _, tt := range []struct {
		principal, method, path, perm, outcome, level string
	}{
		{"toggler", "DELETE", "/api/servers/doomed", "delete", "denied", "info"},
		{"toggler", "POST", "/api/servers/demo/disable", "toggle", "granted", "debug"},
		{"reader", "GET", "/v0.1/servers", "read", "granted", "debug"},
		{"", "GET", "/api/servers", "read", "unauthenticated", "info"},
		{"carol", "GET", "/api/servers", "read", "denied", "info"},
	} {
		e := find(tt.principal, tt.method, tt.path)
		if e == nil || e["permission"] != tt.perm || e["outcome"] != tt.outcome || e["level"] != tt.level {
			t.Errorf("audit of %s %s by %q: %v, want %s %s at %s", tt.method, tt.path, tt.principal, e, tt.perm, tt.outcome, tt.level)
		}
	}
	if e := find("", "GET", "/health"); e != nil {
		t.Errorf("a public request was audited: %v", e)
	}
}

// bcryptOpenSesame is "open sesame" hashed by bcrypt at its lowest cost,
// so that the test does not spend seconds hashing.
const bcryptOpenSesame = "$2a$04$bN1xCklthwL9Ihk2w/mrXOg5CRPI.vQ6Q3cgglPkZrfuthq8UaDjW"

// TestAPIPermissionsBehindBasicAuth: permissions without auth take the
// principal from Caddy's basic_auth in front.
func TestAPIPermissionsBehindBasicAuth(t *testing.T) {
	base, _ := runCaddy(t, `	basic_auth /api/* {
		alice `+bcryptOpenSesame+`
		bob `+bcryptOpenSesame+`
	}
	mcp_registry_api {
		permission * {
			principals alice
		}
		permission read {
			principals bob
		}
	}`)
	do := func(user, method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if user != "" {
			req.SetBasicAuth(user, "open sesame")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, body := do("bob", "GET", "/api/servers", nil); status != 200 {
		t.Errorf("bob reads: %d %s", status, body)
	}
	status, body := do("bob", "POST", "/api/servers", map[string]any{"name": "x", "url": "http://127.0.0.1:9/mcp"})
	if code, msg := decodeAPIError(t, body); status != 403 || code != "forbidden" || msg != `principal "bob" may not register (needs permission register)` {
		t.Errorf("bob registers: %d %s", status, body)
	}
	if status, body := do("alice", "POST", "/api/servers", map[string]any{"name": "x", "url": "http://127.0.0.1:9/mcp"}); status != 201 {
		t.Errorf("alice registers: %d %s", status, body)
	}
	if status, _ := do("", "GET", "/api/servers", nil); status != 401 {
		t.Errorf("nobody, to basic_auth: %d", status)
	}
	if status, _ := do("", "GET", "/health", nil); status != 200 {
		t.Errorf("/health: %d", status)
	}
	// The official API is outside basic_auth's matcher here: no user, so
	// the handler refuses, without a Bearer challenge it could not honour.
	req, _ := http.NewRequest("GET", base+"/v0.1/servers", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if code, msg := decodeAPIError(t, b); resp.StatusCode != 401 || code != "unauthorized" || resp.Header.Get("WWW-Authenticate") != "" ||
		!strings.HasPrefix(msg, "no user: put Caddy's authentication") {
		t.Errorf("no user at all: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
	}
}

// TestAPIAuthWithoutPermissions: auth alone lets every authenticated
// principal do everything, and its required scopes refuse the others with
// 403 and an insufficient_scope challenge.
func TestAPIAuthWithoutPermissions(t *testing.T) {
	h := officialHandler(remoteRecord("io.example/a", "1.0.0", 0))
	h.Auth = &mcpauth.Config{
		RequiredScopes: []string{"registry"},
		APIKeys: []mcpauth.APIKey{
			{Principal: "ci", Hash: mcpauth.HashKey("mcpk_ci"), Scopes: []string{"registry"}},
			{Principal: "web", Hash: mcpauth.HashKey("mcpk_web")},
		},
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.provisionAccess(ctx); err != nil {
		t.Fatal(err)
	}
	serve := func(method, target, key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusTeapot)
			return nil
		})
		if err := h.ServeHTTP(rec, r, next); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	if rec := serve("GET", "http://reg.example.com/v0.1/servers", "mcpk_ci"); rec.Code != http.StatusOK {
		t.Errorf("ci reads: %d %s", rec.Code, rec.Body)
	}
	// A DELETE the API does not serve needs the delete permission, then
	// goes on to the next handler.
	if rec := serve("DELETE", "http://reg.example.com/api/servers/a/b/c", "mcpk_ci"); rec.Code != http.StatusTeapot {
		t.Errorf("ci deletes: %d %s", rec.Code, rec.Body)
	}
	rec := serve("GET", "http://reg.example.com/api/servers", "mcpk_web")
	code, msg := decodeAPIError(t, rec.Body.Bytes())
	wantChallenge := `Bearer resource_metadata="http://reg.example.com/.well-known/oauth-protected-resource/api", scope="registry", error="insufficient_scope", error_description="principal 'web' lacks scope registry (required: registry)"`
	if rec.Code != http.StatusForbidden || code != "forbidden" || msg != `principal "web" lacks scope registry (required: registry)` || rec.Header().Get("WWW-Authenticate") != wantChallenge {
		t.Errorf("web without the scope: %d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
}
