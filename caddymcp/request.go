package caddymcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// admit refuses, with a JSON-RPC error body, what the MCP SDK's transports
// answer in plain text or let through: a protocol version that does not
// exist, a body over the limit, a body that is not JSON, or JSON that is not
// one JSON-RPC message. It reads a POST body whole and puts it back for the
// transport. It reports whether the request may go on.
func admit(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if v := r.Header.Get("MCP-Protocol-Version"); v != "" && !slices.Contains(mcp.SupportedProtocolVersions(), v) {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, fmt.Sprintf(
			"unsupported MCP-Protocol-Version %q (supported: %s)", v, strings.Join(mcp.SupportedProtocolVersions(), ", ")))
		return false
	}
	if r.Method != http.MethodPost {
		return true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			writeRPCError(w, http.StatusRequestEntityTooLarge, jsonrpc.CodeInvalidRequest,
				fmt.Sprintf("request body is larger than %d bytes", limit))
		} else {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "reading request body: "+err.Error())
		}
		return false
	}
	if code, msg := checkMessage(body); code != 0 {
		writeRPCError(w, http.StatusBadRequest, code, msg)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// checkMessage returns the JSON-RPC error code and message for a body that
// is not a JSON-RPC 2.0 message, or 0. A batch (a non-empty array) is left
// to the transport, which knows which protocol versions allow one.
func checkMessage(body []byte) (int, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return jsonrpc.CodeParseError, "parse error: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return jsonrpc.CodeParseError, "parse error: data after the JSON value"
	}
	switch raw[0] {
	case '{':
	case '[':
		if bytes.Equal(bytes.Join(bytes.Fields(raw), nil), []byte("[]")) {
			return jsonrpc.CodeInvalidRequest, "invalid request: empty batch"
		}
		return 0, ""
	default:
		return jsonrpc.CodeInvalidRequest, "invalid request: a JSON-RPC message is a JSON object"
	}
	var m struct {
		JSONRPC *string         `json:"jsonrpc"`
		Method  json.RawMessage `json:"method"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
		Error   json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return jsonrpc.CodeInvalidRequest, "invalid request: " + err.Error()
	}
	switch {
	case m.JSONRPC == nil || *m.JSONRPC != "2.0":
		return jsonrpc.CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`
	case m.Method != nil && m.Method[0] != '"':
		return jsonrpc.CodeInvalidRequest, `invalid request: "method" must be a string`
	case m.ID != nil && !validID(m.ID):
		return jsonrpc.CodeInvalidRequest, `invalid request: "id" must be a string, a number or null`
	case m.Method == nil && m.Result == nil && m.Error == nil:
		return jsonrpc.CodeInvalidRequest, `invalid request: neither "method" nor "result" nor "error"`
	}
	return 0, ""
}

func validID(id json.RawMessage) bool {
	c := id[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9') || string(id) == "null"
}
