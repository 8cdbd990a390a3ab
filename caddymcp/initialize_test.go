package caddymcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
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

	ctx, cs := connectGateway(t, h.URL+"/servers/slow/mcp") // while the upstream's tools/list hangs
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

// holdingObserver holds up an upstream's connect where its catalog is
// mirrored and its session not yet in place, until release closes.
type holdingObserver struct {
	held, release chan struct{}
}

func (o *holdingObserver) published(*upstream) {
	close(o.held)
	<-o.release
}

func (o *holdingObserver) unavailable(*upstream, error) {}

// TestCallDuringTheConnectsLastStep: a client that calls a tool as soon as
// initialize has answered, while the connect has mirrored the catalog but
// not yet put its session in place, waits for it and takes the fast path.
func TestCallDuringTheConnectsLastStep(t *testing.T) {
	up := mcp.NewServer(&mcp.Implementation{Name: "quick", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "t", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	upstream := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upstream.Close) // after the gateway's cleanup, which ends its streams
	cfg := &ServerConfig{Name: "quick", Remote: &RemoteConfig{URL: upstream.URL}}
	g := &Gateway{Servers: []*ServerConfig{cfg}}
	h := serveGateway(t, g)
	u, err := loadUpstream(cfg, zap.NewNop()) // the gateway's, from the pool
	if err != nil {
		t.Fatal(err)
	}
	defer releaseUpstream(cfg)
	o := &holdingObserver{held: make(chan struct{}), release: make(chan struct{})}
	u.observe(o)

	ctx, cs := connectGateway(t, h.URL+"/servers/quick/mcp")
	select {
	case <-o.held:
	case <-ctx.Done():
		t.Fatal("the gateway's connect never published its catalog")
	}
	before := fastIDs.Load()
	called := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "t", Arguments: map[string]any{}})
		called <- err
	}()
	// The connect is let go only once the call is in the gateway (its POST
	// has begun on the client's session).
	for s := g.byName["quick"].fast.session(cs.ID()); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		arrived := s.refs > 0
		s.mu.Unlock()
		if arrived {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the call never reached the gateway")
		}
	}
	close(o.release)
	if err := <-called; err != nil {
		t.Fatal(err)
	}
	if fastIDs.Load() == before {
		t.Error("a call during the connect's last step left the fast path")
	}
}
