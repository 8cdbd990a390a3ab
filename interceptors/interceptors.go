// Package interceptors holds the guest modules of the namespace
// mcp.interceptors: each sees every tools/call the mcp_gateway handler
// relays, before it goes upstream and after (see caddymcp.Interceptor).
package interceptors

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// maxReason is the most of an error text or a policy's reason that goes
// into a log line or a refusal: upstreams and policy programs may write a
// lot, and clients and logs should not get all of it.
const maxReason = 512

// capText cuts s to at most n bytes, on a character boundary, marking the
// cut with "…".
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// firstLine is s up to its first line break, capped at maxReason bytes.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return capText(strings.TrimSpace(line), maxReason)
}

// decodeJSON decodes a JSON document holding exactly one value, keeping
// numbers as json.Number (only their kind matters here).
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}
