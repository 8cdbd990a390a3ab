package tests

// Bad input: what the gateway answers to requests and configs it must
// refuse, seen on the wire (status, content type, body) against one real
// Caddy with the demo MCP server (`caddy mcp demo-server`, a real stdio
// process) behind two mcp_gateway handlers:
//
//	/small/mcp, /small/servers/demo/mcp  max_request_body 1024
//	/mcp, /servers/demo/mcp              defaults (4 MiB), allowed_origins https://app.example.com
//
// Requests are raw net/http so that statuses and bodies are visible. Bad
// configs are refused three ways: by that Caddy's admin API (/load), which
// must keep the old config serving, and by the `caddy validate` and
// `caddy adapt` commands of the same binary.
//
// The helpers of this file are prefixed "bad" to stay out of the way of the
// package's other files.

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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	badAccept   = "application/json, text/event-stream"
	badProtocol = "2025-11-25"
	badOrigin   = "https://app.example.com" // in the main gateway's allowed_origins
	badSmallMax = 1024
	badDefault  = 4 << 20 // the default max_request_body
)

// badDemoServer is the demo server, run from the Caddy binary itself.
func badDemoServer(name string) map[string]any {
	return stdioServer(name, "{mcp.executable}", "mcp", "demo-server")
}

// badRoutes are the routes of the test site: the small gateway under
// /small/, the main one everywhere else.
func badRoutes() []map[string]any {
	small := map[string]any{
		"handler":          "mcp_gateway",
		"aggregate_path":   "/small/mcp",
		"server_path":      "/small/servers/",
		"max_request_body": badSmallMax,
		"servers":          []map[string]any{badDemoServer("demo")},
	}
	main := map[string]any{
		"handler":         "mcp_gateway",
		"allowed_origins": []string{badOrigin},
		"servers":         []map[string]any{badDemoServer("demo")},
	}
	return []map[string]any{
		{"match": []map[string]any{{"path": []string{"/small/*"}}}, "handle": []map[string]any{small}},
		{"handle": []map[string]any{main}},
	}
}

// badReply is an HTTP reply, read whole.
type badReply struct {
	status int
	header http.Header
	body   []byte
}

func (r badReply) String() string {
	return fmt.Sprintf("%d %s: %s", r.status, r.header.Get("Content-Type"), badTruncate(r.body, 300))
}

func badTruncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

var badClient = h1Client()

// badSend makes one request and reads the whole reply: an SSE reply to a
// POST ends once the request's response is sent.
func badSend(t *testing.T, method, url string, header map[string]string, body []byte) badReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := badClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the reply: %v", method, url, err)
	}
	return badReply{resp.StatusCode, resp.Header, b}
}

// badGET makes a GET that may open an event stream: a 200 is returned
// without reading the (endless) body; any other reply is read whole.
func badGET(t *testing.T, url string, header map[string]string) badReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := badClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return badReply{resp.StatusCode, resp.Header, nil}
	}
	b, _ := io.ReadAll(resp.Body)
	return badReply{resp.StatusCode, resp.Header, b}
}

// badHeaders are the headers of a Streamable HTTP POST, in session sid if
// not empty; extra ones are set over them.
func badHeaders(sid string, extra ...string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "Accept": badAccept}
	if sid != "" {
		h["Mcp-Session-Id"] = sid
		h["MCP-Protocol-Version"] = badProtocol
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

// badPost posts a body in session sid ("" for none).
func badPost(t *testing.T, url, sid string, body []byte, extra ...string) badReply {
	t.Helper()
	return badSend(t, http.MethodPost, url, badHeaders(sid, extra...), body)
}

// badMsg is a JSON-RPC message as received. ID is raw, to tell an absent id
// (nil) from a null one ("null").
type badMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// badRPC decodes the JSON-RPC response in a reply: a JSON body, or the first
// response event of an event stream.
func badRPC(t *testing.T, r badReply) badMsg {
	t.Helper()
	ct := r.header.Get("Content-Type")
	var msg badMsg
	switch {
	case strings.HasPrefix(ct, "application/json"):
		if err := json.Unmarshal(r.body, &msg); err != nil {
			t.Fatalf("reply is not a JSON-RPC message: %v; reply %s", err, r)
		}
		return msg
	case strings.HasPrefix(ct, "text/event-stream"):
		for event := range strings.SplitSeq(string(r.body), "\n\n") {
			var data []string
			for line := range strings.SplitSeq(event, "\n") {
				if d, ok := strings.CutPrefix(line, "data:"); ok {
					data = append(data, strings.TrimPrefix(d, " "))
				}
			}
			if len(data) == 0 {
				continue
			}
			msg = badMsg{}
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &msg); err != nil {
				t.Fatalf("event is not a JSON-RPC message: %v; reply %s", err, r)
			}
			if msg.ID != nil {
				return msg
			}
		}
		t.Fatalf("no JSON-RPC response in the event stream; reply %s", r)
	default:
		t.Fatalf("reply is neither JSON nor an event stream; reply %s", r)
	}
	return msg
}

// badExpectRPCError checks that a reply is an HTTP error status with a
// JSON-RPC error body of the given code and id.
func badExpectRPCError(t *testing.T, what string, r badReply, status int, code int64, ids ...string) badMsg {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; reply %s", what, r.status, status, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want a JSON-RPC error body (application/json); reply %s", what, ct, r)
		return badMsg{}
	}
	var msg badMsg
	if err := json.Unmarshal(r.body, &msg); err != nil {
		t.Errorf("%s: body is not JSON-RPC: %v; reply %s", what, err, r)
		return msg
	}
	if msg.JSONRPC != "2.0" || msg.Error == nil || msg.Result != nil {
		t.Errorf("%s: body is not a JSON-RPC 2.0 error response; reply %s", what, r)
		return msg
	}
	if msg.Error.Code != code {
		t.Errorf("%s: error code %d, want %d; reply %s", what, msg.Error.Code, code, r)
	}
	if !slices.Contains(ids, string(msg.ID)) {
		t.Errorf("%s: id %s, want one of %v; reply %s", what, msg.ID, ids, r)
	}
	return msg
}

// badInit opens a Streamable HTTP session on url, as a client would, and
// returns its id.
func badInit(t *testing.T, url string, extra ...string) string {
	t.Helper()
	r := badPost(t, url, "", []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+badProtocol+`","capabilities":{},"clientInfo":{"name":"badinput","version":"0"}}}`), extra...)
	if r.status != http.StatusOK {
		t.Fatalf("initialize at %s: %s", url, r)
	}
	sid := r.header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatalf("initialize at %s: no Mcp-Session-Id; reply %s", url, r)
	}
	if msg := badRPC(t, r); msg.Error != nil || !strings.Contains(string(msg.Result), `"protocolVersion":"`+badProtocol+`"`) {
		t.Fatalf("initialize at %s: %s", url, r)
	}
	if r := badPost(t, url, sid, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); r.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized at %s: %s", url, r)
	}
	return sid
}

// badPing checks that session sid at url answers a ping.
func badPing(t *testing.T, url, sid string) {
	t.Helper()
	r := badPost(t, url, sid, []byte(`{"jsonrpc":"2.0","id":"alive","method":"ping"}`))
	if r.status != http.StatusOK {
		t.Fatalf("ping in session %s at %s: %s", sid, url, r)
	}
	if msg := badRPC(t, r); msg.Error != nil || string(msg.ID) != `"alive"` || string(msg.Result) != "{}" {
		t.Fatalf("ping in session %s at %s: %s", sid, url, r)
	}
}

// badEcho calls the demo server's echo tool and returns the text.
func badEcho(t *testing.T, url, sid, tool, text string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 5, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": map[string]any{"text": text}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := badPost(t, url, sid, body)
	if r.status != http.StatusOK {
		t.Fatalf("tools/call %s at %s: %s", tool, url, r)
	}
	msg := badRPC(t, r)
	if msg.Error != nil {
		t.Fatalf("tools/call %s at %s: %s", tool, url, r)
	}
	var res struct {
		Content []struct{ Type, Text string }
		IsError bool
	}
	if err := json.Unmarshal(msg.Result, &res); err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("tools/call %s at %s: unexpected result (%v); reply %s", tool, url, err, r)
	}
	return res.Content[0].Text
}

// badPaddedPing is a ping request of exactly n bytes (n ≥ 80), padded in
// its _meta.
func badPaddedPing(t *testing.T, n int) []byte {
	t.Helper()
	const head, tail = `{"jsonrpc":"2.0","id":7,"method":"ping","params":{"_meta":{"pad":"`, `"}}}`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("cannot make a %d-byte ping", n)
	}
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// badLegacySSE opens a legacy (2024-11-05) SSE session at url and returns
// the URL to post its messages to. The stream closes when the test ends.
func badLegacySSE(t *testing.T, base, path string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := badClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("legacy SSE GET %s: %d %s", path, resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	endpoint := false
	for sc.Scan() {
		line := sc.Text()
		if line == "event: endpoint" {
			endpoint = true
			continue
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok && endpoint {
			return base + d
		}
	}
	t.Fatalf("legacy SSE GET %s: no endpoint event (%v)", path, sc.Err())
	return ""
}

func TestBadInput(t *testing.T) {
	s := newSite(t)
	s.routes = badRoutes()
	p := s.start(t)
	base := "http://" + s.listen

	// Sessions on each endpoint, for the cases that need one.
	agg, one := s.url("/mcp"), s.url("/servers/demo/mcp")
	small, smallOne := s.url("/small/mcp"), s.url("/small/servers/demo/mcp")
	aggSID, oneSID := badInit(t, agg), badInit(t, one)
	if got := badEcho(t, agg, aggSID, "demo__echo", "hello"); got != "hello" {
		t.Fatalf("demo__echo returned %q", got)
	}

	t.Run("MalformedJSONIsAParseError", func(t *testing.T) {
		// A body that is not one JSON value: JSON-RPC's parse error
		// (-32700), with id null, on an HTTP 400 (the spec lets the body of
		// a refused POST be a JSON-RPC error without id). The third is a
		// whole request and a stray '}': still not JSON.
		bodies := []string{
			`{"jsonrpc":"2.0","id":1,"method":"ping"`,
			`not json`,
			`{"jsonrpc":"2.0","id":1,"method":"ping"}}`,
		}
		for _, ep := range []struct{ name, url, sid string }{
			{"aggregate in a session", agg, aggSID},
			{"one-server in a session", one, oneSID},
			{"aggregate without a session", agg, ""},
			{"one-server without a session", one, ""},
		} {
			for _, body := range bodies {
				r := badPost(t, ep.url, ep.sid, []byte(body))
				badExpectRPCError(t, fmt.Sprintf("%s, body %q", ep.name, body), r, http.StatusBadRequest, -32700, "null")
			}
		}
		legacy := badLegacySSE(t, base, "/mcp")
		r := badSend(t, http.MethodPost, legacy, map[string]string{"Content-Type": "application/json"}, []byte(bodies[0]))
		badExpectRPCError(t, "legacy SSE POST", r, http.StatusBadRequest, -32700, "null")
		// Refusing a message does not end the session.
		badPing(t, agg, aggSID)
		badPing(t, one, oneSID)
	})

	t.Run("JSONThatIsNotJSONRPCIsAnInvalidRequest", func(t *testing.T) {
		// Valid JSON that is no JSON-RPC request: -32600. The id is null
		// where the request has none that can be read, else it may be the
		// request's.
		tests := []struct {
			name, body string
			ids        []string
		}{
			{"object of other things", `{"foo":1}`, []string{"null"}},
			{"no jsonrpc member", `{"id":2,"method":"ping"}`, []string{"null", "2"}},
			{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":2,"method":"ping"}`, []string{"null", "2"}},
			{"method of the wrong type", `{"jsonrpc":"2.0","id":2,"method":5}`, []string{"null", "2"}},
			{"id of the wrong type", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, []string{"null"}},
			{"empty batch", `[]`, []string{"null"}},
			{"a string", `"ping"`, []string{"null"}},
			{"a number", `42`, []string{"null"}},
		}
		for _, tt := range tests {
			for _, ep := range []struct{ name, url, sid string }{
				{"aggregate", agg, aggSID},
				{"one-server", one, oneSID},
			} {
				r := badPost(t, ep.url, ep.sid, []byte(tt.body))
				badExpectRPCError(t, ep.name+", "+tt.name, r, http.StatusBadRequest, -32600, tt.ids...)
			}
		}
		badPing(t, agg, aggSID)
		badPing(t, one, oneSID)
	})

	t.Run("BodyOverTheConfiguredLimitIs413", func(t *testing.T) {
		for _, url := range []string{small, smallOne} {
			sid := badInit(t, url)
			// Exactly the limit is accepted.
			r := badPost(t, url, sid, badPaddedPing(t, badSmallMax))
			if msg := badRPC(t, r); r.status != http.StatusOK || msg.Error != nil || string(msg.ID) != "7" {
				t.Errorf("%s: a %d-byte ping with max_request_body %d: %s", url, badSmallMax, badSmallMax, r)
			}
			// One byte more is refused with 413 naming the limit.
			r = badPost(t, url, sid, badPaddedPing(t, badSmallMax+1))
			if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), strconv.Itoa(badSmallMax)) {
				t.Errorf("%s: a %d-byte ping with max_request_body %d: %s, want 413 naming the limit", url, badSmallMax+1, badSmallMax, r)
			}
			// The session outlives the refusal.
			badPing(t, url, sid)
			// Before any session, too.
			r = badPost(t, url, "", badPaddedPing(t, badSmallMax+1))
			if r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("%s: a %d-byte POST without a session: %s, want 413", url, badSmallMax+1, r)
			}
		}
		// And on the legacy SSE transport.
		legacy := badLegacySSE(t, base, "/small/mcp")
		r := badSend(t, http.MethodPost, legacy, map[string]string{"Content-Type": "application/json"}, badPaddedPing(t, badSmallMax+1))
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("legacy SSE: a %d-byte POST: %s, want 413", badSmallMax+1, r)
		}
	})

	t.Run("DefaultLimitIs4MiB", func(t *testing.T) {
		// A 1 MiB argument goes to the upstream and back whole.
		big := strings.Repeat("0123456789abcdef", (1<<20)/16)
		if got := badEcho(t, agg, aggSID, "demo__echo", big); got != big {
			t.Errorf("1 MiB echo came back with %d bytes, want %d", len(got), len(big))
		}
		r := badPost(t, agg, aggSID, badPaddedPing(t, badDefault))
		if msg := badRPC(t, r); r.status != http.StatusOK || msg.Error != nil || string(msg.ID) != "7" {
			t.Errorf("a 4 MiB ping: %s", r)
		}
		r = badPost(t, agg, aggSID, badPaddedPing(t, badDefault+1))
		if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), strconv.Itoa(badDefault)) {
			t.Errorf("a 4 MiB + 1 byte ping: %s, want 413 naming the limit", r)
		}
		badPing(t, agg, aggSID)
	})

	t.Run("UnknownSessionIs404", func(t *testing.T) {
		for _, url := range []string{agg, one} {
			r := badPost(t, url, "made-up", []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			if r.status != http.StatusNotFound {
				t.Errorf("POST %s in session made-up: %s, want 404", url, r)
			}
			r = badGET(t, url, map[string]string{"Accept": "text/event-stream", "Mcp-Session-Id": "made-up", "MCP-Protocol-Version": badProtocol})
			if r.status != http.StatusNotFound {
				t.Errorf("GET %s in session made-up: %s, want 404", url, r)
			}
			r = badSend(t, http.MethodDelete, url, map[string]string{"Mcp-Session-Id": "made-up", "MCP-Protocol-Version": badProtocol}, nil)
			if r.status != http.StatusNotFound {
				t.Errorf("DELETE %s in session made-up: %s, want 404", url, r)
			}
		}
		// A session belongs to its endpoint: the aggregate's is unknown to
		// the one-server endpoint and to the other handler.
		for _, url := range []string{one, small} {
			r := badPost(t, url, aggSID, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			if r.status != http.StatusNotFound {
				t.Errorf("POST %s in a session of /mcp: %s, want 404", url, r)
			}
		}
		// A session that was ended is unknown from then on.
		sid := badInit(t, agg)
		r := badSend(t, http.MethodDelete, agg, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": badProtocol}, nil)
		if r.status != http.StatusNoContent {
			t.Fatalf("DELETE of a live session: %s, want 204", r)
		}
		r = badPost(t, agg, sid, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		if r.status != http.StatusNotFound {
			t.Errorf("POST in a deleted session: %s, want 404", r)
		}
		// Legacy SSE: a made-up sessionid.
		r = badSend(t, http.MethodPost, agg+"?sessionid=made-up", map[string]string{"Content-Type": "application/json"}, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		if r.status != http.StatusNotFound {
			t.Errorf("legacy SSE POST with sessionid=made-up: %s, want 404", r)
		}
	})

	t.Run("UnsupportedProtocolVersionIs400", func(t *testing.T) {
		// 2024-10-07 is an old draft no SDK speaks; "bogus" and 9999-01-01
		// sort after the newest version, which the SDK compares with.
		for _, v := range []string{"1999-01-01", "2024-10-07", "bogus", "9999-01-01"} {
			r := badPost(t, agg, aggSID, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), "MCP-Protocol-Version", v)
			if r.status != http.StatusBadRequest {
				t.Errorf("POST with MCP-Protocol-Version %s: %s, want 400", v, r)
			}
			r = badGET(t, agg, map[string]string{"Accept": "text/event-stream", "Mcp-Session-Id": aggSID, "MCP-Protocol-Version": v})
			if r.status != http.StatusBadRequest {
				t.Errorf("GET with MCP-Protocol-Version %s: %s, want 400", v, r)
			}
			r = badPost(t, one, "", []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+badProtocol+`","capabilities":{},"clientInfo":{"name":"x","version":"0"}}}`), "MCP-Protocol-Version", v)
			if r.status != http.StatusBadRequest {
				t.Errorf("initialize with MCP-Protocol-Version %s: %s, want 400", v, r)
			}
		}
		// The session lives on, and the negotiated version is fine (the GET
		// in a new session: a stream opened above may still be winding down).
		badPing(t, agg, aggSID)
		sid := badInit(t, agg)
		if r := badGET(t, agg, map[string]string{"Accept": "text/event-stream", "Mcp-Session-Id": sid, "MCP-Protocol-Version": badProtocol}); r.status != http.StatusOK {
			t.Errorf("GET with MCP-Protocol-Version %s: %s, want 200", badProtocol, r)
		}
	})

	t.Run("Origin", func(t *testing.T) {
		initBody := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + badProtocol + `","capabilities":{},"clientInfo":{"name":"x","version":"0"}}}`)
		allowed := []string{
			"",                      // no Origin: not a browser
			"http://" + s.listen,    // the site's own host (also loopback: a loopback listener cannot tell the rules apart)
			"http://localhost:3000", // localhost
			"http://127.0.0.1:9",    // loopback
			"http://[::1]:8080",     // loopback
			badOrigin,               // allowed_origins
			"https://APP.example.com",
		}
		refused := []string{
			"https://evil.example",
			"null",
			"http://app.example.com",       // allowed_origins has https
			"https://app.example.com:8443", // and no port
			"https://example.com",
			"http://localhost.evil.example",
			"http://127.0.0.1.evil.example",
		}
		for _, url := range []string{agg, one} {
			for _, o := range allowed {
				var extra []string
				if o != "" {
					extra = []string{"Origin", o}
				}
				r := badPost(t, url, "", initBody, extra...)
				if r.status != http.StatusOK {
					t.Errorf("%s: initialize with Origin %q: %s, want 200", url, o, r)
					continue
				}
				if msg := badRPC(t, r); msg.Error != nil || r.header.Get("Mcp-Session-Id") == "" {
					t.Errorf("%s: initialize with Origin %q: %s", url, o, r)
				}
			}
			for _, o := range refused {
				r := badPost(t, url, "", initBody, "Origin", o)
				msg := badExpectRPCError(t, fmt.Sprintf("%s with Origin %q", url, o), r, http.StatusForbidden, -32600, "null")
				if msg.Error != nil && !strings.Contains(msg.Error.Message, strconv.Quote(o)) {
					t.Errorf("%s: refusal of Origin %q does not name it: %q", url, o, msg.Error.Message)
				}
			}
		}
		// In a session and on the legacy transport alike.
		r := badPost(t, agg, aggSID, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), "Origin", "https://evil.example")
		badExpectRPCError(t, "ping in a session with a foreign Origin", r, http.StatusForbidden, -32600, "null")
		r = badGET(t, agg, map[string]string{"Accept": "text/event-stream", "Origin": "https://evil.example"})
		badExpectRPCError(t, "legacy SSE GET with a foreign Origin", r, http.StatusForbidden, -32600, "null")
		// allowed_origins is the handler's own: the small gateway has none.
		r = badPost(t, small, "", initBody, "Origin", badOrigin)
		badExpectRPCError(t, "Origin allowed by another handler", r, http.StatusForbidden, -32600, "null")

		// DNS rebinding: a page of a name that now resolves to the gateway
		// sends its own name as Origin and Host; over plain HTTP the Host
		// header proves nothing, so the "site's own host" rule must not apply.
		_, port, _ := net.SplitHostPort(strings.SplitN(agg, "/", 4)[2])
		req, err := http.NewRequest(http.MethodPost, agg, bytes.NewReader(initBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "rebound.example:" + port
		req.Header.Set("Origin", "http://rebound.example:"+port)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := badClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "rebound.example") {
			t.Errorf("rebound Origin and Host over plain HTTP: %s %s, want 403 naming the origin", resp.Status, body)
		}
	})

	t.Run("UnknownToolIsAnErrorNamingIt", func(t *testing.T) {
		for _, c := range []struct{ url, sid, tool string }{
			{one, oneSID, "no_such_tool"},
			{one, oneSID, "demo__echo"}, // the aggregate's name is not the one-server endpoint's
			{agg, aggSID, "demo__no_such_tool"},
			{agg, aggSID, "no_such_tool"},
			{agg, aggSID, "echo"}, // the upstream's name is not the aggregate's
		} {
			body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "tools/call",
				"params": map[string]any{"name": c.tool, "arguments": map[string]any{"text": "x"}}})
			r := badPost(t, c.url, c.sid, body)
			if r.status != http.StatusOK {
				t.Errorf("%s: tools/call %s: %s, want 200 with a JSON-RPC error", c.url, c.tool, r)
				continue
			}
			msg := badRPC(t, r)
			if msg.Error == nil || msg.Error.Code != -32602 || string(msg.ID) != "3" || !strings.Contains(msg.Error.Message, strconv.Quote(c.tool)) {
				t.Errorf("%s: tools/call %s: %s, want error -32602 naming the tool", c.url, c.tool, r)
			}
		}
		// The real names work in the same sessions.
		if got := badEcho(t, one, oneSID, "echo", "one"); got != "one" {
			t.Errorf("echo returned %q", got)
		}
		if got := badEcho(t, agg, aggSID, "demo__echo", "agg"); got != "agg" {
			t.Errorf("demo__echo returned %q", got)
		}
	})

	t.Run("UnknownServerIs404", func(t *testing.T) {
		for _, c := range []struct{ path, name string }{
			{"/servers/nope/mcp", "nope"},
			{"/small/servers/nope/mcp", "nope"},
			{"/servers/Demo/mcp", "Demo"}, // names are case-sensitive
		} {
			r := badPost(t, s.url(c.path), "", []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			msg := badExpectRPCError(t, "POST "+c.path, r, http.StatusNotFound, -32600, "null")
			if msg.Error != nil && !strings.Contains(msg.Error.Message, strconv.Quote(c.name)) {
				t.Errorf("POST %s: error %q does not name the server", c.path, msg.Error.Message)
			}
			r = badGET(t, s.url(c.path), map[string]string{"Accept": "text/event-stream"})
			badExpectRPCError(t, "GET "+c.path, r, http.StatusNotFound, -32600, "null")
		}
	})

	t.Run("BadConfigIsRefusedAtLoad", func(t *testing.T) {
		before := badAdminConfig(t, p)
		pids := badDemoPIDs(t, p)
		if len(pids) != 1 {
			t.Fatalf("want one demo server process under Caddy, got %v", pids)
		}
		for _, c := range badConfigs() {
			t.Run(c.name, func(t *testing.T) {
				status, msg := badLoad(t, p, badConfigWith(t, s, c.handler))
				if status != http.StatusBadRequest {
					t.Errorf("load: status %d, want 400; error %q", status, msg)
				}
				if now := badAdminConfig(t, p); !bytes.Equal(before, now) {
					t.Errorf("the running config changed: it is now\n%s", now)
					// Put the test site back for the cases that follow.
					if err := p.load(s.json(t)); err != nil {
						t.Fatalf("restoring the test site: %v", err)
					}
					// Two reloads closed the keep-alive connections of
					// the servers they replaced: a POST on one the client
					// still holds would fail with EOF, and is not retried.
					badClient.CloseIdleConnections()
				}
				for _, want := range c.want {
					if !strings.Contains(msg, want) {
						t.Errorf("load error %q does not contain %q", msg, want)
					}
				}
				// The old config still serves, sessions and all.
				if got := badEcho(t, agg, aggSID, "demo__echo", c.name); got != c.name {
					t.Errorf("after the refused load, demo__echo returned %q", got)
				}
			})
		}
		if after := badDemoPIDs(t, p); !slices.Equal(pids, after) {
			t.Errorf("the demo server process changed across refused loads: %v, then %v", pids, after)
		}
		badPing(t, one, oneSID)
		badInit(t, small)
	})
}

// badConfig is an mcp_gateway handler that must be refused, and what the
// error must say.
type badConfig struct {
	name    string
	handler map[string]any
	want    []string
}

// badLoadOnly names the variants of checks that other cases make already:
// they are loaded through the admin API but not also run through `caddy
// validate`, where each run of the race-built binary costs a second or two
// of CPU.
var badLoadOnly = map[string]bool{
	"stdio with a blank command": true, "stdio without command": true,
	"remote url host only": true, "remote url without host": true, "remote without url": true,
	"no kind": true, "allowed_origins entry without host": true,
	`invalid server name ""`: true, `invalid server name "-dash"`: true, `invalid server name "a/b"`: true,
	`invalid server name "über"`: true, `invalid server name "` + strings.Repeat("a", 65) + `"`: true,
}

// badGateway is a handler with the given fields and servers.
func badGateway(fields map[string]any, servers ...map[string]any) map[string]any {
	h := map[string]any{"handler": "mcp_gateway", "servers": servers}
	for k, v := range fields {
		h[k] = v
	}
	return h
}

func badConfigs() []badConfig {
	remote := func(url string, more ...any) map[string]any {
		r := map[string]any{"url": url}
		for i := 0; i+1 < len(more); i += 2 {
			r[more[i].(string)] = more[i+1]
		}
		return map[string]any{"name": "x", "remote": r}
	}
	demo := badDemoServer("demo")
	cases := []badConfig{
		{"stdio with an empty command", badGateway(nil, demo, map[string]any{"name": "x", "stdio": map[string]any{"command": ""}}),
			[]string{`servers[1]: server "x": stdio: command is required`}},
		{"stdio with a blank command", badGateway(nil, map[string]any{"name": "x", "stdio": map[string]any{"command": "  ", "args": []string{"a"}}}),
			[]string{`server "x": stdio: command is required`}},
		{"stdio without command", badGateway(nil, map[string]any{"name": "x", "stdio": map[string]any{"args": []string{"a"}}}),
			[]string{`server "x": stdio: command is required`}},
		{"container without image", badGateway(nil, map[string]any{"name": "x", "container": map[string]any{"network": "none"}}),
			[]string{`server "x": container: image is required`}},
		{"remote url without scheme", badGateway(nil, remote("127.0.0.1:9000/mcp")),
			[]string{`server "x": remote: url "127.0.0.1:9000/mcp"`}},
		{"remote url host only", badGateway(nil, remote("example.com/mcp")),
			[]string{`server "x": remote: url "example.com/mcp": scheme must be http or https`}},
		{"remote ftp url", badGateway(nil, remote("ftp://example.com/mcp")),
			[]string{`server "x": remote: url "ftp://example.com/mcp": scheme must be http or https`}},
		{"remote url without host", badGateway(nil, remote("http:///mcp")),
			[]string{`server "x": remote: url "http:///mcp": host is missing`}},
		{"remote without url", badGateway(nil, remote("")),
			[]string{`server "x": remote: url "": scheme must be http or https`}},
		{"unknown transport", badGateway(nil, remote("http://127.0.0.1:9/mcp", "transport", "websocket")),
			[]string{`server "x": remote: transport "websocket": must be "streamable" or "sse"`}},
		{"bad header name", badGateway(nil, remote("http://127.0.0.1:9/mcp", "headers", map[string]string{"Bad Header": "v"})),
			[]string{`server "x": remote: header name "Bad Header"`}},
		{"duplicate server name", badGateway(nil, demo, badDemoServer("other"), badDemoServer("demo")),
			[]string{`servers[2]: duplicate server name "demo" (also servers[0])`}},
		{"stdio and remote", badGateway(nil, map[string]any{"name": "x", "stdio": map[string]any{"command": "cat"}, "remote": map[string]any{"url": "http://127.0.0.1:9/mcp"}}),
			[]string{`server "x": exactly one of stdio, container or remote is required, got 2`}},
		{"no kind", badGateway(nil, map[string]any{"name": "x"}),
			[]string{`server "x": exactly one of stdio, container or remote is required, got 0`}},
		{"bad tool pattern", badGateway(nil, map[string]any{"name": "x", "stdio": map[string]any{"command": "cat"}, "tools": map[string]any{"deny": []string{"["}}}),
			[]string{`server "x": tools: pattern "["`}},
		{"unknown server field", badGateway(nil, map[string]any{"name": "x", "stdio": map[string]any{"comand": "cat"}}),
			[]string{`unknown field "comand"`}},
		{"bad allowed_origins entry", badGateway(map[string]any{"allowed_origins": []string{badOrigin, "app.example.com"}}, demo),
			[]string{`allowed_origins: "app.example.com" is not an origin`}},
		{"allowed_origins entry without host", badGateway(map[string]any{"allowed_origins": []string{"https://"}}, demo),
			[]string{`allowed_origins: "https://" is not an origin`}},
		// An origin has no path, query or wildcard: such an entry could never
		// equal an Origin header.
		{"allowed_origins entry with a path", badGateway(map[string]any{"allowed_origins": []string{"https://app.example.com/app"}}, demo),
			[]string{`allowed_origins: "https://app.example.com/app" is not an origin`}},
		{"allowed_origins entry with a wildcard", badGateway(map[string]any{"allowed_origins": []string{"https://*.example.com"}}, demo),
			[]string{`allowed_origins: "https://*.example.com" is not an origin`}},
		{"negative max_request_body", badGateway(map[string]any{"max_request_body": -1}, demo),
			[]string{`max_request_body -1: must be positive`}},
		{"aggregate_path without slash", badGateway(map[string]any{"aggregate_path": "mcp"}, demo),
			[]string{`aggregate_path "mcp": must begin with /`}},
		{"server_path without trailing slash", badGateway(map[string]any{"server_path": "/servers"}, demo),
			[]string{`server_path "/servers": must begin and end with /`}},
	}
	for _, name := range []string{"bad name", "", "-dash", "a/b", "über", strings.Repeat("a", 65)} {
		cases = append(cases, badConfig{
			"invalid server name " + strconv.Quote(name),
			badGateway(nil, map[string]any{"name": name, "stdio": map[string]any{"command": "cat"}}),
			[]string{fmt.Sprintf(`server name %q: must be 1-64 letters, digits, '.', '-' or '_'`, name)},
		})
	}
	// Every error names the module, so that the operator knows where to look.
	for i := range cases {
		cases[i].want = append(cases[i].want, "mcp_gateway")
	}
	return cases
}

// badConfigWith is the test site's config with a route for the handler
// added after the good ones: the good gateways provision (taking their share
// of the pools) before the bad one fails, and must give it all back.
func badConfigWith(t *testing.T, s *site, handler map[string]any) []byte {
	t.Helper()
	c := *s
	c.routes = append(badRoutes(), map[string]any{
		"match":  []map[string]any{{"path": []string{"/bad/*"}}},
		"handle": []map[string]any{handler},
	})
	return c.json(t)
}

// badLoad posts a config to the admin API's /load and returns the status
// and error message.
func badLoad(t *testing.T, p *caddyProc, config []byte) (int, string) {
	t.Helper()
	status, body, err := p.loadReply(config)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		return status, string(body)
	}
	return status, e.Error
}

// badAdminConfig returns the running config, as the admin API shows it.
func badAdminConfig(t *testing.T, p *caddyProc) []byte {
	t.Helper()
	resp, err := adminDo(http.MethodGet, p.admin+"/config/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /config/: %d %v", resp.StatusCode, err)
	}
	return b
}

// badDemoPIDs lists the demo server processes that Caddy started (its
// children running `mcp demo-server`), sorted.
func badDemoPIDs(t *testing.T, p *caddyProc) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// The fields after the command (in parentheses, which may hold
		// spaces) are: state, ppid, ...
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(p.cmd.Process.Pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "demo-server") {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// badRun runs the Caddy binary with args in dir and returns its combined
// output and exit code.
func badRun(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("caddy %v: %v\n%s", args, err, out)
		return "", -1
	}
}

// TestBadConfigRefusedByCaddyValidate: `caddy validate` refuses every bad
// config of TestBadInput/BadConfigIsRefusedAtLoad, naming the option, and
// accepts the same config without the bad handler.
func TestBadConfigRefusedByCaddyValidate(t *testing.T) {
	caddyBinary(t) // build before the parallel subtests
	s := newSite(t)
	s.routes = badRoutes()
	cases := badConfigs()
	for name := range badLoadOnly {
		if !slices.ContainsFunc(cases, func(c badConfig) bool { return c.name == name }) {
			t.Errorf("badLoadOnly names %q, which is no case", name)
		}
	}
	t.Run("good config", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "caddy.json"), s.json(t), 0o600); err != nil {
			t.Fatal(err)
		}
		out, code := badRun(t, dir, "validate", "--config", "caddy.json")
		if code != 0 || !strings.Contains(out, "Valid configuration") {
			t.Fatalf("caddy validate of the good config: exit %d\n%s", code, tailLines(out, 10))
		}
	})
	for _, c := range cases {
		if badLoadOnly[c.name] {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "caddy.json"), badConfigWith(t, s, c.handler), 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := badRun(t, dir, "validate", "--config", "caddy.json")
			if code == 0 {
				t.Fatalf("caddy validate accepted the config:\n%s", tailLines(out, 10))
			}
			// The error is logged as JSON: compare with its message decoded.
			msgs := badLoggedErrors(out)
			for _, want := range c.want {
				if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, want) }) {
					t.Errorf("caddy validate (exit %d) logged no error containing %q; errors: %q", code, want, msgs)
				}
			}
		})
	}
}

// badLoggedErrors returns the messages of the error entries of a JSON log.
func badLoggedErrors(log string) []string {
	var msgs []string
	for line := range strings.SplitSeq(log, "\n") {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "error" {
			msgs = append(msgs, entry.Msg)
		}
	}
	return msgs
}

// TestBadCaddyfileRefusedByCaddyAdapt: the caddy command refuses bad
// Caddyfiles. A syntax error fails `caddy adapt`; a value the handler
// refuses passes `caddy adapt` (which only translates) but fails
// `caddy adapt --validate` and `caddy validate`.
func TestBadCaddyfileRefusedByCaddyAdapt(t *testing.T) {
	caddyBinary(t)
	tests := []struct {
		name       string
		gateway    string // the mcp_gateway block, from line 2 of the Caddyfile
		adaptFails bool
		want       string
	}{
		{"unknown option", "\tmcp_gateway {\n\t\tcompression on\n\t}",
			true, `unrecognized mcp_gateway option "compression", at Caddyfile:3`},
		{"option of another kind", "\tmcp_gateway {\n\t\tserver a {\n\t\t\tremote https://example.com/mcp\n\t\t\tvolume /d:/d\n\t\t}\n\t}",
			true, `server a: option "volume" does not apply to a remote server (only container)`},
		{"stdio without command", "\tmcp_gateway {\n\t\tserver a {\n\t\t\tstdio\n\t\t}\n\t}",
			true, `server a: stdio: command is required, at Caddyfile:4`},
		{"bad remote url", "\tmcp_gateway {\n\t\tserver a {\n\t\t\tremote ftp://example.com/mcp\n\t\t}\n\t}",
			false, `server "a": remote: url "ftp://example.com/mcp": scheme must be http or https`},
		{"stdio and remote", "\tmcp_gateway {\n\t\tserver a {\n\t\t\tstdio cat\n\t\t\tremote https://example.com/mcp\n\t\t}\n\t}",
			true, `server a: only one of stdio, container or remote may be set, got remote and stdio`},
		{"negative max_request_body in bytes", "\tmcp_gateway {\n\t\tmax_request_body -1\n\t}",
			true, `max_request_body "-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := ":8080 {\n" + tt.gateway + "\n}\n"
			if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := badRun(t, dir, "adapt", "--config", "Caddyfile")
			if tt.adaptFails {
				if code == 0 || !slices.ContainsFunc(badLoggedErrors(out), func(m string) bool { return strings.Contains(m, tt.want) }) {
					t.Errorf("caddy adapt: exit %d, want non-zero and %q:\n%s", code, tt.want, tailLines(out, 10))
				}
				return
			}
			if code != 0 {
				t.Fatalf("caddy adapt: exit %d, want 0 (adapting only translates):\n%s", code, tailLines(out, 10))
			}
			for _, args := range [][]string{
				{"adapt", "--config", "Caddyfile", "--validate"},
				{"validate", "--config", "Caddyfile"},
			} {
				out, code := badRun(t, dir, args...)
				if code == 0 || !slices.ContainsFunc(badLoggedErrors(out), func(m string) bool { return strings.Contains(m, tt.want) }) {
					t.Errorf("caddy %s: exit %d, want non-zero and an error containing %q:\n%s", strings.Join(args, " "), code, tt.want, tailLines(out, 10))
				}
			}
		})
	}
}
