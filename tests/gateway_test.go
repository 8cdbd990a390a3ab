package tests

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// conformanceSite runs a gateway with the go-sdk conformance server twice:
// as a stdio process ("stdio") and over Streamable HTTP ("http").
func conformanceSite(t *testing.T) (*site, *caddyProc) {
	t.Helper()
	bin := peers.GoConformanceServer(t)
	httpURL := peers.StartGoConformanceHTTP(t)
	s := newSite(t).handle(gateway(
		stdioServer("stdio", bin),
		remoteServer("http", httpURL),
	))
	return s, s.start(t)
}

func TestOneServerEndpointPassesNamesThrough(t *testing.T) {
	s, _ := conformanceSite(t)
	for _, name := range []string{"stdio", "http"} {
		t.Run(name, func(t *testing.T) {
			cs := connect(t, s.url("/servers/"+name+"/mcp"), h1Client(), nil)
			if got := cs.InitializeResult().ServerInfo.Name; got != "mcp-conformance-test-server" {
				t.Errorf("serverInfo.name = %q, want the upstream's", got)
			}
			names := toolNames(t, cs)
			for _, want := range []string{"test_simple_text", "test_tool_with_progress", "test_sampling"} {
				if !slices.Contains(names, want) {
					t.Errorf("tools/list lacks %q; got %v", want, names)
				}
			}
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"})
			if err != nil {
				t.Fatal(err)
			}
			if got := text(res); !strings.Contains(got, "simple text") {
				t.Errorf("test_simple_text returned %q", got)
			}
		})
	}
}

func TestAggregateEndpointQualifiesNames(t *testing.T) {
	s, _ := conformanceSite(t)
	cs := connect(t, s.url("/mcp"), h2cClient(), nil)
	names := toolNames(t, cs)
	for _, want := range []string{"stdio__test_simple_text", "http__test_simple_text"} {
		if !slices.Contains(names, want) {
			t.Errorf("aggregate tools/list lacks %q; got %v", want, names)
		}
	}
	for _, name := range []string{"stdio__test_simple_text", "http__test_simple_text"} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := text(res); !strings.Contains(got, "simple text") {
			t.Errorf("%s returned %q", name, got)
		}
	}
	prompts, err := cs.ListPrompts(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var promptNames []string
	for _, p := range prompts.Prompts {
		promptNames = append(promptNames, p.Name)
	}
	if !slices.Contains(promptNames, "http__test_simple_prompt") {
		t.Errorf("aggregate prompts/list lacks http__test_simple_prompt; got %v", promptNames)
	}
}

// TestProgressAndServerRequestsReachTheCaller covers both ways a server's
// requests reach a client: sent while the call runs (2025-11-25 sessions),
// and as input-required results of a multi round-trip (2026-07-28).
func TestProgressAndServerRequestsReachTheCaller(t *testing.T) {
	s, _ := conformanceSite(t)
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		for _, path := range []string{"/servers/stdio/mcp", "/servers/http/mcp", "/mcp"} {
			t.Run(version+path, func(t *testing.T) { testServerRequests(t, s.url(path), path == "/mcp", version) })
		}
	}
}

func testServerRequests(t *testing.T, url string, aggregate bool, version string) {
	prefix := ""
	if aggregate {
		prefix = "http__"
	}
	var mu sync.Mutex
	var progress []float64
	var sampled, elicited bool
	cs := connectVersion(t, url, h1Client(), &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, req.Params.Progress)
			mu.Unlock()
		},
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			sampled = true
			return &mcp.CreateMessageResult{Model: "test-model", Role: "assistant", Content: &mcp.TextContent{Text: "sampled answer"}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			elicited = true
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "ada", "email": "ada@example.com"}}, nil
		},
	}, version)
	if got := cs.InitializeResult().ProtocolVersion; got != version {
		t.Fatalf("negotiated protocol %s, want %s", got, version)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	params := &mcp.CallToolParams{Name: prefix + "test_tool_with_progress"}
	params.SetProgressToken("my-token")
	if _, err := cs.CallTool(ctx, params); err != nil {
		t.Fatal(err)
	}
	// The last notification may trail the result over HTTP.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	if len(progress) < 2 {
		t.Errorf("got %d progress notifications, want at least 2: %v", len(progress), progress)
	}
	mu.Unlock()

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: prefix + "test_sampling", Arguments: map[string]any{"prompt": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if !sampled || !strings.Contains(text(res), "sampled answer") {
		t.Errorf("sampling did not reach the client: sampled=%v result=%q", sampled, text(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: prefix + "test_elicitation", Arguments: map[string]any{"message": "who?"}})
	if err != nil {
		t.Fatal(err)
	}
	if !elicited || res.IsError {
		t.Errorf("elicitation did not reach the client: elicited=%v result=%q", elicited, text(res))
	}
}

// TestUnknownRequestStateIsRefused checks that a stateless client cannot
// resume a multi round-trip call with a state the gateway did not give out.
func TestUnknownRequestStateIsRefused(t *testing.T) {
	s, _ := conformanceSite(t)
	cs := connectVersion(t, s.url("/servers/http/mcp"), h1Client(), nil, "2026-07-28")
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name:           "test_elicitation",
		Arguments:      map[string]any{"message": "who?"},
		RequestState:   "made-up",
		InputResponses: mcp.InputResponseMap{"x": &mcp.ElicitResult{Action: "decline"}},
	})
	if err == nil || !strings.Contains(err.Error(), "unknown or expired requestState") {
		t.Fatalf("resuming with a made-up requestState: err = %v, want it refused", err)
	}
}

// TestRequestStateResumesOnlyItsOwnRequest: a request state given out for one
// tool call cannot resume another request. Resuming a tools/call state with
// prompts/get once crashed Caddy (the result's type did not match).
func TestRequestStateResumesOnlyItsOwnRequest(t *testing.T) {
	s, _ := conformanceSite(t)
	opts := &mcp.ClientOptions{MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true}}
	cs := connectVersion(t, s.url("/servers/http/mcp"), h1Client(), opts, "2026-07-28")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who?"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NeedsInput() || res.RequestState == "" || len(res.InputRequests) != 1 {
		t.Fatalf("test_elicitation for a stateless client: want one input request and a state, got %+v", res)
	}
	answers := mcp.InputResponseMap{}
	for id := range res.InputRequests {
		answers[id] = &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "ada", "email": "ada@example.com"}}
	}

	_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_simple_prompt", RequestState: res.RequestState, InputResponses: answers})
	if err == nil || !strings.Contains(err.Error(), "requestState belongs to another request") {
		t.Fatalf("prompts/get with a tools/call state: err = %v, want it refused", err)
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text", RequestState: res.RequestState, InputResponses: answers})
	if err == nil || !strings.Contains(err.Error(), "requestState belongs to another request") {
		t.Fatalf("another tool with the state: err = %v, want it refused", err)
	}

	// The state still resumes its own call, which then completes.
	final, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who?"},
		RequestState: res.RequestState, InputResponses: answers})
	if err != nil {
		t.Fatal(err)
	}
	if final.NeedsInput() || final.IsError {
		t.Errorf("resumed call: want its final result, got %+v", final)
	}

	// An answer of the wrong kind (roots, to an elicitation) is refused.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who?"}})
	if err != nil || !res.NeedsInput() {
		t.Fatalf("second test_elicitation: %v, %+v", err, res)
	}
	wrong := mcp.InputResponseMap{}
	for id := range res.InputRequests {
		wrong[id] = &mcp.ListRootsResult{Roots: []*mcp.Root{}}
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who?"},
		RequestState: res.RequestState, InputResponses: wrong})
	if err == nil || !strings.Contains(err.Error(), "lacks an answer of the right kind") {
		t.Fatalf("roots answered to an elicitation: err = %v, want it refused", err)
	}
}

// TestServerRequestsNeverReachAnotherClient: when calls of two clients are in
// flight on one shared upstream, a request the server sends back cannot be
// told apart, and the gateway refuses it rather than show one client what
// the server asked of the other.
func TestServerRequestsNeverReachAnotherClient(t *testing.T) {
	s, _ := conformanceSite(t)
	url := s.url("/servers/stdio/mcp")
	release := make(chan struct{})
	askedA, askedB := make(chan struct{}, 1), make(chan struct{}, 1)
	sampler := func(asked chan struct{}, wait bool) *mcp.ClientOptions {
		return &mcp.ClientOptions{CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			asked <- struct{}{}
			if wait {
				<-release
			}
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "answer"}}, nil
		}}
	}
	a := connectVersion(t, url, h1Client(), sampler(askedA, true), "2025-11-25")
	b := connectVersion(t, url, h1Client(), sampler(askedB, false), "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resA := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, err := a.CallTool(ctx, &mcp.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "a"}})
		if err != nil {
			t.Error(err)
		}
		resA <- res
	}()
	select {
	case <-askedA: // A's call is in flight, waiting on A's answer
	case <-ctx.Done():
		t.Fatal("client A was never asked")
	}
	resB, err := b.CallTool(ctx, &mcp.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text(resB), "several clients") {
		t.Errorf("B's call while A's is in flight returned %q, want its sampling refused", text(resB))
	}
	select {
	case <-askedB:
		t.Error("client B was sent a sampling request while another client's call was in flight")
	default:
	}
	select {
	case <-askedA:
		t.Error("client A was sent client B's sampling request")
	default:
	}
	close(release)
	if res := <-resA; res == nil || !strings.Contains(text(res), "answer") {
		t.Errorf("A's call returned %v, want its own sampled answer", res)
	}
}

// TestLegacySSEBehindAPathPrefix: with the gateway mounted under a prefix
// that Caddy strips (handle_path), a legacy SSE client is told to post to
// the path it sees, prefix included.
func TestLegacySSEBehindAPathPrefix(t *testing.T) {
	s := newSite(t)
	s.routes = []map[string]any{{
		"match": []map[string]any{{"path": []string{"/gw/*"}}},
		"handle": []map[string]any{
			{"handler": "rewrite", "strip_path_prefix": "/gw"},
			gateway(stdioServer("demo", caddyBinary(t), "mcp", "demo-server")),
		},
	}}
	s.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "sse-prefix-test", Version: "0"}, nil)
	cs, err := c.Connect(ctx, &mcp.SSEClientTransport{Endpoint: s.url("/gw/servers/demo/mcp"), HTTPClient: h1Client()}, nil)
	if err != nil {
		t.Fatalf("connecting over legacy SSE under /gw: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "prefixed"}})
	if err != nil {
		t.Fatalf("tools/call over legacy SSE under /gw: %v", err)
	}
	if got := text(res); got != "prefixed" {
		t.Errorf("echo returned %q", got)
	}
}
