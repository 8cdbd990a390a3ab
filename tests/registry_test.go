package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// registrySite is a site with the registry's API under /api/, the gateway
// serving the registry's servers, and loopback upstreams allowed.
func registrySite(t *testing.T, registry map[string]any) *site {
	s := newSite(t)
	if registry == nil {
		registry = map[string]any{}
	}
	if registry["allowed_networks"] == nil {
		registry["allowed_networks"] = []string{"loopback"}
	}
	s.registry = registry
	s.routes = []map[string]any{{"handle": []map[string]any{
		{"handler": "mcp_registry_api"},
		{"handler": "mcp_gateway", "registry": true},
	}}}
	return s
}

// apiCall sends a JSON request and decodes the JSON answer.
func apiCall(t *testing.T, method, url string, body any, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, url, err, raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func TestRegistryLiveRoutes(t *testing.T) {
	upstream := peers.StartGoConformanceHTTP(t)
	s := registrySite(t, nil)
	p := s.start(t)
	_ = p

	// Register: served at once, no reload.
	status, hdr, rec := apiCall(t, "POST", s.url("/api/servers"), map[string]any{"name": "conf", "url": upstream}, nil)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/servers: %d %v", status, rec)
	}
	if rec["enabled"] != true || hdr.Get("ETag") == "" {
		t.Errorf("a new server: enabled %v, ETag %q; want enabled with an ETag", rec["enabled"], hdr.Get("ETag"))
	}
	// The registry probes a new server at once: its health and tools show
	// before any client has used it.
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, _, got := apiCall(t, "GET", s.url("/api/servers/conf"), nil, nil)
		st, _ := got["status"].(map[string]any)
		if st["health"] == "healthy" && st["tool_count"].(float64) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 s after registering, the server's status is %v: want healthy, with its tools", st)
		}
		time.Sleep(20 * time.Millisecond)
	}

	cs := connect(t, s.url("/servers/conf/mcp"), h1Client(), nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"})
	if err != nil {
		t.Fatalf("calling a tool of a just-registered server: %v", err)
	}
	if !strings.Contains(text(res), "simple text") {
		t.Errorf("test_simple_text returned %q", text(res))
	}

	// The aggregate has it too.
	agg := connect(t, s.url("/mcp"), h1Client(), nil)
	if names := toolNames(t, agg); !slices.Contains(names, "conf__test_simple_text") {
		t.Errorf("the aggregate lacks conf__test_simple_text: %v", names)
	}

	// The registry's search, as a tool of the aggregate: it answers with
	// the names to call there.
	found, err := agg.CallTool(context.Background(), &mcp.CallToolParams{Name: "registry__search_tools", Arguments: map[string]any{"query": "simple text"}})
	if err != nil || found.IsError {
		t.Fatalf("registry__search_tools: %v %v", err, text(found))
	}
	var hits struct {
		Results []struct{ Name, Server, Tool string } `json:"results"`
	}
	if err := json.Unmarshal([]byte(text(found)), &hits); err != nil {
		t.Fatalf("registry__search_tools answered %q: %v", text(found), err)
	}
	if len(hits.Results) == 0 || hits.Results[0].Name != "conf__test_simple_text" || hits.Results[0].Server != "conf" {
		t.Errorf("searching %q: %+v, want conf__test_simple_text first", "simple text", hits.Results)
	}
	if res, err := agg.CallTool(context.Background(), &mcp.CallToolParams{Name: "registry__search_tools", Arguments: map[string]any{}}); err != nil || !res.IsError || !strings.Contains(text(res), "query is required") {
		t.Errorf("registry__search_tools without a query: %v %q, want a tool error saying query is required", err, text(res))
	}

	// Disable: 404 on its route, gone from the aggregate.
	if status, _, body := apiCall(t, "POST", s.url("/api/servers/conf/disable"), nil, nil); status != http.StatusOK || body["enabled"] != false {
		t.Fatalf("disable: %d %v", status, body)
	}
	resp, err := http.Post(s.url("/servers/conf/mcp"), "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a disabled server's route: %d, want 404", resp.StatusCode)
	}
	deadline = time.Now().Add(5 * time.Second)
	for slices.Contains(toolNames(t, agg), "conf__test_simple_text") {
		if time.Now().After(deadline) {
			t.Fatal("a disabled server's tools are still on the aggregate")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
