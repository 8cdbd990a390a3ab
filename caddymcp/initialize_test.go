package caddymcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestInitializeBeforeTheCatalog: a client's initialize on a one-server
// endpoint is answered once the upstream has answered its own, with the
// upstream's identity, without waiting for the upstream's lists; the
// client's tools/list waits for them and has the tools.
func TestInitializeBeforeTheCatalog(t *testing.T) {
	gate := make(chan struct{})
	up := mcp.NewServer(&mcp.Implementation{Name: "slow-lister", Version: "7"}, &mcp.ServerOptions{Instructions: "list me slowly"})
	up.AddTool(&mcp.Tool{Name: "t", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
	up.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "tools/list" {
				<-gate
			}
			return next(ctx, method, req)
		}
	})
	upstream := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	opened := false
	open := func() {
		if !opened {
			opened = true
			close(gate)
		}
	}
	defer func() {
		open()
		upstream.CloseClientConnections()
		upstream.Close()
	}()

	g := &Gateway{Servers: []*ServerConfig{{Name: "slow", Remote: &RemoteConfig{URL: upstream.URL}}}}
	h := serveGateway(t, g)

	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: h.URL + "/servers/slow/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("initialize while the upstream's tools/list hangs: %v", err)
	}
	defer cs.Close()
	if got := cs.InitializeResult(); got.ServerInfo.Name != "slow-lister" || got.ServerInfo.Version != "7" || got.Instructions != "list me slowly" {
		t.Errorf("initialize answered serverInfo %+v, instructions %q; want the upstream's", got.ServerInfo, got.Instructions)
	}

	listed := make(chan []string, 1)
	go func() {
		res, err := cs.ListTools(ctx, nil)
		var names []string
		if err == nil {
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
			}
		}
		listed <- names
	}()
	select {
	case names := <-listed:
		t.Fatalf("tools/list answered %v before the upstream listed its tools", names)
	case <-time.After(200 * time.Millisecond):
	}
	open()
	if names := <-listed; len(names) != 1 || names[0] != "t" {
		t.Errorf("tools/list once the upstream listed: %v, want [t]", names)
	}
}
