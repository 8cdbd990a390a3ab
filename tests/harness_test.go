// Package tests runs the custom Caddy build as a real process, with real MCP
// servers behind it and real clients in front, over loopback.
package tests

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var (
	buildOnce sync.Once
	caddyBin  string
	buildErr  error
)

// caddyBinary builds cmd/caddy once per test binary, with the race detector
// so that the gateway's own races show up under real traffic.
func caddyBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-mcp-bin-")
		if err != nil {
			buildErr = err
			return
		}
		caddyBin = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-race", "-o", caddyBin, "./cmd/caddy")
		cmd.Dir = peers.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

// caddyProc is a running Caddy with its admin endpoint on loopback.
type caddyProc struct {
	t     testing.TB
	cmd   *exec.Cmd
	admin string // http://127.0.0.1:port
	dir   string
	mu    sync.Mutex
	log   bytes.Buffer
	done  chan struct{}
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCaddy runs Caddy with the given config (JSON, or a Caddyfile when
// adapter is "caddyfile") and stops it when the test ends.
func startCaddy(t testing.TB, config []byte, adapter string, env ...string) *caddyProc {
	t.Helper()
	bin := caddyBinary(t)
	dir := t.TempDir()
	name := "caddy.json"
	if adapter == "caddyfile" {
		name = "Caddyfile"
	}
	cfgPath := filepath.Join(dir, name)
	if err := os.WriteFile(cfgPath, config, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--config", cfgPath}
	if adapter != "" {
		args = append(args, "--adapter", adapter)
	}
	p := &caddyProc{t: t, dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *caddyProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// logs returns everything Caddy has written so far.
func (p *caddyProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop ends Caddy and its process group (upstream processes included), and
// prints its log when the test failed.
func (p *caddyProc) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	if p.t.Failed() {
		p.t.Logf("caddy log:\n%s", tailLines(p.logs(), 80))
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers at all.
func waitHTTP(t testing.TB, p *caddyProc, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("caddy exited early:\n%s", tailLines(p.logs(), 40))
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 60s:\n%s", url, tailLines(p.logs(), 40))
}

// adminClient talks to Caddy's admin endpoint on a new connection each time:
// a config load may replace the admin server, closing kept-alive connections.
var adminClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// adminDo sends a request to Caddy's admin endpoint. Every config load, a
// refused one too, starts a new admin server on the same listener and shuts
// the old one down in the background: a connection the old one accepts
// meanwhile is closed unanswered (EOF, or a reset). Such a request is sent
// again, on a new connection: the tests' admin requests are GETs and loads
// of a whole config, which change nothing when repeated.
func adminDo(method, url string, body []byte, header map[string]string) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := adminClient.Do(req)
		if err == nil || attempt == 5 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			return resp, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// loadReply posts a config to the admin API's /load, forcing a reload even
// when the config is unchanged, and returns the reply.
func (p *caddyProc) loadReply(config []byte) (status int, body []byte, err error) {
	resp, err := adminDo(http.MethodPost, p.admin+"/load", config, map[string]string{
		"Content-Type": "application/json", "Cache-Control": "must-revalidate",
	})
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// load replaces Caddy's config through the admin API.
func (p *caddyProc) load(config []byte) error {
	status, body, err := p.loadReply(config)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("load: %d %s: %s", status, http.StatusText(status), body)
	}
	return nil
}

// site is a test Caddy config: an HTTP server on loopback (HTTP/1.1 and
// h2c) whose only route runs the given handlers.
type site struct {
	admin    string
	listen   string
	dir      string
	routes   []map[string]any
	logLevel string         // default DEBUG
	registry map[string]any // the mcp_registry app's config; nil: none
}

func newSite(t testing.TB) *site {
	return &site{admin: freeAddr(t), listen: freeAddr(t), dir: t.TempDir()}
}

// json renders the config.
func (s *site) json(t testing.TB) []byte {
	cfg := map[string]any{
		"admin":   map[string]any{"listen": s.admin},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": cmp.Or(s.logLevel, "DEBUG")}}},
		"storage": map[string]any{"module": "file_system", "root": filepath.Join(s.dir, "storage")},
		"apps": map[string]any{"http": map[string]any{
			"grace_period": "10s",
			"servers": map[string]any{"test": map[string]any{
				"listen":          []string{s.listen},
				"protocols":       []string{"h1", "h2c"},
				"routes":          s.routes,
				"automatic_https": map[string]any{"disable": true},
			}},
		}},
	}
	if s.registry != nil {
		cfg["apps"].(map[string]any)["mcp_registry"] = s.registry
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handle sets the site's single route to run handler.
func (s *site) handle(handler map[string]any) *site {
	s.routes = []map[string]any{{"handle": []map[string]any{handler}}}
	return s
}

// start runs Caddy with the site and waits until it serves.
func (s *site) start(t testing.TB) *caddyProc {
	t.Helper()
	p := startCaddy(t, s.json(t), "")
	p.admin = "http://" + s.admin
	waitHTTP(t, p, p.admin+"/config/")
	waitHTTP(t, p, s.url("/"))
	return p
}

func (s *site) url(path string) string { return "http://" + s.listen + path }

// gateway is an mcp_gateway handler config.
func gateway(servers ...map[string]any) map[string]any {
	return map[string]any{"handler": "mcp_gateway", "servers": servers}
}

// stdioServer is a server entry running a local command.
func stdioServer(name, command string, args ...string) map[string]any {
	return map[string]any{"name": name, "stdio": map[string]any{"command": command, "args": args}}
}

// remoteServer is a server entry for a Streamable HTTP URL.
func remoteServer(name, url string) map[string]any {
	return map[string]any{"name": name, "remote": map[string]any{"url": url}}
}

// h2cClient speaks HTTP/2 without TLS, as Caddy's h2c listener expects.
func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p, MaxIdleConnsPerHost: 64}}
}

// h1Client speaks HTTP/1.1 with keep-alive.
func h1Client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// connect opens an MCP client session to url, on the SDK's newest protocol.
func connect(t testing.TB, url string, client *http.Client, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return connectVersion(t, url, client, opts, "")
}

// connectVersion opens an MCP client session to url asking for a protocol
// version ("" for the SDK's newest).
func connectVersion(t testing.TB, url string, client *http.Client, opts *mcp.ClientOptions, version string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp-test", Version: "0"}, opts)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: client, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// toolNames lists the names of a session's tools, all pages.
func toolNames(t testing.TB, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// text returns the text content of a tool result.
func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
