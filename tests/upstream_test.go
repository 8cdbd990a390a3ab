package tests

// Upstream lifecycles against a real Caddy: stdio crashes and restarts with
// backoff, stderr in the log, prompt stops, reloads that keep or replace a
// process, the container path through the stand-in docker CLI, remote
// headers, lost remote sessions, and a dead member of the aggregate.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Stop timing documented in caddymcp/stdio.go: stdin is closed, then after
// 300ms the process group gets SIGTERM, then after 2s more SIGKILL.
const (
	lcStdinGrace = 300 * time.Millisecond
	lcKillGrace  = 2 * time.Second
	// lcStopSlack is what a loaded machine (and -race) may add to the
	// documented grace before a stopped group is gone.
	lcStopSlack = 2 * time.Second
	// lcMinBackoff is caddymcp's first restart backoff (minBackoff in
	// caddymcp/upstream.go); each further failure doubles it.
	lcMinBackoff = 500 * time.Millisecond
)

// lcEntry is one JSON line of Caddy's log.
type lcEntry map[string]any

func (e lcEntry) str(k string) string {
	s, _ := e[k].(string)
	return s
}

func (e lcEntry) num(k string) int {
	f, _ := e[k].(float64)
	return int(f)
}

func (e lcEntry) ts() time.Time {
	f, _ := e["ts"].(float64)
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

func (e lcEntry) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// lcEntries parses Caddy's log so far, keeping the entries for which keep
// returns true.
func lcEntries(p *caddyProc, keep func(lcEntry) bool) []lcEntry {
	var out []lcEntry
	sc := bufio.NewScanner(strings.NewReader(p.logs()))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e lcEntry
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// lcMsg matches log entries with the message msg about server (any server
// when server is "").
func lcMsg(msg, server string) func(lcEntry) bool {
	return func(e lcEntry) bool {
		return e.str("msg") == msg && (server == "" || e.str("server") == server)
	}
}

// lcWaitEntry waits until the log has an entry for which keep returns true,
// and returns the first such entry.
func lcWaitEntry(t *testing.T, p *caddyProc, timeout time.Duration, what string, keep func(lcEntry) bool) lcEntry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if es := lcEntries(p, keep); len(es) > 0 {
			return es[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log entry for %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lcStartedPIDs returns the pids of the server's "upstream process started"
// entries, in order.
func lcStartedPIDs(p *caddyProc, server string) []int {
	var pids []int
	for _, e := range lcEntries(p, lcMsg("upstream process started", server)) {
		pids = append(pids, e.num("pid"))
	}
	return pids
}

// lcScript writes an executable shell script into dir.
func lcScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// lcQuote quotes s for sh.
func lcQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// lcGroupAlive reports whether a process group has a live (non-zombie)
// member. A zombie has exited: it only waits to be reaped by its parent, which
// for an orphan is this machine's init.
func lcGroupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	// kill(2) counts zombies; look at the members' states where /proc tells.
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, d := range entries {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 3 {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid && fields[0] != "Z" && fields[0] != "X" {
			return true
		}
	}
	return false
}

// lcPIDAlive reports whether a process exists and is not a zombie.
func lcPIDAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[i+1:]))
	return len(fields) == 0 || (fields[0] != "Z" && fields[0] != "X")
}

// lcWaitGroupGone waits up to limit for a process group to be gone and
// returns how long it took, failing the test if it outlives limit.
func lcWaitGroupGone(t *testing.T, pgid int, since time.Time, limit time.Duration, what string) time.Duration {
	t.Helper()
	for lcGroupAlive(pgid) {
		if time.Since(since) > limit {
			t.Errorf("%s: process group %d still alive %v after the stop (limit %v)", what, pgid, time.Since(since).Round(time.Millisecond), limit)
			return time.Since(since)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(since)
}

// lcStartTime returns a process's start time from /proc (clock ticks since
// boot), or "" when there is no such process.
func lcStartTime(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[i+1:]))
	// starttime is field 22 of stat; fields here start at field 3.
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// lcKillGroupAtEnd makes sure a process group found in the log does not
// outlive the test, whatever the test finds. Pids are reused: the group is
// killed only while its leader is the process it was, or while the leader
// is gone (a group id stays taken as long as any member lives).
func lcKillGroupAtEnd(t testing.TB, pgid int) {
	if pgid <= 1 {
		return
	}
	started := lcStartTime(pgid)
	t.Cleanup(func() {
		now := lcStartTime(pgid)
		if now == "" && lcPIDAlive(pgid) {
			return // no /proc to tell: leave it
		}
		if now == "" || now == started {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	})
}

// lcCallText calls a tool and returns its text, failing the test on error.
func lcCallText(t *testing.T, cs *mcp.ClientSession, tool string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
	if err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("tools/call %s: tool error %q", tool, text(res))
	}
	return text(res)
}

// lcTryConnect opens an MCP client session to url, returning the error
// instead of failing.
func lcTryConnect(url string, client *http.Client) (*mcp.ClientSession, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "caddy-mcp-test", Version: "0"}, nil)
	return c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: client, MaxRetries: -1}, nil)
}

// lcRPCError checks that err carries a JSON-RPC error whose message has all
// of wants, and returns the message.
func lcRPCError(t *testing.T, err error, wants ...string) string {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a JSON-RPC error containing %q", wants)
	}
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) {
		t.Errorf("error is not a JSON-RPC error: %v", err)
		return err.Error()
	}
	for _, w := range wants {
		if !strings.Contains(rpcErr.Message, w) {
			t.Errorf("JSON-RPC error %q (code %d) does not contain %q", rpcErr.Message, rpcErr.Code, w)
		}
	}
	return rpcErr.Message
}

// TestStdioUpstreamCrashRestartsWithBackoff kills a stdio server with
// SIGKILL: the gateway logs the exit, restarts it after the backoff, and the
// same client session goes on working. The server's stderr reaches Caddy's
// log tagged with the server's name. A server that always dies at start
// gives a JSON-RPC error naming it and the cause, and is retried with a
// growing backoff, not in a hot loop.
func TestStdioUpstreamCrashRestartsWithBackoff(t *testing.T) {
	bin := peers.GoConformanceServer(t)
	dir := t.TempDir()
	// exec keeps the pid, so the marker names the server's own pid.
	crashy := lcScript(t, dir, "crashy.sh", `echo "stderr-marker from pid $$" >&2
exec `+lcQuote(bin)+"\n")
	s := newSite(t).handle(gateway(
		stdioServer("crashy", crashy),
		stdioServer("broken", "sh", "-c", "echo broken-marker >&2; exit 3"),
	))
	p := s.start(t)

	parent := t
	t.Run("crash and restart", func(t *testing.T) {
		var logMu sync.Mutex
		var logged []string
		cs := connectVersion(t, s.url("/servers/crashy/mcp"), h2cClient(), &mcp.ClientOptions{
			LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
				logMu.Lock()
				defer logMu.Unlock()
				if s, ok := req.Params.Data.(string); ok {
					logged = append(logged, s)
				}
			},
		}, "2025-11-25")
		sessionID := cs.ID()
		// Asked of the first process; the restarted one must be asked again.
		if err := cs.SetLoggingLevel(context.Background(), &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
			t.Fatal(err)
		}
		if got := lcCallText(t, cs, "test_simple_text"); !strings.Contains(got, "simple text") {
			t.Fatalf("test_simple_text returned %q", got)
		}
		pids := lcStartedPIDs(p, "crashy")
		if len(pids) != 1 || pids[0] <= 1 {
			t.Fatalf("want one 'upstream process started' entry for crashy, got pids %v", pids)
		}
		pid := pids[0]
		lcKillGroupAtEnd(parent, pid)

		// stderr, tagged with the server and the process.
		marker := fmt.Sprintf("stderr-marker from pid %d", pid)
		e := lcWaitEntry(t, p, 10*time.Second, "the stderr marker", func(e lcEntry) bool {
			return e.str("msg") == "upstream stderr" && e.str("line") == marker
		})
		if e.str("server") != "crashy" || e.num("pid") != pid {
			t.Errorf("stderr entry not tagged with server crashy and pid %d: %s", pid, e)
		}

		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		exited := lcWaitEntry(t, p, 10*time.Second, "the exit of the killed process", func(e lcEntry) bool {
			return e.str("msg") == "upstream process exited" && e.str("server") == "crashy" && e.num("pid") == pid
		})
		if !strings.Contains(exited.str("error"), "killed") {
			t.Errorf("exit entry does not say the process was killed: %s", exited)
		}
		failed := lcWaitEntry(t, p, 10*time.Second, "the crash being noticed", func(e lcEntry) bool {
			return e.str("msg") == "upstream unavailable" && e.str("server") == "crashy"
		})
		// The supervisor restarts it by itself, after the backoff.
		restarted := lcWaitEntry(t, p, 20*time.Second, "the restart", func(e lcEntry) bool {
			return e.str("msg") == "upstream process started" && e.str("server") == "crashy" && e.num("pid") != pid
		})
		newPID := restarted.num("pid")
		lcKillGroupAtEnd(parent, newPID)
		if gap := restarted.ts().Sub(failed.ts()); gap < lcMinBackoff-20*time.Millisecond {
			t.Errorf("restarted %v after the crash was noticed, before the %v backoff", gap, lcMinBackoff)
		} else {
			t.Logf("crash noticed, then restarted as pid %d %v later", newPID, gap.Round(time.Millisecond))
		}
		if lcPIDAlive(pid) {
			t.Errorf("killed pid %d is still alive", pid)
		}

		// The next call goes through the same client session.
		if got := lcCallText(t, cs, "test_simple_text"); !strings.Contains(got, "simple text") {
			t.Errorf("test_simple_text after the restart returned %q", got)
		}
		if cs.ID() != sessionID {
			t.Errorf("client session changed from %q to %q", sessionID, cs.ID())
		}
		lcCallText(t, cs, "test_tool_with_logging")
		deadline := time.Now().Add(5 * time.Second)
		for {
			logMu.Lock()
			got := slices.Contains(logged, "Tool execution completed")
			logMu.Unlock()
			if got {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("after the restart, the server's log messages no longer reach the client that asked for them")
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n := len(lcEntries(p, lcMsg("upstream connected", "crashy"))); n != 2 {
			t.Errorf("want 2 'upstream connected' entries for crashy (start, restart), got %d", n)
		}
		if pids := lcStartedPIDs(p, "crashy"); len(pids) != 2 {
			t.Errorf("want 2 processes started for crashy, got pids %v", pids)
		}
	})

	t.Run("always crashing", func(t *testing.T) {
		client := h1Client()
		_, err := lcTryConnect(s.url("/servers/broken/mcp"), client)
		// The cause is the exit (status 3), not the EOF it leaves on stdout.
		msg := lcRPCError(t, err, `"broken"`, "status 3")
		t.Logf("initialize of a server that exits at once: %s", msg)

		// Clients keep asking for ~3s; the gateway must space its attempts.
		start := time.Now()
		attempts := 1
		for time.Since(start) < 3*time.Second {
			cs, err := lcTryConnect(s.url("/servers/broken/mcp"), client)
			if err == nil {
				cs.Close()
				t.Fatal("initialize of a server that always exits succeeded")
			}
			lcRPCError(t, err, `"broken"`)
			attempts++
			time.Sleep(50 * time.Millisecond)
		}
		started := lcEntries(p, lcMsg("upstream process started", "broken"))
		t.Logf("%d client attempts in %v made %d process starts", attempts, time.Since(start).Round(time.Millisecond), len(started))
		// Backoffs of 0.5, 1 and 2s fit 3 or 4 starts in ~3s; a hot loop
		// would start one per client attempt.
		if len(started) < 2 || len(started) > 5 {
			t.Errorf("%d process starts for %d client attempts over ~3s: want 2 to 5 (backoff 0.5s, 1s, 2s, ...)", len(started), attempts)
		}
		for i := 1; i < len(started); i++ {
			gap := started[i].ts().Sub(started[i-1].ts())
			want := lcMinBackoff << (i - 1)
			if gap < want-20*time.Millisecond {
				t.Errorf("start %d came %v after start %d: want at least the backoff %v", i+1, gap.Round(time.Millisecond), i, want)
			}
		}
		// The stderr of the dying process is in the log too.
		lcWaitEntry(t, p, 5*time.Second, "broken's stderr", func(e lcEntry) bool {
			return e.str("msg") == "upstream stderr" && e.str("server") == "broken" && e.str("line") == "broken-marker"
		})
	})
}

// lcStubbornScript is a stdio server that does not stop when asked: it runs
// the conformance server as a child, and when that exits on stdin EOF it
// stays alive; it logs SIGTERM and carries on; and it has a grandchild in its
// process group that ignores SIGTERM. Only SIGKILL of the whole process
// group ends it.
func lcStubbornScript(t *testing.T, dir, bin string) string {
	return lcScript(t, dir, "stubborn.sh", `trap 'echo "stubborn: got SIGTERM" >&2' TERM
sh -c 'trap "" TERM; exec sleep 1000' </dev/null >/dev/null 2>&1 &
echo "stubborn: grandchild $!" >&2
`+lcQuote(bin)+`
echo "stubborn: server exited; staying alive" >&2
while :; do sleep 1; done
`)
}

// lcStubbornStarted starts the stubborn server behind /servers/<name>/mcp
// with a tool call and returns its process group and its grandchild's pid.
func lcStubbornStarted(t *testing.T, s *site, p *caddyProc, name string) (pgid, grandchild int) {
	t.Helper()
	client := h2cClient()
	cs := connect(t, s.url("/servers/"+name+"/mcp"), client, nil)
	if got := lcCallText(t, cs, "test_simple_text"); !strings.Contains(got, "simple text") {
		t.Fatalf("%s: test_simple_text returned %q", name, got)
	}
	pids := lcStartedPIDs(p, name)
	if len(pids) != 1 {
		t.Fatalf("%s: want one process started, got pids %v", name, pids)
	}
	pgid = pids[0]
	lcKillGroupAtEnd(t, pgid)
	e := lcWaitEntry(t, p, 10*time.Second, name+"'s grandchild", func(e lcEntry) bool {
		return e.str("msg") == "upstream stderr" && e.str("server") == name && strings.HasPrefix(e.str("line"), "stubborn: grandchild ")
	})
	grandchild, err := strconv.Atoi(strings.TrimPrefix(e.str("line"), "stubborn: grandchild "))
	if err != nil || !lcPIDAlive(grandchild) {
		t.Fatalf("%s: grandchild %q is not a live pid", name, e.str("line"))
	}
	if pg, err := syscall.Getpgid(grandchild); err != nil || pg != pgid {
		t.Fatalf("%s: grandchild %d is in process group %d (%v), want %d", name, grandchild, pg, err, pgid)
	}
	// Closed, so that Caddy's HTTP shutdown has no stream to wait for.
	cs.Close()
	client.CloseIdleConnections()
	return pgid, grandchild
}

// lcCheckStopSequence checks, from the server's stderr and exit in the log,
// that the stop went stdin EOF, then SIGTERM, then SIGKILL, and that the
// process was gone within the documented grace of its stdin closing.
func lcCheckStopSequence(t *testing.T, p *caddyProc, name string, pgid int) {
	t.Helper()
	exited := lcWaitEntry(t, p, 5*time.Second, name+"'s exit", func(e lcEntry) bool {
		return e.str("msg") == "upstream process exited" && e.str("server") == name && e.num("pid") == pgid
	})
	if !strings.Contains(exited.str("error"), "killed") {
		t.Errorf("%s: want the process killed (SIGKILL) in the end, got %s", name, exited)
	}
	var eof, term lcEntry
	var lines []string
	for _, e := range lcEntries(p, lcMsg("upstream stderr", name)) {
		lines = append(lines, e.str("line"))
		switch e.str("line") {
		case "stubborn: server exited; staying alive":
			eof = e
		case "stubborn: got SIGTERM":
			term = e
		}
	}
	if eof == nil || term == nil || !eof.ts().Before(term.ts()) {
		t.Errorf("%s: want stdin EOF (the server exits) then SIGTERM in its stderr, got %q", name, lines)
		return
	}
	total := exited.ts().Sub(eof.ts())
	t.Logf("%s: stdin EOF, SIGTERM %v later, exit %v after EOF", name,
		term.ts().Sub(eof.ts()).Round(time.Millisecond), total.Round(time.Millisecond))
	if limit := lcStdinGrace + lcKillGrace + lcStopSlack; total > limit {
		t.Errorf("%s: the process exited %v after its stdin closed, want at most %v", name, total, limit)
	}
}

// TestStdioUpstreamStopIsPrompt removes a server from the config, then stops
// Caddy with SIGTERM, each time with a server that ignores both stdin EOF and
// SIGTERM and has a grandchild that ignores SIGTERM: the whole process group
// is gone within the documented grace (300ms after stdin closes, SIGTERM;
// 2s later, SIGKILL).
func TestStdioUpstreamStopIsPrompt(t *testing.T) {
	bin := peers.GoConformanceServer(t)
	stubborn := lcStubbornScript(t, t.TempDir(), bin)
	s := newSite(t).handle(gateway(
		stdioServer("removed", stubborn),
		stdioServer("kept", stubborn),
	))
	p := s.start(t)
	removedPG, removedChild := lcStubbornStarted(t, s, p, "removed")
	keptPG, keptChild := lcStubbornStarted(t, s, p, "kept")
	limit := lcStdinGrace + lcKillGrace + lcStopSlack

	t.Run("removed by a reload", func(t *testing.T) {
		s.handle(gateway(stdioServer("kept", stubborn)))
		start := time.Now()
		if err := p.load(s.json(t)); err != nil {
			t.Fatal(err)
		}
		loaded := time.Since(start)
		took := lcWaitGroupGone(t, removedPG, start, limit, "removed server")
		t.Logf("reload took %v; the removed server's process group was gone %v after the reload began", loaded.Round(time.Millisecond), took.Round(time.Millisecond))
		if lcPIDAlive(removedChild) {
			t.Errorf("grandchild %d of the removed server is alive", removedChild)
		}
		lcCheckStopSequence(t, p, "removed", removedPG)
		if !lcGroupAlive(keptPG) || !lcPIDAlive(keptChild) {
			t.Errorf("the kept server's process group %d died with the reload", keptPG)
		}
	})

	t.Run("caddy stopped by SIGTERM", func(t *testing.T) {
		start := time.Now()
		if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		took := lcWaitGroupGone(t, keptPG, start, limit, "server of a stopped caddy")
		if lcPIDAlive(keptChild) {
			t.Errorf("grandchild %d of the server outlived the stop", keptChild)
		}
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatal("caddy did not exit within 30s of SIGTERM")
		}
		// A -race binary sleeps 1s at exit (GORACE atexit_sleep_ms).
		t.Logf("the server's process group was gone %v after SIGTERM; caddy exited %v after SIGTERM",
			took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		lcCheckStopSequence(t, p, "kept", keptPG)
	})
}

// TestReloadKeepsOrReplacesStdioUpstream reloads Caddy twice: with the same
// config, which keeps every process and client session; then with a new
// argument for one server, which stops its old process and starts a new one,
// while the other server keeps its process and sessions.
func TestReloadKeepsOrReplacesStdioUpstream(t *testing.T) {
	bin := peers.GoConformanceServer(t)
	// The wrapper ignores its arguments: they only make the config differ.
	wrapper := lcScript(t, t.TempDir(), "wrapper.sh", "exec "+lcQuote(bin)+"\n")
	s := newSite(t).handle(gateway(
		stdioServer("keep", bin),
		stdioServer("change", wrapper, "v1"),
	))
	p := s.start(t)

	csKeep := connect(t, s.url("/servers/keep/mcp"), h2cClient(), nil)
	csChange := connect(t, s.url("/servers/change/mcp"), h2cClient(), nil)
	lcCallText(t, csKeep, "test_simple_text")
	lcCallText(t, csChange, "test_simple_text")
	keepPIDs, changePIDs := lcStartedPIDs(p, "keep"), lcStartedPIDs(p, "change")
	if len(keepPIDs) != 1 || len(changePIDs) != 1 {
		t.Fatalf("want one process per server, got keep %v, change %v", keepPIDs, changePIDs)
	}
	keepPID, changePID := keepPIDs[0], changePIDs[0]
	lcKillGroupAtEnd(t, keepPID)
	lcKillGroupAtEnd(t, changePID)

	t.Run("same config", func(t *testing.T) {
		start := time.Now()
		if err := p.load(s.json(t)); err != nil {
			t.Fatal(err)
		}
		t.Logf("reload with the same config took %v", time.Since(start).Round(time.Millisecond))
		lcCallText(t, csKeep, "test_simple_text")
		lcCallText(t, csChange, "test_simple_text")
		if got := lcStartedPIDs(p, "keep"); !slices.Equal(got, []int{keepPID}) {
			t.Errorf("keep: processes started %v, want only %d", got, keepPID)
		}
		if got := lcStartedPIDs(p, "change"); !slices.Equal(got, []int{changePID}) {
			t.Errorf("change: processes started %v, want only %d", got, changePID)
		}
		if !lcPIDAlive(keepPID) || !lcPIDAlive(changePID) {
			t.Errorf("a process died in a reload that kept its config: keep %d alive %v, change %d alive %v",
				keepPID, lcPIDAlive(keepPID), changePID, lcPIDAlive(changePID))
		}
		if n := len(lcEntries(p, lcMsg("upstream process exited", ""))); n != 0 {
			t.Errorf("%d upstream processes exited in a reload that kept every config", n)
		}
	})

	t.Run("changed args", func(t *testing.T) {
		s.handle(gateway(
			stdioServer("keep", bin),
			stdioServer("change", wrapper, "v2"),
		))
		start := time.Now()
		if err := p.load(s.json(t)); err != nil {
			t.Fatal(err)
		}
		t.Logf("reload with changed args took %v", time.Since(start).Round(time.Millisecond))
		lcWaitGroupGone(t, changePID, start, lcStdinGrace+lcKillGrace+lcStopSlack, "the changed server's old process")
		lcWaitEntry(t, p, 5*time.Second, "the old process's exit", func(e lcEntry) bool {
			return e.str("msg") == "upstream process exited" && e.num("pid") == changePID
		})

		cs := connect(t, s.url("/servers/change/mcp"), h2cClient(), nil)
		lcCallText(t, cs, "test_simple_text")
		started := lcEntries(p, lcMsg("upstream process started", "change"))
		if len(started) != 2 {
			t.Fatalf("change: want 2 processes started (v1, v2), got %v", started)
		}
		newPID := started[1].num("pid")
		lcKillGroupAtEnd(t, newPID)
		if newPID == changePID || !lcPIDAlive(newPID) {
			t.Errorf("change: new process %d (old %d) is not a new live process", newPID, changePID)
		}
		if args, _ := started[1]["args"].([]any); len(args) != 1 || args[0] != "v2" {
			t.Errorf("change: new process started with args %v, want [v2]", started[1]["args"])
		}

		// The other server is untouched, its client session too.
		lcCallText(t, csKeep, "test_simple_text")
		if got := lcStartedPIDs(p, "keep"); !slices.Equal(got, []int{keepPID}) || !lcPIDAlive(keepPID) {
			t.Errorf("keep: processes started %v (want only %d), alive %v", got, keepPID, lcPIDAlive(keepPID))
		}
	})
}

// TestContainerUpstreamThroughStandInDocker runs a container server through
// caddymcp/testdata/docker, a stand-in for the docker CLI (no Docker engine
// runs on these machines): it records its argv and execs a stdio server in
// place of the image. The tools are listed and called through the gateway;
// docker gets the hardening flags and "-e TOKEN" with the secret's value in
// its environment only, never on its command line, and the value reaches
// the process the image stands for.
func TestContainerUpstreamThroughStandInDocker(t *testing.T) {
	bin := peers.GoConformanceServer(t)
	docker, err := filepath.Abs(filepath.Join(peers.RepoRoot(t), "caddymcp", "testdata", "docker"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	argvLog := filepath.Join(dir, "docker-argv.log")
	tokenOut := filepath.Join(dir, "token")
	// What the image would run: note the TOKEN it got, then serve.
	image := lcScript(t, dir, "image.sh", `printf %s "$TOKEN" >"$TOKEN_OUT"
exec `+lcQuote(bin)+"\n")
	const secret = "s3cr3t-value-for-the-container"

	s := newSite(t).handle(gateway(map[string]any{
		"name": "boxed",
		"container": map[string]any{
			"image":   "example/conformance:1",
			"runtime": docker,
			"env":     map[string]any{"TOKEN": "{env.SECRET_FOR_TEST}"},
		},
	}))
	p := startCaddy(t, s.json(t), "",
		"SECRET_FOR_TEST="+secret,
		"FAKE_DOCKER_EXEC="+image,
		"FAKE_DOCKER_LOG="+argvLog,
		"TOKEN_OUT="+tokenOut,
	)
	p.admin = "http://" + s.admin
	waitHTTP(t, p, p.admin+"/config/")
	waitHTTP(t, p, s.url("/"))

	for _, path := range []string{"/servers/boxed/mcp", "/mcp"} {
		prefix := ""
		if path == "/mcp" {
			prefix = "boxed__"
		}
		cs := connect(t, s.url(path), h1Client(), nil)
		if names := toolNames(t, cs); !slices.Contains(names, prefix+"test_simple_text") {
			t.Errorf("%s: tools/list lacks %s: %v", path, prefix+"test_simple_text", names)
		}
		if got := lcCallText(t, cs, prefix+"test_simple_text"); !strings.Contains(got, "simple text") {
			t.Errorf("%s: %stest_simple_text returned %q", path, prefix, got)
		}
	}
	if pids := lcStartedPIDs(p, "boxed"); len(pids) != 1 {
		t.Errorf("want one docker process for both endpoints, got pids %v", pids)
	} else {
		lcKillGroupAtEnd(t, pids[0])
	}

	raw, err := os.ReadFile(argvLog)
	if err != nil {
		t.Fatalf("the stand-in docker left no argv log: %v", err)
	}
	argv, _, _ := strings.Cut(string(raw), "\n--\n") // the first invocation
	args := strings.Split(argv, "\n")
	t.Logf("docker argv: %q", args)
	if len(args) < 4 || !slices.Equal(args[:4], []string{"run", "-i", "--rm", "--init"}) {
		t.Errorf("docker argv does not begin with run -i --rm --init: %q", args)
	}
	hasPair := func(flag, value string) bool {
		for i := 0; i+1 < len(args); i++ {
			if args[i] == flag && (value == "" || args[i+1] == value) {
				return true
			}
		}
		return false
	}
	for _, want := range [][2]string{
		{"--security-opt", "no-new-privileges"},
		{"--cap-drop", "ALL"},
		{"--network", "none"},
		{"--cpus", ""},
		{"--memory", ""},
		{"--pids-limit", ""},
		{"-e", "TOKEN"},
	} {
		if !hasPair(want[0], want[1]) {
			t.Errorf("docker argv lacks %s %s: %q", want[0], want[1], args)
		}
	}
	if i := slices.Index(args, "example/conformance:1"); i < 0 || i < slices.Index(args, "TOKEN") {
		t.Errorf("image missing or not after the options: %q", args)
	}
	if strings.Contains(string(raw), secret) {
		t.Errorf("the secret's value is on docker's command line: %q", raw)
	}
	if strings.Contains(p.logs(), secret) {
		t.Errorf("the secret's value is in Caddy's log")
	}
	got, err := os.ReadFile(tokenOut)
	if err != nil {
		t.Fatalf("the image stand-in did not write TOKEN: %v", err)
	}
	if string(got) != secret {
		t.Errorf("TOKEN inside the container = %q, want the value of SECRET_FOR_TEST", got)
	}
}

// lcProxy is a reverse proxy in the test process, in front of a remote MCP
// server, that records what the gateway sends upstream.
type lcProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	log []lcProxied
}

// lcProxied is one request the proxy saw.
type lcProxied struct {
	method, auth, session string
	status                int
}

func lcStartProxy(t *testing.T, target string) *lcProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	x := &lcProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) },
		ModifyResponse: func(resp *http.Response) error {
			x.record(resp.Request, resp.StatusCode)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			x.record(r, http.StatusBadGateway)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	x.srv = httptest.NewServer(rp) // on 127.0.0.1
	t.Cleanup(x.srv.Close)
	return x
}

func (x *lcProxy) record(r *http.Request, status int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.log = append(x.log, lcProxied{r.Method, r.Header.Get("Authorization"), r.Header.Get("Mcp-Session-Id"), status})
}

func (x *lcProxy) seen() []lcProxied {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.log)
}

// lcStartConformanceAt runs the go-sdk conformance server in stateful
// Streamable HTTP mode at addr and returns a func that kills it. It is also
// killed when the test ends.
func lcStartConformanceAt(t *testing.T, bin, addr string) (stop func()) {
	t.Helper()
	cmd := exec.Command(bin, "-http", addr, "-stateless=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		})
	}
	t.Cleanup(stop)
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("conformance server at %s exited: %v", addr, cmd.ProcessState)
		default:
		}
		if resp, err := client.Get("http://" + addr + "/mcp"); err == nil {
			resp.Body.Close()
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("conformance server at %s did not answer within 30s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lcWithAuth adds the client's own Authorization header to every request.
type lcWithAuth struct {
	base  http.RoundTripper
	token string
}

func (a lcWithAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+a.token)
	return a.base.RoundTrip(r)
}

// TestRemoteUpstreamHeadersAndLostSession puts a recording reverse proxy in
// front of the go-sdk conformance server over Streamable HTTP. The
// configured header, a placeholder expanded from Caddy's environment,
// reaches the upstream, and the client's own Authorization header does not.
// Then the upstream server restarts on the same port, forgetting its
// sessions: the next call through the same client session succeeds.
func TestRemoteUpstreamHeadersAndLostSession(t *testing.T) {
	bin := peers.GoConformanceServer(t)
	addr := freeAddr(t)
	stop := lcStartConformanceAt(t, bin, addr)
	proxy := lcStartProxy(t, "http://"+addr)

	const upstreamToken = "upstream-token-4f7a"
	const clientToken = "client-own-token-9c2e"
	s := newSite(t).handle(gateway(map[string]any{
		"name": "remote",
		"remote": map[string]any{
			"url":     proxy.srv.URL + "/mcp",
			"headers": map[string]any{"Authorization": "Bearer {env.UPSTREAM_TOKEN}"},
		},
	}))
	p := startCaddy(t, s.json(t), "", "UPSTREAM_TOKEN="+upstreamToken)
	p.admin = "http://" + s.admin
	waitHTTP(t, p, p.admin+"/config/")
	waitHTTP(t, p, s.url("/"))

	client := &http.Client{Transport: lcWithAuth{base: &http.Transport{}, token: clientToken}}
	cs := connect(t, s.url("/servers/remote/mcp"), client, nil)
	sessionID := cs.ID()

	t.Run("headers", func(t *testing.T) {
		if got := lcCallText(t, cs, "test_simple_text"); !strings.Contains(got, "simple text") {
			t.Fatalf("test_simple_text returned %q", got)
		}
		seen := proxy.seen()
		if len(seen) == 0 {
			t.Fatal("the proxy saw no request")
		}
		for _, r := range seen {
			if r.auth != "Bearer "+upstreamToken {
				t.Errorf("upstream %s request carried Authorization %q, want the configured %q", r.method, r.auth, "Bearer "+upstreamToken)
			}
		}
		t.Logf("%d upstream requests, all with the configured Authorization", len(seen))
	})

	// Each restart is one chance for the gateway to get the reconnect
	// wrong; a few of them make a wrong answer likely to show.
	t.Run("lost session", func(t *testing.T) {
		const rounds = 8
		for round := 1; round <= rounds; round++ {
			before := proxy.seen()
			oldSession := ""
			for _, r := range before {
				if r.session != "" {
					oldSession = r.session
				}
			}
			if oldSession == "" {
				t.Fatal("no upstream session id seen")
			}
			stop()
			stop = lcStartConformanceAt(t, bin, addr)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"})
			cancel()
			if err != nil {
				t.Fatalf("restart %d: the first call after the upstream restarted failed: %v", round, err)
			}
			if got := text(res); !strings.Contains(got, "simple text") {
				t.Errorf("restart %d: test_simple_text returned %q", round, got)
			}
			if cs.ID() != sessionID {
				t.Errorf("restart %d: client session changed from %q to %q", round, sessionID, cs.ID())
			}
			after := proxy.seen()[len(before):]
			var refused bool
			var newSession string
			for _, r := range after {
				if r.session == oldSession && r.status == http.StatusNotFound {
					refused = true
				}
				if r.session != "" && r.session != oldSession {
					newSession = r.session
				}
				if r.auth != "Bearer "+upstreamToken {
					t.Errorf("restart %d: upstream %s request carried Authorization %q", round, r.method, r.auth)
				}
			}
			if !refused || newSession == "" {
				t.Errorf("restart %d: want the old upstream session %q refused (404) and a new one made; got refused=%v new=%q: %+v",
					round, oldSession, refused, newSession, after)
			}
		}
		if n := len(lcEntries(p, lcMsg("upstream connected", "remote"))); n != rounds+1 {
			t.Errorf("want %d upstream connects (first, then one per restart), got %d", rounds+1, n)
		}
	})
}

// TestAggregateServesDespiteDeadUpstream aggregates a working stdio server
// and a remote URL where nothing listens: the aggregate lists and calls the
// working server's tools, and the dead server's own endpoint refuses
// initialize with a JSON-RPC error that names it and the cause.
func TestAggregateServesDespiteDeadUpstream(t *testing.T) {
	bin := peers.GoConformanceServer(t)
	dead := "http://" + freeAddr(t) + "/mcp" // nothing listens there
	s := newSite(t).handle(gateway(
		stdioServer("good", bin),
		remoteServer("dead", dead),
	))
	p := s.start(t)

	cs := connect(t, s.url("/mcp"), h2cClient(), nil)
	t.Run("aggregate serves the live server", func(t *testing.T) {
		names := toolNames(t, cs)
		if !slices.Contains(names, "good__test_simple_text") {
			t.Errorf("aggregate tools/list lacks good__test_simple_text: %v", names)
		}
		for _, n := range names {
			if strings.HasPrefix(n, "dead__") {
				t.Errorf("aggregate lists %q from the dead server", n)
			}
		}
		if got := lcCallText(t, cs, "good__test_simple_text"); !strings.Contains(got, "simple text") {
			t.Errorf("good__test_simple_text returned %q", got)
		}
		lcWaitEntry(t, p, 10*time.Second, "the dead server's failure", lcMsg("upstream unavailable", "dead"))
	})

	t.Run("dead server's endpoint names it", func(t *testing.T) {
		_, err := lcTryConnect(s.url("/servers/dead/mcp"), h1Client())
		t.Logf("raw error: %v", err)
		msg := lcRPCError(t, err, `"dead"`, "connection refused")
		t.Logf("initialize of the dead server's endpoint: %s", msg)
	})

	t.Run("live server still served", func(t *testing.T) {
		if got := lcCallText(t, cs, "good__test_simple_text"); !strings.Contains(got, "simple text") {
			t.Errorf("good__test_simple_text after the dead server's failure returned %q", got)
		}
	})
}
