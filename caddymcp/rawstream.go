package caddymcp

// Server-sent events and JSON-RPC messages as bytes, for the fast path
// (fastpath.go), which relays calls without decoding them whole.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// startSSE begins the answer to a call as the SDK's handler does.
func startSSE(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Content-Type", "text/event-stream")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
}

// writeSSE writes one message event and flushes it.
func writeSSE(w http.ResponseWriter, data []byte) {
	b := make([]byte, 0, len(data)+len("event: message\ndata: \n\n"))
	b = append(b, "event: message\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	_, _ = w.Write(b)
	_ = http.NewResponseController(w).Flush()
}

var sseReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// sseState is what a stream's events said of resuming it.
type sseState struct {
	lastID string
	retry  time.Duration
	tooBig bool // an event was over the SDK's limit: the stream was given up
}

// readSSE reads server-sent events, passing each event's data to deliver
// until stop says so or the stream ends.
func readSSE(body io.Reader, st *sseState, deliver func([]byte), stop func() bool) {
	br := sseReaders.Get().(*bufio.Reader)
	br.Reset(body)
	defer func() {
		br.Reset(nil)
		sseReaders.Put(br)
	}()
	var data []byte
	var id string
	for !stop() {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a line longer than the buffer
			line = append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				if len(line) > mcp.DefaultMaxEventSize {
					st.tooBig = true
					return
				}
				var more []byte
				more, err = br.ReadSlice('\n')
				line = append(line, more...)
			}
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(trimmed) == 0 && len(line) > 0:
			if id != "" {
				st.lastID, id = id, ""
			}
			if data != nil {
				deliver(data)
				data = nil
			}
		case bytes.HasPrefix(trimmed, []byte("id:")):
			id = string(bytes.TrimSpace(trimmed[3:]))
		case bytes.HasPrefix(trimmed, []byte("retry:")):
			if ms, err := strconv.Atoi(string(bytes.TrimSpace(trimmed[6:]))); err == nil {
				st.retry = time.Duration(ms) * time.Millisecond
			}
		case bytes.HasPrefix(trimmed, []byte("data:")):
			v := trimmed[5:]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, v...)
			if len(data) > mcp.DefaultMaxEventSize {
				st.tooBig = true
				return
			}
		}
		if err != nil {
			if data != nil && !stop() {
				deliver(data)
			}
			return
		}
	}
}

// errorResponse is a JSON-RPC internal error answering id.
func errorResponse(id json.RawMessage, code int64, message string) []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": message}})
	return b
}

// setField returns the JSON object msg with one member replaced.
func setField(msg []byte, key string, value json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil {
		return msg
	}
	m[key] = value
	b, err := json.Marshal(m)
	if err != nil {
		return msg
	}
	return b
}

// compactJSON returns a JSON value without insignificant space, to compare.
func compactJSON(v json.RawMessage) []byte {
	if !bytes.ContainsAny(v, " \t\r\n") {
		return v
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
