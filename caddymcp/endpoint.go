package caddymcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// endpoints holds the MCP endpoints clients talk to, keyed by what they serve
// and how. An endpoint owns its client sessions, so keeping it across reloads
// keeps every session.
var endpoints = caddy.NewUsagePool()

// endpoint serves MCP to clients over Streamable HTTP and legacy SSE, in
// front of one upstream (names untouched) or several (the aggregate, names
// qualified by server). It mirrors its upstreams' catalogs into an MCP server
// whose handlers forward each request to the upstream that owns it.
type endpoint struct {
	key            string
	aggregate      bool
	maxRequestBody int64
	own            []*member // the config's members; a one-server endpoint's one
	live           *LiveSet  // the registry's servers, also served; nil: none
	logs           *logRelay
	logger         *zap.Logger

	server     *mcp.Server
	streamable *mcp.StreamableHTTPHandler // sessions (2025-11-25 and older)
	stateless  *mcp.StreamableHTTPHandler // 2026-07-28 and newer: no sessions
	sse        *mcp.SSEHandler

	mu        sync.Mutex // guards the mirror (mirror.go)
	tools     map[string]*mirrored[*mcp.Tool]
	prompts   map[string]*mirrored[*mcp.Prompt]
	resources map[string]*mirrored[*mcp.Resource]
	templates map[string]*mirrored[*mcp.ResourceTemplate]
	joined    map[string]*member // an aggregate's members from its live set, by name
	byUp      map[*upstream]*member
	owned     map[*member]*memberNames
	unlisted  map[*member]struct{} // members mirrored before their catalog came (ready waits for those)
	contested bool                 // names or URIs collide: each change mirrors everything

	sseOwners sync.Map // legacy SSE session id → the principal that opened it

	rounds roundTrips
	fast   fastState // fastpath.go: raw tools/call, and the sessions' idle timeout
}

// member is an upstream as one endpoint serves it.
type member struct {
	cfg *ServerConfig
	up  *upstream
}

// mirrored is an upstream item as exposed: which member owns it and its
// upstream name.
type mirrored[T any] struct {
	m    *member
	name string
	item T
}

// endpointOptions are the handler settings an endpoint is built with.
type endpointOptions struct {
	MaxRequestBody int64         `json:"max_request_body"`
	SessionTimeout time.Duration `json:"session_timeout"`
}

// endpointKey identifies an endpoint by everything that shapes it, so that an
// unchanged config finds its endpoint, sessions and all, after a reload.
func endpointKey(aggregate bool, members []*member, opts endpointOptions, live *LiveSet) string {
	type memberKey struct {
		Upstream string
		Tools    *ToolFilter
	}
	keys := make([]memberKey, len(members))
	for i, m := range members {
		keys[i] = memberKey{m.cfg.key(), m.cfg.Tools}
	}
	var liveID string
	if live != nil {
		liveID = live.id
	}
	b, _ := json.Marshal(struct {
		Aggregate bool
		Members   []memberKey
		Options   endpointOptions
		Live      string
	}{aggregate, keys, opts, liveID})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// loadEndpoint returns the pooled endpoint for the members (and an
// aggregate's live set, if any), creating it (no I/O) if new. Each call must
// be paired with a releaseEndpoint of the key.
func loadEndpoint(aggregate bool, members []*member, opts endpointOptions, live *LiveSet, logger *zap.Logger) (*endpoint, error) {
	key := endpointKey(aggregate, members, opts, live)
	v, loaded, err := endpoints.LoadOrNew(key, func() (caddy.Destructor, error) {
		e := newEndpoint(key, aggregate, members, opts, logger)
		if live != nil {
			e.live = live
			live.attach(e)
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	e := v.(*endpoint)
	if loaded {
		e.logs.set(logger)
	}
	return e, nil
}

func releaseEndpoint(key string) { _, _ = endpoints.Delete(key) }

func newEndpoint(key string, aggregate bool, members []*member, opts endpointOptions, logger *zap.Logger) *endpoint {
	logs, logger := newLogRelay(logger)
	e := &endpoint{
		logs:           logs,
		key:            key,
		aggregate:      aggregate,
		maxRequestBody: opts.MaxRequestBody,
		logger:         logger,
		tools:          map[string]*mirrored[*mcp.Tool]{},
		prompts:        map[string]*mirrored[*mcp.Prompt]{},
		resources:      map[string]*mirrored[*mcp.Resource]{},
		templates:      map[string]*mirrored[*mcp.ResourceTemplate]{},
		own:            members,
		joined:         map[string]*member{},
		byUp:           map[*upstream]*member{},
		owned:          map[*member]*memberNames{},
		unlisted:       map[*member]struct{}{},
	}
	e.fast.timeout = opts.SessionTimeout
	e.server = mcp.NewServer(&mcp.Implementation{Name: "caddy-mcp", Version: version()}, &mcp.ServerOptions{
		Capabilities: &mcp.ServerCapabilities{
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Completions: &mcp.CompletionCapabilities{},
			Logging:     &mcp.LoggingCapabilities{},
		},
		CompletionHandler:  e.complete,
		SubscribeHandler:   e.subscribe,
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	e.server.AddReceivingMiddleware(e.middleware)
	e.server.AddSendingMiddleware(keepElicitResult)
	getServer := func(*http.Request) *mcp.Server { return e.server }
	// The endpoint times idle sessions out itself (fastpath.go): the SDK's
	// timer would not see calls on the fast path.
	e.streamable = mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		MaxRequestBodyBytes:          opts.MaxRequestBody,
		PropagateRequestCancellation: true,
	})
	e.stateless = mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Stateless:                    true,
		MaxRequestBodyBytes:          opts.MaxRequestBody,
		PropagateRequestCancellation: true,
	})
	e.sse = mcp.NewSSEHandler(getServer, &mcp.SSEOptions{MaxRequestBodyBytes: opts.MaxRequestBody})
	e.mu.Lock()
	for _, m := range members {
		e.byUp[m.up] = m
		m.up.watch(e)
	}
	e.mirrorAll()
	e.mu.Unlock()
	return e
}

// Destruct closes the endpoint's client sessions once no config uses it.
func (e *endpoint) Destruct() error {
	if e.live != nil {
		e.live.unwatch(e)
	}
	e.mu.Lock()
	members := e.memberList()
	e.mu.Unlock()
	for _, m := range members {
		m.up.unwatch(e)
	}
	for ss := range e.server.Sessions() {
		ss.Close()
	}
	e.rounds.closeAll()
	return nil
}

// ServeHTTP dispatches to the transport the client speaks: legacy SSE opens
// with a GET that carries no session id and posts to ?sessionid=; requests of
// protocol 2026-07-28 or newer without a session are stateless; the rest is
// Streamable HTTP with sessions.
func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	msg, ok := admit(w, r, e.maxRequestBody)
	if !ok {
		return
	}
	if a := accessOf(r.Context()); a != nil && msg != nil && e.challengeScope(w, r, a, msg) {
		return
	}
	session, version := r.Header.Get("Mcp-Session-Id"), r.Header.Get("MCP-Protocol-Version")
	switch {
	case r.Method == http.MethodGet && session == "" && version == "",
		r.Method == http.MethodPost && r.URL.Query().Has("sessionid"):
		e.serveSSE(w, r)
	case session == "" && version >= statelessProtocol:
		e.stateless.ServeHTTP(w, r)
	default:
		e.serveStreamable(w, r, session, msg)
	}
}

// asClientSent gives r the URL the client sent, before any rewrite in Caddy
// (handle_path, uri strip_prefix): legacy SSE tells the client where to post
// by resolving against the request's URL.
func asClientSent(r *http.Request) *http.Request {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil || orig.URL.Path == r.URL.Path {
		return r
	}
	r2 := r.Clone(r.Context())
	r2.URL = orig.URL
	return r2
}

// statelessProtocol is the first protocol version without sessions.
const statelessProtocol = "2026-07-28"

// aggregateWait bounds how long the aggregate waits for members that are
// still connecting: it serves the others meanwhile, and the connects go on.
const aggregateWait = 3 * time.Second

// ready connects the members whose catalog the endpoint has not mirrored
// yet, in parallel (a connect ends once its catalog is mirrored). It reports
// the first failure; the aggregate serves whatever is up regardless.
func (e *endpoint) ready(ctx context.Context) error {
	if e.aggregate {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, aggregateWait)
		defer cancel()
	}
	e.mu.Lock()
	pending := make([]*member, 0, len(e.unlisted))
	for m := range e.unlisted {
		pending = append(pending, m)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(pending))
	for i, m := range pending {
		wg.Go(func() { _, errs[i] = m.up.connected(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// middleware makes sure upstreams are connected before a client uses them
// (a stateless client may call a tool first thing, without listing), passes
// the upstream's identity through a one-server endpoint, forwards logging
// levels, and puts new sessions on the fast path.
func (e *endpoint) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		var hello *mcp.InitializeResult // a one-server endpoint's upstream's answer to initialize
		switch method {
		case "initialize":
			if e.aggregate {
				_ = e.ready(ctx) // it serves whatever members are up
				break
			}
			// The upstream's answer to initialize is all a one-server
			// endpoint needs: the lists follow while the client goes on
			// (the methods below wait for them).
			var err error
			if hello, err = e.own[0].up.hello(ctx); err != nil {
				return nil, toRPCError(err)
			}
		case "server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list",
			"tools/call", "prompts/get", "resources/read", "resources/subscribe", "completion/complete":
			if err := e.ready(ctx); err != nil && !e.aggregate {
				return nil, toRPCError(err)
			}
		case "logging/setLevel":
			res, err := next(ctx, method, req)
			if err == nil {
				req := req.(*mcp.ServerRequest[*mcp.SetLoggingLevelParams])
				if s := e.fast.session(req.Session.ID()); s != nil && req.Params != nil {
					s.setLevel(req.Params.Level)
				}
				e.turnLogsOn(ctx)
			}
			return res, err
		}
		if a := sessionAccess(ctx, req); a != nil && governed[method] {
			return e.guarded(ctx, a, method, req, next)
		}
		res, err := next(ctx, method, req)
		if err != nil {
			return res, err
		}
		if !e.aggregate {
			e.passIdentity(res, hello)
		}
		// Sessions of the Streamable HTTP handler, the only one that sets
		// a header and a session id, go on the fast path.
		if ss, ok := req.GetSession().(*mcp.ServerSession); ok && method == "initialize" &&
			ss.ID() != "" && req.GetExtra() != nil && req.GetExtra().Header != nil {
			e.register(ss, req.GetExtra().TokenInfo)
		}
		return res, err
	}
}

// passIdentity gives a one-server endpoint's initialize result (with hello,
// its upstream's) or discover result the upstream's serverInfo and
// instructions.
func (e *endpoint) passIdentity(res mcp.Result, hello *mcp.InitializeResult) {
	switch r := res.(type) {
	case *mcp.InitializeResult:
		r.ServerInfo, r.Instructions = hello.ServerInfo, hello.Instructions
	case *mcp.DiscoverResult:
		cat := e.own[0].up.catalog.Load()
		if cat == nil {
			return
		}
		r.Instructions = cat.init.Instructions
		if r.Meta == nil {
			r.Meta = mcp.Meta{}
		}
		r.Meta[mcp.MetaKeyServerInfo] = cat.init.ServerInfo
	}
}

// turnLogsOn turns the upstreams' logging on once a client asks for logs.
// The upstream is shared, so it sends everything (debug) and each client
// session filters by its own level (ServerSession.Log does).
func (e *endpoint) turnLogsOn(ctx context.Context) {
	e.mu.Lock()
	members := e.memberList()
	e.mu.Unlock()
	for _, m := range members {
		m.up.wantLogs.Store(true)
		if err := m.up.call(ctx, func(ctx context.Context, cs *mcp.ClientSession) error { return enableLogs(ctx, cs) }); err != nil {
			e.logger.Debug("forwarding logging level", zap.String("server", m.cfg.Name), zap.Error(err))
		}
	}
}

func (e *endpoint) callTool(x *mirrored[*mcp.Tool]) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		params := &mcp.CallToolParams{Name: x.name, Arguments: req.Params.Arguments}
		return as[*mcp.CallToolResult](e.forward(ctx, "tools/call "+req.Params.Name, x.m, req.Session, req.Params.Meta, params, req.Params.RequestState, req.Params.InputResponses,
			func(ctx context.Context, cs *mcp.ClientSession) (mcp.Result, error) { return cs.CallTool(ctx, params) },
			func(irs mcp.InputRequestMap, state string) mcp.Result {
				return &mcp.CallToolResult{InputRequests: irs, RequestState: state}
			}))
	}
}

func (e *endpoint) getPrompt(x *mirrored[*mcp.Prompt]) mcp.PromptHandler {
	return func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		params := &mcp.GetPromptParams{Name: x.name, Arguments: req.Params.Arguments}
		return as[*mcp.GetPromptResult](e.forward(ctx, "prompts/get "+req.Params.Name, x.m, req.Session, req.Params.Meta, params, req.Params.RequestState, req.Params.InputResponses,
			func(ctx context.Context, cs *mcp.ClientSession) (mcp.Result, error) { return cs.GetPrompt(ctx, params) },
			func(irs mcp.InputRequestMap, state string) mcp.Result {
				return &mcp.GetPromptResult{InputRequests: irs, RequestState: state}
			}))
	}
}

func (e *endpoint) readResource(m *member) mcp.ResourceHandler {
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		params := &mcp.ReadResourceParams{URI: req.Params.URI}
		return as[*mcp.ReadResourceResult](e.forward(ctx, "resources/read "+req.Params.URI, m, req.Session, req.Params.Meta, params, req.Params.RequestState, req.Params.InputResponses,
			func(ctx context.Context, cs *mcp.ClientSession) (mcp.Result, error) {
				return cs.ReadResource(ctx, params)
			},
			func(irs mcp.InputRequestMap, state string) mcp.Result {
				return &mcp.ReadResourceResult{InputRequests: irs, RequestState: state}
			}))
	}
}

// forward relays a call to the member's upstream: directly for a client
// session that can take the server's requests while the call runs, across
// multi round-trips for one that cannot (see roundtrip.go). target names the
// request (method and tool, prompt or URI) that a request state may resume.
func (e *endpoint) forward(ctx context.Context, target string, m *member, ss *mcp.ServerSession, meta mcp.Meta, params metaParams,
	state string, answers mcp.InputResponseMap,
	call func(context.Context, *mcp.ClientSession) (mcp.Result, error),
	inputRequired func(mcp.InputRequestMap, string) mcp.Result) (mcp.Result, error) {
	run := func(ctx context.Context, pending *pendingCall) (mcp.Result, error) {
		done := e.relayMeta(ctx, m, ss, meta, params)
		defer done()
		var res mcp.Result
		err := m.up.callFor(ctx, &caller{ctx: ctx, ss: ss, pending: pending}, func(ctx context.Context, cs *mcp.ClientSession) (err error) {
			res, err = call(ctx, cs)
			return err
		})
		return res, toRPCError(err)
	}
	if ss == nil || !multiRoundTrip(ss) {
		return run(ctx, nil)
	}
	return e.rounds.relay(ctx, target, state, answers, run, inputRequired)
}

// as gives a relayed result the type its handler returns.
func as[R mcp.Result](res mcp.Result, err error) (R, error) {
	var zero R
	if err != nil {
		return zero, err
	}
	r, ok := res.(R)
	if !ok {
		return zero, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("relayed result is a %T, not a %T", res, zero)}
	}
	return r, nil
}

// metaParams are upstream request params whose _meta the gateway sets.
type metaParams interface {
	SetMeta(map[string]any)
	SetProgressToken(any)
}

// relayMeta copies the client's _meta into the upstream params, with the
// progress token replaced by one unique upstream, and without the keys that
// stateless (2026-07-28) requests use to describe the client's connection to
// us, which is not ours upstream. The returned func forgets the token once
// the call is over.
func (e *endpoint) relayMeta(ctx context.Context, m *member, ss *mcp.ServerSession, meta mcp.Meta, params metaParams) func() {
	if len(meta) == 0 {
		return func() {}
	}
	copied := make(map[string]any, len(meta))
	for k, v := range meta {
		if !connectionMeta[k] {
			copied[k] = v
		}
	}
	params.SetMeta(copied)
	token, ok := meta["progressToken"]
	if !ok || ss == nil {
		return func() {}
	}
	ours, done := m.up.tokens.remap(ctx, ss, token)
	params.SetProgressToken(ours)
	return done
}

// connectionMeta are the _meta keys of a stateless request's connection.
var connectionMeta = map[string]bool{
	mcp.MetaKeyProtocolVersion:    true,
	mcp.MetaKeyClientInfo:         true,
	mcp.MetaKeyClientCapabilities: true,
	mcp.MetaKeyLogLevel:           true,
}

// complete routes completion/complete to the owner of the prompt or resource.
func (e *endpoint) complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	params := *req.Params
	ref := *params.Ref
	params.Ref = &ref
	var m *member
	switch ref.Type {
	case "ref/prompt":
		e.mu.Lock()
		x, ok := e.prompts[ref.Name]
		e.mu.Unlock()
		if !ok {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", ref.Name)}
		}
		m, ref.Name = x.m, x.name
	case "ref/resource":
		if m = e.ownerOf(ref.URI); m == nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown resource %q", ref.URI)}
		}
	default:
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown reference type %q", ref.Type)}
	}
	var res *mcp.CompleteResult
	err := m.up.call(ctx, func(ctx context.Context, cs *mcp.ClientSession) (err error) {
		res, err = cs.Complete(ctx, &params)
		return err
	})
	return res, toRPCError(err)
}

// subscribe forwards a subscription to the resource's owner; the SDK keeps
// track of which client sessions want which updates.
func (e *endpoint) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	m := e.ownerOf(req.Params.URI)
	if m == nil {
		return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown resource %q", req.Params.URI)}
	}
	m.up.subscribed.Store(req.Params.URI, struct{}{})
	return toRPCError(m.up.call(ctx, func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.Subscribe(ctx, &mcp.SubscribeParams{URI: req.Params.URI})
	}))
}

// ownerOf finds the member serving a resource URI or template: an exact
// resource or template, else the template with the longest literal prefix of
// the URI, else the only member.
func (e *endpoint) ownerOf(uri string) *member {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.resources[uri]; ok {
		return x.m
	}
	if x, ok := e.templates[uri]; ok {
		return x.m
	}
	var best *member
	bestLen := -1
	for tmpl, x := range e.templates {
		prefix, _, _ := strings.Cut(tmpl, "{")
		if strings.HasPrefix(uri, prefix) && len(prefix) > bestLen {
			best, bestLen = x.m, len(prefix)
		}
	}
	if best == nil {
		best = e.only()
	}
	return best
}

// resourceUpdated tells the subscribed client sessions. Like log, it sends
// with a fresh context: the upstream's carries values of the upstream
// connection, which the SDK would read as if they were the client's.
func (e *endpoint) resourceUpdated(params *mcp.ResourceUpdatedNotificationParams) {
	if err := e.server.ResourceUpdated(context.Background(), params); err != nil {
		e.logger.Debug("relaying resource update", zap.Error(err))
	}
}

// log relays an upstream log message that came outside any call to the
// endpoint's client sessions; each gets it if its own level lets it through.
func (e *endpoint) log(params *mcp.LoggingMessageParams) {
	for ss := range e.server.Sessions() {
		_ = ss.Log(context.Background(), params)
	}
}

// allows reports whether the filter lets a tool through.
func (f *ToolFilter) allows(name string) bool {
	if f == nil {
		return true
	}
	match := func(patterns []string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool {
			ok, _ := path.Match(p, name)
			return ok
		})
	}
	return (len(f.Allow) == 0 || match(f.Allow)) && !match(f.Deny)
}

func (f *ToolFilter) validate() error {
	if f == nil {
		return nil
	}
	for _, p := range append(slices.Clone(f.Allow), f.Deny...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("tools: pattern %q: %v", p, err)
		}
	}
	return nil
}

// toRPCError turns an error into the JSON-RPC error the client gets: errors
// the upstream answered with pass through unchanged; anything else, an
// unreachable server above all, becomes an internal error whose message
// names the server and the cause.
func toRPCError(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if rpcErr, ok := upstreamReply(err); ok {
		return rpcErr
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
}

// codeRejectedByTransport is the code the MCP SDK gives its own transport
// failures: it never comes from the upstream.
const codeRejectedByTransport = -32005

// upstreamReply returns the JSON-RPC error the upstream answered with, if
// err is one.
func upstreamReply(err error) (*jsonrpc.Error, bool) {
	var unavailable *errUnavailable
	if errors.As(err, &unavailable) {
		return nil, false
	}
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) && rpcErr.Code != codeRejectedByTransport {
		return rpcErr, true
	}
	return nil, false
}
