package caddymcp

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// catalogUpstream is an upstream that never connects, with a catalog of
// the given tools (and a prompt and a resource of the same names).
func catalogUpstream(server string, tools ...string) *upstream {
	u := &upstream{cfg: &ServerConfig{Name: server}}
	u.catalog.Store(catalogOf(tools...))
	return u
}

func catalogOf(tools ...string) *catalog {
	cat := &catalog{}
	for _, t := range tools {
		cat.tools = append(cat.tools, &mcp.Tool{Name: t, InputSchema: map[string]any{"type": "object"}})
		cat.prompts = append(cat.prompts, &mcp.Prompt{Name: t})
		cat.resources = append(cat.resources, &mcp.Resource{Name: t, URI: "res://" + t})
	}
	return cat
}

// mirrorState is what an endpoint exposes: names → server/name.
func mirrorState(e *endpoint) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var lines []string
	for n, x := range e.tools {
		lines = append(lines, "tool "+n+" = "+x.m.cfg.Name+"/"+x.name)
	}
	for n, x := range e.prompts {
		lines = append(lines, "prompt "+n+" = "+x.m.cfg.Name+"/"+x.name)
	}
	for n, x := range e.resources {
		lines = append(lines, "resource "+n+" = "+x.m.cfg.Name)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestMirrorIncrementalEqualsWhole changes an aggregate's members and their
// catalogs one at a time, as a live set and upstreams do, and checks after
// every change that the endpoint exposes exactly what mirroring all members
// from scratch gives, collisions included (names that mangle alike, names
// cut to 64, servers sharing a resource URI), and that its MCP server lists
// those tools.
func TestMirrorIncrementalEqualsWhole(t *testing.T) {
	long := strings.Repeat("x", 70)
	servers := []string{"a", "b", "c.d", "c_d", "srv-" + long[:40], "srv-" + long[:41]}
	toolSets := [][]string{{"echo"}, {"echo", "add"}, {"get weather", "get_weather"}, {long, long + "y"}, {"shared"}, {}}
	rng := rand.New(rand.NewPCG(1, 2))

	own := []*member{{cfg: &ServerConfig{Name: "own"}, up: catalogUpstream("own", "echo", "shared")}}
	e := newEndpoint("test", true, own, endpointOptions{}, zap.NewNop())
	live := map[string]*member{}
	for step := range 400 {
		name := servers[rng.IntN(len(servers))]
		m, in := live[name]
		switch op := rng.IntN(3); {
		case op == 0 && !in:
			m = &member{cfg: &ServerConfig{Name: name}, up: catalogUpstream(name, toolSets[rng.IntN(len(toolSets))]...)}
			live[name] = m
			e.addMember(m)
		case op == 1 && in:
			delete(live, name)
			e.removeMember(m)
		case in:
			m.up.catalog.Store(catalogOf(toolSets[rng.IntN(len(toolSets))]...))
			e.published(m.up)
		default:
			continue
		}
		names := slices.Sorted(maps.Keys(live))
		members := slices.Clone(own)
		for _, n := range names {
			members = append(members, live[n])
		}
		e.mu.Lock()
		got := e.memberList()
		e.mu.Unlock()
		if !slices.Equal(got, members) {
			t.Fatalf("step %d: members out of order", step)
		}
		whole := newEndpoint("whole", true, members, endpointOptions{}, zap.NewNop())
		if got, want := mirrorState(e), mirrorState(whole); got != want {
			t.Fatalf("step %d: the endpoint exposes\n%s\nmirroring everything gives\n%s", step, got, want)
		}
	}

	// The MCP server lists what the mirror says.
	ct, st := mcp.NewInMemoryTransports()
	ss, err := e.server.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var listed []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, tool.Name)
	}
	e.mu.Lock()
	want := slices.Sorted(maps.Keys(e.tools))
	e.mu.Unlock()
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("tools/list gives %v, the mirror %v", listed, want)
	}
}

// BenchmarkAggregateJoin adds a server to an aggregate of n others and takes
// it off again, as a registry write does: its time and allocations must not
// grow with n.
func BenchmarkAggregateJoin(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e := newEndpoint("bench", true, nil, endpointOptions{}, zap.NewNop())
			ms := make([]*member, n)
			for i := range ms {
				name := fmt.Sprintf("s%05d", i)
				ms[i] = &member{cfg: &ServerConfig{Name: name}, up: catalogUpstream(name, name)}
			}
			e.join(ms)
			m := &member{cfg: &ServerConfig{Name: "new"}, up: catalogUpstream("new", "new")}
			b.ReportAllocs()
			for b.Loop() {
				e.addMember(m)
				e.removeMember(m)
			}
		})
	}
}

// TestObjectSchema: an input schema the SDK accepts comes out of every
// shape a server may send, and a right one kept as JSON is not rewritten.
func TestObjectSchema(t *testing.T) {
	right := json.RawMessage(`{"properties":{"a":{"type":"string"}},"type":"object"}`)
	if got, ok := objectSchema(right).(json.RawMessage); !ok || string(got) != string(right) {
		t.Errorf("objectSchema(%s) = %v, want it as it is", right, objectSchema(right))
	}
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[string]any{"type": "object", "x": 1.0}, `{"type":"object","x":1}`},
		{map[string]any{"properties": map[string]any{}}, `{"properties":{},"type":"object"}`},
		{json.RawMessage(`{"properties":{"a":{}}}`), `{"properties":{"a":{}},"type":"object"}`},
		{json.RawMessage(`{"type":"string"}`), `{"type":"object"}`},
		{json.RawMessage(`null`), `{"type":"object"}`},
		{json.RawMessage(`[1]`), `{"type":"object"}`},
		{nil, `{"type":"object"}`},
		{"a string", `{"type":"object"}`},
	} {
		b, err := json.Marshal(objectSchema(c.in))
		if err != nil || string(b) != c.want {
			t.Errorf("objectSchema(%v) = %s (%v), want %s", c.in, b, err, c.want)
		}
	}
}

// TestSchemasPassThroughAsJSON: a tool's input and output schemas reach the
// clients of both endpoints as the upstream wrote them, while the catalog
// keeps them as JSON rather than the SDK's decoded maps.
func TestSchemasPassThroughAsJSON(t *testing.T) {
	in := map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"q": map[string]any{"type": "string", "enum": []any{"a", "b"}, "description": "query"}, "n": map[string]any{"type": "integer", "minimum": 1.0}},
		"required":             []any{"q"},
		"additionalProperties": false,
		"x-vendor":             map[string]any{"keep": true},
	}
	out := map[string]any{"type": "object", "properties": map[string]any{"hits": map[string]any{"type": "array"}}}
	up := mcp.NewServer(&mcp.Implementation{Name: "schemas", Version: "1"}, nil)
	up.AddTool(&mcp.Tool{Name: "find", InputSchema: in, OutputSchema: out},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{StructuredContent: map[string]any{"hits": []any{}}}, nil
		})
	upstream := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(func() { upstream.CloseClientConnections(); upstream.Close() })

	g := &Gateway{Servers: []*ServerConfig{{Name: "s", Remote: &RemoteConfig{URL: upstream.URL}}}}
	h := serveGateway(t, g)
	for path, name := range map[string]string{"/servers/s/mcp": "find", "/mcp": "s__find"} {
		ctx, cs := connectGateway(t, h.URL+path)
		res, err := cs.ListTools(ctx, nil)
		if err != nil || len(res.Tools) != 1 || res.Tools[0].Name != name {
			t.Fatalf("%s: tools/list = %+v, %v", path, res, err)
		}
		for what, c := range map[string][2]any{"input": {res.Tools[0].InputSchema, in}, "output": {res.Tools[0].OutputSchema, out}} {
			got, _ := json.Marshal(c[0])
			want, _ := json.Marshal(c[1])
			if string(got) != string(want) {
				t.Errorf("%s: the %s schema is %s, want the upstream's %s", path, what, got, want)
			}
		}
	}
	cat := g.upstreams[0].catalog.Load()
	if cat == nil || len(cat.tools) != 1 {
		t.Fatalf("the upstream's catalog: %+v", cat)
	}
	if _, ok := cat.tools[0].InputSchema.(json.RawMessage); !ok {
		t.Errorf("the catalog keeps the input schema as %T, want json.RawMessage", cat.tools[0].InputSchema)
	}
	if _, ok := cat.tools[0].OutputSchema.(json.RawMessage); !ok {
		t.Errorf("the catalog keeps the output schema as %T, want json.RawMessage", cat.tools[0].OutputSchema)
	}
}
