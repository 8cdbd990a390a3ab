package caddymcp

import (
	"strings"
	"testing"
	"time"
)

// TestReadSSE reads a stream the way the fast path reads an upstream's:
// data lines joined, CRLF or LF, lines longer than the reader's buffer,
// the last event id and the retry delay kept for resuming, empty (priming)
// events skipped, and nothing read once stop says so.
func TestReadSSE(t *testing.T) {
	long := strings.Repeat("x", 40<<10)
	stream := "id: prime-1\r\ndata: \r\n\r\n" +
		"event: message\nid: 7\nretry: 250\ndata: {\"a\":1}\n\n" +
		"data: {\"b\":\ndata: 2}\n\n" +
		"data: \"" + long + "\"\n\n" +
		": a comment\n" +
		"id: 9\ndata: {\"last\":true}\n\n" +
		"data: {\"never\":true}\n\n"
	var got []string
	var st sseState
	readSSE(strings.NewReader(stream), &st, func(d []byte) { got = append(got, string(d)) },
		func() bool { return len(got) > 0 && got[len(got)-1] == `{"last":true}` })
	want := []string{`{"a":1}`, "{\"b\":\n2}", `"` + long + `"`, `{"last":true}`}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %.80q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %.80q, want %.80q", i, got[i], want[i])
		}
	}
	if st.lastID != "9" || st.retry != 250*time.Millisecond || st.tooBig {
		t.Errorf("state %+v, want last id 9, retry 250ms, not too big", st)
	}
}

// TestReadSSEEndsWithoutBlankLine delivers an event cut off by the end of
// the stream, as the SDK's reader does.
func TestReadSSEEndsWithoutBlankLine(t *testing.T) {
	var got []string
	var st sseState
	readSSE(strings.NewReader("data: {\"a\":1}"), &st, func(d []byte) { got = append(got, string(d)) }, func() bool { return false })
	if len(got) != 1 || got[0] != `{"a":1}` {
		t.Errorf("got %q", got)
	}
}

// TestSetFieldAndCompact covers the JSON edits of ids and params.
func TestSetFieldAndCompact(t *testing.T) {
	got := string(setField([]byte(`{"jsonrpc":"2.0","id":"caddy-mcp-f1","result":{"id":"inner"}}`), "id", []byte(`7`)))
	if got != `{"id":7,"jsonrpc":"2.0","result":{"id":"inner"}}` {
		t.Errorf("setField = %s", got)
	}
	if got := string(compactJSON([]byte(` "a" `))); got != `"a"` {
		t.Errorf("compactJSON = %q", got)
	}
}
