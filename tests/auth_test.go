package tests

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddy-mcp/caddy-mcp/mcpauth"
	"github.com/caddy-mcp/caddy-mcp/tests/peers"
)

// issuer is an OAuth authorization server as the gateway sees it: keys
// made by the test, their JWKS served on loopback.
type issuer struct {
	name string
	key  *rsa.PrivateKey
	kid  string
	jwks *httptest.Server
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{name: "https://id.example.test", key: key, kid: "k1"}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: iss.kid, Algorithm: "RS256", Use: "sig"}}}
	iss.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(iss.jwks.Close)
	return iss
}

// token signs claims with key (the issuer's own unless another is given),
// after filling in what a good token has.
func (iss *issuer) token(t *testing.T, claims map[string]any, key any, kid string, alg jose.SignatureAlgorithm) string {
	t.Helper()
	now := time.Now()
	full := map[string]any{"iss": iss.name, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(full, k)
		} else {
			full[k] = v
		}
	}
	if key == nil {
		key, kid, alg = iss.key, iss.kid, jose.RS256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(full).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned is a token with alg none, which no verifier may accept.
func unsigned(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "none", "typ": "JWT", "kid": "k1"}) + "." + enc(claims) + "."
}

// authSite is a gateway with every guard on: JWTs from the issuer, an API
// key, a policy, the audit log and two interceptors; its servers are the
// demo (stdio) and the go-sdk conformance server (remote, behind a proxy
// that records what reaches it).
func authSite(t *testing.T, iss *issuer, apiKey string) (*site, *caddyProc, *fpProxy) {
	t.Helper()
	upstream := fpStartProxy(t, peers.StartGoConformanceHTTP(t))
	s := newSite(t)
	// The remote server's own credential, from a secret file: what the
	// upstream must see instead of any client's token.
	secretFile := filepath.Join(t.TempDir(), "upstream-token")
	if err := os.WriteFile(secretFile, []byte(upstreamToken), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := remoteServer("remote", upstream.srv.URL+"/mcp")
	remote["remote"].(map[string]any)["headers"] = map[string]string{"Authorization": "Bearer {file." + secretFile + "}"}
	g := gateway(stdioServer("demo", caddyBinary(t), "mcp", "demo-server"), remote)
	g["auth"] = map[string]any{
		"jwt":              map[string]any{"issuer": iss.name, "jwks_url": iss.jwks.URL},
		"api_keys":         []map[string]any{{"principal": "ci-bot", "hash": mcpauth.HashKey(apiKey), "groups": []string{"bots"}}},
		"scopes_supported": []string{"mcp:tools", "mcp:admin"},
	}
	g["authorization"] = map[string]any{"rules": []map[string]any{
		{"principals": []string{"alice"}, "servers": []string{"demo", "remote"}, "tools": []string{"echo", "add", "test_simple_text"}},
		{"groups": []string{"bots"}, "servers": []string{"demo"}, "tools": []string{"echo"}, "methods": []string{"tools/list", "tools/call"}},
		{"scopes": []string{"mcp:admin"}, "servers": []string{"demo"}},
	}}
	g["audit"] = true
	g["interceptors"] = []map[string]any{
		{"interceptor": "secret_scan"},
		{"interceptor": "size_limit", "arguments": 4096},
	}
	g["max_request_body"] = 64 << 10
	s.handle(g)
	return s, s.start(t), upstream
}

// bearer is an HTTP client that sends a token with every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func withToken(token string) *http.Client {
	return &http.Client{Transport: &bearer{token, http.DefaultTransport}}
}

// upstreamToken is the remote server's own credential.
const upstreamToken = "upstream-secret-7f3a"

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"attack","version":"0"}}}`

// rawPost sends one JSON-RPC message and returns the answer, body read.
func rawPost(t *testing.T, url, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h1Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestAuthAttacks is the README's attack table, each row against a running
// gateway: what an attacker sends, and what the gateway must answer.
func TestAuthAttacks(t *testing.T) {
	iss := newIssuer(t)
	apiKey, err := mcpauth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	s, proc, upstream := authSite(t, iss, apiKey)
	aggregate := s.url("/mcp")
	good := func(sub string, extra map[string]any) string {
		c := map[string]any{"sub": sub, "aud": aggregate}
		for k, v := range extra {
			c[k] = v
		}
		return iss.token(t, c, nil, "", "")
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	// alice's session, for the hijack rows.
	alice := connectVersion(t, aggregate, withToken(good("alice", nil)), nil, "2025-11-25")
	aliceSession := alice.ID()

	type attack struct {
		name      string
		url       string
		body      string
		header    http.Header
		status    int
		challenge []string // in WWW-Authenticate
		says      string   // in the body
	}
	bigArgs := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__echo","arguments":{"text":"` + strings.Repeat("a", 70<<10) + `"}}}`
	attacks := []attack{
		{name: "no token", url: aggregate, body: initializeBody, status: 401,
			challenge: []string{`resource_metadata="` + s.url("/.well-known/oauth-protected-resource/mcp") + `"`}, says: "no credentials"},
		{name: "expired token", url: aggregate, body: initializeBody, status: 401, challenge: []string{`error="invalid_token"`}, says: "expired",
			header: hdr("Authorization", "Bearer "+good("alice", map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}))},
		{name: "wrong audience", url: aggregate, body: initializeBody, status: 401, challenge: []string{`error="invalid_token"`}, says: "audience",
			header: hdr("Authorization", "Bearer "+good("alice", map[string]any{"aud": "https://elsewhere.example/mcp"}))},
		{name: "token for another endpoint of the gateway", url: s.url("/servers/demo/mcp"), body: initializeBody, status: 401, says: "audience",
			header: hdr("Authorization", "Bearer "+good("alice", nil))},
		{name: "wrong issuer", url: aggregate, body: initializeBody, status: 401, challenge: []string{`error="invalid_token"`}, says: "issuer",
			header: hdr("Authorization", "Bearer "+good("alice", map[string]any{"iss": "https://evil.example"}))},
		{name: "alg none", url: aggregate, body: initializeBody, status: 401, challenge: []string{`error="invalid_token"`}, says: "none",
			header: hdr("Authorization", "Bearer "+unsigned(map[string]any{"iss": iss.name, "sub": "alice", "aud": aggregate, "exp": time.Now().Add(time.Hour).Unix()}))},
		{name: "signed by another key, same kid", url: aggregate, body: initializeBody, status: 401, challenge: []string{`error="invalid_token"`},
			header: hdr("Authorization", "Bearer "+iss.token(t, map[string]any{"sub": "alice", "aud": aggregate}, otherKey, iss.kid, jose.RS256))},
		{name: "signed by an unknown key", url: aggregate, body: initializeBody, status: 401, challenge: []string{`error="invalid_token"`},
			header: hdr("Authorization", "Bearer "+iss.token(t, map[string]any{"sub": "alice", "aud": aggregate}, ecKey, "k9", jose.ES256))},
		{name: "HS256 with the public key as secret", url: aggregate, body: initializeBody, status: 401, challenge: []string{`error="invalid_token"`},
			header: hdr("Authorization", "Bearer "+iss.token(t, map[string]any{"sub": "alice", "aud": aggregate}, publicKeyBytes(t, iss), iss.kid, jose.HS256))},
		{name: "unknown API key", url: aggregate, body: initializeBody, status: 401, header: hdr("X-API-Key", "mcpk_guessed")},
		{name: "missing scope", url: aggregate, status: 403, challenge: []string{`error="insufficient_scope"`, `scope="mcp:admin"`}, says: "insufficient scope",
			body:   `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__time","arguments":{}}}`,
			header: hdr("Authorization", "Bearer "+good("alice", nil), "Mcp-Session-Id", aliceSession, "MCP-Protocol-Version", alice.InitializeResult().ProtocolVersion)},
		{name: "another principal's session", url: aggregate, status: 403, says: "another principal",
			body:   `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`,
			header: hdr("Authorization", "Bearer "+good("mallory", nil), "Mcp-Session-Id", aliceSession, "MCP-Protocol-Version", alice.InitializeResult().ProtocolVersion)},
		{name: "another principal's session, tools/call", url: aggregate, status: 403, says: "another principal",
			body:   `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"remote__test_simple_text","arguments":{}}}`,
			header: hdr("Authorization", "Bearer "+good("mallory", nil), "Mcp-Session-Id", aliceSession, "MCP-Protocol-Version", alice.InitializeResult().ProtocolVersion)},
		{name: "foreign Origin", url: aggregate, body: initializeBody, status: 403, says: "origin",
			header: hdr("Authorization", "Bearer "+good("alice", nil), "Origin", "https://evil.example")},
		{name: "oversized input", url: aggregate, body: bigArgs, status: 413, says: "larger than",
			header: hdr("Authorization", "Bearer "+good("alice", nil), "Mcp-Session-Id", aliceSession, "MCP-Protocol-Version", alice.InitializeResult().ProtocolVersion)},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			resp, body := rawPost(t, a.url, a.body, a.header)
			if resp.StatusCode != a.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, a.status, body)
			}
			for _, want := range a.challenge {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, want) {
					t.Errorf("WWW-Authenticate %q, want it to contain %q", got, want)
				}
			}
			if !strings.Contains(strings.ToLower(body), strings.ToLower(a.says)) {
				t.Errorf("body %s, want it to say %q", body, a.says)
			}
			for _, secret := range []string{apiKey, "mcpk_guessed"} {
				if strings.Contains(body, secret) {
					t.Errorf("the answer repeats a credential: %s", body)
				}
			}
		})
	}

	// Refusals inside a session: a JSON-RPC error, the call never upstream.
	ctx := context.Background()
	refusals := []struct {
		name, tool string
		args       map[string]any
		says       string
	}{
		{"tool the policy denies", "remote__test_tool_with_logging", nil, `principal "alice" may not tools/call tool "test_tool_with_logging" of server "remote"`},
		{"secret in arguments", "demo__echo", map[string]any{"text": "token ghp_" + strings.Repeat("x", 36)}, "secret"},
		{"arguments over the interceptor's limit", "demo__echo", map[string]any{"text": strings.Repeat("b", 5000)}, "limit"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			from := len(upstream.seen())
			_, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: r.tool, Arguments: r.args})
			var rpcErr *jsonrpc.Error
			if !errors.As(err, &rpcErr) || rpcErr.Code != caddymcp.CodeRefused || !strings.Contains(rpcErr.Message, r.says) {
				t.Fatalf("call %s: %v, want a %d refusal saying %q", r.tool, err, caddymcp.CodeRefused, r.says)
			}
			upstream.noCallSince(t, from, r.tool)
		})
	}

	t.Run("allowed calls", func(t *testing.T) {
		res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "demo__echo", Arguments: map[string]any{"text": "hi"}})
		if err != nil || !strings.Contains(text(res), "hi") {
			t.Fatalf("demo__echo: %v %v", res, err)
		}
		res, err = alice.CallTool(ctx, &mcp.CallToolParams{Name: "remote__test_simple_text"})
		if err != nil || res.IsError {
			t.Fatalf("remote__test_simple_text: %v %v", res, err)
		}
	})

	t.Run("tools/list shows only what the principal may call", func(t *testing.T) {
		got := strings.Join(toolNames(t, alice), " ")
		if got != "demo__add demo__echo remote__test_simple_text" {
			t.Fatalf("alice sees %q", got)
		}
		bot := connect(t, aggregate, &http.Client{Transport: &apiKeyTransport{apiKey}}, nil)
		if got := strings.Join(toolNames(t, bot), " "); got != "demo__echo" {
			t.Fatalf("ci-bot sees %q", got)
		}
		admin := connect(t, aggregate, withToken(good("root", map[string]any{"scope": "mcp:admin"})), nil)
		for _, name := range toolNames(t, admin) {
			if !strings.HasPrefix(name, "demo__") {
				t.Fatalf("mcp:admin sees %q, a tool of another server than demo", name)
			}
		}
	})

	t.Run("the client's token never reaches an upstream", func(t *testing.T) {
		seen := upstream.seen()
		if len(seen) == 0 {
			t.Fatal("the upstream saw no request")
		}
		for _, x := range seen {
			if x.auth != "Bearer "+upstreamToken {
				t.Fatalf("the upstream got Authorization %q, want its own credential from the secret file", x.auth)
			}
		}
	})

	t.Run("another principal's legacy SSE session", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, aggregate, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+good("alice", nil))
		resp, err := h1Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("SSE GET: %s", resp.Status)
		}
		var endpoint string
		sseEvents(t, resp.Body, func(event, data string) bool {
			if event == "endpoint" {
				endpoint = data
			}
			return endpoint == ""
		})
		post := s.url(endpoint)
		if r, body := rawPost(t, post, initializeBody, hdr("Authorization", "Bearer "+good("alice", nil))); r.StatusCode != http.StatusAccepted {
			t.Fatalf("alice's initialize on her stream: %s %s", r.Status, body)
		}
		list := `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`
		if r, body := rawPost(t, post, list, hdr("Authorization", "Bearer "+good("mallory", nil))); r.StatusCode != http.StatusForbidden ||
			!strings.Contains(body, "another principal") {
			t.Fatalf("mallory posting to alice's SSE session: %s %s", r.Status, body)
		}
		if r, body := rawPost(t, post, list, hdr("Authorization", "Bearer "+good("alice", nil))); r.StatusCode != http.StatusAccepted {
			t.Fatalf("alice posting to her SSE session: %s %s", r.Status, body)
		}
	})

	t.Run("audit log", func(t *testing.T) {
		type event struct {
			Logger, Msg, Principal, Method, Server, Tool, Reason string
		}
		var events []event
		for line := range strings.SplitSeq(proc.logs(), "\n") {
			var e event
			if json.Unmarshal([]byte(line), &e) == nil && e.Logger == "http.handlers.mcp_gateway.audit" {
				events = append(events, e)
			}
		}
		want := []event{
			{Logger: "http.handlers.mcp_gateway.audit", Msg: "unauthenticated", Reason: "no credentials"},
			{Logger: "http.handlers.mcp_gateway.audit", Msg: "denied", Principal: "alice", Method: "tools/call", Server: "demo", Tool: "time"},
			{Logger: "http.handlers.mcp_gateway.audit", Msg: "denied", Principal: "alice", Method: "tools/call", Server: "remote", Tool: "test_tool_with_logging"},
			{Logger: "http.handlers.mcp_gateway.audit", Msg: "allowed", Principal: "alice", Method: "tools/call", Server: "demo", Tool: "echo"},
			{Logger: "http.handlers.mcp_gateway.audit", Msg: "allowed", Principal: "ci-bot", Method: "tools/list"},
		}
		for _, w := range want {
			if !slices.Contains(events, w) {
				t.Errorf("no audit event %+v among %d", w, len(events))
			}
		}
		logs := proc.logs()
		for _, secret := range []string{apiKey, good("alice", nil)[:40], upstreamToken} {
			if strings.Contains(logs, secret) {
				t.Errorf("Caddy's log holds a credential (%.12s…)", secret)
			}
		}
	})

	t.Run("protected resource metadata", func(t *testing.T) {
		for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
			resp, err := http.Get(s.url(path))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || doc["resource"] != aggregate ||
				fmt.Sprint(doc["authorization_servers"]) != "["+iss.name+"]" {
				t.Fatalf("%s: %d %v %v", path, resp.StatusCode, doc, err)
			}
		}
		resp, err := http.Get(s.url("/.well-known/oauth-protected-resource/servers/demo/mcp"))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if doc["resource"] != s.url("/servers/demo/mcp") {
			t.Fatalf("demo's metadata names resource %v", doc["resource"])
		}
	})
}

// apiKeyTransport sends an API key the way scripts do: X-API-Key.
type apiKeyTransport struct{ key string }

func (a *apiKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", a.key)
	return http.DefaultTransport.RoundTrip(r)
}

// publicKeyBytes is the issuer's public key as an attacker would use it as
// an HMAC secret.
func publicKeyBytes(t *testing.T, iss *issuer) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: &iss.key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sseEvents reads server-sent events, passing each event's name and data
// to fn until it says stop.
func sseEvents(t *testing.T, r io.Reader, fn func(event, data string) bool) {
	t.Helper()
	sc := bufio.NewScanner(r)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		case line == "":
			if !fn(event, data) {
				return
			}
			event, data = "", ""
		}
	}
	t.Fatalf("event stream ended: %v", sc.Err())
}
