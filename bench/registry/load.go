package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// loadServer is the registry server the call load goes to; the writes
// during the load change other servers.
const loadServer = "load"

// loadResult is one run of the call load with registry writes.
type loadResult struct {
	path, proto       string
	sessions          int
	before, during    window
	failed            int // calls that failed, from the first measured call to the end of the writes
	firstFailure      error
	lost              int // sessions whose call after the writes failed
	firstLost         error
	writes            stats
	writeErrors       int
	firstWriteErr     error
	listChangedEvents int64   // tools/list_changed notifications the clients got from the first write on
	others            float64 // cores other processes used over the measured windows
}

// window is calls completed in a stretch of time.
type window struct {
	calls   int
	elapsed time.Duration
	lat     stats
}

func (w window) rate() float64 {
	if w.elapsed <= 0 {
		return 0
	}
	return float64(w.calls) / w.elapsed.Seconds()
}

// loadSession is one client session with its own HTTP stack.
type loadSession struct {
	cs   *mcp.ClientSession
	http *http.Client
}

// openLoadSessions connects n go-sdk clients (protocol 2025-11-25, a
// session each, the standalone GET stream open as the SDK does by
// default, no transport retries, so that a failure shows).
func openLoadSessions(ctx context.Context, url, proto string, n int, listChanged *atomic.Int64) ([]*loadSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp-registry-bench", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { listChanged.Add(1) },
	})
	out := make([]*loadSession, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			hc := newHTTPClient(proto)
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cs, err := client.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, MaxRetries: -1},
				&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				errs[i] = fmt.Errorf("connecting to %s: %w", url, err)
				return
			}
			out[i] = &loadSession{cs: cs, http: hc}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeLoadSessions(out)
		return nil, err
	}
	return out, nil
}

func closeLoadSessions(ss []*loadSession) {
	for _, s := range ss {
		if s != nil {
			_ = s.cs.Close()
			s.http.CloseIdleConnections()
		}
	}
}

// callLoadWithWrites runs a closed-loop tools/call load from n sessions on
// one path while one writer makes `writes` registry writes, one at a time,
// to other servers: create, patch (a new URL: a new upstream), disable,
// enable, delete, round-robin over four servers, each new upstream then
// initialized once (see churnWrite). It measures calls/s
// before the writes (for `before`) and during them, counts failed calls,
// and after the writes checks every session with one more call: a session
// whose call fails is lost.
func callLoadWithWrites(ctx context.Context, c *caddyProc, up *upstreamProc, path, proto string, n, writes int, warm, before time.Duration, logw io.Writer) (*loadResult, error) {
	url, tool := c.Base+"/servers/"+loadServer+"/mcp", "echo"
	if path == "aggregate" {
		url, tool = c.Base+"/mcp", loadServer+"__echo"
	}
	res := &loadResult{path: path, proto: proto, sessions: n}
	var listChanged atomic.Int64
	ss, err := openLoadSessions(ctx, url, proto, n, &listChanged)
	if err != nil {
		return nil, err
	}
	defer closeLoadSessions(ss)
	params := &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": "hello"}}
	if r, err := ss[0].cs.CallTool(ctx, params); err != nil || r.IsError {
		return nil, fmt.Errorf("calling %s on %s: %v %v", tool, url, err, r)
	}

	// Phases of the load: warming up, before the writes, during them.
	const (
		warming = iota
		measuringBefore
		measuringDuring
		stopped
	)
	var phase atomic.Int32
	type worker struct {
		before, during stats
		failed         int
		firstErr       error
	}
	workers := make([]worker, n)
	var wg sync.WaitGroup
	for i, s := range ss {
		w := &workers[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				p := phase.Load()
				if p == stopped {
					return
				}
				start := time.Now()
				r, err := s.cs.CallTool(ctx, params)
				d := time.Since(start)
				if err == nil && r.IsError {
					err = fmt.Errorf("tool error: %v", r.Content)
				}
				switch {
				case p == warming:
				case err != nil:
					w.failed++
					if w.firstErr == nil {
						w.firstErr = err
					}
				case p == measuringBefore:
					w.before = append(w.before, d)
				case p == measuringDuring:
					w.during = append(w.during, d)
				}
			}
		})
	}
	benchkit.SleepCtx(ctx, warm)
	phase.Store(measuringBefore)
	t0 := time.Now()
	meter := startOthers(c.Pid(), up.Pid(), os.Getpid())
	benchkit.SleepCtx(ctx, before)
	phase.Store(measuringDuring)
	t1 := time.Now()
	listChangedBefore := listChanged.Load()
	res.before.elapsed = t1.Sub(t0)
	api := newHTTPClient("h1")
	defer api.CloseIdleConnections()
	for k := range writes {
		if ctx.Err() != nil {
			break
		}
		took, err := churnWrite(ctx, api, c, up, k)
		if err != nil {
			res.writeErrors++
			if res.firstWriteErr == nil {
				res.firstWriteErr = err
			}
			continue
		}
		res.writes = append(res.writes, took)
		if k%250 == 249 {
			fmt.Fprintf(logw, "    %d/%d writes, write p50 %s ms\n", k+1, writes, fmtMs(res.writes.pct(.5)))
		}
	}
	phase.Store(stopped)
	res.during.elapsed = time.Since(t1)
	res.others = meter.cores()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, w := range workers {
		res.before.lat = append(res.before.lat, w.before...)
		res.during.lat = append(res.during.lat, w.during...)
		res.failed += w.failed
		if res.firstFailure == nil {
			res.firstFailure = w.firstErr
		}
	}
	res.before.calls, res.during.calls = len(res.before.lat), len(res.during.lat)

	for _, s := range ss {
		if r, err := s.cs.CallTool(ctx, params); err != nil || r.IsError {
			res.lost++
			if res.firstLost == nil {
				res.firstLost = fmt.Errorf("%v %v", err, r)
			}
		}
	}
	res.listChangedEvents = listChanged.Load() - listChangedBefore
	// Whatever the writes left behind goes, so that the next run starts
	// from the same registry.
	for i := range churnServers {
		_, _, _, _ = call(ctx, api, http.MethodDelete, c.Base+"/api/servers/"+churnName(i), nil, nil)
	}
	return res, nil
}

// churnServers is how many servers the writes go round.
const churnServers = 4

func churnName(i int) string { return fmt.Sprintf("churn-%d", i) }

// churnWrite is write k of the sequence: server k%4 goes through create,
// patch, disable, enable, delete, one step per round of the four. After a
// create, patch or enable, a client initializes a session on the server's
// route (untimed), as one would: the gateway connects to the new upstream
// and the aggregate's tool list changes, as it does when a server is added
// and then used. It returns the write's time alone.
func churnWrite(ctx context.Context, c *http.Client, cd *caddyProc, up *upstreamProc, k int) (time.Duration, error) {
	name := churnName(k % churnServers)
	api := cd.Base + "/api/servers"
	step := (k / churnServers) % 5
	start := time.Now()
	var err error
	switch step {
	case 0:
		_, err = expect(ctx, c, http.StatusCreated, http.MethodPost, api, map[string]any{"name": name, "url": up.echoURL(false)})
	case 1:
		_, err = expect(ctx, c, http.StatusOK, http.MethodPatch, api+"/"+name, map[string]any{"url": up.echoURL(true), "description": "patched"})
	case 2:
		_, err = expect(ctx, c, http.StatusOK, http.MethodPost, api+"/"+name+"/disable", nil)
	case 3:
		_, err = expect(ctx, c, http.StatusOK, http.MethodPost, api+"/"+name+"/enable", nil)
	case 4:
		_, err = expect(ctx, c, http.StatusNoContent, http.MethodDelete, api+"/"+name, nil)
	}
	took := time.Since(start)
	if err != nil || step == 2 || step == 4 {
		return took, err
	}
	route := cd.Base + "/servers/" + name + "/mcp"
	status, sid, err := initialize(ctx, c, route)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("initialize on %s after the write: %d", route, status)
	}
	endSession(ctx, c, route, sid)
	return took, err
}
