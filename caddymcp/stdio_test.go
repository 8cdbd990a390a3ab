package caddymcp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
)

// TestStdioMessageSizeLimit: a server process that writes a stdout line
// longer than max_message_size is stopped, with a log line that names the
// server, the process and the limit, and the next call gets a new process.
func TestStdioMessageSizeLimit(t *testing.T) {
	for _, kind := range []string{"stdio", "container"} {
		t.Run(kind, func(t *testing.T) {
			const limit = 64 << 10
			cfg := helperServer(t, "big-"+kind, kind, nil)
			cfg.MaxMessageSize = limit
			u, logs := startUpstream(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			// Under the limit, whole: a message just short of it passes.
			res, err := callTool(ctx, u, "flood", map[string]any{"n": limit - 1024})
			if err != nil {
				t.Fatal(err)
			}
			if got := toolText(res); len(got) != limit-1024 {
				t.Fatalf("flood under the limit: got %.40q (%d bytes)", got, len(got))
			}
			first := startedPIDs(logs)
			if len(first) != 1 {
				t.Fatalf("processes started: %v, want one", first)
			}

			_, err = callTool(ctx, u, "flood", map[string]any{"n": 1 << 20})
			if err == nil {
				t.Fatal("a 1 MiB answer over a 64 KiB limit came through")
			}
			if msg := err.Error(); !strings.Contains(msg, `server "`+cfg.Name+`"`) || !strings.Contains(msg, "longer than 65536 bytes") ||
				!strings.Contains(msg, "max_message_size") {
				t.Errorf("error %q does not name the server and the limit", msg)
			}
			broke := logs.FilterMessage("upstream process broke the message size limit; stopping it").All()
			if len(broke) == 0 {
				t.Fatalf("no log of the broken limit; logs: %v", logs.All())
			}
			fields := broke[0].ContextMap()
			if fields["server"] != cfg.Name || fields["pid"] != int64(first[0]) {
				t.Errorf("log fields %v, want server %q and pid %d", fields, cfg.Name, first[0])
			}
			if msg, _ := fields["error"].(string); !strings.Contains(msg, "65536 bytes") || !strings.Contains(msg, "max_message_size") {
				t.Errorf("logged error %q does not name the limit", msg)
			}
			waitGone(t, first[0])

			// The server comes back, once its restart backoff allows.
			var text string
			for deadline := time.Now().Add(10 * time.Second); ; {
				res, err := callTool(ctx, u, "echo", map[string]any{"text": "back"})
				if err == nil {
					text = toolText(res)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the server did not come back: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if text != "back" {
				t.Errorf("echo after the restart: %q", text)
			}
			if all := startedPIDs(logs); len(all) < 2 || all[len(all)-1] == first[0] {
				t.Errorf("processes started: %v, want a new one after %d", all, first[0])
			}
		})
	}
}

// TestStdioStderrLongLines: a stderr line longer than the log keeps is
// cut, with a marker saying how much; the lines after it are logged too,
// and the process, whose stderr is still drained, serves (the pipe holds
// 64 KiB: a process blocked on a full stderr would never answer). The
// value of a secret variable it prints is hidden.
func TestStdioStderrLongLines(t *testing.T) {
	const long = 200 << 10
	const secret = "SUPERSECRET-stdio-1234"
	cfg := helperServer(t, "chatty", "stdio", map[string]string{"HELPER_STDERR_LINE": strconv.Itoa(long), "MY_API_TOKEN": secret})
	u, logs := startUpstream(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := callTool(ctx, u, "echo", map[string]any{"text": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if got := toolText(res); got != "hi" {
		t.Fatalf("echo: %q", got)
	}

	var lines []string
	for _, e := range logs.FilterMessage("upstream stderr").All() {
		lines = append(lines, e.ContextMap()["line"].(string))
	}
	if len(lines) < 3 {
		t.Fatalf("stderr lines logged: %.100q", lines)
	}
	wantCut := strings.Repeat("x", maxStderrLine) + fmt.Sprintf("… [%d more bytes cut]", long-maxStderrLine)
	if lines[0] != wantCut {
		t.Errorf("long line logged as %.60q… (%d bytes), want %d x's and the marker", lines[0], len(lines[0]), maxStderrLine)
	}
	if lines[1] != "after the long line" {
		t.Errorf("line after the long one: %q", lines[1])
	}
	if lines[2] != "token: REDACTED" {
		t.Errorf("secret line logged as %q, want the value hidden", lines[2])
	}
	for _, e := range logs.All() {
		if strings.Contains(entryText(e), secret) {
			t.Errorf("log shows the secret: %.200s", entryText(e))
		}
	}
}

// startedPIDs lists the pids of the processes started, in order.
func startedPIDs(logs *observer.ObservedLogs) []int {
	var pids []int
	for _, e := range logs.FilterMessage("upstream process started").All() {
		pids = append(pids, int(e.ContextMap()["pid"].(int64)))
	}
	return pids
}

// waitGone waits for a process to have exited and been reaped.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
