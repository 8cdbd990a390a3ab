package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestCaddyfileExample runs Caddyfile.example as shipped, on https://localhost
// with Caddy's internal CA, and lists and calls the demo server's tools
// through it with the Go SDK client and with the MCP Inspector CLI. Only the
// ports, the admin address and the storage are moved, so that the test needs
// no privileged ports and leaves the machine's trust store alone.
func TestCaddyfileExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(peers.RepoRoot(t), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	admin, httpAddr, httpsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	global := "\tadmin " + admin + "\n\thttp_port " + httpPort + "\n\thttps_port " + httpsPort +
		"\n\tskip_install_trust\n\tstorage file_system " + filepath.Join(dir, "storage") + "\n"
	config := withGlobalOptions(string(example), global)

	p := startCaddy(t, []byte(config), "caddyfile")
	p.admin = "http://" + admin
	waitHTTP(t, p, p.admin+"/config/")

	rootPEM := waitFile(t, p, filepath.Join(dir, "storage", "pki", "authorities", "local", "root.crt"))
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("the local CA's root certificate does not parse")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	base := "https://localhost:" + httpsPort

	t.Run("go-sdk client", func(t *testing.T) {
		cs := connectEventually(t, p, base+"/mcp", client)
		names := toolNames(t, cs)
		for _, want := range []string{"demo__echo", "demo__add", "demo__slow"} {
			if !slices.Contains(names, want) {
				t.Errorf("tools/list lacks %q; got %v", want, names)
			}
		}
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo__echo", Arguments: map[string]any{"text": "over TLS"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := text(res); !strings.Contains(got, "over TLS") {
			t.Errorf("demo__echo returned %q", got)
		}
	})

	t.Run("registry", func(t *testing.T) {
		// As the example's comment says: register a remote server on this
		// machine with just a name and a URL, and a second server from the
		// config's template; both are served at once, alone and on /mcp.
		upstream := peers.StartGoConformanceHTTP(t)
		for _, body := range []string{
			`{"name": "docs", "url": "` + upstream + `"}`,
			`{"name": "demo2", "template": "demo", "tags": ["example"]}`,
		} {
			resp, err := client.Post(base+"/api/servers", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST /api/servers %s: %s %s", body, resp.Status, answer)
			}
		}
		docs := connect(t, base+"/servers/docs/mcp", client, nil)
		if res, err := docs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
			t.Errorf("test_simple_text through /servers/docs/mcp: %v", err)
		} else if !strings.Contains(text(res), "simple text") {
			t.Errorf("test_simple_text through /servers/docs/mcp: %q", text(res))
		}
		agg := connect(t, base+"/mcp", client, nil)
		res, err := agg.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo2__add", Arguments: map[string]any{"a": 2, "b": 40}})
		if err != nil {
			t.Errorf("demo2__add through /mcp: %v", err)
		} else if !strings.Contains(text(res), "42") {
			t.Errorf("demo2__add through /mcp: %q", text(res))
		}
		if names := toolNames(t, agg); !slices.Contains(names, "docs__test_simple_text") || !slices.Contains(names, "demo__echo") {
			t.Errorf("the aggregate lacks the registry's or the config's servers: %v", names)
		}
	})

	t.Run("inspector cli", func(t *testing.T) {
		caFile := filepath.Join(dir, "root.crt")
		if err := os.WriteFile(caFile, rootPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("NODE_EXTRA_CA_CERTS", caFile)
		out := peers.InspectorCLI(t, base+"/servers/demo/mcp", "--transport", "http", "--method", "tools/call",
			"--tool-name", "add", "--tool-arg", "a=2", "--tool-arg", "b=3")
		var result struct {
			Content []struct{ Text string } `json:"content"`
		}
		if err := json.Unmarshal(out, &result); err != nil {
			t.Fatalf("inspector output is not a tool result: %v\n%s", err, out)
		}
		if len(result.Content) == 0 || !strings.Contains(result.Content[0].Text, "5") {
			t.Errorf("add(2, 3) through the inspector returned %s", out)
		}
	})
}

// withGlobalOptions adds lines to a Caddyfile's global options block,
// creating the block if the file has none.
func withGlobalOptions(caddyfile, lines string) string {
	all := strings.Split(caddyfile, "\n")
	for i, l := range all {
		switch trimmed := strings.TrimSpace(l); {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case trimmed == "{":
			all[i] = l + "\n" + strings.TrimSuffix(lines, "\n")
			return strings.Join(all, "\n")
		}
		break
	}
	return "{\n" + lines + "}\n" + caddyfile
}

// waitFile waits for Caddy to write a file, and returns its content.
func waitFile(t *testing.T, p *caddyProc, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within 30s:\n%s", path, tailLines(p.logs(), 40))
	return nil
}

// connectEventually connects once the site's certificate is issued.
func connectEventually(t *testing.T, p *caddyProc, url string, client *http.Client) *mcp.ClientSession {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v\n%s", url, err, tailLines(p.logs(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return connect(t, url, client, nil)
}
