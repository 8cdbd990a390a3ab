package caddymcp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// helperEnv, set in a child's environment, makes the test binary run as a
// helper process instead of the tests: the usual Go way to test against a
// real process without building anything.
const helperEnv = "CADDYMCP_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "stdio-server":
		os.Exit(runStdioHelper())
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown helper\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// runStdioHelper is an MCP server on stdin/stdout with two tools: echo,
// which returns its text, and flood, which returns a text of n bytes. With
// HELPER_STDERR_LINE=n it first writes a stderr line of n bytes, then the
// line "after the long line", then "token: $MY_API_TOKEN".
func runStdioHelper() int {
	if n := os.Getenv("HELPER_STDERR_LINE"); n != "" {
		var size int
		if _, err := fmt.Sscan(n, &size); err != nil {
			fmt.Fprintln(os.Stderr, "HELPER_STDERR_LINE:", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "%s\nafter the long line\ntoken: %s\n", strings.Repeat("x", size), os.Getenv("MY_API_TOKEN"))
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "helper", Version: "1"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	type floodIn struct {
		N int `json:"n"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "flood"}, func(_ context.Context, _ *mcp.CallToolRequest, in floodIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("y", in.N)}}}, nil, nil
	})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// helperServer is a ServerConfig that runs the stdio helper (runStdioHelper),
// as a process, or through the fake docker CLI (testdata/docker) as a
// container; env is added to the helper's environment.
func helperServer(t *testing.T, name, kind string, env map[string]string) *ServerConfig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{helperEnv: "stdio-server"}
	for k, v := range env {
		all[k] = v
	}
	cfg := &ServerConfig{Name: name}
	switch kind {
	case "stdio":
		cfg.Stdio = &StdioConfig{Command: exe, Env: all}
	case "container":
		all["FAKE_DOCKER_EXEC"] = exe
		cfg.Container = &ContainerConfig{Image: "helper", Runtime: fakeDockerScript(t), Env: all}
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	return cfg
}

// startUpstream validates cfg and makes its upstream, logging to the
// returned observer; the upstream is stopped when the test ends.
func startUpstream(t *testing.T, cfg *ServerConfig) (*upstream, *observer.ObservedLogs) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	u, err := newUpstream(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Destruct() })
	return u, logs
}

// callTool calls a tool through the upstream, as the endpoints do.
func callTool(ctx context.Context, u *upstream, name string, args map[string]any) (*mcp.CallToolResult, error) {
	var res *mcp.CallToolResult
	err := u.call(ctx, func(ctx context.Context, cs *mcp.ClientSession) (err error) {
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		return err
	})
	return res, err
}

// toolText is the text of a tool result, or why there is none.
func toolText(res *mcp.CallToolResult) string {
	if res == nil || len(res.Content) != 1 {
		return fmt.Sprintf("(not one content: %+v)", res)
	}
	if c, ok := res.Content[0].(*mcp.TextContent); ok {
		return c.Text
	}
	return fmt.Sprintf("(not text: %T)", res.Content[0])
}

// entryText is a log entry as text: its message and every field.
func entryText(e observer.LoggedEntry) string {
	return fmt.Sprintf("%s %v", e.Message, e.ContextMap())
}

// serveGateway provisions g and serves it on loopback until the test ends.
func serveGateway(t *testing.T, g *Gateway) *httptest.Server {
	t.Helper()
	cctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := g.Provision(cctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Cleanup() })
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = g.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil }))
	}))
	t.Cleanup(h.Close)
	return h
}

// connectGateway opens a client session (protocol 2025-11-25) at url,
// closed when the test ends, and returns it with a context that bounds
// the test's calls.
func connectGateway(t *testing.T, url string) (context.Context, *mcp.ClientSession) {
	t.Helper()
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(stop)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: url}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return ctx, cs
}
