package caddymcp

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestEndpointLimitsOnTheFastPath: a client's tools/call through the
// gateway, relayed raw to a connected remote upstream (the fast path), is
// held to max_concurrent_calls, queue_timeout and call_timeout as the SDK
// path is.
func TestEndpointLimitsOnTheFastPath(t *testing.T) {
	s := newSlowServer(t)
	g := &Gateway{Servers: []*ServerConfig{{Name: "slow-ep", Remote: &RemoteConfig{URL: s.url},
		MaxConcurrentCalls: 1, QueueTimeout: caddy.Duration(200 * time.Millisecond), CallTimeout: caddy.Duration(time.Second)}}}
	h := serveGateway(t, g)

	ctx, cs := connectGateway(t, h.URL+"/servers/slow-ep/mcp")
	call := func() (*mcp.CallToolResult, error) {
		return cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{}})
	}

	first := make(chan error, 1)
	before := fastIDs.Load()
	go func() { _, err := call(); first <- err }()
	s.waitArrivals(t, 1)
	if fastIDs.Load() == before {
		t.Fatal("the call did not take the fast path")
	}
	res, err := call()
	want := `server "slow-ep": 1 calls in flight, the limit (max_concurrent_calls), for 200ms (queue_timeout); retry later`
	if err == nil && (res == nil || !res.IsError) || err != nil && !strings.Contains(err.Error(), want) {
		t.Fatalf("second call: %+v, %v; want %q", res, err, want)
	}
	if _, _, total := s.counts(); total != 1 {
		t.Errorf("the server saw %d calls", total)
	}
	s.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = call()
	if err == nil || !strings.Contains(err.Error(), `server "slow-ep": no answer within 1s (call_timeout)`) {
		t.Fatalf("slow call: %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Errorf("failed after %s", d)
	}
	select {
	case <-s.cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the server was not told to cancel")
	}
}
