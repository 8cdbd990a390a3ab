package caddymcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// admit refuses, with a JSON-RPC error body, what the MCP SDK's transports
// answer in plain text or let through: a protocol version that does not
// exist, a body over the limit, a body that is not JSON, or JSON that is not
// one JSON-RPC message. It reads a POST body whole and puts it back for the
// transport. It reports whether the request may go on, and for a POST of one
// message, the message as read, so that nothing parses it twice.
func admit(w http.ResponseWriter, r *http.Request, limit int64) (*message, bool) {
	if v := r.Header.Get("MCP-Protocol-Version"); v != "" && !slices.Contains(mcp.SupportedProtocolVersions(), v) {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, fmt.Sprintf(
			"unsupported MCP-Protocol-Version %q (supported: %s)", v, strings.Join(mcp.SupportedProtocolVersions(), ", ")))
		return nil, false
	}
	if r.Method != http.MethodPost {
		return nil, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			writeRPCError(w, http.StatusRequestEntityTooLarge, jsonrpc.CodeInvalidRequest,
				fmt.Sprintf("request body is larger than %d bytes", limit))
		} else {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "reading request body: "+err.Error())
		}
		return nil, false
	}
	msg, code, why := parseMessage(body)
	if code != 0 {
		writeRPCError(w, http.StatusBadRequest, code, why)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return msg, true
}

// message is what the gateway reads of a JSON-RPC message before the SDK
// does: enough to refuse a malformed one, and for the fast path to relay it.
type message struct {
	JSONRPC *string         `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`

	body      []byte // the message as it came
	hasMethod bool   // a "method" member, even "": a request, as the SDK reads it
}

// parseMessage reads a body that should be one JSON-RPC 2.0 message. For one
// that is not, it returns the JSON-RPC error code and message. A batch (a
// non-empty array) is left to the transport, which knows which protocol
// versions allow one: the message is then nil.
func parseMessage(body []byte) (*message, int, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, jsonrpc.CodeParseError, "parse error: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, jsonrpc.CodeParseError, "parse error: data after the JSON value"
	}
	switch raw[0] {
	case '{':
	case '[':
		var batch []json.RawMessage
		if json.Unmarshal(raw, &batch) == nil && len(batch) == 0 {
			return nil, jsonrpc.CodeInvalidRequest, "invalid request: empty batch"
		}
		return nil, 0, ""
	default:
		return nil, jsonrpc.CodeInvalidRequest, "invalid request: a JSON-RPC message is a JSON object"
	}
	// The members by their exact names, as the SDK reads them: decoded into
	// a struct, "Method", "ID" or "paramſ" would count as members too, and
	// the gateway and the SDK would read two different messages.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, jsonrpc.CodeInvalidRequest, "invalid request: " + err.Error()
	}
	m := &message{ID: members["id"], Params: members["params"], Result: members["result"], Error: members["error"], body: body}
	if v, ok := members["jsonrpc"]; ok {
		m.JSONRPC = new(string)
		if json.Unmarshal(v, m.JSONRPC) != nil {
			return nil, jsonrpc.CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`
		}
	}
	if v, ok := members["method"]; ok {
		if json.Unmarshal(v, &m.Method) != nil {
			return nil, jsonrpc.CodeInvalidRequest, `invalid request: "method" must be a string`
		}
		m.hasMethod = true
	}
	switch {
	case m.JSONRPC == nil || *m.JSONRPC != "2.0":
		return nil, jsonrpc.CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`
	case m.ID != nil && !validID(m.ID):
		return nil, jsonrpc.CodeInvalidRequest, `invalid request: "id" must be a string, a number or null`
	case !m.hasMethod && m.Result == nil && m.Error == nil:
		return nil, jsonrpc.CodeInvalidRequest, `invalid request: neither "method" nor "result" nor "error"`
	}
	return m, 0, ""
}

// validID reports whether id is one the SDK takes: a string, null, or a
// number a float64 holds (1e700 is not, and the SDK refuses the message).
// The message has parsed as JSON, so a number's syntax is JSON's.
func validID(id json.RawMessage) bool {
	switch c := id[0]; {
	case c == '"', string(id) == "null":
		return true
	case c == '-', c >= '0' && c <= '9':
		_, err := strconv.ParseFloat(string(id), 64)
		return err == nil
	}
	return false
}
