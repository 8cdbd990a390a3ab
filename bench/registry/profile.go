package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// profileWrites takes a CPU profile of Caddy while registry writes go on,
// each followed by an initialize on the new route and a delete, as in
// registryWriteServe, unmeasured. It saves the profile to file and returns
// how many cycles ran.
func profileWrites(ctx context.Context, c *caddyProc, up *upstreamProc, d time.Duration, file string, logw io.Writer) (int, error) {
	done := make(chan error, 1)
	go func() { done <- c.CPUProfile(ctx, d, file) }()
	client := newHTTPClient("h1")
	defer client.CloseIdleConnections()
	writes := 0
	for {
		select {
		case err := <-done:
			fmt.Fprintf(logw, "  profiled %d write → serve cycles in %ds\n", writes, benchkit.ProfileSeconds(d))
			return writes, err
		default:
		}
		name := fmt.Sprintf("new-%d", newNames.Add(1))
		route := c.Base + "/servers/" + name + "/mcp"
		if _, err := expect(ctx, client, http.StatusCreated, http.MethodPost, c.Base+"/api/servers", map[string]any{"name": name, "url": up.echoURL(false)}); err != nil {
			return writes, err
		}
		sid, _, err := awaitServing(ctx, client, route, time.Now())
		if err != nil {
			return writes, err
		}
		endSession(ctx, client, route, sid)
		if _, err := expect(ctx, client, http.StatusNoContent, http.MethodDelete, c.Base+"/api/servers/"+name, nil); err != nil {
			return writes, err
		}
		writes++
	}
}
