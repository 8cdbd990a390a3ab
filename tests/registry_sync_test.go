package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestRegistrySyncFromUpstream: one caddy-mcp's registry follows another's
// through the official API (sync, name patterns): the servers that match
// arrive and are served, the others do not, and a change upstream follows.
func TestRegistrySyncFromUpstream(t *testing.T) {
	upstream := peers.StartGoConformanceHTTP(t)
	a := registrySite(t, nil)
	a.start(t)
	for _, s := range []map[string]any{
		{"name": "conf-a", "url": upstream, "description": "first"},
		{"name": "other", "url": upstream},
	} {
		if status, _, body := apiCall(t, "POST", a.url("/api/servers"), s, nil); status != http.StatusCreated {
			t.Fatalf("POST to the upstream registry: %d %v", status, body)
		}
	}

	b := registrySite(t, map[string]any{"sync": map[string]any{"url": "http://" + a.listen, "names": []string{"conf*"}, "interval": "1s"}})
	b.start(t)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("10 s on: %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("conf-a synced", func() bool {
		status, _, _ := apiCall(t, "GET", b.url("/api/servers/conf-a"), nil, nil)
		return status == http.StatusOK
	})
	cs := connect(t, b.url("/servers/conf-a/mcp"), h1Client(), nil)
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"}); err != nil || !strings.Contains(text(res), "simple text") {
		t.Errorf("a tool of the synced server: %v", err)
	}
	if status, _, _ := apiCall(t, "GET", b.url("/api/servers/other"), nil, nil); status != http.StatusNotFound {
		t.Errorf("a server that matches no pattern was synced (%d)", status)
	}

	if status, _, body := apiCall(t, "PATCH", a.url("/api/servers/conf-a"), map[string]any{"description": "second"}, nil); status != http.StatusOK {
		t.Fatalf("PATCH upstream: %d %v", status, body)
	}
	waitFor("the change upstream followed", func() bool {
		_, _, rec := apiCall(t, "GET", b.url("/api/servers/conf-a"), nil, nil)
		return rec["description"] == "second"
	})
}
