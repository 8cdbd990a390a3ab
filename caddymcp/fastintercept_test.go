package caddymcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// judge is an interceptor that notes what it sees, refuses arguments that
// say "block" and results that say "hide".
type judge struct {
	mu  sync.Mutex
	log []string
}

func (j *judge) Before(_ context.Context, c *Call) error {
	j.note("before " + c.Server + "/" + c.Tool + " " + string(c.Arguments))
	if strings.Contains(string(c.Arguments), "block") {
		return errors.New("arguments blocked")
	}
	return nil
}

func (j *judge) After(_ context.Context, _ *Call, o *Outcome) error {
	switch {
	case o.Err != nil:
		j.note("after error: " + o.Err.Error())
	default:
		j.note("after result: " + string(o.Result))
		if strings.Contains(string(o.Result), "hide") {
			return errors.New("result hidden")
		}
	}
	return nil
}

func (j *judge) note(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.log = append(j.log, s)
}

func (j *judge) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	l := j.log
	j.log = nil
	return l
}

// TestInterceptorsOnTheFastPath: with interceptors, a tools/call to a
// connected remote upstream still takes the fast path; Before sees the
// client's arguments and may refuse before anything goes upstream, After
// sees the upstream's result as it came and may replace it with a refusal.
func TestInterceptorsOnTheFastPath(t *testing.T) {
	var calls atomic.Int64
	up := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			calls.Add(1)
			var args struct{ Text string }
			_ = json.Unmarshal(req.Params.Arguments, &args)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + args.Text}}}, nil
		})
	upstream := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upstream.Close) // after the gateway's cleanup, which ends its streams

	g := &Gateway{Servers: []*ServerConfig{{Name: "echo-fi", Remote: &RemoteConfig{URL: upstream.URL}}}}
	h := serveGateway(t, g)
	j := &judge{}
	g.chain = chain{{"judge", j}}

	ctx, cs := connectGateway(t, h.URL+"/servers/echo-fi/mcp")
	call := func(text string) (*mcp.CallToolResult, error) {
		return cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	}
	// The first call connects the upstream (the SDK path); then the fast path.
	if _, err := call("warm"); err != nil {
		t.Fatal(err)
	}
	j.take()

	t.Run("passed", func(t *testing.T) {
		before := fastIDs.Load()
		res, err := call("hi")
		if err != nil || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "echo: hi" {
			t.Fatalf("%+v %v", res, err)
		}
		if fastIDs.Load() == before {
			t.Fatal("the call did not take the fast path")
		}
		got := j.take()
		if len(got) != 2 || got[0] != `before echo-fi/echo {"text":"hi"}` || !strings.HasPrefix(got[1], "after result: ") ||
			!strings.Contains(got[1], `"text":"echo: hi"`) {
			t.Fatalf("the judge saw %q", got)
		}
	})
	t.Run("refused before", func(t *testing.T) {
		n := calls.Load()
		_, err := call("block me")
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != CodeRefused || rpcErr.Message != "refused by judge: arguments blocked" {
			t.Fatalf("%v", err)
		}
		if calls.Load() != n {
			t.Error("a refused call reached the upstream")
		}
		// The interceptor that refused never let the call begin: it sees no end.
		if got := j.take(); !slices.Equal(got, []string{`before echo-fi/echo {"text":"block me"}`}) {
			t.Fatalf("the judge saw %q", got)
		}
	})
	t.Run("refused after", func(t *testing.T) {
		n := calls.Load()
		_, err := call("hide me")
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != CodeRefused || rpcErr.Message != "refused by judge: result hidden" {
			t.Fatalf("%v", err)
		}
		if calls.Load() != n+1 {
			t.Error("the upstream did not answer the call whose result was refused")
		}
		if got := j.take(); len(got) != 2 {
			t.Fatalf("the judge saw %q: want one Before and one After", got)
		}
	})
}
