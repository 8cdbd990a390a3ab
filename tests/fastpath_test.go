package tests

// The fast path (caddymcp/fastpath.go): a 2025-11-25 client session's
// tools/call for a remote Streamable HTTP upstream is relayed raw. Each
// subtest checks one thing the SDK path does, and, through a recording
// proxy in front of the upstream, that the call did take the fast path (its
// upstream request id is one of the fast path's, "caddy-mcp-f…").

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const fpProtocol = "2025-11-25"

// fpSeen is one request the upstream got through the recording proxy.
type fpSeen struct {
	method, session, auth, lastEventID string
	status                             int
	rpcMethod                          string
	id                                 json.RawMessage
	params                             map[string]json.RawMessage
	result                             bool // a JSON-RPC response (result or error)
	done                               bool // it has ended, or the gateway has given it up
}

type fpProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	log []fpSeen
}

type fpStatus struct {
	http.ResponseWriter
	proxy  *fpProxy
	i      int
	status int
}

func (w *fpStatus) WriteHeader(code int) {
	w.status = code
	w.proxy.mu.Lock()
	w.proxy.log[w.i].status = code
	w.proxy.mu.Unlock()
	w.ResponseWriter.WriteHeader(code)
}

func (w *fpStatus) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
func (w *fpStatus) Flush()                      { _ = http.NewResponseController(w.ResponseWriter).Flush() }
func (w *fpStatus) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// fpStartProxy records every request to target, body included, and the status.
func fpStartProxy(t *testing.T, target string) *fpProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	x := &fpProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) }}
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		seen := fpSeen{method: r.Method, session: r.Header.Get("Mcp-Session-Id"), auth: r.Header.Get("Authorization"),
			lastEventID: r.Header.Get("Last-Event-ID")}
		var msg struct {
			Method string                     `json:"method"`
			ID     json.RawMessage            `json:"id"`
			Params map[string]json.RawMessage `json:"params"`
			Result json.RawMessage            `json:"result"`
			Error  json.RawMessage            `json:"error"`
		}
		if json.Unmarshal(body, &msg) == nil {
			seen.rpcMethod, seen.id, seen.params = msg.Method, msg.ID, msg.Params
			seen.result = msg.Method == "" && (msg.Result != nil || msg.Error != nil)
		}
		// Recorded as it arrives; the status once the response has begun.
		x.mu.Lock()
		i := len(x.log)
		x.log = append(x.log, seen)
		x.mu.Unlock()
		// The gateway closing the request (or it ending) releases it.
		defer context.AfterFunc(r.Context(), func() {
			x.mu.Lock()
			x.log[i].done = true
			x.mu.Unlock()
		})()
		sw := &fpStatus{ResponseWriter: w, proxy: x, i: i}
		rp.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.WriteHeader(http.StatusOK)
		}
		x.mu.Lock()
		x.log[i].done = true
		x.mu.Unlock()
	}))
	t.Cleanup(x.srv.Close)
	return x
}

func (x *fpProxy) seen() []fpSeen {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.log)
}

// wait returns the first request after the first `from` that keep accepts,
// waiting up to 10s for it.
func (x *fpProxy) wait(t *testing.T, from int, what string, keep func(fpSeen) bool) fpSeen {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := x.seen()
		for _, s := range seen[min(from, len(seen)):] {
			if keep(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream never got %s; it got: %s", what, fpSummary(seen[min(from, len(seen)):]))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noCallSince checks, after a moment, that no tools/call reached the
// upstream since the from'th request: what was refused stayed refused.
func (p *fpProxy) noCallSince(t *testing.T, from int, what string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	for _, s := range p.seen()[from:] {
		if s.rpcMethod == "tools/call" {
			t.Errorf("%s reached the upstream: %s", what, fpSummary([]fpSeen{s}))
		}
	}
}

func fpSummary(seen []fpSeen) string {
	var b strings.Builder
	for _, s := range seen {
		fmt.Fprintf(&b, "\n  %s %s id=%s requestId=%s session=%s status=%d done=%v", s.method, s.rpcMethod, s.id, s.params["requestId"], s.session, s.status, s.done)
	}
	return b.String()
}

// fastCall matches an upstream tools/call of the named tool made by the fast path.
func fastCall(tool string) func(fpSeen) bool {
	return func(s fpSeen) bool {
		return s.rpcMethod == "tools/call" && strings.HasPrefix(string(s.id), `"caddy-mcp-f`) && string(s.params["name"]) == `"`+tool+`"`
	}
}

func fpString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// fpRaw is a client session spoken by hand, to see ids and tokens as they are.
type fpRaw struct {
	url, session string
	client       *http.Client
}

func fpRawSession(t *testing.T, url string) *fpRaw {
	t.Helper()
	c := &fpRaw{url: url, client: h1Client()}
	resp := c.post(t, context.Background(), `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+fpProtocol+
		`","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"raw","version":"0"}}}`, nil)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %s, session %q", resp.Status, resp.Header.Get("Mcp-Session-Id"))
	}
	c.session = resp.Header.Get("Mcp-Session-Id")
	resp = c.post(t, context.Background(), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %s", resp.Status)
	}
	return c
}

func (c *fpRaw) post(t *testing.T, ctx context.Context, body string, header http.Header) *http.Response {
	t.Helper()
	resp, err := c.do(ctx, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (c *fpRaw) do(ctx context.Context, body string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("MCP-Protocol-Version", fpProtocol)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return c.client.Do(req)
}

// fpEvents reads SSE message events, passing each to fn until it says stop.
func fpEvents(t *testing.T, r io.Reader, fn func(map[string]json.RawMessage) bool) {
	t.Helper()
	br := bufio.NewReader(r)
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 && data != nil {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("event data is not JSON: %q", data)
			}
			data = nil
			if !fn(m) {
				return
			}
		}
		if v, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			data = append(data, v...)
		}
		if err != nil {
			return
		}
	}
}

// call posts a tools/call and returns the stream's messages to its end.
func (c *fpRaw) call(t *testing.T, body string) []map[string]json.RawMessage {
	t.Helper()
	resp := c.post(t, context.Background(), body, nil)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("tools/call: %s %s: %s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	var msgs []map[string]json.RawMessage
	fpEvents(t, resp.Body, func(m map[string]json.RawMessage) bool { msgs = append(msgs, m); return true })
	return msgs
}

// fpRecorder records what an SDK client posts.
type fpRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	sent []map[string]json.RawMessage
}

func (r *fpRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			r.mu.Lock()
			r.sent = append(r.sent, m)
			r.mu.Unlock()
		}
	}
	return r.base.RoundTrip(req)
}

func (r *fpRecorder) posted() []map[string]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

func TestFastPath(t *testing.T) {
	bin := peers.GoConformanceServer(t)
	addr := freeAddr(t)
	stop := lcStartConformanceAt(t, bin, addr)
	proxy := fpStartProxy(t, "http://"+addr)

	const token = "fast-path-upstream-token"
	server := map[string]any{"name": "http", "remote": map[string]any{
		"url":     proxy.srv.URL + "/mcp",
		"headers": map[string]any{"Authorization": "Bearer {env.FP_TOKEN}"},
	}}
	resume := fpStartProxy(t, fpStartInterrupting(t))
	short := gateway(server)
	short["server_path"], short["aggregate_path"], short["session_timeout"] = "/short/servers/", "/short/mcp", "1s"
	s := newSite(t)
	s.routes = []map[string]any{
		{"match": []map[string]any{{"path": []string{"/short/*"}}}, "handle": []map[string]any{short}},
		{"handle": []map[string]any{gateway(server, remoteServer("resume", resume.srv.URL+"/mcp"))}},
	}
	p := startCaddy(t, s.json(t), "", "FP_TOKEN="+token)
	p.admin = "http://" + s.admin
	waitHTTP(t, p, p.admin+"/config/")
	waitHTTP(t, p, s.url("/"))
	one, agg := s.url("/servers/http/mcp"), s.url("/mcp")

	t.Run("ids and names", func(t *testing.T) {
		for _, tc := range []struct{ url, tool, id string }{
			{one, "test_simple_text", `"client-1"`},
			{one, "test_simple_text", `7`},
			{agg, "http__test_simple_text", `"client-1"`},
		} {
			c := fpRawSession(t, tc.url)
			from := len(proxy.seen())
			msgs := c.call(t, `{"jsonrpc":"2.0","id":`+tc.id+`,"method":"tools/call","params":{"name":"`+tc.tool+`"}}`)
			if len(msgs) != 1 || string(msgs[0]["id"]) != tc.id || !strings.Contains(string(msgs[0]["result"]), "simple text") {
				t.Errorf("%s %s id %s: got %q, want one answer with the client's id", tc.url, tc.tool, tc.id, msgs)
			}
			up := proxy.wait(t, from, "the call on the fast path", fastCall("test_simple_text"))
			if up.auth != "Bearer "+token {
				t.Errorf("the fast path's upstream request carried Authorization %q, want the configured header", up.auth)
			}
		}
	})

	t.Run("progress tokens", func(t *testing.T) {
		// Two sessions, one per endpoint, the same request id and progress
		// token, at once, on the one upstream session: upstream each call
		// has an id and a token of its own, and each client its own back.
		results := make([]string, 2)
		var wg sync.WaitGroup
		for i, url := range []string{one, agg} {
			tool := "test_tool_with_progress"
			if url == agg {
				tool = "http__" + tool
			}
			body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","_meta":{"progressToken":"tok"}}}`
			c := fpRawSession(t, url)
			wg.Go(func() {
				var progress int
				for _, m := range c.call(t, body) {
					switch {
					case string(m["method"]) == `"notifications/progress"`:
						var p struct {
							ProgressToken json.RawMessage `json:"progressToken"`
						}
						_ = json.Unmarshal(m["params"], &p)
						if string(p.ProgressToken) != `"tok"` {
							t.Errorf("session %d: progress with token %s, want the client's \"tok\"", i, p.ProgressToken)
						}
						progress++
					case m["method"] == nil:
						if string(m["id"]) != "1" {
							t.Errorf("session %d: answer with id %s, want 1", i, m["id"])
						}
						var r mcp.CallToolResult
						_ = json.Unmarshal(m["result"], &r)
						results[i] = text(&r)
					}
				}
				if progress != 3 {
					t.Errorf("session %d: %d progress notifications on the call's stream, want 3", i, progress)
				}
			})
		}
		wg.Wait()
		// The tool answers with the token it was given.
		if !strings.HasPrefix(results[0], "caddy-mcp-") || !strings.HasPrefix(results[1], "caddy-mcp-") || results[0] == results[1] {
			t.Errorf("upstream tokens %q and %q: want two distinct tokens of the gateway's", results[0], results[1])
		}
	})

	t.Run("server requests", func(t *testing.T) {
		for _, url := range []string{one, agg} {
			prefix := ""
			if url == agg {
				prefix = "http__"
			}
			rec := &fpRecorder{base: &http.Transport{}}
			cs := connectVersion(t, url, &http.Client{Transport: rec}, &mcp.ClientOptions{
				CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled answer"}}, nil
				},
				ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "ada", "email": "ada@example.com"}}, nil
				},
			}, fpProtocol)
			for tool, args := range map[string]map[string]any{"test_sampling": {"prompt": "hi"}, "test_elicitation": {"message": "who?"}} {
				from := len(proxy.seen())
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: prefix + tool, Arguments: args})
				cancel()
				if err != nil || res.IsError {
					t.Fatalf("%s %s: %v %q", url, tool, err, text(res))
				}
				if tool == "test_sampling" && !strings.Contains(text(res), "sampled answer") {
					t.Errorf("%s: result %q lacks the client's sample", tool, text(res))
				}
				call := proxy.wait(t, from, tool+" on the fast path", fastCall(tool))
				// The proxy notes a request as it arrives and its status once
				// the upstream answers: wait for both.
				answer := proxy.wait(t, from, "the client's answer, answered", func(s fpSeen) bool { return s.result && s.status != 0 })
				if answer.session != call.session || strings.HasPrefix(string(answer.id), `"caddy-mcp`) || answer.status != http.StatusAccepted {
					t.Errorf("%s: the answer reached the upstream as id %s on session %s (status %d); want the upstream's own id on the call's session %s",
						tool, answer.id, answer.session, answer.status, call.session)
				}
			}
			var answered int
			for _, m := range rec.posted() {
				if m["method"] == nil && strings.HasPrefix(fpString(m["id"]), "caddy-mcp-r") {
					answered++
				}
			}
			if answered != 2 {
				t.Errorf("%s: the client answered %d requests with the fast path's ids, want 2: %q", url, answered, rec.posted())
			}
		}
	})

	t.Run("cancelled by the client", func(t *testing.T) {
		asked, done := make(chan struct{}, 1), make(chan struct{})
		defer close(done)
		cs := connectVersion(t, one, h1Client(), &mcp.ClientOptions{
			ElicitationHandler: func(ctx context.Context, _ *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				asked <- struct{}{}
				select {
				case <-ctx.Done():
				case <-done:
				}
				return nil, errors.New("not answering")
			},
		}, fpProtocol)
		from := len(proxy.seen())
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-asked; cancel() }()
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "who?"}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the cancelled call returned %v", err)
		}
		call := proxy.wait(t, from, "the call on the fast path", fastCall("test_elicitation"))
		proxy.wait(t, from, "notifications/cancelled for "+string(call.id), func(s fpSeen) bool {
			return s.rpcMethod == "notifications/cancelled" && string(s.params["requestId"]) == string(call.id) && s.session == call.session
		})
		proxy.wait(t, from, "the end of the cancelled call's request", func(s fpSeen) bool { return fastCall("test_elicitation")(s) && s.done })
	})

	t.Run("cancelled on the wire", func(t *testing.T) {
		// The client's notifications/cancelled reaches the upstream under
		// the call's upstream id, reason and all, and the call's stream ends.
		c := fpRawSession(t, one)
		from := len(proxy.seen())
		resp := c.post(t, context.Background(), `{"jsonrpc":"2.0","id":"mine","method":"tools/call","params":{"name":"test_elicitation","arguments":{"message":"who?"}}}`, nil)
		defer resp.Body.Close()
		asked := make(chan bool, 1)
		var after []map[string]json.RawMessage
		go func() {
			first := true
			fpEvents(t, resp.Body, func(m map[string]json.RawMessage) bool {
				if first && string(m["method"]) == `"elicitation/create"` {
					first = false
					asked <- true
					return true
				}
				after = append(after, m)
				return true
			})
			close(asked)
		}()
		if !<-asked {
			t.Fatal("the call's stream ended before the elicitation")
		}
		cancelled := c.post(t, context.Background(), `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"mine","reason":"user pressed stop"}}`, nil)
		cancelled.Body.Close()
		if cancelled.StatusCode != http.StatusAccepted {
			t.Errorf("notifications/cancelled: %s, want 202", cancelled.Status)
		}
		call := proxy.wait(t, from, "the call on the fast path", fastCall("test_elicitation"))
		proxy.wait(t, from, "notifications/cancelled for "+string(call.id)+" with the client's reason", func(s fpSeen) bool {
			return s.rpcMethod == "notifications/cancelled" && string(s.params["requestId"]) == string(call.id) &&
				string(s.params["reason"]) == `"user pressed stop"` && s.session == call.session
		})
		select {
		case <-asked:
		case <-time.After(10 * time.Second):
			t.Fatal("the cancelled call's stream did not end")
		}
		if len(after) != 0 {
			t.Errorf("after the cancellation the client got %q, want nothing", after)
		}
	})

	t.Run("client goes away", func(t *testing.T) {
		c := fpRawSession(t, one)
		from := len(proxy.seen())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp := c.post(t, ctx, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"test_elicitation","arguments":{"message":"who?"}}}`, nil)
		var askID string
		fpEvents(t, resp.Body, func(m map[string]json.RawMessage) bool {
			if string(m["method"]) == `"elicitation/create"` {
				askID = fpString(m["id"])
				return false
			}
			return true
		})
		if !strings.HasPrefix(askID, "caddy-mcp-r") {
			t.Fatalf("the elicitation reached the client with id %q, want one of the fast path's", askID)
		}
		cancel()
		resp.Body.Close()
		call := proxy.wait(t, from, "the call on the fast path", fastCall("test_elicitation"))
		proxy.wait(t, from, "notifications/cancelled for "+string(call.id), func(s fpSeen) bool {
			return s.rpcMethod == "notifications/cancelled" && string(s.params["requestId"]) == string(call.id)
		})
		proxy.wait(t, from, "the end of the abandoned call's request", func(s fpSeen) bool { return fastCall("test_elicitation")(s) && s.done })
	})

	t.Run("log levels", func(t *testing.T) {
		type session struct {
			level mcp.LoggingLevel
			mu    sync.Mutex
			got   []*mcp.LoggingMessageParams
		}
		sessions := []*session{{level: "info"}, {level: "warning"}, {level: ""}}
		from := len(proxy.seen())
		for _, ses := range sessions {
			cs := connectVersion(t, one, h1Client(), &mcp.ClientOptions{
				LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
					ses.mu.Lock()
					ses.got = append(ses.got, req.Params)
					ses.mu.Unlock()
				},
			}, fpProtocol)
			if ses.level != "" {
				if err := cs.SetLoggingLevel(context.Background(), &mcp.SetLoggingLevelParams{Level: ses.level}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_tool_with_logging"}); err != nil {
				t.Fatal(err)
			}
		}
		proxy.wait(t, from, "the call on the fast path", fastCall("test_tool_with_logging"))
		time.Sleep(300 * time.Millisecond) // anything misrouted would have come by now
		for _, ses := range sessions {
			ses.mu.Lock()
			want := 0
			if ses.level == "info" {
				want = 3 // the tool logs three info messages
			}
			if len(ses.got) != want {
				t.Errorf("session at level %q got %d log messages, want %d", ses.level, len(ses.got), want)
			}
			for _, m := range ses.got {
				if m.Logger != "http" || m.Level != "info" {
					t.Errorf("log message %+v: want level info, logger named after the server", m)
				}
			}
			ses.mu.Unlock()
		}
	})

	t.Run("checks stay in front", func(t *testing.T) {
		c := fpRawSession(t, one)
		from := len(proxy.seen())
		call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text"}}`
		resp := c.post(t, context.Background(), call, http.Header{"Origin": {"http://evil.example"}})
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a foreign Origin: %s, want 403", resp.Status)
		}
		resp = c.post(t, context.Background(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text","arguments":{"pad":"`+
			strings.Repeat("x", 5<<20)+`"}}}`, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a body over the limit: %s, want 413", resp.Status)
		}
		unknown := &fpRaw{url: one, session: "no-such-session", client: h1Client()}
		resp = unknown.post(t, context.Background(), call, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("an unknown session: %s, want the SDK's 404", resp.Status)
		}
		proxy.noCallSince(t, from, "a refused request")
	})

	t.Run("session timeout", func(t *testing.T) {
		// Busy on the fast path alone for 2.5 timeouts: the session lives.
		c := fpRawSession(t, s.url("/short/servers/http/mcp"))
		from := len(proxy.seen())
		call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text"}}`
		for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			if msgs := c.call(t, call); len(msgs) != 1 || msgs[0]["result"] == nil {
				t.Fatalf("a call on a busy session: %q", msgs)
			}
		}
		proxy.wait(t, from, "the calls on the fast path", fastCall("test_simple_text"))
		// Idle longer than the timeout: the session is gone.
		time.Sleep(2 * time.Second)
		resp := c.post(t, context.Background(), call, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("a call on a session idle past its timeout: %s, want 404", resp.Status)
		}
	})

	t.Run("one connection per idle session", func(t *testing.T) {
		// The initialize answer comes whole, with a Content-Length, so an
		// SDK client's next POST (notifications/initialized) reuses the
		// connection instead of dialing a second one while the answer's
		// stream is still ending, which Caddy would then keep open beside
		// the first for as long as the session lives.
		var dials atomic.Int32
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		const sessions = 50
		var wg sync.WaitGroup
		for range sessions {
			wg.Go(func() {
				client := &http.Client{Transport: &http.Transport{DialContext: dial}}
				c := mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp-test", Version: "0"}, nil)
				cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{
					Endpoint: one, HTTPClient: client, MaxRetries: -1, DisableStandaloneSSE: true,
				}, &mcp.ClientSessionOptions{ProtocolVersion: fpProtocol})
				if err != nil {
					t.Error(err)
					return
				}
				t.Cleanup(func() { cs.Close() })
			})
		}
		wg.Wait()
		if n := dials.Load(); n != sessions {
			t.Errorf("%d sessions, each with a client of its own, dialed %d connections, want %d", sessions, n, sessions)
		}
		resp := (&fpRaw{url: one, client: h1Client()}).post(t, context.Background(), `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+fpProtocol+
			`","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ContentLength != int64(len(body)) || !strings.Contains(string(body), `"serverInfo"`) {
			t.Errorf("initialize answer: Content-Length %d, body %q; want the whole answer with its length", resp.ContentLength, body)
		}
	})

	t.Run("deleted session", func(t *testing.T) {
		// A call on a session the client has deleted is refused, not
		// relayed: the fast path forgets the session with the SDK.
		c := fpRawSession(t, one)
		req, err := http.NewRequest(http.MethodDelete, one, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("MCP-Protocol-Version", fpProtocol)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %s, want 204", resp.Status)
		}
		from := len(proxy.seen())
		resp = c.post(t, context.Background(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text"}}`, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("a call on a deleted session: %s, want 404", resp.Status)
		}
		proxy.noCallSince(t, from, "a call on a deleted session")
	})

	t.Run("stream resumed", func(t *testing.T) {
		// The upstream closes the call's stream before answering (SEP-1699):
		// the fast path resumes it from the last event, as the SDK would.
		c := fpRawSession(t, s.url("/servers/resume/mcp"))
		msgs := c.call(t, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"interrupted"}}`)
		if len(msgs) != 1 || string(msgs[0]["id"]) != "5" || !strings.Contains(string(msgs[0]["result"]), "answered after the break") {
			t.Fatalf("got %q, want the answer after the break", msgs)
		}
		call := resume.wait(t, 0, "the call on the fast path", fastCall("interrupted"))
		resume.wait(t, 0, "a GET resuming the call's stream", func(s fpSeen) bool {
			return s.method == http.MethodGet && s.lastEventID != "" && s.session == call.session && s.status == http.StatusOK
		})
	})

	t.Run("lost upstream session", func(t *testing.T) {
		cs := connectVersion(t, one, h1Client(), nil, fpProtocol)
		from := len(proxy.seen())
		if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
			t.Fatal(err)
		}
		old := proxy.wait(t, from, "a call on the fast path", fastCall("test_simple_text")).session
		time.Sleep(100 * time.Millisecond)
		before := proxy.seen()
		stop()
		stop = lcStartConformanceAt(t, bin, addr)
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"})
		if err != nil || !strings.Contains(text(res), "simple text") {
			t.Fatalf("the first call after the upstream restarted: %v", err)
		}
		after := proxy.seen()[len(before):]
		var refused, retried bool
		for _, s := range after {
			if fastCall("test_simple_text")(s) && s.session == old && s.status == http.StatusNotFound {
				refused = true
			}
			if fastCall("test_simple_text")(s) && s.session != old && s.session != "" && s.status == http.StatusOK {
				retried = true
			}
		}
		if !refused || !retried {
			t.Errorf("want the fast path refused on the old session %s (404) and retried on a new one; got refused=%v retried=%v:%s",
				old, refused, retried, fpSummary(after))
		}
	})
}

// fpStartInterrupting runs a go-sdk server, in the test process, with an
// event store and one tool, "interrupted", that closes its call's stream and
// answers a little later, on the stream the client resumes.
func fpStartInterrupting(t *testing.T) string {
	server := mcp.NewServer(&mcp.Implementation{Name: "interrupting", Version: "0"}, nil)
	server.AddTool(&mcp.Tool{Name: "interrupted", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if req.Extra == nil || req.Extra.CloseSSEStream == nil {
				return nil, errors.New("the stream cannot be closed: no event store")
			}
			req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: 10 * time.Millisecond})
			time.Sleep(200 * time.Millisecond)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "answered after the break"}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil)})
	srv := httptest.NewServer(h) // on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL
}
