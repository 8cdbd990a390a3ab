package caddymcp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// upstreams holds every upstream of every gateway, keyed by ServerConfig.key.
// An upstream outlives the handler instances that use it: a reload that keeps
// a server's config keeps its process and its connection.
var upstreams = caddy.NewUsagePool()

// upstreamProtocol is pinned because most servers speak it, and it saves the
// round trip of probing for a newer one.
const upstreamProtocol = "2025-11-25"

// Restart backoff after a crash or a failed connect.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// upstream is one MCP server as the gateway reaches it: one process or one
// remote session, shared by every endpoint and client session that uses it.
// It connects on first use, keeps a catalog of the server's tools, prompts
// and resources, and reconnects with backoff when the server goes away.
type upstream struct {
	cfg       *ServerConfig
	logs      *logRelay
	logName   string
	logger    atomic.Pointer[zap.Logger] // made at first use (log)
	transport func() (mcp.Transport, error)
	client    *mcp.Client                 // made at the first connect (connect)
	http      atomic.Pointer[http.Client] // a remote upstream's, made at its first connect (remoteClient)
	redact    atomic.Pointer[redactor]    // the config's secrets, hidden from logs and errors; made at first use (secrets)
	limits    atomic.Pointer[upstreamLimits]

	mu         sync.Mutex
	session    *mcp.ClientSession
	connecting *attempt // non-nil while a connect runs
	lastErr    error
	failures   int       // consecutive failures, reset by a session that lasts
	since      time.Time // when the current session was established
	retryAt    time.Time
	closed     bool
	watchers   []*endpoint        // copy-on-write: readers take the slice
	observers  []upstreamObserver // copy-on-write: readers take the slice

	catalog atomic.Pointer[catalog]
	relists sync.Mutex // one relist at a time, each from the newest catalog

	// What clients asked of the server, asked again of each new session.
	wantLogs   atomic.Bool
	subscribed sync.Map // resource URI → struct{}
	calls      inflight
	tokens     progressTokens
}

// catalog is what a server offers, as last listed.
type catalog struct {
	init      *mcp.InitializeResult
	tools     []*mcp.Tool
	prompts   []*mcp.Prompt
	resources []*mcp.Resource
	templates []*mcp.ResourceTemplate
}

// loadUpstream returns the pooled upstream for cfg, creating it (without any
// I/O) if this is its first user. Each call must be paired with releaseUpstream.
func loadUpstream(cfg *ServerConfig, logger *zap.Logger) (*upstream, error) {
	v, loaded, err := upstreams.LoadOrNew(cfg.key(), func() (caddy.Destructor, error) {
		return newUpstream(cfg, logger)
	})
	if err != nil {
		return nil, err
	}
	u := v.(*upstream)
	if loaded {
		u.logs.set(logger)
		u.setLimits(cfg)
	}
	return u, nil
}

func releaseUpstream(cfg *ServerConfig) { _, _ = upstreams.Delete(cfg.key()) }

func newUpstream(cfg *ServerConfig, logger *zap.Logger) (*upstream, error) {
	u := &upstream{cfg: cfg, logs: relayTo(logger), logName: logger.Name()}
	u.setLimits(cfg)
	maxMessage := cmp.Or(cfg.MaxMessageSize, defaultMaxMessageSize)
	switch {
	case cfg.Stdio != nil:
		t := cfg.Stdio.transport(u.log(), maxMessage)
		u.transport = func() (mcp.Transport, error) { return t, nil }
	case cfg.Container != nil:
		argv, err := cfg.Container.argv()
		if err != nil {
			return nil, err
		}
		runtime := cfg.Container.Runtime
		if runtime == "" {
			runtime = "docker"
		}
		// Env values reach docker through its own environment, never its argv.
		t := (&StdioConfig{Command: runtime, Args: argv, Env: cfg.Container.Env}).transport(u.log(), maxMessage)
		u.transport = func() (mcp.Transport, error) { return t, nil }
	case cfg.Remote != nil:
		u.transport = func() (mcp.Transport, error) { return cfg.Remote.transport(u.remoteClient()), nil }
	default:
		return nil, fmt.Errorf("server %q: no upstream configured", cfg.Name)
	}
	return u, nil
}

// log is the upstream's logger: through the relay, the server named, its
// secrets hidden. It is made at first use, as are the redactor and the
// HTTP client below: a registry keeps thousands of servers that may never
// log or be called.
func (u *upstream) log() *zap.Logger {
	return loadOrMake(&u.logger, func() *zap.Logger {
		return redactLogs(u.logs.logger(u.logName), u.secrets()).With(zap.String("server", u.cfg.Name))
	})
}

// secrets hides the config's secrets.
func (u *upstream) secrets() *redactor {
	return loadOrMake(&u.redact, func() *redactor { return newRedactor(u.cfg) })
}

// remoteClient is a remote upstream's HTTP client, for its session and the
// fast path (fastpath.go).
func (u *upstream) remoteClient() *http.Client {
	return loadOrMake(&u.http, u.cfg.Remote.httpClient)
}

// loadOrMake is *p, made by build at the first call. Callers that race may
// each make one; all get the one stored.
func loadOrMake[T any](p *atomic.Pointer[T], build func() *T) *T {
	if v := p.Load(); v != nil {
		return v
	}
	p.CompareAndSwap(nil, build())
	return p.Load()
}

// Destruct stops the upstream when its last user is gone. When Caddy exits
// it waits for the process to be gone; on a reload it does not hold up the
// new config for a server that is slow to stop.
func (u *upstream) Destruct() error {
	u.mu.Lock()
	u.closed = true
	cs := u.session
	u.session = nil
	u.mu.Unlock()
	stop := func() error {
		var err error
		if cs != nil {
			err = cs.Close()
		}
		if c := u.http.Load(); c != nil {
			c.CloseIdleConnections() // else kept alive until their idle timeout
		}
		return err
	}
	if caddy.Exiting() {
		return stop()
	}
	go stop()
	return nil
}

// errUnavailable wraps why a server cannot be reached, naming it. Clients
// see it: its text hides the server's secrets.
type errUnavailable struct {
	server string
	url    string // a remote server's, to redact
	err    error
	retry  time.Duration
	redact *redactor // nil: only the URL's secrets are known
}

func (e *errUnavailable) Error() string {
	msg := fmt.Sprintf("server %q is unavailable: %v", e.server, e.err)
	if e.retry > 0 {
		msg = fmt.Sprintf("server %q is unavailable (next attempt in %s): %v", e.server, e.retry.Round(time.Millisecond), e.err)
	}
	r := e.redact
	if e.url != "" {
		msg = strings.ReplaceAll(msg, e.url, redactURL(e.url))
		if r == nil {
			r = newRedactor(&ServerConfig{Remote: &RemoteConfig{URL: e.url}})
		}
	}
	if r != nil {
		msg = r.scrub(msg)
	}
	return msg
}

func (e *errUnavailable) Unwrap() error { return e.err }

// unavailable is the error for a server that cannot be reached, or that
// failed a call, its secrets hidden. The fast path makes its errors with it.
func (u *upstream) unavailable(err error) *errUnavailable {
	return &errUnavailable{server: u.cfg.Name, url: u.remoteURL(), err: err, redact: u.secrets()}
}

// redactedError is an error whose text had a server's secrets in it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr hides the server's secrets in an error on its way to a client
// or a log. A JSON-RPC error of the server's stays one, its message
// scrubbed: it is what the client gets.
func (u *upstream) redactErr(err error) error {
	if err == nil {
		return nil
	}
	if unavailable := (*errUnavailable)(nil); errors.As(err, &unavailable) {
		return err // scrubs itself
	}
	if rpcErr, ok := upstreamReply(err); ok {
		if msg := u.secrets().scrub(rpcErr.Message); msg != rpcErr.Message {
			scrubbed := *rpcErr
			scrubbed.Message = msg
			return &scrubbed
		}
		return err
	}
	if msg := u.secrets().scrub(err.Error()); msg != err.Error() {
		return &redactedError{msg: msg, err: err}
	}
	return err
}

// remoteURL is the URL of a remote server, or "".
func (u *upstream) remoteURL() string {
	if u.cfg.Remote == nil {
		return ""
	}
	return u.cfg.Remote.URL
}

// attempt is one connect, which callers wait for: greeted is closed once
// the server has answered initialize (greeting) or the attempt is over, done
// once it is over (err: why it failed).
type attempt struct {
	greeted, done chan struct{}
	greeting      *mcp.InitializeResult
	err           error
}

// connected returns the live session, connecting if there is none. Callers
// that arrive while a connect runs wait for it; within the backoff after a
// failure they get the failure at once instead of piling up connects.
func (u *upstream) connected(ctx context.Context) (*mcp.ClientSession, error) {
	for {
		u.mu.Lock()
		cs, a, err := u.state()
		u.mu.Unlock()
		if cs != nil || err != nil {
			return cs, err
		}
		select {
		case <-a.done:
			if a.err != nil {
				return nil, u.unavailable(a.err)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// hello returns the server's answer to initialize: the session's, or, while
// a connect runs, that connect's as soon as the server has answered, before
// its catalog is listed. A client's initialize needs no more: its lists
// come a round trip later, and the catalog meanwhile.
func (u *upstream) hello(ctx context.Context) (*mcp.InitializeResult, error) {
	for {
		u.mu.Lock()
		cs, a, err := u.state()
		u.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if cs != nil {
			return cs.InitializeResult(), nil
		}
		select {
		case <-a.greeted:
			u.mu.Lock()
			res, aerr := a.greeting, a.err
			u.mu.Unlock()
			if res != nil {
				return res, nil
			}
			if aerr != nil {
				return nil, u.unavailable(aerr)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// state is the session, or the connect to wait for (started if there is
// none and the backoff allows), or why there is neither. u.mu is held.
func (u *upstream) state() (*mcp.ClientSession, *attempt, error) {
	switch {
	case u.closed:
		return nil, nil, u.unavailable(errors.New("the upstream was stopped"))
	case u.session != nil:
		return u.session, nil, nil
	case u.connecting != nil:
		return nil, u.connecting, nil
	case u.lastErr != nil && time.Now().Before(u.retryAt):
		err := u.unavailable(u.lastErr)
		err.retry = time.Until(u.retryAt)
		return nil, nil, err
	}
	a := &attempt{greeted: make(chan struct{}), done: make(chan struct{})}
	u.connecting = a
	// The connect runs on its own: it must not die with the request that
	// started it, others wait on it.
	go func() {
		cs, err := u.connect(a)
		u.finish(a, cs, err)
	}()
	return nil, a, nil
}

// greet records the server's answer to initialize, or the end of the
// attempt (nil), and wakes whoever waits for it. u.mu is held.
func (a *attempt) greet(res *mcp.InitializeResult) {
	select {
	case <-a.greeted:
	default:
		a.greeting = res
		close(a.greeted)
	}
}

// finish records how an attempt ended: the new session, or the failure
// (which the observers hear of).
func (u *upstream) finish(a *attempt, cs *mcp.ClientSession, err error) {
	u.mu.Lock()
	u.connecting = nil
	a.err = err
	a.greet(nil)
	defer close(a.done)
	if err != nil {
		u.failed(err)
		err := u.unavailable(err)
		obs := u.observers // copy-on-write: safe to read after unlocking
		u.mu.Unlock()
		for _, o := range obs {
			o.unavailable(u, err)
		}
		return
	}
	if u.closed {
		u.mu.Unlock()
		cs.Close()
		return
	}
	u.session, u.lastErr, u.since = cs, nil, time.Now()
	u.mu.Unlock()
	go u.supervise(cs)
}

// failed records a connect failure and schedules the next attempt. u.mu is held.
func (u *upstream) failed(err error) {
	u.lastErr = err
	u.failures++
	backoff := minBackoff << min(u.failures-1, 6)
	u.retryAt = time.Now().Add(min(backoff, maxBackoff))
	u.log().Warn("upstream unavailable", zap.Error(err), zap.Int("failures", u.failures))
}

// connect starts the server, initializes a session (a greeted) and lists
// its catalog.
func (u *upstream) connect(a *attempt) (*mcp.ClientSession, error) {
	timeout := 30 * time.Second
	if u.cfg.Remote != nil {
		timeout = cmp.Or(time.Duration(u.cfg.Remote.Timeout), 10*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t, err := u.transport()
	if err != nil {
		return nil, err
	}
	if u.client == nil {
		// Made at the first connect, not with the upstream: a registry of
		// thousands of servers, most never called, would hold one each.
		// Connects take turns (connected), so this needs no lock.
		u.client = mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp", Version: version()}, u.clientOptions())
		u.client.AddReceivingMiddleware(u.serverRequests)
	}
	cs, err := u.client.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: upstreamProtocol})
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	a.greet(cs.InitializeResult())
	u.mu.Unlock()
	cat, err := listCatalog(ctx, cs)
	if err != nil && ctx.Err() == nil {
		// A server that has just restarted may drop a request's stream
		// unanswered ("request terminated without response"): ask once more.
		u.log().Debug("listing the catalog again", zap.Error(err))
		cat, err = listCatalog(ctx, cs)
	}
	if err != nil {
		cs.Close()
		return nil, fmt.Errorf("listing catalog: %w", err)
	}
	u.restore(ctx, cs)
	u.publish(cat)
	u.log().Info("upstream connected",
		zap.String("server_name", cat.init.ServerInfo.Name),
		zap.String("protocol", cat.init.ProtocolVersion),
		zap.Int("tools", len(cat.tools)))
	return cs, nil
}

// restore asks a new session for what clients had asked of the old one:
// logs, and updates of subscribed resources.
func (u *upstream) restore(ctx context.Context, cs *mcp.ClientSession) {
	if u.wantLogs.Load() {
		if err := enableLogs(ctx, cs); err != nil {
			u.log().Warn("turning the server's logs on again", zap.Error(err))
		}
	}
	u.subscribed.Range(func(uri, _ any) bool {
		if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri.(string)}); err != nil {
			u.log().Warn("subscribing again", zap.String("uri", uri.(string)), zap.Error(err))
		}
		return true
	})
}

// enableLogs has a server send all its log messages: the session is shared,
// and each client session filters by its own level.
func enableLogs(ctx context.Context, cs *mcp.ClientSession) error {
	if caps := cs.InitializeResult().Capabilities; caps == nil || caps.Logging == nil {
		return nil
	}
	return cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"})
}

// supervise waits for the session to end. An end that nobody asked for (a
// crash, a lost connection) schedules a reconnect with backoff, so that the
// server is back, with a fresh catalog, before the next call needs it.
func (u *upstream) supervise(cs *mcp.ClientSession) {
	err := cs.Wait()
	u.mu.Lock()
	if u.session != cs {
		u.mu.Unlock()
		return // replaced or closed on purpose
	}
	u.session = nil
	if u.closed {
		u.mu.Unlock()
		return
	}
	if errors.Is(err, mcp.ErrSessionMissing) {
		// The server forgot our session (a remote restart): reconnect on
		// the next call, at once, as a crash would not.
		u.mu.Unlock()
		u.log().Info("upstream session lost", zap.Error(err))
		return
	}
	if err == nil {
		err = errors.New("session ended")
	}
	if time.Since(u.since) >= maxBackoff {
		u.failures = 0 // it had been up a good while: a fresh start
	}
	u.failed(err)
	delay := time.Until(u.retryAt)
	u.mu.Unlock()
	time.AfterFunc(delay, func() {
		if _, err := u.connected(context.Background()); err != nil {
			u.log().Debug("reconnect failed", zap.Error(err))
		}
	})
}

// drop forgets cs after a call found it dead, so that the next call
// reconnects at once.
func (u *upstream) drop(cs *mcp.ClientSession) {
	u.mu.Lock()
	current := u.session == cs
	if current {
		u.session = nil
	}
	u.mu.Unlock()
	if current {
		go cs.Close()
	}
}

// call runs fn on a live session, with the context fn must use for its
// request: within the server's limits (max_concurrent_calls, call_timeout),
// retrying once on a fresh session when the server had lost ours (a remote
// restart). Its errors hide the server's secrets.
func (u *upstream) call(ctx context.Context, fn func(context.Context, *mcp.ClientSession) error) error {
	return u.callFor(ctx, nil, fn)
}

// callFor is call on behalf of a caller: a tool call, prompt or resource
// read of a client session, recorded while fn runs so that the requests the
// server sends back meanwhile (sampling, elicitation, roots) can reach the
// caller.
func (u *upstream) callFor(ctx context.Context, c *caller, fn func(context.Context, *mcp.ClientSession) error) error {
	ctx, cancel := u.callContext(ctx)
	defer cancel()
	release, err := u.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	done := u.calls.begin(c)
	defer done()
	for attempt := 0; ; attempt++ {
		cs, err := u.connected(ctx)
		if err != nil {
			return cmp.Or(timedOut(ctx), u.redactErr(err))
		}
		err = fn(ctx, cs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return cmp.Or(timedOut(ctx), u.redactErr(err))
		}
		if _, ok := upstreamReply(err); ok {
			return u.redactErr(err)
		}
		if attempt > 0 || !sessionLost(err) {
			return u.unavailable(err)
		}
		u.log().Info("upstream session lost; reconnecting", zap.Error(err))
		u.drop(cs)
	}
}

// upstreamLimits are the per-server limits of the newest config that uses
// the upstream: a reload changes them without restarting anything.
type upstreamLimits struct {
	slots        chan struct{} // a token per call in flight; nil: no cap
	queueTimeout time.Duration
	callTimeout  time.Duration
}

// setLimits takes the limits of cfg. A changed max_concurrent_calls takes a
// fresh set of slots: the calls in flight release theirs into the old set,
// so that until they are over, up to old and new cap together can be in
// flight.
func (u *upstream) setLimits(cfg *ServerConfig) {
	l := &upstreamLimits{
		queueTimeout: cmp.Or(time.Duration(cfg.QueueTimeout), defaultQueueTimeout),
		callTimeout:  time.Duration(cfg.CallTimeout),
	}
	if n := cfg.MaxConcurrentCalls; n > 0 {
		if old := u.limits.Load(); old != nil && cap(old.slots) == n {
			l.slots = old.slots
		} else {
			l.slots = make(chan struct{}, n)
		}
	}
	u.limits.Store(l)
}

// acquire takes a slot among the server's calls in flight
// (max_concurrent_calls), waiting for one up to queue_timeout, or until ctx
// ends; release gives it back once the call is over. callFor acquires for
// the SDK path; the fast path (fastpath.go) acquires for each call it relays.
func (u *upstream) acquire(ctx context.Context) (release func(), err error) {
	l := u.limits.Load()
	if l.slots == nil {
		return func() {}, nil
	}
	var once sync.Once
	release = func() { once.Do(func() { <-l.slots }) }
	select {
	case l.slots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(l.queueTimeout)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, &errBusy{server: u.cfg.Name, limit: cap(l.slots), waited: l.queueTimeout}
	case <-ctx.Done():
		return nil, cmp.Or(timedOut(ctx), ctx.Err())
	}
}

// callContext bounds a call by call_timeout: when it expires, the context
// ends and timedOut returns the error that says so. The fast path derives
// the context of each call it relays from it.
func (u *upstream) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d := u.limits.Load().callTimeout; d > 0 {
		return context.WithTimeoutCause(ctx, d, &errCallTimeout{server: u.cfg.Name, timeout: d})
	}
	return context.WithCancel(ctx)
}

// timedOut returns the call_timeout error if that is what ended ctx (a
// context of callContext, or derived from one), or nil.
func timedOut(ctx context.Context) error {
	if t := (*errCallTimeout)(nil); errors.As(context.Cause(ctx), &t) {
		return t
	}
	return nil
}

// errBusy: all of a server's slots stayed taken for the whole queue_timeout.
type errBusy struct {
	server string
	limit  int
	waited time.Duration
}

func (e *errBusy) Error() string {
	return fmt.Sprintf("server %q: %d calls in flight, the limit (max_concurrent_calls), for %s (queue_timeout); retry later",
		e.server, e.limit, e.waited)
}

// errCallTimeout: a call outlasted call_timeout.
type errCallTimeout struct {
	server  string
	timeout time.Duration
}

func (e *errCallTimeout) Error() string {
	return fmt.Sprintf("server %q: no answer within %s (call_timeout)", e.server, e.timeout)
}

// sessionLost reports whether err means our session is gone (the upstream
// forgot it, or the connection closed) and a new one may well work.
func sessionLost(err error) bool {
	return errors.Is(err, mcp.ErrSessionMissing) || errors.Is(err, mcp.ErrConnectionClosed)
}

// publish installs a new catalog and tells the endpoints that mirror it
// and the observers.
func (u *upstream) publish(cat *catalog) {
	u.catalog.Store(cat)
	u.forEachWatcher(func(e *endpoint) { e.published(u) })
	u.mu.Lock()
	obs := u.observers
	u.mu.Unlock()
	for _, o := range obs {
		o.published(u)
	}
}

// An upstreamObserver follows an upstream's state for something other than
// serving it: a live set reports catalogs and failures to the registry.
type upstreamObserver interface {
	published(u *upstream)              // a new catalog is in u.catalog
	unavailable(u *upstream, err error) // a connect failed
}

func (u *upstream) observe(o upstreamObserver) {
	u.mu.Lock()
	u.observers = withItem(u.observers, o)
	u.mu.Unlock()
}

func (u *upstream) unobserve(o upstreamObserver) {
	u.mu.Lock()
	u.observers = withoutItem(u.observers, o)
	u.mu.Unlock()
}

func (u *upstream) watch(e *endpoint) {
	u.mu.Lock()
	u.watchers = withItem(u.watchers, e)
	u.mu.Unlock()
}

func (u *upstream) unwatch(e *endpoint) {
	u.mu.Lock()
	u.watchers = withoutItem(u.watchers, e)
	u.mu.Unlock()
}

// forEachWatcher calls fn for each endpoint that mirrors u, outside u.mu.
func (u *upstream) forEachWatcher(fn func(*endpoint)) {
	u.mu.Lock()
	watchers := u.watchers
	u.mu.Unlock()
	for _, e := range watchers {
		fn(e)
	}
}

// withItem is set s with x, a new slice if x is new: s is shared with
// readers and never changed. An upstream has one or two watchers and
// observers, and a registry thousands of upstreams: a map each weighed ten
// times as much.
func withItem[T comparable](s []T, x T) []T {
	if slices.Contains(s, x) {
		return s
	}
	return append(slices.Clip(s), x)
}

// withoutItem is set s without x, a new slice if x was in it.
func withoutItem[T comparable](s []T, x T) []T {
	i := slices.Index(s, x)
	if i < 0 {
		return s
	}
	return slices.Delete(slices.Clone(s), i, i+1)
}

// listCatalog lists everything the server's capabilities say it has.
func listCatalog(ctx context.Context, cs *mcp.ClientSession) (*catalog, error) {
	cat := &catalog{init: cs.InitializeResult()}
	caps := cat.init.Capabilities
	if caps == nil {
		caps = &mcp.ServerCapabilities{}
	}
	// The lists are independent: asked at once, they cost one round trip.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	if caps.Tools != nil {
		listInto(&wg, &errs[0], "tools/list", &cat.tools, cs.Tools(ctx, nil))
	}
	if caps.Prompts != nil {
		listInto(&wg, &errs[1], "prompts/list", &cat.prompts, cs.Prompts(ctx, nil))
	}
	if caps.Resources != nil {
		listInto(&wg, &errs[2], "resources/list", &cat.resources, cs.Resources(ctx, nil))
		listInto(&wg, &errs[3], "resources/templates/list", &cat.templates, cs.ResourceTemplates(ctx, nil))
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	compactSchemas(cat.tools)
	return cat, nil
}

// compactSchemas keeps each tool's schemas as JSON. The go-sdk decodes them
// into trees of maps, several times larger and all pointers for the garbage
// collector to mark; the gateway only passes them on (and the registry
// reads their argument names).
func compactSchemas(tools []*mcp.Tool) {
	for _, t := range tools {
		t.InputSchema, t.OutputSchema = asJSON(t.InputSchema), asJSON(t.OutputSchema)
	}
}

// asJSON is v encoded, or v if it is JSON already or cannot be encoded.
func asJSON(v any) any {
	if v == nil {
		return nil
	}
	if _, ok := v.(json.RawMessage); ok {
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	return json.RawMessage(b)
}

// listInto collects a listing into dst in a goroutine of wg.
func listInto[T any](wg *sync.WaitGroup, errp *error, what string, dst *[]T, seq func(func(T, error) bool)) {
	wg.Go(func() {
		items, err := collect(seq)
		if err != nil {
			*errp = fmt.Errorf("%s: %w", what, err)
			return
		}
		*dst = items
	})
}

// relist refreshes one part of the catalog after a list_changed notification.
func (u *upstream) relist(cs *mcp.ClientSession, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u.relists.Lock()
	defer u.relists.Unlock()
	old := u.catalog.Load()
	if old == nil {
		return
	}
	next := *old
	var err error
	switch what {
	case "tools":
		next.tools, err = collect(cs.Tools(ctx, nil))
		compactSchemas(next.tools)
	case "prompts":
		next.prompts, err = collect(cs.Prompts(ctx, nil))
	case "resources":
		if next.resources, err = collect(cs.Resources(ctx, nil)); err == nil {
			next.templates, err = collect(cs.ResourceTemplates(ctx, nil))
		}
	}
	if err != nil {
		u.log().Warn("relisting after list_changed failed", zap.String("list", what), zap.Error(err))
		return
	}
	u.mu.Lock()
	current := u.session == cs
	u.mu.Unlock()
	if current { // else a reconnect has listed everything afresh
		u.publish(&next)
	}
}

func collect[T any](seq func(func(T, error) bool)) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
