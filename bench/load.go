package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Paths measured, all to the same upstream.
const (
	direct       = "direct"
	reverseProxy = "reverse_proxy"
	oneServer    = "one_server"
	aggregate    = "aggregate"
	// The one-server path of a second gateway that authenticates (an API
	// key) and authorizes (a policy) every request: calls stay on the fast
	// path.
	oneServerAuth = "one_server_auth"
	// The one-server path of a third gateway with two interceptors
	// (call_log, secret_scan): calls take the SDK path.
	oneServerIntercepted = "one_server_interceptors"
)

var allVariants = []string{direct, reverseProxy, oneServer, aggregate, oneServerAuth, oneServerIntercepted}

// target is one path to the upstream: where a client connects and what it
// calls there.
type target struct {
	variant string
	url     string
	tool    string
	args    map[string]any
	header  http.Header // sent with every request
}

// env is everything a measurement needs: the upstream, Caddy, and the MCP
// client settings.
type env struct {
	up       *upstreamProc
	caddy    *benchkit.Caddy
	protocol string // MCP protocol version clients ask for
	client   *mcp.Client
}

func newEnv(up *upstreamProc, c *benchkit.Caddy, protocol string) *env {
	return &env{up: up, caddy: c, protocol: protocol,
		client: mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp-bench", Version: "1"}, nil)}
}

func (e *env) target(variant string) target {
	t := target{variant: variant, tool: e.up.tool, args: e.up.args}
	switch variant {
	case direct:
		t.url = e.up.url
	case reverseProxy:
		t.url = e.caddy.Base + rpPath
	case oneServer:
		t.url = e.caddy.Base + oneServerPath
	case aggregate:
		t.url = e.caddy.Base + aggregatePath
		t.tool = serverName + "__" + e.up.tool
	case oneServerAuth:
		t.url = e.caddy.Base + authPrefix + oneServerPath
		t.header = http.Header{"X-Api-Key": {benchAPIKey}}
	case oneServerIntercepted:
		t.url = e.caddy.Base + interceptedPrefix + oneServerPath
	default:
		panic("unknown variant " + variant)
	}
	return t
}

// session is one client session with its own HTTP client.
type session struct {
	cs   *mcp.ClientSession
	http *http.Client
}

func (s *session) close() {
	if s.cs != nil {
		_ = s.cs.Close()
	}
	s.http.CloseIdleConnections()
}

// openSession connects one client session: initialize + initialized and,
// unless standalone is false, the standalone GET stream the go-sdk client
// opens by default.
func (e *env) openSession(ctx context.Context, t target, proto string, standalone bool) (*session, error) {
	url := t.url
	var rt http.RoundTripper = benchkit.Transport(proto, 8)
	if t.header != nil {
		rt = &withHeader{rt, t.header}
	}
	s := &session{http: &http.Client{Transport: rt}}
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: s.http, MaxRetries: -1, DisableStandaloneSSE: !standalone}
	cs, err := e.client.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: e.protocol})
	if err != nil {
		s.http.CloseIdleConnections()
		return nil, fmt.Errorf("connecting to %s: %w", url, err)
	}
	s.cs = cs
	return s, nil
}

// withHeader adds a path's headers (its credentials) to every request.
type withHeader struct {
	base   http.RoundTripper
	header http.Header
}

func (h *withHeader) CloseIdleConnections() {
	if c, ok := h.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (h *withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

// openSessions opens n sessions, parallel connects at most.
func (e *env) openSessions(ctx context.Context, t target, proto string, standalone bool, n, parallel int) ([]*session, error) {
	out := make([]*session, n)
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			out[i], errs[i] = e.openSession(cctx, t, proto, standalone)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeSessions(out, parallel)
		return nil, err
	}
	return out, nil
}

// closeSessions ends sessions (DELETE) and drops their connections.
func closeSessions(ss []*session, parallel int) {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, s := range ss {
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.close()
		})
	}
	wg.Wait()
}

// cpuSnap is the CPU time used so far by the processes involved, and by the
// whole machine.
// It also carries the bytes Caddy has allocated so far.
type cpuSnap struct {
	caddy, upstream, client, machine time.Duration
	caddyAlloc                       int64
}

func (e *env) cpuNow() (cpuSnap, error) {
	var s cpuSnap
	var err1, err2, err3, err4 error
	s.caddy, err1 = benchkit.CPUTime(e.caddy.Pid())
	s.upstream, err2 = benchkit.CPUTime(e.up.Pid())
	s.client, err3 = benchkit.CPUTime(os.Getpid())
	s.machine, err4 = benchkit.MachineBusy()
	return s, errors.Join(err1, err2, err3, err4)
}

// snapshot is cpuNow plus Caddy's allocation counter, read first so that
// the scrape's own CPU falls outside the measured window.
func (e *env) snapshot(ctx context.Context) (cpuSnap, error) {
	alloc, err := e.caddy.AllocBytes(ctx)
	if err != nil {
		return cpuSnap{}, err
	}
	s, err := e.cpuNow()
	s.caddyAlloc = alloc
	return s, err
}

func (a cpuSnap) sub(b cpuSnap) cpuSnap {
	return cpuSnap{a.caddy - b.caddy, a.upstream - b.upstream, a.client - b.client, a.machine - b.machine, a.caddyAlloc - b.caddyAlloc}
}

func (a cpuSnap) add(b cpuSnap) cpuSnap {
	return cpuSnap{a.caddy + b.caddy, a.upstream + b.upstream, a.client + b.client, a.machine + b.machine, a.caddyAlloc + b.caddyAlloc}
}

// others is the CPU time processes other than the bench's three used.
func (a cpuSnap) others() time.Duration {
	return max(0, a.machine-a.caddy-a.upstream-a.client)
}

// cellResult is one measurement: one path, one protocol, one session count.
type cellResult struct {
	variant  string
	proto    string
	sessions int
	calls    int
	errors   int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // per successful call, unsorted
	cpu      cpuSnap
}

func (r *cellResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.calls) / r.elapsed.Seconds()
}

// othersCores is how many CPUs' worth other processes used meanwhile.
func (r *cellResult) othersCores() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return r.cpu.others().Seconds() / r.elapsed.Seconds()
}

// merge pools another slice of the same cell into r.
func (r *cellResult) merge(o *cellResult) {
	r.calls += o.calls
	r.errors += o.errors
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	r.cpu = r.cpu.add(o.cpu)
}

// perCall divides a CPU time by the number of calls.
func perCall(d time.Duration, calls int) time.Duration {
	if calls == 0 {
		return 0
	}
	return d / time.Duration(calls)
}

// pathSessions are open client sessions on one path.
type pathSessions struct {
	t     target
	proto string
	ss    []*session
}

// openPath opens n sessions on a path and checks one call's answer, so that
// a broken path fails loudly instead of being measured.
func (e *env) openPath(ctx context.Context, t target, proto string, n int) (*pathSessions, error) {
	ss, err := e.openSessions(ctx, t, proto, true, n, 16)
	if err != nil {
		return nil, err
	}
	if err := checkCall(ctx, ss[0].cs, t); err != nil {
		closeSessions(ss, 16)
		return nil, err
	}
	return &pathSessions{t: t, proto: proto, ss: ss}, nil
}

func (p *pathSessions) close() { closeSessions(p.ss, 16) }

// sliceOptions shape one measurement on open sessions.
type sliceOptions struct {
	settle   time.Duration // calls run, unmeasured, this long first
	duration time.Duration // then the measured window
	// during, if set, runs in its own goroutine from the start of the
	// measured window; the slice waits for it before returning.
	during func(window time.Duration)
}

// run has every session call the tool in a closed loop, through the settle
// time and then the measured window, and reports the calls that completed
// in the window, their latencies, and the CPU the processes used meanwhile.
func (e *env) run(ctx context.Context, p *pathSessions, o sliceOptions) (*cellResult, error) {
	const (
		settling = iota
		measuring
		stopped
	)
	var phase atomic.Int32
	type worker struct {
		lat      []time.Duration
		errors   int
		firstErr error
	}
	workers := make([]worker, len(p.ss))
	params := &mcp.CallToolParams{Name: p.t.tool, Arguments: p.t.args}
	var wg sync.WaitGroup
	for i, s := range p.ss {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, 1024)
		wg.Go(func() {
			for phase.Load() != stopped && ctx.Err() == nil {
				start := time.Now()
				res, err := s.cs.CallTool(ctx, params)
				d := time.Since(start)
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %v", res.Content)
				}
				if phase.Load() != measuring {
					continue
				}
				if err != nil {
					if w.firstErr == nil {
						w.firstErr = err
					}
					w.errors++
					continue
				}
				w.lat = append(w.lat, d)
			}
		})
	}

	benchkit.SleepCtx(ctx, o.settle)
	before, err := e.snapshot(ctx)
	if err != nil {
		phase.Store(stopped)
		wg.Wait()
		return nil, err
	}
	start := time.Now()
	phase.Store(measuring)
	var duringDone sync.WaitGroup
	if o.during != nil {
		duringDone.Go(func() { o.during(o.duration) })
	}
	benchkit.SleepCtx(ctx, o.duration)
	phase.Store(stopped)
	elapsed := time.Since(start)
	after, err := e.cpuNow()
	if err == nil {
		// Read after the window, so the scrape is not in the CPU figures;
		// the calls finishing meanwhile allocate a little more.
		after.caddyAlloc, err = e.caddy.AllocBytes(ctx)
	}
	wg.Wait()
	duringDone.Wait()
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	r := &cellResult{variant: p.t.variant, proto: p.proto, sessions: len(p.ss), elapsed: elapsed, cpu: after.sub(before)}
	for _, w := range workers {
		r.calls += len(w.lat)
		r.lat = append(r.lat, w.lat...)
		r.errors += w.errors
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	return r, nil
}

// checkCall makes one call and checks its answer.
func checkCall(ctx context.Context, cs *mcp.ClientSession, t target) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: t.tool, Arguments: t.args})
	if err != nil {
		return fmt.Errorf("%s: calling %s: %w", t.variant, t.tool, err)
	}
	if res.IsError || len(res.Content) == 0 {
		return fmt.Errorf("%s: %s returned an error or nothing: %+v", t.variant, t.tool, res)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		return fmt.Errorf("%s: %s returned %T, want text", t.variant, t.tool, res.Content[0])
	}
	if want, ok := t.args["text"].(string); ok && tc.Text != want {
		return fmt.Errorf("%s: %s returned %q, want %q", t.variant, t.tool, tc.Text, want)
	}
	return nil
}

// sortedLatencies sorts r.lat in place and returns it.
func (r *cellResult) sortedLatencies() []time.Duration {
	slices.Sort(r.lat)
	return r.lat
}
