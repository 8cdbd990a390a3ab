package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The registry's live behaviour end to end: real Caddy processes, real
// upstream MCP servers (the go-sdk conformance server), real clients.

// upstreamTap is a conformance server behind a counting reverse proxy. The
// counts tell two upstreams apart, and an initialize reaching the server
// after the first is a new upstream session: a restarted upstream.
type upstreamTap struct {
	url          string
	inits, calls atomic.Int64
	down         atomic.Bool // answer 503, as a stopped server would fail
}

func startTap(t *testing.T) *upstreamTap {
	t.Helper()
	target, err := url.Parse(peers.StartGoConformanceHTTP(t))
	if err != nil {
		t.Fatal(err)
	}
	tap := &upstreamTap{}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tap.down.Load() {
			http.Error(w, "upstream stopped", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			switch {
			case bytes.Contains(body, []byte(`"method":"initialize"`)):
				tap.inits.Add(1)
			case bytes.Contains(body, []byte(`"method":"tools/call"`)):
				tap.calls.Add(1)
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	tap.url = srv.URL + target.Path
	return tap
}

// apiHTTP is the client for registry API calls made off the test's
// goroutine; a write may wait for a storage lock left by a killed process.
var apiHTTP = &http.Client{Timeout: 60 * time.Second}

// send is apiCall for goroutines: failures come back as errors.
func send(method, url string, body any, ifMatch string) (int, http.Header, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body) // the tests' maps always marshal
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := apiHTTP.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && err != io.EOF {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("%s %s: the answer is not JSON: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, out, nil
}

// expect sends an API request and fails the test unless it gets status.
func expect(t *testing.T, status int, method, url string, body any) map[string]any {
	t.Helper()
	got, _, out := apiCall(t, method, url, body, nil)
	if got != status {
		t.Fatalf("%s %s: %d %v, want %d", method, url, got, out, status)
	}
	return out
}

// listed returns the records as GET /api/servers lists them, by name.
func listed(t *testing.T, s *site) map[string]map[string]any {
	t.Helper()
	out := expect(t, http.StatusOK, "GET", s.url("/api/servers?limit=1000"), nil)
	recs := map[string]map[string]any{}
	for _, v := range out["servers"].([]any) {
		rec := v.(map[string]any)
		recs[rec["name"].(string)] = rec
	}
	if total, _ := out["total"].(float64); int(total) != len(recs) {
		t.Errorf("GET /api/servers: total %v, but %d servers listed", out["total"], len(recs))
	}
	return recs
}

// storedRecords reads the record files of a storage root, by name; what
// else the directory holds (an interrupted write's temporary file) comes
// back apart. A record file that is not a whole record fails the test.
func storedRecords(t *testing.T, root string) (recs map[string]map[string]any, others []string) {
	t.Helper()
	dir := filepath.Join(root, "mcp_registry", "servers")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	recs = map[string]map[string]any{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			others = append(others, e.Name())
			continue
		}
		var rec map[string]any
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			t.Errorf("record file %s is not a whole JSON record (%d bytes): %v", e.Name(), len(b), err)
			continue
		}
		if rec["schema_version"] != 1.0 || rec["name"] != name {
			t.Errorf("record file %s: schema_version %v, name %v; want 1 and %q", e.Name(), rec["schema_version"], rec["name"], name)
		}
		recs[name] = rec
	}
	return recs, others
}

// paddedHeaders pad a record to about 96 KiB (a description may hold at
// most 4,000 bytes), to widen the window of each write to storage.
func paddedHeaders(seed int) map[string]string {
	h := map[string]string{}
	for i := range 12 {
		h[fmt.Sprintf("X-Pad-%02d", i)] = strings.Repeat(string(rune('a'+(seed+i)%26)), 8000)
	}
	return h
}

// checkServesStored fails the test unless the registry lists exactly the
// records in its storage; it returns the storage's other files.
func checkServesStored(t *testing.T, s *site) (others []string) {
	t.Helper()
	recs, others := storedRecords(t, filepath.Join(s.dir, "storage"))
	got := listed(t, s)
	if len(got) != len(recs) {
		t.Errorf("%d servers listed, %d record files (other files: %v)", len(got), len(recs), others)
	}
	for name, rec := range recs {
		if got[name] == nil || got[name]["revision"] != rec["revision"] {
			t.Errorf("record file %s (revision %v) is listed as %v", name, rec["revision"], got[name])
		}
	}
	return others
}

// callOnce opens an MCP session on url, calls test_simple_text and closes it.
func callOnce(url string, client *http.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := connectPinned(ctx, url, client, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	return simpleText(cs)
}

// pingStatus is the status of a sessionless ping to an MCP endpoint (0 if
// none came): 404 when no server is routed there.
func pingStatus(url string) int {
	got, _, _, _ := send("POST", url, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}, "")
	return got
}

// within polls cond from since until it holds, fails the test if that took
// longer than limit, and returns the time it took.
func within(t *testing.T, since time.Time, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(since) > limit+10*time.Second {
			t.Fatalf("%s: still not after %v", what, time.Since(since).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(since)
	if took > limit {
		t.Errorf("%s after %v, want within %v", what, took.Round(time.Millisecond), limit)
	}
	return took
}

// pinned opens an MCP session with an Mcp-Session-Id on url, closed when
// the test ends.
func pinned(t *testing.T, url string, client *http.Client) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := connectPinned(ctx, url, client, nil)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	if cs.ID() == "" {
		t.Fatalf("the session on %s has no Mcp-Session-Id: the test needs one", url)
	}
	return cs
}

// caller is a session that calls a tool of the conformance server.
type caller struct {
	what, tool string
	cs         *mcp.ClientSession
}

// whileCalling runs action while each caller calls its tool in a loop, 10
// calls or more before action and 20 or more after; a failed call fails the
// test. It returns the number of calls that succeeded.
func whileCalling(t *testing.T, action func(), callers ...caller) (calls int64) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	ok := make([]atomic.Int64, len(callers))
	var failed atomic.Int64
	var firstErr atomic.Pointer[string]
	for i, c := range callers {
		wg.Go(func() {
			for ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				res, err := c.cs.CallTool(cctx, &mcp.CallToolParams{Name: c.tool})
				cancel()
				switch {
				case ctx.Err() != nil: // stopped mid-call
				case err == nil && !res.IsError && strings.Contains(text(res), "simple text"):
					ok[i].Add(1)
				default:
					if err == nil {
						err = fmt.Errorf("result %q (isError %v)", text(res), res.IsError)
					}
					msg := fmt.Sprintf("%s: %v", c.what, err)
					firstErr.CompareAndSwap(nil, &msg)
					failed.Add(1)
				}
			}
		})
	}
	// more waits until each caller has made n calls more than it had.
	more := func(n int64) {
		t.Helper()
		for i := range callers {
			want := ok[i].Load() + n
			for deadline := time.Now().Add(60 * time.Second); ok[i].Load() < want && failed.Load() == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: no %d calls within 60s", callers[i].what, n)
				}
			}
		}
	}
	more(10)
	action()
	more(20)
	stop()
	wg.Wait()
	for i := range ok {
		calls += ok[i].Load()
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d calls failed; first: %s", n, n+calls, *firstErr.Load())
	}
	return calls
}

// TestRegistryLivePutSwitchesUpstream replaces server x's upstream (A → B)
// with PUT while sessions call server y, on its own endpoint and on the
// aggregate, in a loop: no call of y fails, y's session and upstream are the
// same before and after, and x reaches B only.
func TestRegistryLivePutSwitchesUpstream(t *testing.T) {
	a, b, c := startTap(t), startTap(t), startTap(t)
	s := registrySite(t, nil)
	s.start(t)
	servers := s.url("/api/servers")
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "x", "url": a.url})
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "y", "url": c.url})
	if err := callOnce(s.url("/servers/x/mcp"), h1Client()); err != nil {
		t.Fatalf("calling x before the PUT: %v", err)
	}
	if a.calls.Load() != 1 || b.calls.Load() != 0 {
		t.Fatalf("before the PUT: calls at A %d, at B %d; want 1 and 0", a.calls.Load(), b.calls.Load())
	}

	yURL := s.url("/servers/y/mcp")
	ys, agg := pinned(t, yURL, h1Client()), pinned(t, s.url("/mcp"), h2cClient())
	if err := simpleText(ys); err != nil {
		t.Fatal(err)
	}
	cInits, aCalls := c.inits.Load(), a.calls.Load()
	calls := whileCalling(t, func() {
		put := expect(t, http.StatusOK, "PUT", servers+"/x", map[string]any{"name": "x", "url": b.url})
		if put["url"] != b.url || put["revision"] != 2.0 {
			t.Errorf("PUT x: url %v, revision %v; want %s and 2", put["url"], put["revision"], b.url)
		}
	}, caller{"y's endpoint over HTTP/1.1", "test_simple_text", ys}, caller{"y on the aggregate over h2c", "y__test_simple_text", agg})
	t.Logf("%d calls of y across the PUT", calls)

	// A is stopped: x's new session and the aggregate reach B.
	a.down.Store(true)
	bCalls := b.calls.Load()
	if err := callOnce(s.url("/servers/x/mcp"), h1Client()); err != nil {
		t.Errorf("calling x after the PUT, with A stopped: %v", err)
	}
	if res, err := agg.CallTool(context.Background(), &mcp.CallToolParams{Name: "x__test_simple_text"}); err != nil || res.IsError {
		t.Errorf("calling x__test_simple_text on the aggregate after the PUT: %v %v", err, res)
	}
	if got := b.calls.Load() - bCalls; got != 2 || a.calls.Load() != aCalls {
		t.Errorf("after the PUT: %d new calls at B, %d at A; want 2 and 0", got, a.calls.Load()-aCalls)
	}

	// y: the same session goes on, on the same upstream session.
	if known, err := sessionKnown(yURL, ys.ID()); err != nil || !known {
		t.Errorf("y's session %s after the PUT: known %v, %v", ys.ID(), known, err)
	}
	if err := simpleText(ys); err != nil {
		t.Errorf("y's session after the PUT: %v", err)
	}
	if got := c.inits.Load(); got != cInits {
		t.Errorf("y's upstream was initialized %d more times across the PUT, want 0", got-cInits)
	}
}

// TestRegistryLiveRestart stops Caddy and starts a new one on the same
// storage: every record is back as it was, enabled servers are served at
// once, disabled ones are not.
func TestRegistryLiveRestart(t *testing.T) {
	up := peers.StartGoConformanceHTTP(t)
	s := registrySite(t, nil)
	p := s.start(t)
	servers := s.url("/api/servers")
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "alpha", "url": up, "title": "Alpha", "tags": []string{"team:search", "prod"}})
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "beta", "url": up})
	expect(t, http.StatusOK, "PATCH", servers+"/beta", map[string]any{"description": "first"})
	expect(t, http.StatusOK, "PATCH", servers+"/beta", map[string]any{"description": "second"})
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "gamma", "url": up, "enabled": false})
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "delta", "url": up})
	expect(t, http.StatusOK, "POST", servers+"/delta/disable", nil)
	before := listed(t, s)
	want := map[string]struct {
		revision float64
		enabled  bool
	}{"alpha": {1, true}, "beta": {3, true}, "gamma": {1, false}, "delta": {2, false}}

	p.stop() // SIGTERM, and waits until Caddy has exited
	s.start(t)

	after := listed(t, s)
	if len(after) != len(want) {
		t.Errorf("after the restart: %d servers, want %d: %v", len(after), len(want), after)
	}
	for name, w := range want {
		got := after[name]
		if got == nil {
			t.Errorf("%s is gone after the restart", name)
			continue
		}
		if got["revision"] != w.revision || got["enabled"] != w.enabled {
			t.Errorf("%s after the restart: revision %v, enabled %v; want %v and %v", name, got["revision"], got["enabled"], w.revision, w.enabled)
		}
		delete(got, "status") // observed, not stored
		delete(before[name], "status")
		if !reflect.DeepEqual(got, before[name]) {
			t.Errorf("%s after the restart:\n%v\nwas\n%v", name, got, before[name])
		}
		path := s.url("/servers/" + name + "/mcp")
		if w.enabled {
			if err := callOnce(path, h1Client()); err != nil {
				t.Errorf("calling %s right after the restart: %v", name, err)
			}
		} else if status := pingStatus(path); status != http.StatusNotFound {
			t.Errorf("disabled %s after the restart: %d, want 404", name, status)
		}
	}
	names := toolNames(t, connect(t, s.url("/mcp"), h1Client(), nil))
	for name, w := range want {
		if slices.Contains(names, name+"__test_simple_text") != w.enabled {
			t.Errorf("after the restart, %s (enabled %v) on the aggregate: %v", name, w.enabled, !w.enabled)
		}
	}
}

// TestRegistryLiveReloadKeepsServers loads a changed config through the
// admin API while sessions use a registry server: it stays routed, the
// sessions go on, and its upstream session is the same.
func TestRegistryLiveReloadKeepsServers(t *testing.T) {
	up := startTap(t)
	s := registrySite(t, nil)
	p := s.start(t)
	expect(t, http.StatusCreated, "POST", s.url("/api/servers"), map[string]any{"name": "r", "url": up.url})

	rURL := s.url("/servers/r/mcp")
	busy, idle := pinned(t, rURL, h2cClient()), pinned(t, rURL, h1Client())
	if err := simpleText(idle); err != nil {
		t.Fatal(err)
	}
	inits := up.inits.Load()
	calls := whileCalling(t, func() {
		s.routes = append([]map[string]any{{
			"match":  []map[string]any{{"path": []string{"/extra"}}},
			"handle": []map[string]any{{"handler": "static_response", "body": `{"route":"extra"}`}},
		}}, s.routes...)
		if err := p.load(s.json(t)); err != nil {
			t.Fatal(err)
		}
		// A GET: one that finds its kept-alive connection closed by the
		// old server is sent again.
		if got := expect(t, http.StatusOK, "GET", s.url("/extra"), nil); got["route"] != "extra" {
			t.Fatalf("the reloaded config's new route answered %v", got)
		}
	}, caller{"r's session over h2c", "test_simple_text", busy})
	t.Logf("%d calls of r across the reload", calls)

	for _, cs := range []*mcp.ClientSession{busy, idle} {
		if known, err := sessionKnown(rURL, cs.ID()); err != nil || !known {
			t.Errorf("session %s after the reload: known %v, %v", cs.ID(), known, err)
		}
	}
	if err := simpleText(idle); err != nil {
		t.Errorf("the idle HTTP/1.1 session after the reload: %v", err)
	}
	if got := up.inits.Load() - inits; got != 0 {
		t.Errorf("across the reload the upstream saw %d new sessions (initialize), want none", got)
	}
	if rec := expect(t, http.StatusOK, "GET", s.url("/api/servers/r"), nil); rec["revision"] != 1.0 || rec["enabled"] != true {
		t.Errorf("r after the reload: revision %v, enabled %v", rec["revision"], rec["enabled"])
	}
	if err := callOnce(rURL, h1Client()); err != nil {
		t.Errorf("a new session on r after the reload: %v", err)
	}
}

// TestRegistryLiveParallelWriters runs 8 writers of 25 writes each: on
// their own servers, and read-modify-write increments of one shared
// server's description guarded by If-Match. The registry ends exactly as
// the writes say, in its API and in its storage, and no increment is lost.
func TestRegistryLiveParallelWriters(t *testing.T) {
	const writers, cycles = 8, 5 // 5 writes a cycle
	up := peers.StartGoConformanceHTTP(t)
	s := registrySite(t, nil)
	s.start(t)
	servers := s.url("/api/servers")
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "shared", "url": up, "description": "0"})

	type state struct {
		enabled     bool
		revision    float64
		description string
	}
	var mu sync.Mutex
	want := map[string]state{}
	var retries, increments atomic.Int64
	// increment adds one to shared's description, again on each 412.
	increment := func(w int) bool {
		for {
			got, hdr, cur, err := send("GET", servers+"/shared", nil, "")
			if err != nil || got != http.StatusOK {
				t.Errorf("writer %d: GET shared: %d %v %v", w, got, cur, err)
				return false
			}
			n, _ := strconv.Atoi(cur["description"].(string))
			got, _, out, err := send("PATCH", servers+"/shared", map[string]any{"description": strconv.Itoa(n + 1)}, hdr.Get("ETag"))
			switch {
			case err == nil && got == http.StatusOK:
				increments.Add(1)
				return true
			case err == nil && got == http.StatusPreconditionFailed:
				retries.Add(1)
			default:
				t.Errorf("writer %d: PATCH shared: %d %v %v", w, got, out, err)
				return false
			}
		}
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			// do sends one write; false ends the writer.
			do := func(method, path string, body any, status int) bool {
				got, _, out, err := send(method, servers+path, body, "")
				if err != nil || got != status {
					t.Errorf("writer %d: %s %s: %d %v %v, want %d", w, method, path, got, out, err, status)
					return false
				}
				return true
			}
			for j := range cycles {
				name := fmt.Sprintf("w%d-%d", w, j)
				ok := do("POST", "", map[string]any{"name": name, "url": up, "description": "v0"}, http.StatusCreated) &&
					do("PATCH", "/"+name, map[string]any{"description": "v1"}, http.StatusOK) &&
					increment(w) &&
					do("POST", "/"+name+"/disable", nil, http.StatusOK)
				switch {
				case ok && j%2 == 1:
					ok = do("POST", "/"+name+"/enable", nil, http.StatusOK)
					mu.Lock()
					want[name] = state{true, 4, "v1"}
					mu.Unlock()
				case ok:
					ok = do("DELETE", "/"+name, nil, http.StatusNoContent)
				}
				if !ok {
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	n := increments.Load()
	want["shared"] = state{true, float64(n + 1), strconv.FormatInt(n, 10)}
	got := map[string]state{}
	for name, g := range listed(t, s) {
		got[name] = state{g["enabled"] == true, g["revision"].(float64), fmt.Sprint(g["description"])}
	}
	if !maps.Equal(got, want) {
		t.Errorf("the registry ends as\n%v\nwant\n%v", got, want)
	}
	if n != writers*cycles {
		t.Errorf("%d increments of shared succeeded, want %d", n, writers*cycles)
	}
	if others := checkServesStored(t, s); len(others) > 0 {
		t.Errorf("the storage holds files that are not records: %v", others)
	}
	t.Logf("%d writes, %d increments of shared, %d If-Match retries", writers*cycles*5, n, retries.Load())
}

// TestRegistryLiveKill9DuringWrites kills Caddy with SIGKILL three times
// while writers POST and PUT bulky records: every record file is whole
// each time, and a new Caddy on the storage serves every one of them.
func TestRegistryLiveKill9DuringWrites(t *testing.T) {
	up := peers.StartGoConformanceHTTP(t)
	s := registrySite(t, map[string]any{"probe": map[string]any{"disabled": true}})
	servers := s.url("/api/servers")
	for round, killAfter := range []int64{3, 11, 26} {
		p := s.start(t)
		checkServesStored(t, s)
		var written atomic.Int64
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				for n := 0; ; n++ {
					name := fmt.Sprintf("k%d-%d-%d", round, w, n)
					rec := map[string]any{"name": name, "url": up, "description": "first", "headers": paddedHeaders(n)}
					got, _, out, err := send("POST", servers, rec, "")
					if err == nil && got == http.StatusCreated {
						written.Add(1)
						rec["description"], rec["headers"] = "second", paddedHeaders(n+1)
						if got, _, out, err = send("PUT", servers+"/"+name, rec, ""); err == nil && got == http.StatusOK {
							written.Add(1)
							continue
						}
					}
					if err == nil {
						t.Errorf("writing %s: %d %v", name, got, out)
					}
					return // killed
				}
			})
		}
		for deadline := time.Now().Add(90 * time.Second); written.Load() < killAfter; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) || t.Failed() {
				t.Fatalf("round %d: %d writes, waiting for %d", round, written.Load(), killAfter)
			}
		}
		if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		wg.Wait()
		recs, others := storedRecords(t, filepath.Join(s.dir, "storage"))
		t.Logf("round %d: killed after %d writes answered: %d record files, other files %v", round, written.Load(), len(recs), others)
	}
	s.start(t)
	checkServesStored(t, s)
	// The killed process's storage lock goes stale: writes resume.
	began := time.Now()
	expect(t, http.StatusCreated, "POST", servers, map[string]any{"name": "after", "url": up})
	t.Logf("the first write after the last kill took %v", time.Since(began).Round(time.Millisecond))
	checkServesStored(t, s)
}

// TestRegistryLiveSharedStorage runs two Caddy processes on one storage:
// each sees the other's writes, in its API and in its routes, within 2
// seconds (the default poll interval is 1s).
func TestRegistryLiveSharedStorage(t *testing.T) {
	const limit = 2 * time.Second
	up := peers.StartGoConformanceHTTP(t)
	a, b := registrySite(t, nil), registrySite(t, nil)
	b.dir = a.dir // the storage root
	a.start(t)
	b.start(t)
	client := h1Client()
	status := func(s *site, path string) int { got, _, _ := apiCall(t, "GET", s.url(path), nil, nil); return got }

	expect(t, http.StatusCreated, "POST", a.url("/api/servers"), map[string]any{"name": "one", "url": up})
	wrote := time.Now()
	visible := within(t, wrote, limit, "a server registered through A, in B's API", func() bool {
		return status(b, "/api/servers/one") == http.StatusOK
	})
	routed := within(t, wrote, limit, "a server registered through A, callable through B", func() bool {
		return callOnce(b.url("/servers/one/mcp"), client) == nil
	})

	expect(t, http.StatusNoContent, "DELETE", b.url("/api/servers/one"), nil)
	deleted := within(t, time.Now(), limit, "a server deleted through B, gone from A's API", func() bool {
		return status(a, "/api/servers/one") == http.StatusNotFound
	})
	if got := pingStatus(a.url("/servers/one/mcp")); got != http.StatusNotFound {
		t.Errorf("a server deleted through B is still routed on A: %d", got)
	}

	expect(t, http.StatusCreated, "POST", a.url("/api/servers"), map[string]any{"name": "two", "url": up})
	within(t, time.Now(), limit, "a second server registered through A, callable through B", func() bool {
		return callOnce(b.url("/servers/two/mcp"), client) == nil
	})
	if got := pingStatus(b.url("/servers/two/mcp")); got == http.StatusNotFound {
		t.Fatal("a sessionless ping to an enabled server answers 404: the disable check below would prove nothing")
	}
	expect(t, http.StatusOK, "POST", a.url("/api/servers/two/disable"), nil)
	disabled := within(t, time.Now(), limit, "a server disabled through A, 404 on B", func() bool {
		return pingStatus(b.url("/servers/two/mcp")) == http.StatusNotFound
	})
	if rec := expect(t, http.StatusOK, "GET", b.url("/api/servers/two"), nil); rec["enabled"] != false || rec["revision"] != 2.0 {
		t.Errorf("B's view of the disabled server: enabled %v, revision %v", rec["enabled"], rec["revision"])
	}
	t.Logf("A→B: in the API after %v, callable after %v; B→A delete after %v; A→B disable after %v",
		visible.Round(time.Millisecond), routed.Round(time.Millisecond), deleted.Round(time.Millisecond), disabled.Round(time.Millisecond))
}
