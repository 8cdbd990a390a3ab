package demo

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// protocolVersions are the versions the demo server is tested with: the
// SDK's default, where elicitation travels as a multi round-trip input
// request, and the latest legacy one, where the server sends
// elicitation/create itself.
var protocolVersions = []string{"", "2025-11-25"}

// connect runs a fresh demo server and returns a client session to it.
// Middleware, if any, is installed on the server before it is connected.
func connect(t *testing.T, protocolVersion string, opts *mcp.ClientOptions, mw ...mcp.Middleware) *mcp.ClientSession {
	t.Helper()
	server := NewServer()
	server.AddReceivingMiddleware(mw...)
	ct, st := mcp.NewInMemoryTransports()
	ss, err := server.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatalf("connecting server: %v", err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "demo-test", Version: "v0.0.0"}, opts)
	cs, err := client.Connect(t.Context(), ct, &mcp.ClientSessionOptions{ProtocolVersion: protocolVersion})
	if err != nil {
		t.Fatalf("connecting client: %v", err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

// callTool calls a tool and fails the test on a protocol error; tool
// errors are left to the caller to check.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s: %v", name, err)
	}
	return res
}

// text returns the text of a result that must consist of one text item.
func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("got %d content items, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("got content of type %T, want text", res.Content[0])
	}
	return tc.Text
}

// wantOK checks that a tool call succeeded and returns its text.
func wantOK(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	s := text(t, res)
	if res.IsError {
		t.Fatalf("tool failed: %s", s)
	}
	return s
}

// wantToolError checks that a tool call failed with a message containing
// substr.
func wantToolError(t *testing.T, res *mcp.CallToolResult, substr string) {
	t.Helper()
	s := text(t, res)
	if !res.IsError {
		t.Fatalf("tool succeeded with %q, want an error containing %q", s, substr)
	}
	if !strings.Contains(s, substr) {
		t.Fatalf("tool error %q does not contain %q", s, substr)
	}
}

func TestListings(t *testing.T) {
	cs := connect(t, "", nil)

	var tools []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools = append(tools, tool.Name)
		if tool.Name == "add" && tool.OutputSchema == nil {
			t.Error("add has no output schema")
		}
	}
	slices.Sort(tools)
	if want := []string{"add", "ask", "echo", "slow", "time"}; !slices.Equal(tools, want) {
		t.Errorf("tools = %v, want %v", tools, want)
	}

	prompts, err := cs.ListPrompts(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(prompts.Prompts) != 1 || prompts.Prompts[0].Name != "greeting" {
		t.Errorf("prompts = %+v, want just greeting", prompts.Prompts)
	}

	resources, err := cs.ListResources(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resources.Resources) != 1 || resources.Resources[0].URI != ReadmeURI {
		t.Errorf("resources = %+v, want just %s", resources.Resources, ReadmeURI)
	}
}

func TestEcho(t *testing.T) {
	cs := connect(t, "", nil)
	const in = "hello, gateway"
	if got := wantOK(t, callTool(t, cs, "echo", map[string]any{"text": in})); got != in {
		t.Errorf("echo returned %q, want %q", got, in)
	}
}

func TestAdd(t *testing.T) {
	cs := connect(t, "", nil)
	res := callTool(t, cs, "add", map[string]any{"a": 2, "b": 0.5})
	if got := wantOK(t, res); got != "2.5" {
		t.Errorf("add text = %q, want 2.5", got)
	}
	structured, ok := res.StructuredContent.(map[string]any)
	if !ok || structured["sum"] != 2.5 {
		t.Errorf("add structured content = %#v, want {sum: 2.5}", res.StructuredContent)
	}

	// Input validation happens before the handler runs.
	wantToolError(t, callTool(t, cs, "add", map[string]any{"a": "two", "b": 1}), "/properties/a")
	wantToolError(t, callTool(t, cs, "add", map[string]any{"a": 1}), "missing properties")
}

func TestTime(t *testing.T) {
	cs := connect(t, "", nil)
	before := time.Now().Truncate(time.Second)
	got := wantOK(t, callTool(t, cs, "time", map[string]any{}))
	after := time.Now()

	ts, err := time.Parse(time.RFC3339, got)
	if err != nil {
		t.Fatalf("time returned %q: %v", got, err)
	}
	if !strings.HasSuffix(got, "Z") {
		t.Errorf("time %q is not in UTC", got)
	}
	if ts.Before(before) || ts.After(after) {
		t.Errorf("time %s is outside [%s, %s]", ts, before, after)
	}
}

func TestSlowProgress(t *testing.T) {
	for _, version := range protocolVersions {
		t.Run("protocol="+version, func(t *testing.T) {
			progress := make(chan *mcp.ProgressNotificationParams, 100)
			cs := connect(t, version, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress <- req.Params
				},
			})

			params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 600}}
			params.SetProgressToken("tok")
			res, err := cs.CallTool(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			if got := wantOK(t, res); got != "slept 600 ms" {
				t.Errorf("slow returned %q", got)
			}

			// Notifications may be delivered after the result, so wait for
			// them. Ticks every 100 ms over 600 ms make 5, or fewer if the
			// machine is slow enough to drop some: ask for 3.
			var last float64
			for i := range 3 {
				select {
				case p := <-progress:
					if p.ProgressToken != "tok" {
						t.Errorf("progress token = %v, want tok", p.ProgressToken)
					}
					if p.Total != 600 {
						t.Errorf("progress total = %v, want 600", p.Total)
					}
					if p.Progress <= last || p.Progress > p.Total {
						t.Errorf("progress %v after %v, total %v", p.Progress, last, p.Total)
					}
					last = p.Progress
				case <-time.After(5 * time.Second):
					t.Fatalf("got %d progress notifications, want at least 3", i)
				}
			}
		})
	}
}

func TestSlowWithoutProgressToken(t *testing.T) {
	var notified atomic.Bool
	cs := connect(t, "", &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			notified.Store(true)
		},
	})
	if got := wantOK(t, callTool(t, cs, "slow", map[string]any{"ms": 250})); got != "slept 250 ms" {
		t.Errorf("slow returned %q", got)
	}
	// Closing the session waits for all incoming messages to be handled.
	cs.Close()
	if notified.Load() {
		t.Error("got a progress notification for a request without a progress token")
	}
}

func TestSlowRejectsOutOfRange(t *testing.T) {
	cs := connect(t, "", nil)
	for _, ms := range []int{-1, 10001} {
		wantToolError(t, callTool(t, cs, "slow", map[string]any{"ms": ms}), "between 0 and 10000")
	}
}

func TestSlowCancellation(t *testing.T) {
	for _, version := range protocolVersions {
		t.Run("protocol="+version, func(t *testing.T) {
			// Observe the server side: when did the tool handler return?
			handlerDone := make(chan time.Time, 1)
			observe := func(next mcp.MethodHandler) mcp.MethodHandler {
				return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
					res, err := next(ctx, method, req)
					if method == "tools/call" {
						handlerDone <- time.Now()
					}
					return res, err
				}
			}
			progress := make(chan struct{}, 100)
			cs := connect(t, version, &mcp.ClientOptions{
				ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
					progress <- struct{}{}
				},
			}, observe)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				// Cancel once the tool is demonstrably running.
				select {
				case <-progress:
				case <-time.After(5 * time.Second):
				}
				cancel()
			}()

			start := time.Now()
			params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 10000}}
			params.SetProgressToken(1)
			_, err := cs.CallTool(ctx, params)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("CallTool error = %v, want context.Canceled", err)
			}

			select {
			case end := <-handlerDone:
				if d := end.Sub(start); d > 2*time.Second {
					t.Errorf("tool handler ran for %s after cancellation", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("tool handler did not stop after cancellation")
			}
		})
	}
}

func TestAsk(t *testing.T) {
	for _, version := range protocolVersions {
		t.Run("protocol="+version, func(t *testing.T) {
			var asked string
			cs := connect(t, version, &mcp.ClientOptions{
				ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					asked = req.Params.Message
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "blue"}}, nil
				},
			})
			res := callTool(t, cs, "ask", map[string]any{"question": "Favourite colour?"})
			if got := wantOK(t, res); got != "blue" {
				t.Errorf("ask returned %q, want blue", got)
			}
			if asked != "Favourite colour?" {
				t.Errorf("client was asked %q", asked)
			}
		})
	}
}

func TestAskDeclined(t *testing.T) {
	for _, version := range protocolVersions {
		t.Run("protocol="+version, func(t *testing.T) {
			cs := connect(t, version, &mcp.ClientOptions{
				ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					return &mcp.ElicitResult{Action: "decline"}, nil
				},
			})
			wantToolError(t, callTool(t, cs, "ask", map[string]any{"question": "?"}), "declined")
		})
	}
}

func TestAskWithoutElicitation(t *testing.T) {
	for _, version := range protocolVersions {
		t.Run("protocol="+version, func(t *testing.T) {
			cs := connect(t, version, nil)
			wantToolError(t, callTool(t, cs, "ask", map[string]any{"question": "?"}), "does not support elicitation")
		})
	}
}

func TestGreetingPrompt(t *testing.T) {
	cs := connect(t, "", nil)
	res, err := cs.GetPrompt(t.Context(), &mcp.GetPromptParams{
		Name:      "greeting",
		Arguments: map[string]string{"name": "Ada"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 {
		t.Fatalf("got %d messages, want 1", len(res.Messages))
	}
	tc, ok := res.Messages[0].Content.(*mcp.TextContent)
	if !ok || !strings.Contains(tc.Text, "Ada") {
		t.Errorf("greeting message = %#v, want text mentioning Ada", res.Messages[0].Content)
	}

	if _, err := cs.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: "greeting"}); err == nil {
		t.Error("greeting without a name succeeded")
	}
}

func TestReadmeResource(t *testing.T) {
	cs := connect(t, "", nil)
	res, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: ReadmeURI})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("got %d contents, want 1", len(res.Contents))
	}
	c := res.Contents[0]
	if c.MIMEType != "text/plain" || !strings.Contains(c.Text, "demo server") {
		t.Errorf("readme = %+v", c)
	}

	if _, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "demo://nope"}); err == nil {
		t.Error("reading an unknown resource succeeded")
	}
}
