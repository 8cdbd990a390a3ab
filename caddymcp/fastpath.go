package caddymcp

// The fast path relays a client's tools/call to a remote Streamable HTTP
// upstream as bytes, without the MCP SDK in between.
//
// Why it exists: through the SDK a call is decoded about ten times on its
// way through the gateway (client transport, server session, client session,
// and back), each time with a decoder that allocates 32 KiB, which made a
// tools/call cost the gateway 2.5 to 3 times the CPU of a plain
// reverse_proxy. Relayed raw, it costs about what reverse_proxy does.
//
// What it keeps of the SDK path, so that a client cannot tell the two apart:
// the request id is replaced by one unique on the shared upstream session and
// restored in the answer; a progress token likewise (relay.go's
// progressTokens, so progress that comes on the upstream's own stream still
// finds its way); the server's requests on the call's stream (sampling,
// elicitation, roots) reach the client with ids of ours, and the client's
// answers, posted on its session, go back to the upstream session raw; the
// client's notifications/cancelled, and a client that goes away, cancel the
// call upstream; log messages are filtered by the client session's own
// level; list changes and resource updates on the stream reach the upstream's
// catalog as they would through the SDK. The call counts among the
// upstream's calls in flight (relay.go), like one on the SDK path.
//
// The endpoint owns the idle timeout of its Streamable HTTP sessions
// (fastState), because the SDK's timer sees only the requests the SDK
// serves: a session busy on the fast path alone must not be closed.
//
// Anything else (another method, an unknown or uninitialized session, a
// stateless or multi round-trip client, legacy SSE, an upstream that is not
// a connected remote Streamable HTTP server, a request the SDK would refuse)
// goes to the SDK path, untouched: nothing is written to the client before
// the fast path has decided to take a request.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// fastState is an endpoint's fast-path bookkeeping.
type fastState struct {
	timeout time.Duration // idle sessions are closed after it; 0: never

	mu       sync.Mutex
	sessions map[string]*fastSession

	asks sync.Map // our id of a server request (string) → *fastAsk
}

// fastIDs numbers the ids the fast path gives requests: process-wide, since
// endpoints share upstream sessions.
var fastIDs atomic.Uint64

// fastSession is a client session of the endpoint's Streamable HTTP handler.
type fastSession struct {
	id   string
	ss   *mcp.ServerSession
	user string // the principal the session belongs to; "": anyone

	mu    sync.Mutex
	level mcp.LoggingLevel     // set by the client; "" sends no logs
	refs  int                  // POSTs in progress
	timer *time.Timer          // closes the session once idle; nil: no timeout
	calls map[string]*fastCall // the client's request id (JSON) → call in flight
}

// fastCall is a tools/call in flight on the fast path.
type fastCall struct {
	ours      json.RawMessage // the request id upstream
	m         *member
	csID      string // upstream session
	protocol  string
	cancel    context.CancelFunc
	cancelled atomic.Bool // the client cancelled: the upstream has been told
}

// fastAsk is a server request relayed to a client, waiting for its answer.
type fastAsk struct {
	session  string // the client session that may answer
	upstream json.RawMessage
	m        *member
	csID     string
	protocol string
}

// session returns the live session with the id, or nil.
func (f *fastState) session(id string) *fastSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[id]
}

// register starts tracking a session the Streamable HTTP handler has just
// initialized. The endpoint's middleware calls it before the initialize
// result is sent, so the client's next POST finds the session. Sessions end
// by DELETE or by the idle timer (the SDK's own timer is off), and forget
// sees both: no goroutine waits per session.
func (e *endpoint) register(ss *mcp.ServerSession, ti *auth.TokenInfo) {
	f := &e.fast
	s := &fastSession{id: ss.ID(), ss: ss, calls: map[string]*fastCall{}}
	if ti != nil {
		s.user = ti.UserID
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions[s.id] != nil {
		return
	}
	if f.sessions == nil {
		f.sessions = map[string]*fastSession{}
	}
	f.sessions[s.id] = s
	if f.timeout > 0 {
		s.timer = time.AfterFunc(f.timeout, func() { e.expire(s) })
	}
}

// forget stops tracking a session that has been closed.
func (f *fastState) forget(id string) {
	f.mu.Lock()
	s := f.sessions[id]
	delete(f.sessions, id)
	f.mu.Unlock()
	if s != nil {
		s.mu.Lock()
		if s.timer != nil {
			s.timer.Stop()
		}
		s.mu.Unlock()
	}
}

// begin and end bracket a POST of the session: the idle timer runs only
// while none is in progress, as the SDK's does.
func (s *fastSession) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == 0 && s.timer != nil {
		s.timer.Stop()
	}
	s.refs++
}

func (s *fastSession) end(timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	if s.refs == 0 && s.timer != nil {
		s.timer.Reset(timeout)
	}
}

// expire closes an idle session unless a POST began meanwhile.
func (e *endpoint) expire(s *fastSession) {
	s.mu.Lock()
	busy := s.refs > 0
	s.mu.Unlock()
	if !busy {
		_ = s.ss.Close()
		e.fast.forget(s.id)
	}
}

func (s *fastSession) setLevel(l mcp.LoggingLevel) {
	s.mu.Lock()
	s.level = l
	s.mu.Unlock()
}

// logs reports whether the session's level lets a message of level l through.
func (s *fastSession) logs(l string) bool {
	s.mu.Lock()
	level := s.level
	s.mu.Unlock()
	if level == "" {
		return false
	}
	at, ok := logLevels[l]
	return !ok || at >= logLevels[string(level)]
}

var logLevels = map[string]int{"debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5, "alert": 6, "emergency": 7}

// serveStreamable serves a Streamable HTTP request of a session (not
// stateless, not legacy SSE), taking the fast path where it can.
func (e *endpoint) serveStreamable(w http.ResponseWriter, r *http.Request, session string, msg *message) {
	if r.Method == http.MethodDelete && session != "" {
		rec := caddyhttp.NewResponseRecorder(w, nil, nil)
		e.streamable.ServeHTTP(rec, r)
		if rec.Status() == http.StatusNoContent {
			e.fast.forget(session)
		}
		return
	}
	if r.Method == http.MethodPost && session == "" {
		e.initialize(w, r)
		return
	}
	if r.Method != http.MethodPost {
		e.streamable.ServeHTTP(w, r)
		return
	}
	s := e.fast.session(session)
	if s == nil {
		e.streamable.ServeHTTP(w, r) // 404
		return
	}
	if a := accessOf(r.Context()); s.user != "" && (a == nil || a.userID() != s.user) {
		writeRPCError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, "session belongs to another principal")
		return
	}
	s.begin()
	defer s.end(e.fast.timeout)
	if !e.fastPOST(w, r, s, msg) {
		e.streamable.ServeHTTP(w, r)
	}
}

// initialize serves a POST that opens a session, shaped for what idle
// sessions cost. The SDK keeps the request's context for the session's
// lifetime, so it gets one with the request's cancellation and none of its
// values (Caddy's replacer, variables, a copy of the request). And the
// answer is sent whole, with a Content-Length: the client's next POST then
// finds the connection free, where a stream still ending would make it dial
// another one, and keep both.
func (e *endpoint) initialize(w http.ResponseWriter, r *http.Request) {
	base := context.Background()
	if a := accessOf(r.Context()); a != nil && a.userID() != "" {
		// The session is bound to its principal (the SDK checks every
		// later request against it), and keeps nothing else of the access.
		base = withTokenInfo(base, &auth.TokenInfo{UserID: a.userID()})
	}
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	defer context.AfterFunc(r.Context(), cancel)()
	var buf bytes.Buffer
	rec := caddyhttp.NewResponseRecorder(w, &buf, func(int, http.Header) bool { return true })
	e.streamable.ServeHTTP(rec, r.WithContext(ctx))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_ = rec.WriteResponse()
}

// fastPOST takes a POST of a session onto the fast path, and reports whether
// it did; if not, the request is as it came, body and all.
func (e *endpoint) fastPOST(w http.ResponseWriter, r *http.Request, s *fastSession, msg *message) bool {
	if msg == nil || !sdkWouldServe(r) || r.Header.Get("MCP-Protocol-Version") >= statelessProtocol ||
		s.ss.InitializeParams() == nil || multiRoundTrip(s.ss) {
		return false
	}
	switch {
	case msg.Method == "tools/call" && msg.ID != nil && string(msg.ID) != "null":
		return e.fastCall(w, r, s, msg)
	case msg.Method == "notifications/cancelled":
		return e.fastCancel(w, s, msg)
	case !msg.hasMethod && (msg.Result != nil || msg.Error != nil):
		return e.fastAnswer(w, r, s, msg)
	}
	return false
}

// sdkWouldServe reports whether the SDK's handler would take the POST past
// its own checks (content type, Accept, a loopback listener's Host): where
// it would refuse it, it must, with its own answer.
func sdkWouldServe(r *http.Request) bool {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return false
	}
	jsonOK, streamOK := false, false
	for _, v := range r.Header.Values("Accept") {
		for _, t := range strings.Split(v, ",") {
			base, _, _ := strings.Cut(t, ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				streamOK = true
			case "*/*":
				jsonOK, streamOK = true, true
			}
		}
	}
	if !jsonOK || !streamOK {
		return false
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && local != nil && loopback(local.String()) && !loopback(r.Host) {
		return false
	}
	return true
}

// loopback reports whether a host[:port] is localhost or a loopback address.
func loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fastCall relays a tools/call whose tool a connected remote Streamable HTTP
// upstream serves.
func (e *endpoint) fastCall(w http.ResponseWriter, r *http.Request, s *fastSession, msg *message) bool {
	var params map[string]json.RawMessage
	var name string
	if json.Unmarshal(msg.Params, &params) != nil || json.Unmarshal(params["name"], &name) != nil {
		return false
	}
	x, ok := e.tool(name)
	if !ok && e.ready(r.Context()) == nil {
		// A member may still be listing (a client can call right after
		// initialize): look again once it has.
		x, ok = e.tool(name)
	}
	if !ok {
		return false
	}
	m := x.m
	if m.cfg.Remote == nil || m.cfg.Remote.Transport == "sse" {
		return false
	}
	a := accessOf(r.Context())
	if a != nil {
		if !a.visible("tools/call", m.cfg.Name, x.name) {
			return false // the SDK path refuses
		}
		_ = a.decide("tools/call", m.cfg.Name, x.name) // allowed: for the audit log
	}
	m.up.mu.Lock()
	cs, connecting := m.up.session, m.up.connecting != nil
	m.up.mu.Unlock()
	if cs == nil && connecting {
		// A connect that has mirrored its catalog is finishing (a client
		// can call as soon as initialize has answered): wait for it.
		cs, _ = m.up.connected(r.Context())
	}
	if cs == nil || cs.ID() == "" {
		return false // not connected: the SDK path connects, and says why not
	}
	// The upstream request outlives the handler by the little it takes to
	// read the stream to its end (a connection closed early is not reused);
	// a client that goes away cancels it at once; call_timeout bounds it.
	ctx, cancel := m.up.callContext(context.WithoutCancel(r.Context()))
	drained := false
	defer func() {
		if !drained {
			cancel()
		}
	}()
	defer context.AfterFunc(r.Context(), cancel)()

	// The upstream params: the upstream's name, the client's _meta without
	// what describes a stateless connection, a progress token of ours.
	var clientToken json.RawMessage
	var ourToken string
	if raw := params["_meta"]; raw != nil {
		var meta map[string]json.RawMessage
		if json.Unmarshal(raw, &meta) != nil {
			return false
		}
		for k := range connectionMeta {
			delete(meta, k)
		}
		if tok := meta["progressToken"]; tok != nil {
			var v any
			if json.Unmarshal(tok, &v) != nil {
				return false
			}
			var done func()
			ourToken, done = m.up.tokens.remap(ctx, s.ss, v)
			defer done()
			clientToken = tok
			meta["progressToken"], _ = json.Marshal(ourToken)
		}
		params["_meta"], _ = json.Marshal(meta)
	}
	params["name"], _ = json.Marshal(x.name)
	ours := json.RawMessage(`"caddy-mcp-f` + strconv.FormatUint(fastIDs.Add(1), 36) + `"`)
	out, err := json.Marshal(struct {
		JSONRPC string                     `json:"jsonrpc"`
		ID      json.RawMessage            `json:"id"`
		Method  string                     `json:"method"`
		Params  map[string]json.RawMessage `json:"params"`
	}{"2.0", ours, "tools/call", params})
	if err != nil {
		return false
	}

	call := &fastCall{ours: ours, m: m, cancel: cancel, csID: cs.ID(), protocol: cs.InitializeResult().ProtocolVersion}
	key := string(compactJSON(msg.ID))
	s.mu.Lock()
	if _, dup := s.calls[key]; dup {
		s.mu.Unlock()
		return false // the SDK path answers a duplicate id
	}
	s.calls[key] = call
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, key)
		s.mu.Unlock()
	}()
	// The interceptors, past the last return to the SDK path, which would
	// run them again: Before now, After once on however the call ends.
	ic := e.interceptFast(ctx, a, m, x.name, s.id, params["arguments"])
	defer ic.end(&Outcome{Err: errors.New("the call ended without an answer")})
	if refused := ic.begin(); refused != nil {
		startSSE(w)
		writeSSE(w, errorResponse(msg.ID, CodeRefused, refused.Error()))
		return true
	}
	// A slot among the upstream's calls in flight (max_concurrent_calls):
	// taken here, past the last return to the SDK path, which takes its own.
	release, err := m.up.acquire(ctx)
	if err != nil {
		if r.Context().Err() == nil {
			startSSE(w)
			writeSSE(w, ic.failed(msg.ID, err))
		}
		return true
	}
	defer release()
	defer m.up.calls.begin(&caller{ctx: ctx, ss: s.ss})()

	var resp *http.Response
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.mu.Lock() // fastCancel reads them
			call.csID, call.protocol = cs.ID(), cs.InitializeResult().ProtocolVersion
			s.mu.Unlock()
		}
		resp, err = m.rawPOST(ctx, call.csID, call.protocol, out)
		if err == nil && resp.StatusCode == http.StatusNotFound && attempt == 0 {
			// The upstream lost our session: reconnect as the SDK path does.
			resp.Body.Close()
			m.up.log().Info("upstream session lost; reconnecting", zap.String("via", "fast path"))
			m.up.drop(cs)
			if cs, err = m.up.connected(ctx); err != nil {
				break
			}
			continue
		}
		break
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		err = fmt.Errorf("upstream answered %s: %s", resp.Status, bytes.TrimSpace(snippet))
	}
	if err != nil {
		if r.Context().Err() != nil {
			return true // the client is gone
		}
		var unavailable *errUnavailable
		if timeout := timedOut(ctx); timeout != nil {
			go m.sendCancelled(call.csID, call.protocol, ours, "call_timeout")
			err = timeout
		} else if !errors.As(err, &unavailable) {
			err = m.up.unavailable(err)
		}
		startSSE(w)
		writeSSE(w, ic.failed(msg.ID, err))
		return true
	}

	startSSE(w)
	var asks []string
	defer func() {
		for _, id := range asks {
			e.fast.asks.Delete(id)
		}
	}()
	answered := false
	deliver := func(data []byte) {
		if answered || call.cancelled.Load() {
			return // a cancelled call's answer is not for the client (the SDK's client drops it too)
		}
		var in message
		if json.Unmarshal(data, &in) != nil {
			return
		}
		switch {
		case in.Method == "":
			if bytes.Equal(compactJSON(in.ID), ours) {
				if refused := ic.answered(&in); refused != nil {
					writeSSE(w, errorResponse(msg.ID, CodeRefused, refused.Error()))
				} else {
					writeSSE(w, setField(data, "id", msg.ID))
				}
				answered = true
			}
		case in.ID != nil:
			// A request of the server's, on the call's stream: the caller's.
			id := "caddy-mcp-r" + strconv.FormatUint(fastIDs.Add(1), 36)
			e.fast.asks.Store(id, &fastAsk{session: s.id, upstream: in.ID, m: m, csID: call.csID, protocol: call.protocol})
			asks = append(asks, id)
			idJSON, _ := json.Marshal(id)
			writeSSE(w, setField(data, "id", idJSON))
		default:
			if fwd := e.fastNotification(s, m, cs, &in, data, ourToken, clientToken, asks); fwd != nil {
				writeSSE(w, fwd)
			}
		}
	}
	body := resp.Body
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "application/json" {
		if data, err := io.ReadAll(io.LimitReader(body, mcp.DefaultMaxEventSize)); err == nil {
			deliver(bytes.TrimSpace(data))
		}
	} else {
		// A stream that ends before the answer is resumed from its last
		// event, as the SDK's client does (SEP-1699), at most twice.
		var sse sseState
		for resumed := 0; ; resumed++ {
			readSSE(body, &sse, deliver, func() bool { return answered })
			if answered || call.cancelled.Load() || ctx.Err() != nil || sse.lastID == "" || sse.tooBig || resumed == fastResumes {
				break
			}
			body.Close()
			select {
			case <-time.After(min(sse.retry, time.Second)):
			case <-ctx.Done():
			}
			next, err := m.rawGET(ctx, call.csID, call.protocol, sse.lastID)
			if err != nil {
				body = http.NoBody
				break
			}
			body = next
		}
	}
	switch {
	case answered:
		drained = true
		go func() {
			t := time.AfterFunc(5*time.Second, cancel)
			_, _ = io.Copy(io.Discard, body)
			t.Stop()
			body.Close()
			cancel()
		}()
		return true
	case call.cancelled.Load():
		// The client cancelled, and the upstream knows: no answer is due.
	case r.Context().Err() != nil:
		// The client went away: tell the upstream, as the SDK path does.
		go m.sendCancelled(call.csID, call.protocol, ours, "the client went away")
	case timedOut(ctx) != nil:
		go m.sendCancelled(call.csID, call.protocol, ours, "call_timeout")
		writeSSE(w, ic.failed(msg.ID, timedOut(ctx)))
	default:
		go m.sendCancelled(call.csID, call.protocol, ours, "the gateway lost the call's stream")
		writeSSE(w, ic.failed(msg.ID, m.up.unavailable(errors.New("the upstream ended the call's stream without an answer"))))
	}
	body.Close()
	return true
}

// fastNotification returns what a notification on a call's stream becomes
// for the client, or nil when it is not for the client.
func (e *endpoint) fastNotification(s *fastSession, m *member, cs *mcp.ClientSession, in *message, data []byte,
	ourToken string, clientToken json.RawMessage, asks []string) []byte {
	var params map[string]json.RawMessage
	if in.Params != nil && json.Unmarshal(in.Params, &params) != nil {
		return nil
	}
	switch in.Method {
	case "notifications/progress":
		var tok string
		if ourToken == "" || json.Unmarshal(params["progressToken"], &tok) != nil || tok != ourToken {
			return nil
		}
		params["progressToken"] = clientToken
	case "notifications/message":
		var level string
		_ = json.Unmarshal(params["level"], &level)
		if !s.logs(level) {
			return nil
		}
		if l := params["logger"]; l == nil || string(l) == `""` {
			params["logger"], _ = json.Marshal(m.cfg.Name)
		}
	case "notifications/cancelled":
		// The server withdraws one of its requests: name it as the client knows it.
		req := compactJSON(params["requestId"])
		var found bool
		for _, id := range asks {
			if v, ok := e.fast.asks.Load(id); ok && bytes.Equal(compactJSON(v.(*fastAsk).upstream), req) {
				params["requestId"], _ = json.Marshal(id)
				found = true
			}
		}
		if !found {
			return nil
		}
	case "notifications/tools/list_changed":
		go m.up.relist(cs, "tools")
		return nil
	case "notifications/prompts/list_changed":
		go m.up.relist(cs, "prompts")
		return nil
	case "notifications/resources/list_changed":
		go m.up.relist(cs, "resources")
		return nil
	case "notifications/resources/updated":
		var p mcp.ResourceUpdatedNotificationParams
		if json.Unmarshal(in.Params, &p) == nil {
			m.up.forEachWatcher(func(e *endpoint) { e.resourceUpdated(&p) })
		}
		return nil
	default:
		return nil // as the SDK path: the gateway's client drops what it does not handle
	}
	p, err := json.Marshal(params)
	if err != nil {
		return nil
	}
	return setField(data, "params", p)
}

// fastCancel relays the client's notifications/cancelled of a call on the
// fast path, under the call's upstream id.
func (e *endpoint) fastCancel(w http.ResponseWriter, s *fastSession, msg *message) bool {
	var params map[string]json.RawMessage
	if json.Unmarshal(msg.Params, &params) != nil {
		return false
	}
	s.mu.Lock()
	call := s.calls[string(compactJSON(params["requestId"]))]
	var session, protocol string
	if call != nil {
		session, protocol = call.csID, call.protocol
	}
	s.mu.Unlock()
	if call == nil {
		return false // not ours: the SDK's to handle
	}
	var reason string
	_ = json.Unmarshal(params["reason"], &reason)
	call.cancelled.Store(true)
	call.m.sendCancelled(session, protocol, call.ours, reason)
	call.cancel()
	w.WriteHeader(http.StatusAccepted)
	return true
}

// fastAnswer relays the client's answer to a server request that the fast
// path passed on, under the upstream's id, to the upstream session that asked.
func (e *endpoint) fastAnswer(w http.ResponseWriter, r *http.Request, s *fastSession, msg *message) bool {
	var id string
	if json.Unmarshal(msg.ID, &id) != nil || !strings.HasPrefix(id, "caddy-mcp-r") {
		return false
	}
	v, ok := e.fast.asks.Load(id)
	if !ok || v.(*fastAsk).session != s.id {
		return false
	}
	e.fast.asks.Delete(id)
	ask := v.(*fastAsk)
	resp, err := ask.m.rawPOST(context.WithoutCancel(r.Context()), ask.csID, ask.protocol, setField(msg.body, "id", ask.upstream))
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			err = errors.New(resp.Status)
		}
	}
	if err != nil {
		e.logger.Debug("relaying a client's answer upstream", zap.String("server", ask.m.cfg.Name), zap.Error(ask.m.up.redactErr(err)))
	}
	w.WriteHeader(http.StatusAccepted) // as the SDK answers any response it is posted
	return true
}

// rawPOST posts one JSON-RPC message to the member's upstream session, with
// the upstream's HTTP client (its configured headers and all).
func (m *member) rawPOST(ctx context.Context, session, protocol string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.Remote.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("MCP-Protocol-Version", protocol)
	return m.up.remoteClient().Do(req)
}

// fastResumes is how many times a call's stream is resumed after it broke.
const fastResumes = 2

// rawGET resumes a stream of the member's upstream session after an event.
func (m *member) rawGET(ctx context.Context, session, protocol, lastID string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.cfg.Remote.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("MCP-Protocol-Version", protocol)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := m.up.remoteClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("resuming the call's stream: upstream answered %s", resp.Status)
	}
	return resp.Body, nil
}

// sendCancelled tells the upstream session that a call is cancelled.
func (m *member) sendCancelled(session, protocol string, id json.RawMessage, reason string) {
	params := map[string]any{"requestId": id}
	if reason != "" {
		params["reason"] = reason
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := m.rawPOST(ctx, session, protocol, body)
	if err != nil {
		m.up.log().Debug("cancelling a call upstream", zap.Error(err))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}
