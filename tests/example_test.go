package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
	for _, l := range strings.Split(caddyfile, "\n") {
		switch trimmed := strings.TrimSpace(l); {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case trimmed == "{":
			return strings.Replace(caddyfile, l, l+"\n"+lines, 1)
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
