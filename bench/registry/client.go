package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// newHTTPClient is one client's HTTP stack: HTTP/1.1 with keep-alive, or
// h2c.
func newHTTPClient(proto string) *http.Client {
	return &http.Client{Transport: benchkit.Transport(proto, 64), Timeout: 2 * time.Minute}
}

// call sends a request with an optional JSON body and returns the status
// and the body read whole.
func call(ctx context.Context, c *http.Client, method, url string, body any, header http.Header) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return 0, nil, nil, err
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// expect is call that wants one status.
func expect(ctx context.Context, c *http.Client, want int, method, url string, body any) ([]byte, error) {
	status, _, b, err := call(ctx, c, method, url, body, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if status != want {
		return nil, fmt.Errorf("%s %s: %d, want %d: %s", method, url, status, want, clip(string(b), 300))
	}
	return b, nil
}

// initializeBody is an MCP initialize request (protocol 2025-11-25, a
// session).
var initializeBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"caddy-mcp-registry-bench","version":"1"}}}`)

var mcpHeader = http.Header{"Accept": {"application/json, text/event-stream"}}

// initialize POSTs an initialize request to an MCP endpoint. It returns the
// status, and the session id when the answer is 200 with a result.
func initialize(ctx context.Context, c *http.Client, url string) (int, string, error) {
	status, hdr, b, err := call(ctx, c, http.MethodPost, url, initializeBody, mcpHeader)
	if err != nil {
		return 0, "", err
	}
	if status == http.StatusOK && !bytes.Contains(b, []byte(`"result"`)) {
		return status, "", fmt.Errorf("initialize at %s: 200 without a result: %s", url, clip(string(b), 300))
	}
	return status, hdr.Get("Mcp-Session-Id"), nil
}

// endSession DELETEs an MCP session, as a client that is done does.
func endSession(ctx context.Context, c *http.Client, url, id string) {
	if id == "" {
		return
	}
	_, _, _, _ = call(ctx, c, http.MethodDelete, url, nil, http.Header{"Mcp-Session-Id": {id}})
}

// stats are latencies in the order measured.
type stats []time.Duration

// pct is the p-th quantile (0 < p ≤ 1) by the nearest-rank method.
func (s stats) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return benchkit.Percentile(slices.Sorted(slices.Values(s)), p)
}

func (s stats) max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

func fmtMs(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.2f", ms)
}

// clip shortens an answer or a pprof row to n bytes, blanks around it
// dropped.
func clip(s string, n int) string {
	return benchkit.Clip(strings.TrimSpace(s), n)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
