package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// serveResult is how long changes took to be served: one row of the
// write → serving table.
type serveResult struct {
	label   string
	write   stats // the write's answer alone (the registry API, or Caddy's admin API)
	serve   stats // from sending the write until the new route answers initialize with 200
	init    stats // serve − write: the first initialize on the new route (the gateway connects to the upstream)
	retries int   // initialize answers other than 200 before the first 200 (read-your-writes misses)
	others  float64
}

// add records one sample.
func (r *serveResult) add(wrote, served time.Duration, tries int) {
	r.write, r.serve, r.init, r.retries = append(r.write, wrote), append(r.serve, served), append(r.init, served-wrote), r.retries+tries
}

// newNames numbers the servers the bench registers and deletes again: a
// name is never reused, so no sample meets the retiring upstream of an
// earlier one.
var newNames atomic.Int64

// serveDeadline bounds how long a new route may take to serve.
const serveDeadline = 30 * time.Second

// awaitServing POSTs initialize to url until it answers 200, and returns the
// session id and how many answers came before that one. It asks again at
// once: the time until the route serves is what is measured.
func awaitServing(ctx context.Context, c *http.Client, url string, since time.Time) (string, int, error) {
	tries := 0
	for {
		status, sid, err := initialize(ctx, c, url)
		if err == nil && status == http.StatusOK {
			return sid, tries, nil
		}
		tries++
		if ctx.Err() != nil {
			return "", tries, ctx.Err()
		}
		if time.Since(since) > serveDeadline {
			return "", tries, fmt.Errorf("%s not served within %s: last answer %d, %v", url, serveDeadline, status, err)
		}
	}
}

// registryWriteServe registers n new servers one at a time (after warm
// unmeasured ones), each reaching the echo upstream, and times the POST
// /api/servers answer and the time until /servers/<name>/mcp answers
// initialize with 200 (which includes the gateway connecting to the
// upstream: initialize and list). With probe, the servers keep the default
// health probe, so the write starts the connect; without, the first
// initialize does. Each server is deleted again, untimed, so that the
// registry keeps its size.
func registryWriteServe(ctx context.Context, c *caddyProc, up *upstreamProc, label string, probe bool, n, warm int, logw io.Writer) (*serveResult, error) {
	client := newHTTPClient("h1")
	defer client.CloseIdleConnections()
	if !probe {
		label += ", probe off"
	}
	return sampleChanges(ctx, c, up, client, label, n, warm, 100, logw, func(int) (string, func() error, error) {
		name := fmt.Sprintf("new-%d", newNames.Add(1))
		body := map[string]any{"name": name, "url": up.echoURL(false)}
		if !probe {
			body["probe"] = offProbe
		}
		_, err := expect(ctx, client, http.StatusCreated, http.MethodPost, c.Base+"/api/servers", body)
		undo := func() error {
			_, err := expect(ctx, client, http.StatusNoContent, http.MethodDelete, c.Base+"/api/servers/"+name, nil)
			return err
		}
		return c.Base + "/servers/" + name + "/mcp", undo, err
	})
}

// directInitialize is the floor under the rows: no write and no Caddy, an
// initialize on a new connection straight to the echo upstream (the
// machine's loopback round trips and the upstream's session setup), timed
// as sampleChanges times a change's route.
func directInitialize(ctx context.Context, c *caddyProc, up *upstreamProc, n, warm int, logw io.Writer) (*serveResult, error) {
	client := newHTTPClient("h1")
	defer client.CloseIdleConnections()
	r, err := sampleChanges(ctx, c, up, client, "direct to the upstream, no Caddy (the floor)", n, warm, 100, logw, func(int) (string, func() error, error) {
		return up.echoURL(false), func() error { return nil }, nil
	})
	if r != nil {
		r.write = nil // nothing was written
	}
	return r, err
}

// sampleChanges times warm+n changes, one at a time, measuring the last n:
// change makes one and returns the route it opens and how to undo it
// (untimed); each sample then waits for the route to answer initialize.
// Every sample opens its connection: a reload closes kept-alive ones, so
// the plain-Caddy case could not keep one.
func sampleChanges(ctx context.Context, c *caddyProc, up *upstreamProc, client *http.Client, label string, n, warm, every int, logw io.Writer,
	change func(k int) (route string, undo func() error, err error)) (*serveResult, error) {
	r := &serveResult{label: label}
	var meter *othersMeter
	defer func() { r.others = meter.cores() }()
	for k := range warm + n {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		client.CloseIdleConnections()
		start := time.Now()
		route, undo, err := change(k)
		if err != nil {
			return nil, err
		}
		wrote := time.Since(start)
		sid, tries, err := awaitServing(ctx, client, route, start)
		if err != nil {
			return nil, err
		}
		served := time.Since(start)
		if k == warm {
			meter = startOthers(c.Pid(), up.Pid(), os.Getpid())
		}
		if k >= warm {
			r.add(wrote, served, tries)
		}
		endSession(ctx, client, route, sid)
		if err := undo(); err != nil {
			return nil, err
		}
		if k%every == every-1 {
			fmt.Fprintf(logw, "  %s: %d/%d, serve p50 %s ms\n", label, k+1, warm+n, fmtMs(r.serve.pct(.5)))
		}
	}
	return r, nil
}

// plainRouteChange measures plain Caddy's way to the same: with `existing`
// routes loaded, POST one new route to the admin API's
// /config/apps/http/servers/<srv>/routes (a config reload) and time until
// it proxies initialize to the upstream with 200; then DELETE the route
// again (another reload, untimed).
func plainRouteChange(ctx context.Context, c *caddyProc, up *upstreamProc, existing, n, warm int, logw io.Writer) (*serveResult, error) {
	admin, listen := strings.TrimPrefix(c.Admin, "http://"), strings.TrimPrefix(c.Base, "http://")
	upHost := strings.TrimPrefix(up.base, "http://")
	cfg, err := json.Marshal(benchkit.SiteConfig(admin, listen, c.storage, plainRoutes(existing, upHost)))
	if err != nil {
		return nil, err
	}
	if _, err := c.AdminDo(ctx, http.MethodPost, "/load", cfg); err != nil {
		return nil, fmt.Errorf("loading %d routes: %w", existing, err)
	}
	client := newHTTPClient("h1")
	defer client.CloseIdleConnections()
	routesPath := "/config/apps/http/servers/" + benchkit.SiteName + "/routes"
	return sampleChanges(ctx, c, up, client, fmt.Sprintf("plain Caddy, %d routes", existing), n, warm, 50, logw, func(k int) (string, func() error, error) {
		path := fmt.Sprintf("/servers/new-%d/mcp", k)
		route, _ := json.Marshal(plainRoute(path, upHost))
		_, err := c.AdminDo(ctx, http.MethodPost, routesPath, route)
		undo := func() error {
			_, err := c.AdminDo(ctx, http.MethodDelete, fmt.Sprintf("%s/%d", routesPath, existing), nil)
			return err
		}
		return c.Base + path, undo, err
	})
}
