package tests

import (
	"testing"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
)

// TestConformanceSuiteThroughGateway runs the official MCP conformance suite
// (server mode, spec 2025-11-25) against the go-sdk conformance server
// directly, then against one-server endpoints fronting it over Streamable
// HTTP and over stdio: every scenario that passes directly must pass through
// the gateway.
func TestConformanceSuiteThroughGateway(t *testing.T) {
	const spec = "2025-11-25"
	upstreamURL := peers.StartGoConformanceHTTP(t)
	s := newSite(t).handle(gateway(
		remoteServer("http", upstreamURL),
		stdioServer("stdio", peers.GoConformanceServer(t)),
	))
	s.start(t)

	direct := peers.ConformanceSuite(t, upstreamURL, spec)
	passedDirectly := direct.Passed()
	if len(passedDirectly) == 0 {
		t.Fatalf("no scenario passes against the server directly:\n%s", direct)
	}
	t.Logf("direct: %d of %d scenarios pass", len(passedDirectly), len(direct.Scenarios))

	for _, name := range []string{"http", "stdio"} {
		t.Run(name, func(t *testing.T) {
			through := peers.ConformanceSuite(t, s.url("/servers/"+name+"/mcp"), spec)
			for _, scenario := range passedDirectly {
				got, ok := through.Scenario(scenario)
				switch {
				case !ok:
					t.Errorf("scenario %s passes directly but did not run through the gateway", scenario)
				case !got.Passed:
					t.Errorf("scenario %s passes directly but fails through the gateway: %+v", scenario, got.FailedChecks())
				}
			}
			t.Logf("through the gateway (%s upstream): %d of %d scenarios pass (direct: %d)",
				name, len(through.Passed()), len(through.Scenarios), len(passedDirectly))
		})
	}
}
