package caddymcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// TestProbeConnectsOrPings: a probe of a server without a session is its
// connect (initialize and list, no ping); with a session, a ping. A Warm
// connect before the server is Set is the session the table then uses.
func TestProbeConnectsOrPings(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	up := mcp.NewServer(&mcp.Implementation{Name: "probed", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "t", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
	up.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			mu.Lock()
			seen[method]++
			mu.Unlock()
			return next(ctx, method, req)
		}
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	counts := func() (initialize, list, ping int) {
		mu.Lock()
		defer mu.Unlock()
		return seen["initialize"], seen["tools/list"], seen["ping"]
	}

	l := NewLiveSet(zap.NewNop(), nil)
	t.Cleanup(l.Close)
	cfg := &ServerConfig{Name: "probed", Remote: &RemoteConfig{URL: srv.URL}}
	if err := l.Set(cfg, false); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Probe(ctx, "probed"); err != nil {
		t.Fatal(err)
	}
	if i, ls, p := counts(); i != 1 || ls != 1 || p != 0 {
		t.Errorf("a probe without a session: %d initialize, %d tools/list, %d ping; want 1, 1, 0", i, ls, p)
	}
	if _, err := l.Probe(ctx, "probed"); err != nil {
		t.Fatal(err)
	}
	if i, ls, p := counts(); i != 1 || ls != 1 || p != 1 {
		t.Errorf("a probe with a session: %d initialize, %d tools/list, %d ping in all; want 1, 1, 1", i, ls, p)
	}

	// Warm, then Set and release: the warm connect's session is the one
	// the server keeps (one more initialize, not two).
	warm := &ServerConfig{Name: "warmed", Remote: &RemoteConfig{URL: srv.URL}}
	release := l.Warm(warm)
	if err := l.Set(warm, false); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := l.Probe(ctx, "warmed"); err != nil {
		t.Fatal(err)
	}
	if i, _, _ := counts(); i != 2 {
		t.Errorf("a server warmed, set and probed: %d initialize in all, want 2", i)
	}
}
