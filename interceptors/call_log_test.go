package interceptors

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// observedCallLog is a provisioned call_log whose lines go to an observer
// that records lines at minLevel and above.
func observedCallLog(t *testing.T, level string, minLevel zapcore.Level) (*CallLog, *observer.ObservedLogs) {
	t.Helper()
	cl := provisioned(t, &CallLog{Level: level})
	core, logs := observer.New(minLevel)
	cl.logger = zap.New(core)
	return cl, logs
}

func TestCallLogLine(t *testing.T) {
	const args = `{"path":"/home/alice/diary.txt","limit":42.5,"opts":{"deep":true,"mode":null},
		"tags":["confidential","q3"],"rows":[{"id":7,"name":"Bob Smith"}],"empty":[]}`
	// What the line must show of the arguments: their shape only.
	const wantShape = `{"empty":[],"limit":"number","opts":{"deep":"boolean","mode":"null"},"path":"string",` +
		`"rows":[{"id":"number","name":"string"},1],"tags":["string",2]}`
	values := []string{"/home/alice/diary.txt", "42.5", "confidential", "q3", "Bob Smith"}
	upstreamErr := errors.New("upstream said: " + strings.Repeat("x", 2000))

	for _, tc := range []struct {
		name    string
		outcome caddymcp.Outcome
		want    string // the outcome field
		wantErr string // the error field; "" for none
	}{
		{"ok", caddymcp.Outcome{Result: json.RawMessage(`{"content":[]}`)}, "ok", ""},
		{"tool error", caddymcp.Outcome{Result: json.RawMessage(`{"isError":true}`), IsError: true}, "tool_error", ""},
		{"error", caddymcp.Outcome{Err: upstreamErr}, "error", capText(upstreamErr.Error(), 512)},
		{"refused", caddymcp.Outcome{Err: &caddymcp.Refused{By: "tool_filter", Reason: errors.New("tool \"fs/rm\" is denied")}},
			"refused", `refused by tool_filter: tool "fs/rm" is denied`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, logs := observedCallLog(t, "", zapcore.InfoLevel)
			tc.outcome.Duration = 1500 * time.Millisecond
			if err := cl.After(t.Context(), newCall("fs", "read_file", args), &tc.outcome); err != nil {
				t.Fatalf("After: %v", err)
			}
			entries := logs.AllUntimed()
			if len(entries) != 1 {
				t.Fatalf("got %d lines, want 1", len(entries))
			}
			e := entries[0]
			if e.Level != zapcore.InfoLevel || e.Message != "tool call" {
				t.Errorf("line %v %q, want info \"tool call\"", e.Level, e.Message)
			}
			fields := e.ContextMap()
			for k, want := range map[string]any{
				"server": "fs", "tool": "read_file", "principal": "alice", "session": "s1",
				"duration": 1500 * time.Millisecond, "outcome": tc.want,
			} {
				if fields[k] != want {
					t.Errorf("field %s = %v, want %v", k, fields[k], want)
				}
			}
			shape, err := json.Marshal(fields["arguments"])
			if err != nil {
				t.Fatal(err)
			}
			if string(shape) != wantShape {
				t.Errorf("arguments shape\n got %s\nwant %s", shape, wantShape)
			}
			gotErr, hasErr := fields["error"]
			if tc.wantErr == "" && hasErr {
				t.Errorf("error field %q on a call that did not fail", gotErr)
			}
			if tc.wantErr != "" && gotErr != tc.wantErr {
				t.Errorf("error field %q, want %q", gotErr, tc.wantErr)
			}
			if s, _ := gotErr.(string); len(s) > 512 {
				t.Errorf("error field of %d bytes, want at most 512", len(s))
			}
			line, err := json.Marshal(fields)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				if strings.Contains(string(line), v) {
					t.Errorf("the line shows the argument value %q: %s", v, line)
				}
			}
		})
	}
}

func TestCallLogLevel(t *testing.T) {
	call := newCall("fs", "read_file", `{}`)
	cl, logs := observedCallLog(t, "debug", zapcore.InfoLevel)
	if err := cl.After(t.Context(), call, &caddymcp.Outcome{}); err != nil {
		t.Fatal(err)
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("a debug call_log wrote %d lines to an info logger, want none", n)
	}

	cl, logs = observedCallLog(t, "warn", zapcore.InfoLevel)
	if err := cl.After(t.Context(), call, &caddymcp.Outcome{}); err != nil {
		t.Fatal(err)
	}
	if entries := logs.AllUntimed(); len(entries) != 1 || entries[0].Level != zapcore.WarnLevel {
		t.Errorf("a warn call_log wrote %v, want one warn line", entries)
	}

	for _, bad := range []string{"fatal", "panic", "verbose", "INFO"} {
		err := provision(t, &CallLog{Level: bad})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("level %q", bad)) {
			t.Errorf("level %q: got error %v, want one naming it", bad, err)
		}
	}
}

func TestArgumentShapeLimits(t *testing.T) {
	// 12 levels of objects: from the 9th on, only "object" shows.
	deep := `"leaf"`
	for range 12 {
		deep = `{"k":` + deep + `}`
	}
	wantDeep := `"object"`
	for range 8 {
		wantDeep = `{"k":` + wantDeep + `}`
	}

	var wide strings.Builder
	wide.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&wide, `"key%02d":%d,`, i, i)
	}
	wide.WriteString(`"` + strings.Repeat("long", 40) + `":1}`)
	var wantWide strings.Builder
	wantWide.WriteString("{")
	for i := range 32 {
		fmt.Fprintf(&wantWide, `"key%02d":"number",`, i)
	}
	wantWide.WriteString(`"…":"9 more keys"}`)

	for _, tc := range []struct{ args, want string }{
		{deep, wantDeep},
		{wide.String(), wantWide.String()},
		// Long key names are cut.
		{`{"` + strings.Repeat("k", 100) + `":"v"}`, `{"` + strings.Repeat("k", 61) + `…":"string"}`},
		{`[[1,2],[3]]`, `[["number",2],2]`},
		{`"just a string"`, `"string"`},
		{`{"a":1}{"b":2}`, `"invalid"`},
		{`{"a":`, `"invalid"`},
		{``, `"invalid"`},
	} {
		got, err := json.Marshal(argumentShape(json.RawMessage(tc.args)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("shape of %.60s\n got %s\nwant %s", tc.args, got, tc.want)
		}
	}
}

func TestCallLogCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"call_log {\n level\n}":           "wrong argument count",
		"call_log {\n level info warn\n}": "wrong argument count",
		"call_log {\n verbose\n}":         `unrecognized call_log option "verbose"`,
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v, want %q", in, err, want)
		}
	}
}
