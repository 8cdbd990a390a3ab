package tests

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
)

// TestTypeScriptServerEverythingBehindAggregate puts the TypeScript reference
// server (@modelcontextprotocol/server-everything, over stdio under Node)
// behind the aggregate endpoint beside the go-sdk conformance server, and
// lists and calls its tools with the MCP Inspector CLI, a real client.
func TestTypeScriptServerEverythingBehindAggregate(t *testing.T) {
	command, args := peers.ServerEverythingStdio(t)
	s := newSite(t).handle(gateway(
		stdioServer("everything", command, args...),
		stdioServer("go", peers.GoConformanceServer(t)),
	))
	s.start(t)
	url := s.url("/mcp")

	var list struct {
		Tools []struct{ Name string } `json:"tools"`
	}
	out := peers.InspectorCLI(t, url, "--transport", "http", "--method", "tools/list")
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("tools/list output: %v\n%s", err, out)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"everything__echo", "everything__get-sum", "go__test_simple_text"} {
		if !slices.Contains(names, want) {
			t.Errorf("aggregate tools/list lacks %q; got %v", want, names)
		}
	}

	out = peers.InspectorCLI(t, url, "--transport", "http", "--method", "tools/call",
		"--tool-name", "everything__echo", "--tool-arg", "message=through the gateway")
	if !strings.Contains(string(out), "Echo: through the gateway") {
		t.Errorf("everything__echo returned %s", out)
	}
	out = peers.InspectorCLI(t, url, "--transport", "http", "--method", "tools/call",
		"--tool-name", "everything__get-sum", "--tool-arg", "a=2", "--tool-arg", "b=40")
	if !strings.Contains(string(out), "42") {
		t.Errorf("everything__get-sum(2, 40) returned %s", out)
	}
}
