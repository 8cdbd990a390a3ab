package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Everything passes through both ways: this file drives every MCP feature a
// client uses through the gateway, with a real go-sdk client, against real
// servers: the go-sdk conformance server as a stdio process ("stdio") and
// over Streamable HTTP ("http"), and the built-in demo server ("demo", stdio)
// where the conformance server has no tool for the job. What arrives through
// the gateway is compared with what the same servers answer to a direct
// connection.
//
// One Caddy serves the whole file; the subtests run one after another, in
// the order of TestEverythingPassesThrough, because the upstreams are shared:
// list_changed comes last since it changes the upstreams' tool lists.

// ptProtocol is the protocol of the session clients of this file. The
// go-sdk client's default (2026-07-28) has its own subtest.
const ptProtocol = "2025-11-25"

// ptRoute is one way to reach an upstream through the gateway.
type ptRoute struct {
	name     string // subtest name
	path     string // endpoint path
	prefix   string // prepended to tool and prompt names on this path
	upstream string // the server that answers: "stdio", "http" or "demo"
}

var ptConformanceRoutes = []ptRoute{
	{"server_stdio", "/servers/stdio/mcp", "", "stdio"},
	{"server_http", "/servers/http/mcp", "", "http"},
	{"aggregate_stdio", "/mcp", "stdio__", "stdio"},
	{"aggregate_http", "/mcp", "http__", "http"},
}

var ptDemoRoutes = []ptRoute{
	{"server_demo", "/servers/demo/mcp", "", "demo"},
	{"aggregate_demo", "/mcp", "demo__", "demo"},
}

// ptFixture is the file's fixture: one Caddy with the three servers, and a
// direct session to each server for comparison.
type ptFixture struct {
	site   *site
	caddy  *caddyProc
	direct map[string]*mcp.ClientSession
	// demoTap is the wire between the gateway and the demo server.
	demoTap *ptWireTap
}

func TestEverythingPassesThrough(t *testing.T) {
	f := newPTFixture(t)
	t.Run("pagination", f.testPagination)
	t.Run("definitions", f.testDefinitions)
	t.Run("tool_content", f.testToolContent)
	t.Run("tool_error", f.testToolError)
	t.Run("progress_same_token", f.testProgress)
	t.Run("cancellation", f.testCancellation)
	t.Run("logging", f.testLogging)
	t.Run("logging_levels_per_session", f.testLoggingLevelsPerSession)
	t.Run("resources", f.testResources)
	t.Run("prompts", f.testPrompts)
	t.Run("completion", f.testCompletion)
	t.Run("ping", f.testPing)
	t.Run("roots", f.testRoots)
	t.Run("legacy_sse", f.testLegacySSE)
	t.Run("stateless_2026-07-28", f.testStateless)
	t.Run("list_changed", f.testListChanged) // last: it changes the tool lists
}

func newPTFixture(t *testing.T) *ptFixture {
	t.Helper()
	bin := peers.GoConformanceServer(t)
	httpURL := peers.StartGoConformanceHTTP(t)
	caddy := caddyBinary(t)
	// The demo server runs behind tee, which records what the gateway sends
	// it and what it answers, for testCancellation to see what reached it.
	dir := t.TempDir()
	tap := &ptWireTap{in: filepath.Join(dir, "demo-in.jsonl"), out: filepath.Join(dir, "demo-out.jsonl")}
	s := newSite(t).handle(gateway(
		stdioServer("stdio", bin),
		remoteServer("http", httpURL),
		stdioServer("demo", "/bin/sh", "-c", `tee -a "$1" | "$2" mcp demo-server | tee -a "$3"`, "sh", tap.in, caddy, tap.out),
	))
	f := &ptFixture{site: s, caddy: s.start(t), direct: map[string]*mcp.ClientSession{}, demoTap: tap}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for name, tr := range map[string]mcp.Transport{
		"stdio": &mcp.CommandTransport{Command: exec.Command(bin)},
		"http":  &mcp.StreamableClientTransport{Endpoint: httpURL, HTTPClient: h1Client(), MaxRetries: -1},
		"demo":  &mcp.CommandTransport{Command: exec.Command(caddy, "mcp", "demo-server")},
	} {
		c := mcp.NewClient(&mcp.Implementation{Name: "direct-" + name, Version: "0"}, nil)
		cs, err := c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: ptProtocol})
		if err != nil {
			t.Fatalf("connecting directly to %s: %v", name, err)
		}
		t.Cleanup(func() { cs.Close() })
		f.direct[name] = cs
	}
	return f
}

// dial opens a session client (2025-11-25) to a gateway path.
func (f *ptFixture) dial(t *testing.T, path string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return f.dialWith(t, mcp.NewClient(&mcp.Implementation{Name: "passthrough-test", Version: "0"}, opts), path)
}

func (f *ptFixture) dialWith(t *testing.T, c *mcp.Client, path string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.site.url(path), HTTPClient: h2cClient(), MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: ptProtocol})
	if err != nil {
		t.Fatalf("connecting to %s: %v", path, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func ptCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ptSameJSON fails the test when got and want do not encode to the same JSON.
func ptSameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: encoding the gateway's answer: %v", what, err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("%s: encoding the upstream's answer: %v", what, err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs from the upstream's own answer:\n gateway: %s\nupstream: %s", what, g, w)
	}
}

// ptEventually polls cond until it holds or 10 s have passed.
func ptEventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ptWalk lists every page through cursors and returns the items' keys in
// order, with the number of pages.
func ptWalk[T any](t *testing.T, what string, page func(cursor string) ([]T, string, error), key func(T) string) ([]string, int) {
	t.Helper()
	var keys []string
	cursor := ""
	for pages := 1; ; pages++ {
		items, next, err := page(cursor)
		if err != nil {
			t.Fatalf("%s page %d (cursor %q): %v", what, pages, cursor, err)
		}
		for _, it := range items {
			keys = append(keys, key(it))
		}
		if next == "" {
			return keys, pages
		}
		if pages > 1000 {
			t.Fatalf("%s: more than 1000 pages; the cursors loop", what)
		}
		cursor = next
	}
}

// ptIterate collects an SDK list iterator's keys.
func ptIterate[T any](t *testing.T, what string, seq func(func(T, error) bool), key func(T) string) []string {
	t.Helper()
	var keys []string
	for it, err := range seq {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		keys = append(keys, key(it))
	}
	return keys
}

// ptCheckListing checks that walking the cursors gives every item exactly
// once, the same items as the SDK's iterator, and exactly the expected ones.
func ptCheckListing(t *testing.T, what string, walked, iterated, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, k := range walked {
		seen[k]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s: %q is listed %d times across the pages", what, k, n)
		}
	}
	sortedWalk := slices.Sorted(slices.Values(walked))
	sortedIter := slices.Sorted(slices.Values(iterated))
	if !slices.Equal(sortedWalk, sortedIter) {
		t.Errorf("%s: the pages walked by cursor differ from the single-pass iterator:\n pages: %v\n  iter: %v", what, sortedWalk, sortedIter)
	}
	sortedWant := slices.Compact(slices.Sorted(slices.Values(want)))
	if got := slices.Compact(sortedWalk); !slices.Equal(got, sortedWant) {
		t.Errorf("%s: listed %v\nwant (from the upstreams directly) %v", what, got, sortedWant)
	}
}

func ptToolName(x *mcp.Tool) string                { return x.Name }
func ptPromptName(x *mcp.Prompt) string            { return x.Name }
func ptResourceURI(x *mcp.Resource) string         { return x.URI }
func ptTemplateURI(x *mcp.ResourceTemplate) string { return x.URITemplate }
func ptQualify(server string) func(string) string {
	return func(n string) string { return server + "__" + n }
}
func ptKeep(n string) string { return n }

// ptRename applies f to every name.
func ptRename(names []string, f func(string) string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = f(n)
	}
	return out
}

// directNames lists what a server offers when asked directly.
func (f *ptFixture) directNames(t *testing.T, server string) (tools, prompts, resources, templates []string) {
	t.Helper()
	ctx := ptCtx(t)
	cs := f.direct[server]
	tools = ptIterate(t, server+" tools", cs.Tools(ctx, nil), ptToolName)
	prompts = ptIterate(t, server+" prompts", cs.Prompts(ctx, nil), ptPromptName)
	resources = ptIterate(t, server+" resources", cs.Resources(ctx, nil), ptResourceURI)
	templates = ptIterate(t, server+" templates", cs.ResourceTemplates(ctx, nil), ptTemplateURI)
	return
}

// testPagination walks tools/list, prompts/list, resources/list and
// resources/templates/list page by page on every endpoint. The gateway has
// no page-size option, so its SDK server pages by 1000: every list here fits
// one page, and the walk checks that the cursors end, list each item once and
// agree with the iterator and with the upstreams.
func (f *ptFixture) testPagination(t *testing.T) {
	endpoints := []struct {
		name, path string
		servers    []string
	}{
		{"server_stdio", "/servers/stdio/mcp", []string{"stdio"}},
		{"server_http", "/servers/http/mcp", []string{"http"}},
		{"server_demo", "/servers/demo/mcp", []string{"demo"}},
		{"aggregate", "/mcp", []string{"stdio", "http", "demo"}},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			var wantTools, wantPrompts, wantResources, wantTemplates []string
			for _, server := range ep.servers {
				name := ptKeep
				if len(ep.servers) > 1 {
					name = ptQualify(server)
				}
				tools, prompts, resources, templates := f.directNames(t, server)
				wantTools = append(wantTools, ptRename(tools, name)...)
				wantPrompts = append(wantPrompts, ptRename(prompts, name)...)
				// Resource URIs are never renamed; the aggregate serves a
				// URI that several servers share once.
				wantResources = append(wantResources, resources...)
				wantTemplates = append(wantTemplates, templates...)
			}
			if len(ep.servers) > 1 && len(wantTools) <= 50 {
				t.Fatalf("the aggregate should offer more than 50 tools for this test to mean something; upstreams have %d", len(wantTools))
			}

			cs := f.dial(t, ep.path, nil)
			ctx := ptCtx(t)
			walked, pages := ptWalk(t, "tools/list", func(c string) ([]*mcp.Tool, string, error) {
				res, err := cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: c})
				if err != nil {
					return nil, "", err
				}
				return res.Tools, res.NextCursor, nil
			}, ptToolName)
			t.Logf("tools/list: %d tools in %d page(s)", len(walked), pages)
			ptCheckListing(t, "tools/list", walked, ptIterate(t, "tools iterator", cs.Tools(ctx, nil), ptToolName), wantTools)

			walked, _ = ptWalk(t, "prompts/list", func(c string) ([]*mcp.Prompt, string, error) {
				res, err := cs.ListPrompts(ctx, &mcp.ListPromptsParams{Cursor: c})
				if err != nil {
					return nil, "", err
				}
				return res.Prompts, res.NextCursor, nil
			}, ptPromptName)
			ptCheckListing(t, "prompts/list", walked, ptIterate(t, "prompts iterator", cs.Prompts(ctx, nil), ptPromptName), wantPrompts)

			walked, _ = ptWalk(t, "resources/list", func(c string) ([]*mcp.Resource, string, error) {
				res, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: c})
				if err != nil {
					return nil, "", err
				}
				return res.Resources, res.NextCursor, nil
			}, ptResourceURI)
			ptCheckListing(t, "resources/list", walked, ptIterate(t, "resources iterator", cs.Resources(ctx, nil), ptResourceURI), wantResources)

			walked, _ = ptWalk(t, "resources/templates/list", func(c string) ([]*mcp.ResourceTemplate, string, error) {
				res, err := cs.ListResourceTemplates(ctx, &mcp.ListResourceTemplatesParams{Cursor: c})
				if err != nil {
					return nil, "", err
				}
				return res.ResourceTemplates, res.NextCursor, nil
			}, ptTemplateURI)
			ptCheckListing(t, "resources/templates/list", walked, ptIterate(t, "templates iterator", cs.ResourceTemplates(ctx, nil), ptTemplateURI), wantTemplates)
		})
	}
}

// testDefinitions checks that tool, prompt, resource and template
// definitions arrive as the upstream gives them (names qualified on the
// aggregate, nothing else changed).
func (f *ptFixture) testDefinitions(t *testing.T) {
	for _, r := range append(slices.Clone(ptConformanceRoutes), ptDemoRoutes...) {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			cs := f.dial(t, r.path, nil)
			direct := f.direct[r.upstream]

			gwTools := map[string]*mcp.Tool{}
			for tool, err := range cs.Tools(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				gwTools[tool.Name] = tool
			}
			for tool, err := range direct.Tools(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				got, ok := gwTools[r.prefix+tool.Name]
				if !ok {
					t.Errorf("tool %q is missing", r.prefix+tool.Name)
					continue
				}
				want := *tool
				want.Name = r.prefix + tool.Name
				ptSameJSON(t, "tool "+want.Name, got, &want)
			}

			gwPrompts := map[string]*mcp.Prompt{}
			for p, err := range cs.Prompts(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				gwPrompts[p.Name] = p
			}
			for p, err := range direct.Prompts(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				got, ok := gwPrompts[r.prefix+p.Name]
				if !ok {
					t.Errorf("prompt %q is missing", r.prefix+p.Name)
					continue
				}
				want := *p
				want.Name = r.prefix + p.Name
				ptSameJSON(t, "prompt "+want.Name, got, &want)
			}

			// On the aggregate, a URI several servers share is the first
			// server's (stdio, in config order): compare with that one.
			owner := r.upstream
			if r.prefix != "" && r.upstream == "http" {
				owner = "stdio"
			}
			gwResources := map[string]*mcp.Resource{}
			for res, err := range cs.Resources(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				gwResources[res.URI] = res
			}
			for res, err := range f.direct[owner].Resources(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				if got, ok := gwResources[res.URI]; !ok {
					t.Errorf("resource %q is missing", res.URI)
				} else {
					ptSameJSON(t, "resource "+res.URI, got, res)
				}
			}
			gwTemplates := map[string]*mcp.ResourceTemplate{}
			for tmpl, err := range cs.ResourceTemplates(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				gwTemplates[tmpl.URITemplate] = tmpl
			}
			for tmpl, err := range f.direct[owner].ResourceTemplates(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				if got, ok := gwTemplates[tmpl.URITemplate]; !ok {
					t.Errorf("resource template %q is missing", tmpl.URITemplate)
				} else {
					ptSameJSON(t, "resource template "+tmpl.URITemplate, got, tmpl)
				}
			}
		})
	}
}

// testToolContent compares tool results of every content type with the
// upstream's own answer.
func (f *ptFixture) testToolContent(t *testing.T) {
	// kinds are the content types each tool must return, so that the
	// comparison cannot pass on two empty results.
	kinds := map[string][]string{
		"test_simple_text":            {"*mcp.TextContent"},
		"test_image_content":          {"*mcp.ImageContent"},
		"test_audio_content":          {"*mcp.AudioContent"},
		"test_embedded_resource":      {"*mcp.EmbeddedResource"},
		"test_multiple_content_types": {"*mcp.TextContent", "*mcp.ImageContent", "*mcp.EmbeddedResource"},
	}
	for _, r := range ptConformanceRoutes {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			cs := f.dial(t, r.path, nil)
			for _, tool := range slices.Sorted(maps.Keys(kinds)) {
				want, err := f.direct[r.upstream].CallTool(ctx, &mcp.CallToolParams{Name: tool})
				if err != nil {
					t.Fatalf("%s directly: %v", tool, err)
				}
				got, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: r.prefix + tool})
				if err != nil {
					t.Errorf("%s: %v", r.prefix+tool, err)
					continue
				}
				var types []string
				for _, c := range got.Content {
					types = append(types, fmt.Sprintf("%T", c))
				}
				if !slices.Equal(types, kinds[tool]) {
					t.Errorf("%s: content types %v, want %v", r.prefix+tool, types, kinds[tool])
				}
				for _, c := range got.Content {
					switch c := c.(type) {
					case *mcp.ImageContent:
						if len(c.Data) == 0 || c.MIMEType != "image/png" {
							t.Errorf("%s: image content has %d bytes of %q", r.prefix+tool, len(c.Data), c.MIMEType)
						}
					case *mcp.AudioContent:
						if len(c.Data) == 0 || c.MIMEType != "audio/wav" {
							t.Errorf("%s: audio content has %d bytes of %q", r.prefix+tool, len(c.Data), c.MIMEType)
						}
					case *mcp.EmbeddedResource:
						if c.Resource == nil || c.Resource.Text != "This is an embedded resource" {
							t.Errorf("%s: embedded resource is %+v", r.prefix+tool, c.Resource)
						}
					}
				}
				ptSameJSON(t, r.prefix+tool+" result", got, want)
			}
		})
	}
}

// testToolError checks that a tool-level error arrives as a result with
// isError, not as a JSON-RPC error.
func (f *ptFixture) testToolError(t *testing.T) {
	for _, r := range ptConformanceRoutes {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			cs := f.dial(t, r.path, nil)
			want, err := f.direct[r.upstream].CallTool(ctx, &mcp.CallToolParams{Name: "test_error_handling"})
			if err != nil {
				t.Fatalf("directly: %v", err)
			}
			got, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: r.prefix + "test_error_handling"})
			if err != nil {
				t.Fatalf("the tool error arrived as a JSON-RPC error, not a result with isError: %v", err)
			}
			if !got.IsError {
				t.Errorf("isError is false; result %q", text(got))
			}
			if !strings.Contains(text(got), "intentionally returns an error") {
				t.Errorf("error text %q lacks the upstream's message", text(got))
			}
			ptSameJSON(t, "error result", got, want)
		})
	}
}

// ptProgressLog records the progress notifications a client session gets.
type ptProgressLog struct {
	mu    sync.Mutex
	notes []*mcp.ProgressNotificationParams
}

func (p *ptProgressLog) handler(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notes = append(p.notes, req.Params)
}

func (p *ptProgressLog) snapshot() []*mcp.ProgressNotificationParams {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.notes)
}

func ptTokenJSON(token any) string {
	b, _ := json.Marshal(token)
	return string(b)
}

// testProgress makes two calls at once, from two client sessions, with the
// same progress token: each session must get its own progress, with its
// own token, and nothing of the other's.
func (f *ptFixture) testProgress(t *testing.T) {
	// The conformance tool reports 0, 50 and 100 of 100. The last one may
	// trail the result (and the gateway drops what trails it), so a session
	// gets two or three; one that got the other's would have more.
	type pair struct {
		name string
		a, b ptRoute
	}
	var pairs []pair
	for _, r := range ptConformanceRoutes {
		pairs = append(pairs, pair{r.name, r, r})
	}
	pairs = append(pairs,
		pair{"server_stdio+aggregate_stdio", ptConformanceRoutes[0], ptConformanceRoutes[2]},
		pair{"server_http+aggregate_http", ptConformanceRoutes[1], ptConformanceRoutes[3]})
	for _, p := range pairs {
		t.Run("conformance/"+p.name, func(t *testing.T) {
			ctx := ptCtx(t)
			logs := [2]*ptProgressLog{{}, {}}
			sessions := [2]*mcp.ClientSession{
				f.dial(t, p.a.path, &mcp.ClientOptions{ProgressNotificationHandler: logs[0].handler}),
				f.dial(t, p.b.path, &mcp.ClientOptions{ProgressNotificationHandler: logs[1].handler}),
			}
			prefixes := [2]string{p.a.prefix, p.b.prefix}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() {
					params := &mcp.CallToolParams{Name: prefixes[i] + "test_tool_with_progress"}
					params.SetProgressToken("same-token")
					_, errs[i] = sessions[i].CallTool(ctx, params)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("session %d: %v", i, err)
				}
			}
			// Let trailing notifications arrive, wrongly routed ones included.
			ptEventually(func() bool { return len(logs[0].snapshot()) >= 3 && len(logs[1].snapshot()) >= 3 })
			time.Sleep(300 * time.Millisecond)
			for i, log := range logs {
				notes := log.snapshot()
				var got []float64
				for _, n := range notes {
					got = append(got, n.Progress)
					if ptTokenJSON(n.ProgressToken) != `"same-token"` {
						t.Errorf("session %d: progress token %s, want the client's own \"same-token\"", i, ptTokenJSON(n.ProgressToken))
					}
					if n.Total != 100 {
						t.Errorf("session %d: total %v, want 100", i, n.Total)
					}
				}
				if len(got) < 2 || len(got) > 3 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) || got[0] != 0 || got[1] != 50 {
					t.Errorf("session %d got progress %v; want its own 0, 50[, 100]", i, got)
				}
			}
		})
	}

	// The demo's slow tool reports its own duration as the total, which
	// tells the two calls apart.
	demoPairs := []pair{
		{"server_demo", ptDemoRoutes[0], ptDemoRoutes[0]},
		{"aggregate_demo", ptDemoRoutes[1], ptDemoRoutes[1]},
		{"server_demo+aggregate_demo", ptDemoRoutes[0], ptDemoRoutes[1]},
	}
	for _, p := range demoPairs {
		t.Run("demo/"+p.name, func(t *testing.T) {
			ctx := ptCtx(t)
			logs := [2]*ptProgressLog{{}, {}}
			sessions := [2]*mcp.ClientSession{
				f.dial(t, p.a.path, &mcp.ClientOptions{ProgressNotificationHandler: logs[0].handler}),
				f.dial(t, p.b.path, &mcp.ClientOptions{ProgressNotificationHandler: logs[1].handler}),
			}
			prefixes := [2]string{p.a.prefix, p.b.prefix}
			durations := [2]int{600, 900}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			results := make([]*mcp.CallToolResult, 2)
			for i := range 2 {
				wg.Go(func() {
					params := &mcp.CallToolParams{Name: prefixes[i] + "slow", Arguments: map[string]any{"ms": durations[i]}}
					params.SetProgressToken(7)
					results[i], errs[i] = sessions[i].CallTool(ctx, params)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("session %d: %v", i, err)
				}
				if want := fmt.Sprintf("slept %d ms", durations[i]); text(results[i]) != want {
					t.Errorf("session %d: result %q, want %q", i, text(results[i]), want)
				}
			}
			time.Sleep(300 * time.Millisecond)
			for i, log := range logs {
				notes := log.snapshot()
				if len(notes) < 3 {
					t.Errorf("session %d got %d progress notifications from a %d ms call; want one per 100 ms", i, len(notes), durations[i])
				}
				for _, n := range notes {
					if ptTokenJSON(n.ProgressToken) != "7" {
						t.Errorf("session %d: progress token %s, want the client's own 7", i, ptTokenJSON(n.ProgressToken))
					}
					if n.Total != float64(durations[i]) {
						t.Errorf("session %d (a %d ms call) got progress of the other call: %v/%v %q", i, durations[i], n.Progress, n.Total, n.Message)
					}
				}
			}
		})
	}
}

// testCancellation cancels a call of the demo's slow tool 200 ms in, and
// checks on the wire between the gateway and the demo server (see
// newPTFixture: the demo runs behind tee) that the gateway told the
// upstream, and that the upstream stopped: the slow tool reports progress
// every 100 ms while it sleeps, so a tool that went on would keep reporting.
//
// That the client's call returns at once is the go-sdk client's own doing (it
// returns ctx.Err() and sends notifications/cancelled in the background);
// the test checks it all the same, and that the session stays usable.
func (f *ptFixture) testCancellation(t *testing.T) {
	for i, r := range ptDemoRoutes {
		t.Run(r.name, func(t *testing.T) {
			cs := f.dial(t, r.path, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ms := 8000 + i // tells this call apart on the wire
			params := &mcp.CallToolParams{Name: r.prefix + "slow", Arguments: map[string]any{"ms": ms}}
			params.SetProgressToken("cancel-me")
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(ctx, params)
				errc <- err
			}()
			time.Sleep(200 * time.Millisecond)
			var call *ptWireMessage
			if !ptEventually(func() bool {
				call = f.demoTap.slowCall(ms)
				return call != nil && len(f.demoTap.progress(call.progressToken())) > 0
			}) {
				t.Fatal("the slow call did not reach the demo server, or it reported no progress")
			}
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled call returned %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the cancelled call had not returned 5 s after cancellation (the tool sleeps 8 s)")
			}

			follow, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer fcancel()
			res, err := cs.CallTool(follow, &mcp.CallToolParams{Name: r.prefix + "echo", Arguments: map[string]any{"text": "after cancel"}})
			if err != nil || text(res) != "after cancel" {
				t.Fatalf("follow-up call: %v %q", err, text(res))
			}
			res, err = cs.CallTool(follow, &mcp.CallToolParams{Name: r.prefix + "slow", Arguments: map[string]any{"ms": 0}})
			if err != nil || text(res) != "slept 0 ms" {
				t.Fatalf("follow-up slow call: %v %q", err, text(res))
			}

			// Progress the upstream sent up to now, and a second later: a
			// stopped tool sends none in between.
			before := len(f.demoTap.progress(call.progressToken()))
			time.Sleep(time.Second)
			if after := len(f.demoTap.progress(call.progressToken())); after > before {
				t.Errorf("the demo server went on with the cancelled call: %d more progress notifications in the second after it was cancelled", after-before)
			}
			if !ptEventually(func() bool { return f.demoTap.cancelled(call.ID) }) {
				t.Errorf("the gateway sent no notifications/cancelled for request %s to the demo server", call.ID)
			}
		})
	}
}

// ptWireTap reads the JSON-RPC messages a stdio server got (in) and sent
// (out), as tee recorded them.
type ptWireTap struct{ in, out string }

// ptWireMessage is a JSON-RPC message as seen on the wire.
type ptWireMessage struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      struct {
			ProgressToken any `json:"progressToken"`
		} `json:"_meta"`
		RequestID     json.RawMessage `json:"requestId"`
		ProgressToken any             `json:"progressToken"`
	} `json:"params"`
}

func (m *ptWireMessage) progressToken() string { return ptTokenJSON(m.Params.Meta.ProgressToken) }

func ptReadWire(path string) []*ptWireMessage {
	data, _ := os.ReadFile(path)
	var msgs []*ptWireMessage
	for _, line := range bytes.Split(data, []byte("\n")) {
		m := new(ptWireMessage)
		if json.Unmarshal(line, m) == nil {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// slowCall finds the tools/call of slow for ms milliseconds.
func (w *ptWireTap) slowCall(ms int) *ptWireMessage {
	for _, m := range ptReadWire(w.in) {
		var args struct{ MS int }
		if m.Method == "tools/call" && m.Params.Name == "slow" && json.Unmarshal(m.Params.Arguments, &args) == nil && args.MS == ms {
			return m
		}
	}
	return nil
}

// cancelled reports whether the server got notifications/cancelled for id.
func (w *ptWireTap) cancelled(id json.RawMessage) bool {
	for _, m := range ptReadWire(w.in) {
		if m.Method == "notifications/cancelled" && bytes.Equal(bytes.TrimSpace(m.Params.RequestID), bytes.TrimSpace(id)) {
			return true
		}
	}
	return false
}

// progress lists the progress the server sent for token (JSON-encoded).
func (w *ptWireTap) progress(token string) []*ptWireMessage {
	var out []*ptWireMessage
	for _, m := range ptReadWire(w.out) {
		if m.Method == "notifications/progress" && ptTokenJSON(m.Params.ProgressToken) == token {
			out = append(out, m)
		}
	}
	return out
}

// ptLogRecorder records the log messages a client session gets.
type ptLogRecorder struct {
	mu   sync.Mutex
	msgs []*mcp.LoggingMessageParams
}

func (l *ptLogRecorder) handler(_ context.Context, req *mcp.LoggingMessageRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, req.Params)
}

// data returns the messages' data that are among want, in arrival order.
func (l *ptLogRecorder) data(want ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.msgs {
		if s, ok := m.Data.(string); ok && slices.Contains(want, s) {
			out = append(out, s)
		}
	}
	return out
}

var ptToolLogs = []string{"Tool execution started", "Tool processing data", "Tool execution completed"}

func (f *ptFixture) testLogging(t *testing.T) {
	for _, r := range ptConformanceRoutes {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			logs := &ptLogRecorder{}
			cs := f.dial(t, r.path, &mcp.ClientOptions{LoggingMessageHandler: logs.handler})
			if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
				t.Fatalf("logging/setLevel: %v", err)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: r.prefix + "test_tool_with_logging"})
			if err != nil {
				t.Fatal(err)
			}
			if text(res) != "Tool with logging executed successfully" {
				t.Errorf("result %q", text(res))
			}
			if !ptEventually(func() bool { return len(logs.data(ptToolLogs...)) >= 3 }) {
				t.Errorf("got log messages %q; want %q", logs.data(ptToolLogs...), ptToolLogs)
			} else if got := logs.data(ptToolLogs...); !slices.Equal(got, ptToolLogs) {
				t.Errorf("got log messages %q; want %q once each, in order", got, ptToolLogs)
			}

			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: r.prefix + "test_logging_tool"}); err != nil {
				t.Fatal(err)
			}
			if !ptEventually(func() bool { return len(logs.data("test_logging_tool executed")) >= 1 }) {
				t.Errorf("test_logging_tool's message did not arrive")
			}
			logs.mu.Lock()
			for _, m := range logs.msgs {
				if m.Level != "info" {
					t.Errorf("log message %v at level %q, want info", m.Data, m.Level)
				}
			}
			logs.mu.Unlock()
		})
	}
}

// testLoggingLevelsPerSession: two client sessions of one upstream set
// different levels; each must get what its own level lets through.
func (f *ptFixture) testLoggingLevelsPerSession(t *testing.T) {
	for _, r := range []ptRoute{ptConformanceRoutes[1], ptConformanceRoutes[2]} {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			verbose, quiet := &ptLogRecorder{}, &ptLogRecorder{}
			a := f.dial(t, r.path, &mcp.ClientOptions{LoggingMessageHandler: verbose.handler})
			b := f.dial(t, r.path, &mcp.ClientOptions{LoggingMessageHandler: quiet.handler})
			if err := a.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
				t.Fatal(err)
			}
			if err := b.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "error"}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.CallTool(ctx, &mcp.CallToolParams{Name: r.prefix + "test_tool_with_logging"}); err != nil {
				t.Fatal(err)
			}
			if !ptEventually(func() bool { return len(verbose.data(ptToolLogs...)) >= 3 }) {
				t.Errorf("the session at level info got %q of its call's info messages, after another session set level error", verbose.data(ptToolLogs...))
			}
			if got := quiet.data(ptToolLogs...); len(got) > 0 {
				t.Errorf("the session at level error got info messages %q", got)
			}
		})
	}
}

const ptWatchedURI = "test://watched-resource"

func (f *ptFixture) testResources(t *testing.T) {
	// The aggregate serves a URI several servers share from the first in
	// config order: stdio.
	routes := []ptRoute{ptConformanceRoutes[0], ptConformanceRoutes[1], {"aggregate", "/mcp", "", "stdio"}}
	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			updated := make(chan string, 16)
			cs := f.dial(t, r.path, &mcp.ClientOptions{
				ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
					select {
					case updated <- req.Params.URI:
					default:
					}
				},
			})
			for uri, wantText := range map[string]string{
				"test://static-text":      "This is the content of the static text resource.",
				"test://static-binary":    "",
				"test://template/42/data": `{"id": "42", "templateTest": true, "data": "Data for ID: 42"}`,
				ptWatchedURI:              "Watched resource content",
			} {
				want, err := f.direct[r.upstream].ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
				if err != nil {
					t.Fatalf("reading %s directly: %v", uri, err)
				}
				got, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
				if err != nil {
					t.Errorf("reading %s: %v", uri, err)
					continue
				}
				if len(got.Contents) != 1 {
					t.Errorf("%s: %d contents, want 1", uri, len(got.Contents))
					continue
				}
				if c := got.Contents[0]; c.URI != uri || c.Text != wantText || (wantText == "" && len(c.Blob) == 0) {
					t.Errorf("%s: got uri %q text %q blob %d bytes", uri, c.URI, c.Text, len(c.Blob))
				}
				ptSameJSON(t, "resources/read "+uri, got, want)
			}

			if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: ptWatchedURI}); err != nil {
				t.Fatalf("resources/subscribe: %v", err)
			}
			// The conformance server updates the watched resource every 3 s.
			select {
			case uri := <-updated:
				if uri != ptWatchedURI {
					t.Errorf("notifications/resources/updated for %q, want %q", uri, ptWatchedURI)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("no notifications/resources/updated within 10 s of subscribing (the server updates every 3 s)")
			}
			if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: ptWatchedURI}); err != nil {
				t.Errorf("resources/unsubscribe: %v", err)
			}
		})
	}
}

func (f *ptFixture) testPrompts(t *testing.T) {
	for _, r := range ptConformanceRoutes {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			cs := f.dial(t, r.path, nil)
			for _, p := range []*mcp.GetPromptParams{
				{Name: "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "alpha", "arg2": "beta"}},
				{Name: "test_prompt_with_embedded_resource", Arguments: map[string]string{"resourceUri": "test://example"}},
				{Name: "test_prompt_with_image"},
				{Name: "test_simple_prompt"},
			} {
				want, err := f.direct[r.upstream].GetPrompt(ctx, p)
				if err != nil {
					t.Fatalf("%s directly: %v", p.Name, err)
				}
				via := *p
				via.Name = r.prefix + p.Name
				got, err := cs.GetPrompt(ctx, &via)
				if err != nil {
					t.Errorf("prompts/get %s: %v", via.Name, err)
					continue
				}
				if len(got.Messages) == 0 {
					t.Errorf("prompts/get %s: no messages", via.Name)
				}
				ptSameJSON(t, "prompts/get "+via.Name, got, want)
			}
			got, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: r.prefix + "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "alpha", "arg2": "beta"}})
			if err == nil {
				if tc, ok := got.Messages[0].Content.(*mcp.TextContent); !ok || tc.Text != "Prompt with arguments: arg1='alpha', arg2='beta'" {
					t.Errorf("arguments did not reach the prompt: %+v", got.Messages[0].Content)
				}
			}
		})
	}
}

// testCompletion routes completion/complete for a prompt argument and a
// resource template argument. The conformance server completes nothing
// (empty values), so this checks the routing and the result's shape.
func (f *ptFixture) testCompletion(t *testing.T) {
	for _, r := range ptConformanceRoutes {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			cs := f.dial(t, r.path, nil)
			if cs.InitializeResult().Capabilities.Completions == nil {
				t.Errorf("the gateway does not advertise completions")
			}
			prompt := &mcp.CompleteParams{
				Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"},
				Argument: mcp.CompleteParamsArgument{Name: "arg1", Value: "al"},
			}
			want, err := f.direct[r.upstream].Complete(ctx, prompt)
			if err != nil {
				t.Fatalf("directly: %v", err)
			}
			via := *prompt
			via.Ref = &mcp.CompleteReference{Type: "ref/prompt", Name: r.prefix + "test_prompt_with_arguments"}
			got, err := cs.Complete(ctx, &via)
			if err != nil {
				t.Errorf("completion/complete for prompt %s: %v", via.Ref.Name, err)
			} else {
				ptSameJSON(t, "completion for a prompt argument", got, want)
			}

			tmpl := &mcp.CompleteParams{
				Ref:      &mcp.CompleteReference{Type: "ref/resource", URI: "test://template/{id}/data"},
				Argument: mcp.CompleteParamsArgument{Name: "id", Value: "4"},
			}
			want, err = f.direct[r.upstream].Complete(ctx, tmpl)
			if err != nil {
				t.Fatalf("directly: %v", err)
			}
			got, err = cs.Complete(ctx, tmpl)
			if err != nil {
				t.Errorf("completion/complete for template %s: %v", tmpl.Ref.URI, err)
			} else {
				ptSameJSON(t, "completion for a template argument", got, want)
			}

			if _, err := cs.Complete(ctx, &mcp.CompleteParams{
				Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: r.prefix + "no_such_prompt"},
				Argument: mcp.CompleteParamsArgument{Name: "x", Value: "y"},
			}); err == nil {
				t.Errorf("completion for an unknown prompt succeeded")
			}
		})
	}
}

func (f *ptFixture) testPing(t *testing.T) {
	for _, path := range []string{"/servers/stdio/mcp", "/servers/http/mcp", "/servers/demo/mcp", "/mcp"} {
		t.Run(strings.Trim(path, "/"), func(t *testing.T) {
			cs := f.dial(t, path, nil)
			if err := cs.Ping(ptCtx(t), nil); err != nil {
				t.Errorf("ping: %v", err)
			}
		})
	}
}

// testRoots: the conformance tool asks for the client's roots (as an input
// request, which the SDK turns into roots/list for a 2025-11-25 session like
// the gateway's upstream one); the gateway must answer with the calling
// client's roots.
func (f *ptFixture) testRoots(t *testing.T) {
	for _, r := range ptConformanceRoutes {
		t.Run(r.name, func(t *testing.T) {
			c := mcp.NewClient(&mcp.Implementation{Name: "roots-test", Version: "0"}, nil)
			roots := []*mcp.Root{
				{URI: "file:///work/" + r.name + "/one", Name: "one"},
				{URI: "file:///work/" + r.name + "/two", Name: "two"},
			}
			c.AddRoots(roots...)
			cs := f.dialWith(t, c, r.path)
			res, err := cs.CallTool(ptCtx(t), &mcp.CallToolParams{Name: r.prefix + "test_input_required_result_list_roots"})
			if err != nil {
				t.Fatal(err)
			}
			got := text(res)
			if res.IsError || !strings.HasPrefix(got, "Client exposed 2 root(s): ") || !strings.Contains(got, roots[0].URI) || !strings.Contains(got, roots[1].URI) {
				t.Errorf("the tool saw %q; want the client's 2 roots %s and %s", got, roots[0].URI, roots[1].URI)
			}
		})
	}
}

// testLegacySSE speaks the 2024-11-05 HTTP+SSE transport to the same paths.
func (f *ptFixture) testLegacySSE(t *testing.T) {
	for _, r := range append(slices.Clone(ptConformanceRoutes), ptDemoRoutes...) {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			c := mcp.NewClient(&mcp.Implementation{Name: "sse-test", Version: "0"}, nil)
			cs, err := c.Connect(ctx, &mcp.SSEClientTransport{Endpoint: f.site.url(r.path), HTTPClient: h1Client()},
				&mcp.ClientSessionOptions{ProtocolVersion: "2024-11-05"})
			if err != nil {
				t.Fatalf("connecting over SSE: %v", err)
			}
			defer cs.Close()
			if v := cs.InitializeResult().ProtocolVersion; v != "2024-11-05" {
				t.Errorf("negotiated protocol %q, want 2024-11-05", v)
			}
			f.listAndCall(t, ctx, cs, r, "over sse")
		})
	}
}

// listAndCall lists the route's tools and calls its simplest one (the
// demo's echo with text, or test_simple_text).
func (f *ptFixture) listAndCall(t *testing.T, ctx context.Context, cs *mcp.ClientSession, r ptRoute, echo string) {
	t.Helper()
	tool, args, want := "test_simple_text", map[string]any(nil), "This is a simple text response for testing."
	if r.upstream == "demo" {
		tool, args, want = "echo", map[string]any{"text": echo}, echo
	}
	if names := toolNames(t, cs); !slices.Contains(names, r.prefix+tool) {
		t.Errorf("tools/list lacks %q: %v", r.prefix+tool, names)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: r.prefix + tool, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call: %v", err)
	}
	if got := text(res); got != want {
		t.Errorf("tools/call returned %q, want %q", got, want)
	}
}

// testStateless connects as a 2026-07-28 client (the go-sdk client's
// default: it tries server/discover first and falls back to initialize on
// 2025-11-25 when the server does not offer the new protocol).
func (f *ptFixture) testStateless(t *testing.T) {
	for _, r := range append(slices.Clone(ptConformanceRoutes), ptDemoRoutes...) {
		t.Run(r.name, func(t *testing.T) {
			ctx := ptCtx(t)
			c := mcp.NewClient(&mcp.Implementation{Name: "stateless-test", Version: "0"}, nil)
			cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.site.url(r.path), HTTPClient: h2cClient(), MaxRetries: -1},
				&mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
			if err != nil {
				t.Fatalf("connecting: %v", err)
			}
			defer cs.Close()
			if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
				t.Errorf("negotiated protocol %q, want 2026-07-28 (stateless): the gateway does not serve the 2026-07-28 protocol", v)
			}
			f.listAndCall(t, ctx, cs, r, "stateless")
		})
	}
}

// testListChanged: a tool the upstream adds reaches the clients of every
// endpoint that serves it, with notifications/tools/list_changed.
func (f *ptFixture) testListChanged(t *testing.T) {
	const added = "__transient_tool_for_list_changed"
	type watcher struct {
		cs      *mcp.ClientSession
		changed chan struct{}
	}
	watch := func(path string) *watcher {
		w := &watcher{changed: make(chan struct{}, 16)}
		w.cs = f.dial(t, path, &mcp.ClientOptions{
			ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
				select {
				case w.changed <- struct{}{}:
				default:
				}
			},
		})
		return w
	}
	servers := map[string]*watcher{"stdio": watch("/servers/stdio/mcp"), "http": watch("/servers/http/mcp")}
	agg := watch("/mcp")

	for _, step := range []struct {
		server string
		via    *watcher // the client that triggers the change
		name   string
	}{
		{"stdio", servers["stdio"], "test_trigger_tool_change"},
		{"http", agg, "http__test_trigger_tool_change"},
	} {
		t.Run(step.server, func(t *testing.T) {
			ctx := ptCtx(t)
			for _, w := range append(slices.Collect(maps.Values(servers)), agg) {
				for len(w.changed) > 0 {
					<-w.changed
				}
			}
			if _, err := step.via.cs.CallTool(ctx, &mcp.CallToolParams{Name: step.name}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what string
				w    *watcher
				tool string
			}{
				{"one-server endpoint", servers[step.server], added},
				{"aggregate endpoint", agg, step.server + "__" + added},
			} {
				select {
				case <-c.w.changed:
				case <-time.After(10 * time.Second):
					t.Errorf("%s: no notifications/tools/list_changed within 10 s", c.what)
				}
				if names := toolNames(t, c.w.cs); !slices.Contains(names, c.tool) {
					t.Errorf("%s: tools/list lacks the added tool %q: %v", c.what, c.tool, names)
				} else if _, err := c.w.cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool}); err != nil {
					t.Errorf("%s: calling the added tool %q: %v", c.what, c.tool, err)
				}
			}
		})
	}
}
