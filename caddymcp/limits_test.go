package caddymcp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// slowServer is a real MCP server on loopback (Streamable HTTP) whose tool
// "slow" holds each call until the test lets one go, or the call is
// cancelled; it counts the calls in flight as the server sees them.
type slowServer struct {
	url       string
	arrived   chan struct{} // a call began
	release   chan struct{} // a receive lets one call return
	cancelled chan struct{} // a call ended by cancellation

	mu       sync.Mutex
	inFlight int
	maxSeen  int
	total    int
}

func newSlowServer(t *testing.T) *slowServer {
	s := &slowServer{arrived: make(chan struct{}, 16), release: make(chan struct{}), cancelled: make(chan struct{}, 16)}
	srv := mcp.NewServer(&mcp.Implementation{Name: "slow", Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "slow", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.mu.Lock()
		s.inFlight++
		s.total++
		s.maxSeen = max(s.maxSeen, s.inFlight)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
		s.arrived <- struct{}{}
		select {
		case <-s.release:
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
		case <-ctx.Done():
			s.cancelled <- struct{}{}
			return nil, ctx.Err()
		}
	})
	h := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(h.Close)
	s.url = h.URL
	return s
}

func (s *slowServer) counts() (inFlight, maxSeen, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight, s.maxSeen, s.total
}

// waitArrivals waits for n calls to reach the server.
func (s *slowServer) waitArrivals(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("a call did not reach the server")
		}
	}
}

// TestMaxConcurrentCallsQueues: with max_concurrent_calls 2, three slow
// calls at once put exactly two in flight at the server; the third waits,
// and runs as soon as one of the two is over.
func TestMaxConcurrentCallsQueues(t *testing.T) {
	s := newSlowServer(t)
	u, _ := startUpstream(t, &ServerConfig{Name: "slow-queue", Remote: &RemoteConfig{URL: s.url},
		MaxConcurrentCalls: 2, QueueTimeout: caddy.Duration(10 * time.Second)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	errs := make(chan error, 3)
	for range 3 {
		go func() {
			res, err := callTool(ctx, u, "slow", nil)
			if err == nil && toolText(res) != "done" {
				err = fmt.Errorf("slow answered %q", toolText(res))
			}
			errs <- err
		}()
	}
	s.waitArrivals(t, 2)
	select {
	case <-s.arrived:
		t.Fatal("a third call reached the server while two were in flight")
	case <-time.After(300 * time.Millisecond):
	}
	if inFlight, _, _ := s.counts(); inFlight != 2 {
		t.Fatalf("%d calls in flight at the server, want 2", inFlight)
	}

	s.release <- struct{}{}
	s.waitArrivals(t, 1) // the third, now that a slot is free
	s.release <- struct{}{}
	s.release <- struct{}{}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if _, maxSeen, total := s.counts(); maxSeen != 2 || total != 3 {
		t.Errorf("server saw at most %d calls at once and %d in all, want 2 and 3", maxSeen, total)
	}
}

// TestMaxConcurrentCallsQueueTimeout: a call that finds every slot taken
// for the whole queue_timeout fails with an error that says so, without
// reaching the server; the call in flight is not disturbed, and once it is
// over its slot serves the next call.
func TestMaxConcurrentCallsQueueTimeout(t *testing.T) {
	s := newSlowServer(t)
	u, _ := startUpstream(t, &ServerConfig{Name: "slow-busy", Remote: &RemoteConfig{URL: s.url},
		MaxConcurrentCalls: 1, QueueTimeout: caddy.Duration(150 * time.Millisecond)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := make(chan error, 1)
	go func() {
		_, err := callTool(ctx, u, "slow", nil)
		first <- err
	}()
	s.waitArrivals(t, 1)

	start := time.Now()
	_, err := callTool(ctx, u, "slow", nil)
	waited := time.Since(start)
	want := `server "slow-busy": 1 calls in flight, the limit (max_concurrent_calls), for 150ms (queue_timeout); retry later`
	if err == nil || err.Error() != want {
		t.Fatalf("second call: %v, want %q", err, want)
	}
	if waited < 150*time.Millisecond || waited > 2*time.Second {
		t.Errorf("the second call failed after %s, want after the 150ms queue_timeout", waited)
	}
	if _, _, total := s.counts(); total != 1 {
		t.Errorf("the server saw %d calls, want only the first", total)
	}

	s.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatalf("first call: %v", err)
	}
	go func() { s.release <- struct{}{} }()
	if _, err := callTool(ctx, u, "slow", nil); err != nil {
		t.Fatalf("a call after the slot freed up: %v", err)
	}
}

// TestCallTimeout: a call that outlasts call_timeout fails with an error
// naming the server and the timeout, and the server is told to stop (its
// handler's context is cancelled); a call within the timeout is served.
func TestCallTimeout(t *testing.T) {
	s := newSlowServer(t)
	u, _ := startUpstream(t, &ServerConfig{Name: "slow-timeout", Remote: &RemoteConfig{URL: s.url},
		CallTimeout: caddy.Duration(300 * time.Millisecond)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Connect first, so that the timeout is all the call's own.
	quick := make(chan error, 1)
	go func() {
		_, err := callTool(ctx, u, "slow", nil)
		quick <- err
	}()
	s.waitArrivals(t, 1)
	s.release <- struct{}{}
	if err := <-quick; err != nil {
		t.Fatalf("a call within the timeout: %v", err)
	}

	start := time.Now()
	_, err := callTool(ctx, u, "slow", nil)
	took := time.Since(start)
	want := `server "slow-timeout": no answer within 300ms (call_timeout)`
	if err == nil || err.Error() != want {
		t.Fatalf("slow call: %v, want %q", err, want)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("the slow call failed after %s, want after the 300ms call_timeout", took)
	}
	select {
	case <-s.cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the server's handler was not cancelled")
	}
	// The error reaches the client as a JSON-RPC error with the same text.
	if rpc := toRPCError(err); rpc == nil || !strings.Contains(rpc.Error(), want) {
		t.Errorf("as a JSON-RPC error: %v", rpc)
	}
}

// TestLimitsFollowTheNewestConfig: a reload that changes only the limits
// keeps the pooled upstream and applies them to the calls that start after.
func TestLimitsFollowTheNewestConfig(t *testing.T) {
	cfg := &ServerConfig{Name: "limits-reload", Remote: &RemoteConfig{URL: "http://127.0.0.1:9/mcp"},
		MaxConcurrentCalls: 1, QueueTimeout: caddy.Duration(50 * time.Millisecond)}
	u, err := loadUpstream(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseUpstream(cfg)
	ctx := context.Background()
	release, err := u.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.acquire(ctx); err == nil {
		t.Fatal("a second call got a slot under max_concurrent_calls 1")
	}

	next := *cfg
	next.MaxConcurrentCalls, next.CallTimeout = 3, caddy.Duration(time.Minute)
	u2, err := loadUpstream(&next, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseUpstream(&next)
	if u2 != u {
		t.Fatal("a change of limits alone made a new upstream")
	}
	for i := range 3 {
		if _, err := u.acquire(ctx); err != nil {
			t.Fatalf("call %d under the new cap of 3: %v", i+1, err)
		}
	}
	if _, err := u.acquire(ctx); err == nil {
		t.Fatal("a fourth call got a slot under max_concurrent_calls 3")
	}
	release() // into the old set of slots, which the new cap does not count
	if _, err := u.acquire(ctx); err == nil {
		t.Fatal("a call got a slot freed under the old cap")
	}
	if d := u.limits.Load().callTimeout; d != time.Minute {
		t.Errorf("call_timeout %s after the reload, want 1m", d)
	}
}

// TestLimitOptionErrors: bad values of the limits, in the Caddyfile and in
// JSON, give errors that name the server, the option and the value.
func TestLimitOptionErrors(t *testing.T) {
	for _, tc := range []struct{ name, server, want string }{
		{"cap not a number", "stdio cat\n\t\t\tmax_concurrent_calls many", `server a: max_concurrent_calls "many": not a whole number`},
		{"bad queue timeout", "stdio cat\n\t\t\tmax_concurrent_calls 2\n\t\t\tqueue_timeout soon", `server a: queue_timeout "soon": `},
		{"call timeout arguments", "stdio cat\n\t\t\tcall_timeout 1s 2s", `server a: call_timeout: expected 1 argument(s), got 2`},
		{"bad size", "stdio cat\n\t\t\tmax_message_size 12parsecs", `server a: max_message_size "12parsecs": `},
		{"size on a remote", "remote https://h/mcp\n\t\t\tmax_message_size 1MiB", `server a: option "max_message_size" does not apply to a remote server (only stdio, container)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, siteBlock("\tmcp_gateway {\n\t\tserver a {\n\t\t\t"+tc.server+"\n\t\t}\n\t}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}

	stdio := func(mod func(*ServerConfig)) *ServerConfig {
		s := &ServerConfig{Name: "a", Stdio: &StdioConfig{Command: "cat"}}
		mod(s)
		return s
	}
	for _, tc := range []struct {
		cfg  *ServerConfig
		want string
	}{
		{stdio(func(s *ServerConfig) { s.MaxConcurrentCalls = -1 }), `server "a": max_concurrent_calls -1: must be positive (0: no limit)`},
		{stdio(func(s *ServerConfig) { s.MaxConcurrentCalls, s.QueueTimeout = 1, caddy.Duration(-time.Second) }), `server "a": queue_timeout -1s: must be positive`},
		{stdio(func(s *ServerConfig) { s.QueueTimeout = caddy.Duration(5 * time.Second) }), `server "a": queue_timeout 5s: applies only with max_concurrent_calls, which is not set`},
		{stdio(func(s *ServerConfig) { s.CallTimeout = caddy.Duration(-time.Millisecond) }), `server "a": call_timeout -1ms: must be positive (0: none)`},
		{stdio(func(s *ServerConfig) { s.MaxMessageSize = 100 }), `server "a": max_message_size 100: must be at least 4096 bytes (4KiB)`},
		{&ServerConfig{Name: "a", Remote: &RemoteConfig{URL: "https://h/mcp"}, MaxMessageSize: 1 << 20}, `server "a": max_message_size 1048576: applies to stdio and container servers only`},
	} {
		if err := tc.cfg.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	if err := stdio(func(s *ServerConfig) { s.MaxConcurrentCalls, s.MaxMessageSize = 4, minMaxMessageSize }).Validate(); err != nil {
		t.Errorf("the smallest max_message_size with a cap: %v", err)
	}
}
