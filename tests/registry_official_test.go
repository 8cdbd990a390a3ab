package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/google/go-containerregistry/pkg/registry"
	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
)

// officialCall GETs a URL of the official API through Caddy and decodes
// the answer strictly into out (an official type, or a problem).
func officialCall(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("GET %s: %d, not a %T: %v\n%s", url, resp.StatusCode, out, err, body)
	}
	return resp.StatusCode
}

// TestRegistryOfficialImport: a server registered through a running
// Caddy's registry API is served in the official MCP Registry's shapes,
// and another caddy-mcp imports it from there (caddy mcp import --registry)
// as it would from the official registry: the catalog it builds reaches the
// server's URL, and the secret header is a placeholder, not a value.
func TestRegistryOfficialImport(t *testing.T) {
	upstream := peers.StartGoConformanceHTTP(t)
	s := registrySite(t, nil)
	s.start(t)
	status, _, rec := apiCall(t, "POST", s.url("/api/servers"), map[string]any{
		"name": "conf", "title": "Conformance", "version": "1.0.0", "url": upstream,
		"headers": map[string]string{"X-API-Key": "{env.CONF_API_KEY}", "X-Region": "eu"},
	}, nil)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/servers: %d %v", status, rec)
	}
	// Not served in the official shape: a disabled server.
	if status, _, rec := apiCall(t, "POST", s.url("/api/servers"), map[string]any{"name": "off", "url": upstream, "enabled": false}, nil); status != http.StatusCreated {
		t.Fatalf("POST /api/servers (disabled): %d %v", status, rec)
	}

	var list apiv0.ServerListResponse
	if code := officialCall(t, s.url("/v0.1/servers"), &list); code != http.StatusOK || list.Metadata.Count != 1 || len(list.Servers) != 1 {
		t.Fatalf("GET /v0.1/servers: %d %+v, want conf alone", code, list)
	}
	got := list.Servers[0]
	if got.Server.Name != "conf" || got.Server.Version != "1.0.0" || len(got.Server.Remotes) != 1 || got.Server.Remotes[0].URL != upstream ||
		got.Meta.Official == nil || !got.Meta.Official.IsLatest {
		t.Errorf("conf in the official shape: %+v", got)
	}
	var one apiv0.ServerResponse
	if code := officialCall(t, s.url("/v0/servers/conf/versions/latest"), &one); code != http.StatusOK || one.Server.Name != "conf" {
		t.Errorf("GET /v0/servers/conf/versions/latest: %d %+v", code, one)
	}
	var p struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if code := officialCall(t, s.url("/v0.1/servers/off/versions/latest"), &p); code != http.StatusNotFound || p.Status != http.StatusNotFound {
		t.Errorf("a disabled server in the official API: %d %+v, want 404", code, p)
	}
	// A path-escaped name comes through Caddy whole: %2F is part of it.
	if code := officialCall(t, s.url("/v0.1/servers/io.example%2Fconf/versions/latest"), &p); code != http.StatusNotFound || !strings.Contains(p.Detail, `"io.example/conf"`) {
		t.Errorf("an escaped name: %d %+v, want 404 naming io.example/conf", code, p)
	}

	// Imported by name from this registry, as from the official one.
	oci := httptest.NewServer(registry.New())
	t.Cleanup(oci.Close)
	repo := strings.TrimPrefix(oci.URL, "http://") + "/team/mcp"
	dir := t.TempDir()
	out, stderr, err := caddyCmd(t, dir, "mcp", "import", "conf", repo, "--registry", s.url(""))
	if err != nil {
		t.Fatalf("caddy mcp import from our registry: %v\n%s", err, stderr)
	}
	ref := strings.TrimSpace(out)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(repo) + `@sha256:[0-9a-f]{64}$`).MatchString(ref) {
		t.Fatalf("import printed %q, want %s@sha256:…", ref, repo)
	}
	if !strings.Contains(stderr, "provide X_API_KEY where the gateway runs (required, secret)") {
		t.Errorf("import does not ask for the secret header:\n%s", stderr)
	}

	// Pushed, the same digest; pulled, the catalog it built.
	out, stderr, err = caddyCmd(t, dir, "mcp", "import", "--push", "conf", repo, "--registry", s.url(""))
	if err != nil || strings.TrimSpace(out) != ref {
		t.Fatalf("import --push: %q %v, want %s\n%s", out, err, ref, stderr)
	}
	out, stderr, err = caddyCmd(t, t.TempDir(), "mcp", "catalog", "pull", ref)
	if err != nil {
		t.Fatalf("catalog pull %s: %v\n%s", ref, err, stderr)
	}
	var c struct {
		Servers []struct {
			Server struct {
				Name   string `json:"name"`
				Remote struct {
					URL     string            `json:"url"`
					Headers map[string]string `json:"headers"`
				} `json:"remote"`
			} `json:"server"`
			Source    string `json:"source"`
			Version   string `json:"version"`
			Variables []struct {
				Name     string `json:"name"`
				Required bool   `json:"required"`
				Secret   bool   `json:"secret"`
			} `json:"variables"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || len(c.Servers) != 1 {
		t.Fatalf("the pulled catalog: %v\n%s", err, out)
	}
	e := c.Servers[0]
	if e.Server.Name != "conf" || e.Source != "conf" || e.Version != "1.0.0" || e.Server.Remote.URL != upstream {
		t.Errorf("the imported server: %+v, want conf 1.0.0 at %s", e, upstream)
	}
	if h := e.Server.Remote.Headers; h["X-API-Key"] != "{env.X_API_KEY}" || h["X-Region"] != "eu" {
		t.Errorf("the imported headers: %v, want X-API-Key {env.X_API_KEY} and X-Region eu", h)
	}
	if len(e.Variables) != 1 || e.Variables[0].Name != "X_API_KEY" || !e.Variables[0].Required || !e.Variables[0].Secret {
		t.Errorf("the imported variables: %+v, want X_API_KEY, required and secret", e.Variables)
	}
	if strings.Contains(out, "CONF_API_KEY") {
		t.Errorf("the registry's own placeholder reached the catalog:\n%s", out)
	}
}
