package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// officialRegistry serves server documents the way the official MCP
// Registry does, at /v0.1/servers/{name}/versions/{version} (and /v0):
// the fixtures of the official registry, plus documents of the test's own.
func officialRegistry(t *testing.T, extra map[string]string) *httptest.Server {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(peers.RepoRoot(t), "..", "shared", "fixtures", "official-registry", "servers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Servers []json.RawMessage `json:"servers"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	docs := map[string][]byte{}
	for _, item := range list.Servers {
		var s struct {
			Server struct{ Name, Version string } `json:"server"`
		}
		if err := json.Unmarshal(item, &s); err != nil {
			t.Fatal(err)
		}
		docs[s.Server.Name+"/"+s.Server.Version] = item
		docs[s.Server.Name+"/latest"] = item // sorted by version: the last wins
	}
	for k, v := range extra {
		docs[k] = []byte(v)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v0.1/servers/")
		if !ok {
			rest, ok = strings.CutPrefix(r.URL.EscapedPath(), "/v0/servers/")
		}
		esc, version, found := strings.Cut(rest, "/versions/")
		serverName, err := url.PathUnescape(esc)
		doc := docs[serverName+"/"+version]
		if !ok || !found || err != nil || doc == nil {
			http.Error(w, `{"title":"Not Found","status":404}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// caddyCmd runs the Caddy binary with args, its data directory (the
// catalog cache) in dir; it returns stdout, stderr and the error.
func caddyCmd(t *testing.T, dir string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBinary(t), args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "HOME="+dir, "DOCKER_CONFIG="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestCatalogImportPushServe: a server document in the official shape,
// imported twice into an OCI registry on loopback (go-containerregistry's),
// gives the same digest; the gateway then serves it from oci_refs, and a
// tool is called through it.
func TestCatalogImportPushServe(t *testing.T) {
	upstream := peers.StartGoConformanceHTTP(t)
	doc := `{"server": {"$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
		"name": "io.example/conformance", "description": "The go-sdk conformance server", "version": "1.0.0",
		"remotes": [{"type": "streamable-http", "url": "` + upstream + `"}]}, "_meta": {}}`
	official := officialRegistry(t, map[string]string{"io.example/conformance/latest": doc})
	oci := httptest.NewServer(registry.New())
	t.Cleanup(oci.Close)
	repo := strings.TrimPrefix(oci.URL, "http://") + "/team/mcp"
	dir := t.TempDir()

	var refs []string
	for range 2 {
		out, stderr, err := caddyCmd(t, dir, "mcp", "import", "--push", "io.example/conformance", repo, "--registry", official.URL)
		if err != nil {
			t.Fatalf("caddy mcp import: %v\n%s", err, stderr)
		}
		refs = append(refs, strings.TrimSpace(out))
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(repo) + `@sha256:[0-9a-f]{64}$`).MatchString(refs[0]) {
		t.Fatalf("import printed %q, want %s@sha256:…", refs[0], repo)
	}
	if refs[0] != refs[1] {
		t.Errorf("the same document imported twice: %s then %s", refs[0], refs[1])
	}
	// The same by URL, in both API versions.
	for _, u := range []string{official.URL + "/v0.1/servers/io.example%2Fconformance/versions/latest", official.URL + "/v0/servers/io.example%2Fconformance/versions/latest"} {
		out, stderr, err := caddyCmd(t, dir, "mcp", "import", u, repo)
		if err != nil || strings.TrimSpace(out) != refs[0] {
			t.Errorf("import of %s: %q %v %s, want %s", u, out, err, stderr, refs[0])
		}
	}

	out, stderr, err := caddyCmd(t, dir, "mcp", "catalog", "inspect", refs[0])
	if err != nil || !strings.Contains(out, "conformance  remote "+upstream) || !strings.Contains(out, "from io.example/conformance 1.0.0") {
		t.Errorf("catalog inspect: %v\n%s%s", err, out, stderr)
	}

	// Served from oci_refs: the gateway pulls the catalog at load.
	s := newSite(t)
	s.routes = []map[string]any{{"handle": []map[string]any{{"handler": "mcp_gateway", "oci_refs": []string{refs[0]}}}}}
	p := startCaddy(t, s.json(t), "", "XDG_DATA_HOME="+dir)
	p.admin = "http://" + s.admin
	waitHTTP(t, p, p.admin+"/config/")
	cs := connect(t, s.url("/servers/conformance/mcp"), h1Client(), nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"})
	if err != nil || !strings.Contains(text(res), "simple text") {
		t.Errorf("a tool of the imported server: %v %q", err, text(res))
	}

	// The quick start: caddy mcp gateway --oci-ref, no config file.
	listen := freeAddr(t)
	gw := exec.Command(caddyBinary(t), "mcp", "gateway", "--oci-ref", refs[0], "--listen", listen)
	gw.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "HOME="+dir)
	var gwOut bytes.Buffer
	gw.Stdout, gw.Stderr = &gwOut, &gwOut
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = gw.Process.Signal(os.Interrupt)
		_ = gw.Wait()
	})
	waitUp(t, "http://"+listen+"/mcp", "caddy mcp gateway", &gwOut)
	agg := connect(t, "http://"+listen+"/mcp", h1Client(), nil)
	res, err = agg.CallTool(context.Background(), &mcp.CallToolParams{Name: "conformance__test_simple_text"})
	if err != nil || !strings.Contains(text(res), "simple text") {
		t.Errorf("through caddy mcp gateway: %v %q\n%s", err, text(res), gwOut.String())
	}
}

// TestCatalogBadInput: what import and pull refuse, each with a non-zero
// exit and a message that says why.
func TestCatalogBadInput(t *testing.T) {
	big := `{"server": {"name": "io.example/big", "description": "` + strings.Repeat("x", 1<<20) + `"}}`
	official := officialRegistry(t, map[string]string{"io.example/big/latest": big})
	oci := httptest.NewServer(registry.New())
	t.Cleanup(oci.Close)
	host := strings.TrimPrefix(oci.URL, "http://")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	imgRef, err := name.ParseReference(host + "/team/image:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(imgRef, img); err != nil {
		t.Fatal(err)
	}
	// A registry that refuses us: every request answered 401, as one that
	// wants credentials we do not have.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="team"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	t.Cleanup(refusing.Close)
	refusingHost := strings.TrimPrefix(refusing.URL, "http://")
	file := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(file, []byte(`{"schema_version": 1, "servers": [{"server": {"name": "one", "remote": {"url": "https://one.example.com/mcp"}}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"a registry that refuses a push", []string{"mcp", "catalog", "push", file, refusingHost + "/team/mcp:v1"}, "401 Unauthorized"},
		{"a registry that refuses a pull", []string{"mcp", "catalog", "pull", refusingHost + "/team/mcp:v1"}, "401 Unauthorized"},
		{"a catalog file that is not one", []string{"mcp", "catalog", "push", filepath.Join(peers.RepoRoot(t), "go.mod"), host + "/team/mcp:v1"}, "not valid"},
		{"unknown server", []string{"mcp", "import", "io.example/nothing", host + "/team/mcp", "--registry", official.URL}, "unknown server"},
		{"oversized document", []string{"mcp", "import", "io.example/big", host + "/team/mcp", "--registry", official.URL}, "over 1 MiB"},
		{"a name without a registry", []string{"mcp", "import", "io.example/x", host + "/team/mcp"}, "--registry"},
		{"a digest as the target", []string{"mcp", "import", "io.example/x", host + "/team/mcp@sha256:" + strings.Repeat("0", 64), "--registry", official.URL}, "not a digest"},
		{"only packages that cannot run", []string{"mcp", "import", "io.github.domdomegg/time-mcp-nuget", host + "/team/mcp", "--registry", official.URL}, "nuget"},
		{"an image, not a catalog", []string{"mcp", "catalog", "pull", imgRef.String()}, "not a caddy-mcp catalog"},
		{"a registry that is not there", []string{"mcp", "catalog", "pull", "127.0.0.1:1/team/mcp:1"}, "connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := caddyCmd(t, dir, tt.args...)
			if err == nil {
				t.Fatalf("exit 0; stdout %q", out)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q, want it to say %q", stderr, tt.want)
			}
			if strings.TrimSpace(out) != "" {
				t.Errorf("a failed command printed %q on stdout", out)
			}
		})
	}
}

// startDockerRegistry runs Debian's docker-registry (the CNCF distribution
// registry, a real one) on loopback with its storage in a temporary
// directory; .ci/run installs it.
func startDockerRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("docker-registry is not installed: apt-get install docker-registry (.ci/run does)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "+
		filepath.Join(dir, "data")+"\nhttp:\n  addr: "+addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", config)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitUp(t, "http://"+addr+"/v2/", "docker-registry", &out)
	return addr
}

// waitUp waits until a process answers HTTP at url, at most 30 s; out is
// what it printed, shown if it does not.
func waitUp(t *testing.T, url, what string, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer at %s: %v\n%s", what, url, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCatalogRealRegistry pushes an imported catalog to a real OCI
// registry, pulls it back with a cold cache and inspects it, and pushes a
// catalog file of several servers by tag.
func TestCatalogRealRegistry(t *testing.T) {
	host := startDockerRegistry(t)
	// A server whose oci package is an image in that registry: the
	// artifact's subject is that image.
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	imgRef, err := name.ParseReference(host + "/team/server:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(imgRef, img); err != nil {
		t.Fatal(err)
	}
	imgDigest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	official := officialRegistry(t, map[string]string{"io.example/boxed/latest": `{"server": {"name": "io.example/boxed", "description": "in a container", "version": "1.0.0",
		"packages": [{"registryType": "oci", "identifier": "` + host + `/team/server:1.0.0", "transport": {"type": "stdio"}}]}}`})
	dir := t.TempDir()
	repo := host + "/team/mcp"
	boxed, stderr, err := caddyCmd(t, dir, "mcp", "import", "--push", "io.example/boxed", repo, "--registry", official.URL)
	if err != nil {
		t.Fatalf("import --push of an oci package: %v\n%s", err, stderr)
	}
	d, err := name.NewDigest(strings.TrimSpace(boxed))
	if err != nil {
		t.Fatalf("import printed %q: %v", boxed, err)
	}
	desc, err := remote.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Subject *struct{ Digest string } `json:"subject"`
	}
	if err := json.Unmarshal(desc.Manifest, &manifest); err != nil || manifest.Subject == nil || manifest.Subject.Digest != imgDigest.String() {
		t.Errorf("the catalog of an oci package: subject %+v, want the image %s\n%s", manifest.Subject, imgDigest, desc.Manifest)
	}

	// A real server of the official registry; its image is on Docker Hub,
	// out of reach here, so without a subject.
	ref, stderr, err := caddyCmd(t, dir, "mcp", "import", "--push", "--subject=false", "io.github.domdomegg/airtable-mcp-server", repo+":airtable", "--registry", official.URL)
	if err != nil {
		t.Fatalf("import --push to docker-registry: %v\n%s", err, stderr)
	}
	ref = strings.TrimSpace(ref)
	for _, r := range []string{ref, repo + ":airtable"} {
		out, stderr, err := caddyCmd(t, t.TempDir(), "mcp", "catalog", "pull", r)
		if err != nil {
			t.Fatalf("pull %s from docker-registry: %v\n%s", r, err, stderr)
		}
		var c struct {
			Servers []struct {
				Server struct{ Name string } `json:"server"`
				Source string                `json:"source"`
			} `json:"servers"`
		}
		if err := json.Unmarshal([]byte(out), &c); err != nil || len(c.Servers) != 1 || c.Servers[0].Source != "io.github.domdomegg/airtable-mcp-server" {
			t.Errorf("pulled %s: %v\n%s", r, err, out)
		}
		if strings.Contains(out, "pat") && strings.Contains(out, `"AIRTABLE_API_KEY": "pat`) {
			t.Errorf("a secret in clear in the catalog:\n%s", out)
		}
	}

	// A catalog of several servers, from a file, by tag.
	file := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(file, []byte(`{"schema_version": 1, "servers": [
		{"server": {"name": "one", "remote": {"url": "https://one.example.com/mcp"}}},
		{"server": {"name": "two", "stdio": {"command": "npx", "args": ["-y", "some-server@1.0.0"]}}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = caddyCmd(t, dir, "mcp", "catalog", "push", file, repo+":team")
	if err != nil {
		t.Fatalf("catalog push: %v\n%s", err, stderr)
	}
	out, stderr, err := caddyCmd(t, t.TempDir(), "mcp", "catalog", "inspect", repo+":team")
	if err != nil || !strings.Contains(out, "one  remote https://one.example.com/mcp") || !strings.Contains(out, "two  stdio npx -y some-server@1.0.0") {
		t.Errorf("inspect of a pushed catalog file: %v\n%s%s", err, out, stderr)
	}
}

// TestCatalogIntoRegistry imports a catalog into the mcp_registry app
// through its API: a remote server becomes a record, served at once; a stdio
// server is refused without allow_commands, and the other still lands;
// importing again changes nothing.
func TestCatalogIntoRegistry(t *testing.T) {
	upstream := peers.StartGoConformanceHTTP(t)
	oci := httptest.NewServer(registry.New())
	t.Cleanup(oci.Close)
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(file, []byte(`{"schema_version": 1, "servers": [
		{"server": {"name": "conf", "remote": {"url": "`+upstream+`"}}, "title": "Conformance", "version": "1.0.0"},
		{"server": {"name": "local", "stdio": {"command": "npx", "args": ["-y", "some-server@1.0.0"]}}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := caddyCmd(t, dir, "mcp", "catalog", "push", file, strings.TrimPrefix(oci.URL, "http://")+"/team/mcp:v1")
	if err != nil {
		t.Fatalf("catalog push: %v\n%s", err, stderr)
	}
	ref := strings.TrimSpace(out)

	s := registrySite(t, nil)
	p := startCaddy(t, s.json(t), "", "XDG_DATA_HOME="+dir)
	p.admin = "http://" + s.admin
	waitHTTP(t, p, s.url("/health"))

	status, _, body := apiCall(t, "POST", s.url("/api/import"), map[string]any{"ref": ref}, nil)
	if status != http.StatusOK || body["ref"] != ref {
		t.Fatalf("POST /api/import: %d %v", status, body)
	}
	results := map[string]string{}
	for _, r := range body["servers"].([]any) {
		r := r.(map[string]any)
		results[r["name"].(string)] = r["result"].(string)
		if r["name"] == "local" {
			if e, _ := r["error"].(map[string]any); e["code"] != "forbidden" {
				t.Errorf("the stdio server was refused with %v, want code forbidden", e)
			}
		}
	}
	if results["conf"] != "created" || results["local"] != "refused" {
		t.Errorf("import results %v, want conf created and local refused", results)
	}
	cs := connect(t, s.url("/servers/conf/mcp"), h1Client(), nil)
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"}); err != nil || !strings.Contains(text(res), "simple text") {
		t.Errorf("a tool of the imported server: %v", err)
	}
	if _, _, rec := apiCall(t, "GET", s.url("/api/servers/conf"), nil, nil); rec["title"] != "Conformance" || rec["version"] != "1.0.0" {
		t.Errorf("the imported record: %v", rec)
	}

	_, _, again := apiCall(t, "POST", s.url("/api/import"), map[string]any{"ref": ref}, nil)
	if r := again["servers"].([]any)[0].(map[string]any); r["result"] != "unchanged" {
		t.Errorf("importing again: %v, want unchanged", r)
	}
	// The same from the command line, through the admin API: it reports
	// each server and fails because one was refused.
	out, stderr, err = caddyCmd(t, dir, "mcp", "registry", "import", ref, "--admin", s.admin)
	if err == nil || !strings.Contains(out, "conf: unchanged") || !strings.Contains(out, "local: refused: ") || !strings.Contains(stderr, "1 of 2 servers") {
		t.Errorf("caddy mcp registry import: %v\n%s%s", err, out, stderr)
	}
	for _, tt := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{}, http.StatusBadRequest, "invalid_field"},
		{map[string]any{"ref": "127.0.0.1:1/team/mcp:v1"}, http.StatusBadGateway, "catalog_unavailable"},
		{map[string]any{"ref": ref, "extra": 1}, http.StatusBadRequest, "unknown_field"},
	} {
		status, _, body := apiCall(t, "POST", s.url("/api/import"), tt.body, nil)
		if e, _ := body["error"].(map[string]any); status != tt.status || e["code"] != tt.code {
			t.Errorf("POST /api/import %v: %d %v, want %d %s", tt.body, status, body, tt.status, tt.code)
		}
	}
}
