// Command bench measures the MCP gateway against plain Caddy reverse_proxy
// and a direct connection, all to the same upstream MCP server, in one run:
// tools/call throughput, latency (p50, p99) and CPU time per call at several
// numbers of concurrent client sessions, and the memory an idle client
// session costs Caddy. It prints markdown tables ready for the README.
//
//	go run ./bench                         # the default run, about 3 minutes
//	go run ./bench -duration 5s -rounds 3  # longer, steadier
//	go run ./bench -proto h1,h2c           # the client hop over h2c as well
//	go run ./bench -upstream everything    # the go-sdk conformance server as the upstream
//
// Six paths reach the same upstream: direct; through Caddy's reverse_proxy;
// through the gateway's one-server endpoint (/servers/up/mcp, the upstream a
// remote server); through its aggregate endpoint (/mcp); through the
// one-server endpoint of a gateway that authenticates (an API key) and
// authorizes (a policy) each request (/auth/servers/up/mcp); and of one
// with two interceptors, call_log and secret_scan (/intercept/servers/up/mcp).
// Caddy is built from
// ./cmd/caddy without the race detector and runs as a real process with one
// config holding both the reverse_proxy route and the gateway, logging at
// WARN. The upstream is, by default, a tiny go-sdk server of the bench's own
// (one raw `echo` tool, Streamable HTTP with sessions) run as a separate
// process; -upstream everything uses the go-sdk conformance everything-server
// (-stateless=false) and its test_simple_text tool instead.
//
// Clients are go-sdk clients over Streamable HTTP with sessions (protocol
// 2025-11-25 by default), each with its own HTTP client (HTTP/1.1 keep-alive,
// or h2c), the standalone GET stream open as the SDK does by default. Each
// session calls the tool in a closed loop. Every cell (path × protocol ×
// sessions) opens its sessions, warms up, then measures for a fixed time;
// rounds repeat all cells with the order of paths rotated, and results pool
// across rounds. CPU time per call is each process's utime+stime delta over
// the measured window (/proc/<pid>/stat) divided by the calls completed.
//
// Idle-session memory: 2,000 sessions (initialize + initialized, then idle)
// on the one-server endpoint, with and without the standalone GET stream,
// and on reverse_proxy for comparison; Caddy's go_memstats_heap_inuse_bytes
// and stack_inuse_bytes from its admin /metrics, after a GC forced through
// its admin /debug/pprof/heap?gc=1, and its RSS.
//
// A CPU profile of Caddy is taken through its admin /debug/pprof/profile
// during an extra, unreported one-server cell at the largest session count,
// and its top cumulative entries in caddymcp and the go-sdk are printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

type config struct {
	duration     time.Duration
	warmup       time.Duration
	settle       time.Duration
	rounds       int
	sessions     []int
	protos       []string
	variants     []string
	upstream     string
	payload      int
	protocol     string
	idleSessions int
	profile      []string
	profileDur   time.Duration
	caddyBin     string
	out          string
	rpIdle       int
}

func main() {
	maybeServeUpstream()

	var c config
	var sessions, protos, variants, profile string
	flag.DurationVar(&c.duration, "duration", 1500*time.Millisecond, "measured time per path and round")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "warm-up of each path after its sessions open")
	flag.DurationVar(&c.settle, "settle", 250*time.Millisecond, "unmeasured calls at the start of every slice")
	flag.IntVar(&c.rounds, "rounds", 4, "rounds: the paths take turns, one slice each per round, order rotated each round")
	flag.StringVar(&sessions, "sessions", "1,16,64", "concurrent client sessions, comma-separated")
	flag.StringVar(&protos, "proto", "h1", "client hop protocols: h1 (HTTP/1.1 keep-alive), h2c, or both comma-separated")
	flag.StringVar(&variants, "paths", strings.Join(allVariants, ","), "paths to measure")
	flag.StringVar(&c.upstream, "upstream", "echo", "upstream: echo (the bench's own go-sdk server) or everything (go-sdk conformance everything-server)")
	flag.IntVar(&c.payload, "payload", 16, "bytes of text the echo tool gets and returns")
	flag.StringVar(&c.protocol, "protocol", "2025-11-25", "MCP protocol version the clients ask for")
	flag.IntVar(&c.idleSessions, "idle-sessions", 2000, "idle sessions for the memory measurement (0 skips it)")
	flag.StringVar(&profile, "profile", oneServer, "paths to CPU-profile Caddy on, at the largest session count (empty: none)")
	flag.DurationVar(&c.profileDur, "profile-duration", 5*time.Second, "length of each profile")
	flag.StringVar(&c.caddyBin, "caddy", "", "a prebuilt Caddy binary (default: build ./cmd/caddy without -race)")
	flag.StringVar(&c.out, "out", filepath.Join(os.TempDir(), "caddy-mcp-bench"), "directory for Caddy's CPU and heap profiles")
	flag.IntVar(&c.rpIdle, "rp-idle-conns", 256, "reverse_proxy keep_alive max_idle_conns_per_host (Caddy's default is 32; the gateway's upstream pool keeps 256)")
	flag.Parse()

	var err error
	if c.sessions, err = benchkit.ParseInts(sessions); err != nil {
		fatalf("-sessions: %v", err)
	}
	c.protos = benchkit.SplitList(protos)
	for _, p := range c.protos {
		if p != "h1" && p != "h2c" {
			fatalf("-proto: %q is neither h1 nor h2c", p)
		}
	}
	c.variants = benchkit.SplitList(variants)
	for _, v := range c.variants {
		if !slices.Contains(allVariants, v) {
			fatalf("-paths: unknown path %q (have %s)", v, strings.Join(allVariants, ", "))
		}
	}
	c.profile = benchkit.SplitList(profile)
	if c.rounds < 1 || c.duration <= 0 {
		fatalf("-rounds and -duration must be positive")
	}

	benchkit.Main("bench", func(ctx context.Context) error { return run(ctx, c, os.Stdout, os.Stderr) })
}

func fatalf(format string, args ...any) { benchkit.Fatalf("bench", format, args...) }

// setup starts the upstream and Caddy; the returned func stops both and
// removes the work directory.
func setup(c config, logw io.Writer) (*env, func(), error) {
	if err := benchkit.RaiseFileLimit(); err != nil {
		return nil, nil, fmt.Errorf("raising the open-file limit: %w", err)
	}
	root, err := benchkit.RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "caddy-mcp-bench-work-")
	if err != nil {
		return nil, nil, err
	}
	var up *upstreamProc
	var caddy *benchkit.Caddy
	cleanup := func() {
		if caddy != nil {
			caddy.Stop()
		}
		if up != nil {
			up.Stop()
		}
		_ = os.RemoveAll(work)
	}
	fail := func(err error) (*env, func(), error) { cleanup(); return nil, nil, err }

	bin := c.caddyBin
	if bin == "" {
		if bin, err = benchkit.BuildCaddy(root, work, logw); err != nil {
			return fail(err)
		}
	}
	switch c.upstream {
	case "echo":
		up, err = startEchoUpstream(c.payload)
	case "everything":
		fmt.Fprintln(logw, "building the go-sdk everything-server...")
		up, err = startEverythingUpstream(root, work)
	default:
		err = fmt.Errorf("-upstream %q: want echo or everything", c.upstream)
	}
	if err != nil {
		return fail(err)
	}
	if caddy, err = startCaddy(bin, work, up.url, c.rpIdle); err != nil {
		return fail(err)
	}
	return newEnv(up, caddy, c.protocol), cleanup, nil
}

func run(ctx context.Context, c config, w, logw io.Writer) error {
	began := time.Now()
	defer func() { fmt.Fprintf(logw, "bench: %s in all\n", time.Since(began).Round(time.Second)) }()
	e, cleanup, err := setup(c, logw)
	if err != nil {
		return err
	}
	defer cleanup()
	for _, p := range c.protos {
		if p == "h2c" && !e.up.h2c && slices.Contains(c.variants, direct) {
			return fmt.Errorf("the %s upstream does not serve h2c: leave out the direct path (-paths) or h2c", c.upstream)
		}
	}

	// Measure. For each session count and client protocol, sessions are
	// opened on every path at once and kept; the paths then take turns, one
	// slice each per round, the order rotated every round, so that slow
	// drift of the machine (others' jobs, thermal, GC of a long-lived
	// process) falls on all paths alike. Results pool across rounds.
	type key struct {
		variant, proto string
		sessions       int
	}
	rounds := map[key][]*cellResult{}
	pooled := map[key]*cellResult{}
	var profiles []profileResult
	maxN := slices.Max(c.sessions)
	for si, n := range c.sessions {
		for _, proto := range c.protos {
			if err := func() error {
				open := map[string]*pathSessions{}
				defer func() {
					for _, p := range open {
						p.close()
					}
				}()
				fmt.Fprintf(logw, "%d sessions, %s: opening %d sessions on each path and warming up...\n", n, proto, n)
				for _, v := range c.variants {
					p, err := e.openPath(ctx, e.target(v), proto, n)
					if err != nil {
						return fmt.Errorf("%s: %w", v, err)
					}
					open[v] = p
					if _, err := e.run(ctx, p, sliceOptions{duration: c.warmup}); err != nil {
						return fmt.Errorf("%s: warm-up: %w", v, err)
					}
				}
				for round := range c.rounds {
					for _, v := range rotate(c.variants, round+si) {
						r, err := e.run(ctx, open[v], sliceOptions{settle: c.settle, duration: c.duration})
						if err != nil {
							return fmt.Errorf("%s: %w", v, err)
						}
						lat := r.sortedLatencies()
						fmt.Fprintf(logw, "  round %d/%d %-13s %7.0f calls/s, p50 %s ms, p99 %s ms, %d errors, others %.2f cores\n",
							round+1, c.rounds, v, r.throughput(), fmtMs(benchkit.Percentile(lat, .5)), fmtMs(benchkit.Percentile(lat, .99)), r.errors, r.othersCores())
						k := key{v, proto, n}
						rounds[k] = append(rounds[k], r)
						if p, ok := pooled[k]; ok {
							p.merge(r)
						} else {
							cp := *r
							cp.lat = slices.Clone(r.lat)
							pooled[k] = &cp
						}
					}
				}
				// Profile Caddy at the largest session count, on extra
				// slices that are not reported in the table.
				if n != maxN || proto != c.protos[0] {
					return nil
				}
				for _, v := range c.profile {
					p := open[v]
					if p == nil || v == direct {
						return fmt.Errorf("-profile: path %q is not a measured path through Caddy", v)
					}
					if err := os.MkdirAll(c.out, 0o755); err != nil {
						return err
					}
					base := filepath.Join(c.out, fmt.Sprintf("caddy-%s-%s-%d", v, proto, n))
					path := base + ".pprof"
					fmt.Fprintf(logw, "  profiling Caddy on %s for %s ... ", v, c.profileDur)
					var perr error
					r, err := e.run(ctx, p, sliceOptions{settle: c.settle, duration: c.profileDur + time.Second,
						during: func(time.Duration) {
							perr = errors.Join(
								e.caddy.SaveAdmin(ctx, "/debug/pprof/allocs", base+"-allocs-before.pprof"),
								e.caddy.CPUProfile(ctx, c.profileDur, path),
								e.caddy.SaveAdmin(ctx, "/debug/pprof/allocs", base+"-allocs-after.pprof"))
						}})
					if err = errors.Join(err, perr); err != nil {
						return fmt.Errorf("profiling %s: %w", v, err)
					}
					fmt.Fprintf(logw, "%.0f calls/s\n", r.throughput())
					pr, err := analyzeProfile(path, base+"-allocs-before.pprof", base+"-allocs-after.pprof")
					if err != nil {
						return err
					}
					// The profile covers profileDur of the slice's window.
					pr.variant, pr.proto, pr.sessions, pr.caddyCPU = v, proto, n, perCall(r.cpu.caddy, r.calls)
					pr.calls = max(1, int(float64(r.calls)*c.profileDur.Seconds()/r.elapsed.Seconds()))
					profiles = append(profiles, pr)
				}
				return nil
			}(); err != nil {
				return fmt.Errorf("%d sessions, %s: %w\ncaddy log:\n%s", n, proto, err, e.caddy.LogTail())
			}
		}
	}

	// Idle sessions.
	var mems []*memResult
	if c.idleSessions > 0 {
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			return err
		}
		for _, proto := range c.protos {
			for _, m := range []struct {
				variant    string
				standalone bool
			}{{oneServer, true}, {oneServer, false}, {reverseProxy, true}, {reverseProxy, false}} {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fmt.Fprintf(logw, "idle sessions: %d on %s, %s, standalone GET %v ... ", c.idleSessions, m.variant, proto, m.standalone)
				r, err := e.idleMemory(ctx, m.variant, proto, m.standalone, c.idleSessions, c.out)
				if err != nil {
					fmt.Fprintln(logw, "failed")
					return fmt.Errorf("idle sessions on %s, %s: %w\ncaddy log:\n%s", m.variant, proto, err, e.caddy.LogTail())
				}
				fmt.Fprintf(logw, "heap+stack %.1f KiB/session, RSS %.1f KiB/session\n", (r.heapPer()+r.stackPer())/1024, r.rssPer()/1024)
				mems = append(mems, r)
			}
		}
	}

	// Report.
	fmt.Fprintf(w, "\n## tools/call through the gateway vs reverse_proxy\n\n")
	fmt.Fprintf(w, "Command: `%s`\n\n", benchkit.Command("./bench"))
	upDesc := "the bench's own go-sdk server (one raw `echo` tool, " + strconv.Itoa(c.payload) + "-byte text), Streamable HTTP with sessions"
	if c.upstream == "everything" {
		upDesc = "go-sdk conformance everything-server, `-stateless=false`, tool test_simple_text"
	}
	fmt.Fprintf(w, "Machine: %s. Caddy built from ./cmd/caddy without -race, log level WARN, one config with both the reverse_proxy route "+
		"(keep-alive pool %d idle conns per host) and the gateway (the upstream as its one remote server). "+
		"Upstream: %s, a separate process on loopback. Clients: go-sdk over Streamable HTTP, protocol %s, one HTTP client per session "+
		"(HTTP/1.1 keep-alive unless h2c), standalone GET stream open, each session calling in a closed loop. "+
		"Per session count, sessions stay open on all paths while the paths take turns: %s warm-up each, then %d rounds of one %s slice per path "+
		"(after %s unmeasured), path order rotated per round; results pooled over rounds. "+
		"CPU µs/call = utime+stime delta of the process over the measured slices / calls; Caddy KiB alloc/call from its go_memstats_alloc_bytes_total. "+
		"\"others\" = CPU the rest of the machine used meanwhile (cores): high values mean a noisy run.\n\n",
		benchkit.Machine(), c.rpIdle, upDesc, c.protocol,
		c.warmup, c.rounds, c.duration, c.settle)

	fmt.Fprintln(w, "| path | client hop | sessions | calls/s | p50 ms | p99 ms | errors | Caddy CPU µs/call | Caddy KiB alloc/call | upstream µs/call | client µs/call | total µs/call | others (cores) |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range c.sessions {
		for _, proto := range c.protos {
			for _, v := range c.variants {
				r := pooled[key{v, proto, n}]
				lat := r.sortedLatencies()
				fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s | %s | %d | %s | %s | %s | %s | %s | %.2f |\n",
					v, proto, n, r.throughput(), fmtMs(benchkit.Percentile(lat, .5)), fmtMs(benchkit.Percentile(lat, .99)), r.errors,
					fmtUs(perCall(r.cpu.caddy, r.calls)), fmtKiB(r.cpu.caddyAlloc, r.calls), fmtUs(perCall(r.cpu.upstream, r.calls)), fmtUs(perCall(r.cpu.client, r.calls)),
					fmtUs(perCall(r.cpu.caddy+r.cpu.upstream+r.cpu.client, r.calls)), r.othersCores())
			}
		}
	}
	var others, elapsed float64
	for _, r := range pooled {
		others += r.cpu.others().Seconds()
		elapsed += r.elapsed.Seconds()
	}
	if elapsed > 0 && others/elapsed > 0.25 {
		fmt.Fprintf(w, "\nNoise: other processes used %.2f of the machine's %d CPUs on average while this ran; absolute figures are low and ratios noisy (see the per-round ranges). CPU µs/call is the steadier figure.\n",
			others/elapsed, runtime.NumCPU())
	}
	for _, r := range pooled {
		if r.firstErr != nil {
			fmt.Fprintf(w, "\nFirst error on %s/%s/%d: %v\n", r.variant, r.proto, r.sessions, r.firstErr)
		}
	}

	ratio := func(a, b string, n int, proto string) (p50, thr string, p50v, thrv float64, ok bool) {
		ra, rb := pooled[key{a, proto, n}], pooled[key{b, proto, n}]
		if ra == nil || rb == nil {
			return "", "", 0, 0, false
		}
		p50v = float64(benchkit.Percentile(ra.sortedLatencies(), .5)) / float64(benchkit.Percentile(rb.sortedLatencies(), .5))
		thrv = ra.throughput() / rb.throughput()
		// The spread across rounds, round by round.
		var p50s, thrs []float64
		for i := range min(len(rounds[key{a, proto, n}]), len(rounds[key{b, proto, n}])) {
			xa, xb := rounds[key{a, proto, n}][i], rounds[key{b, proto, n}][i]
			p50s = append(p50s, float64(benchkit.Percentile(xa.sortedLatencies(), .5))/float64(benchkit.Percentile(xb.sortedLatencies(), .5)))
			thrs = append(thrs, xa.throughput()/xb.throughput())
		}
		return fmtRatio(p50v, p50s), fmtRatio(thrv, thrs), p50v, thrv, true
	}
	pairs := [][2]string{{oneServer, reverseProxy}, {aggregate, reverseProxy}, {reverseProxy, direct},
		{oneServerAuth, oneServer}, {oneServerIntercepted, oneServer}}
	fmt.Fprintf(w, "\nRatios (pooled; per-round range in brackets when there are several rounds):\n\n")
	fmt.Fprint(w, "| sessions | client hop |")
	var have [][2]string
	for _, p := range pairs {
		if slices.Contains(c.variants, p[0]) && slices.Contains(c.variants, p[1]) {
			have = append(have, p)
			fmt.Fprintf(w, " %s/%s p50 | %s/%s calls/s |", p[0], p[1], p[0], p[1])
		}
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---:|---|")
	for range have {
		fmt.Fprint(w, "---:|---:|")
	}
	fmt.Fprintln(w)
	for _, n := range c.sessions {
		for _, proto := range c.protos {
			fmt.Fprintf(w, "| %d | %s |", n, proto)
			for _, p := range have {
				p50, thr, _, _, _ := ratio(p[0], p[1], n, proto)
				fmt.Fprintf(w, " %s | %s |", p50, thr)
			}
			fmt.Fprintln(w)
		}
	}

	// Targets at the largest session count.
	fmt.Fprintf(w, "\nTargets at %d sessions:\n\n| target | client hop | measured | verdict |\n|---|---|---:|---|\n", maxN)
	for _, proto := range c.protos {
		for _, t := range []struct {
			path            string
			maxP50, minThrs float64
		}{{oneServer, 1.10, 0.90}, {aggregate, 1.25, 0.80}} {
			_, _, p50, thr, ok := ratio(t.path, reverseProxy, maxN, proto)
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s p50 ≤ %.2f× reverse_proxy | %s | %.2f× | %s |\n", t.path, t.maxP50, proto, p50, verdict(p50 <= t.maxP50, p50/t.maxP50-1, "over"))
			fmt.Fprintf(w, "| %s calls/s ≥ %.2f× reverse_proxy | %s | %.2f× | %s |\n", t.path, t.minThrs, proto, thr, verdict(thr >= t.minThrs, 1-thr/t.minThrs, "under"))
		}
	}

	if len(mems) > 0 {
		fmt.Fprintf(w, "\n## Idle client sessions\n\n%d sessions each (initialize + initialized, then idle), one HTTP client (keep-alive) per session. "+
			"Caddy's Go heap and stack in use (admin /metrics, after a GC forced with /debug/pprof/heap?gc=1) and RSS, delta over the same Caddy before the sessions opened "+
			"(RSS rarely shrinks after earlier phases, so its deltas can be negative; heap+stack is the figure).\n\n",
			c.idleSessions)
		fmt.Fprintln(w, "| path | client hop | standalone GET | heap KiB/session | stack KiB/session | heap+stack KiB/session | RSS KiB/session | Caddy goroutines/session | upstream RSS KiB/session | open all |")
		fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
		for _, m := range mems {
			fmt.Fprintf(w, "| %s | %s | %v | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n", m.variant, m.proto, m.standalone,
				m.heapPer()/1024, m.stackPer()/1024, (m.heapPer()+m.stackPer())/1024, m.rssPer()/1024, m.goroutinesPer(),
				float64(m.upRSS)/float64(m.sessions)/1024, m.open.Round(time.Millisecond))
		}
		fmt.Fprintf(w, "\nTarget ≤ 32 KiB per idle session through the gateway (heap+stack):\n\n")
		for _, m := range mems {
			if m.variant != oneServer {
				continue
			}
			per := (m.heapPer() + m.stackPer()) / 1024
			fmt.Fprintf(w, "- one_server, %s, standalone GET %v: %.1f KiB — %s\n", m.proto, m.standalone, per, verdict(per <= 32, per/32-1, "over"))
		}
		for _, m := range mems {
			if m.variant != oneServer {
				continue
			}
			fmt.Fprintf(w, "\nWhat %d idle one_server sessions (%s, standalone GET %v) hold in Caddy's heap: inuse_space difference, after − before, flat, per session (sampled; profiles in %s):\n\n```\n", m.sessions, m.proto, m.standalone, c.out)
			for _, l := range perUnit(m.heapTop, m.sessions, "session") {
				fmt.Fprintln(w, benchkit.Clip(l, 200))
			}
			fmt.Fprintf(w, "```\n\nCaddy's goroutines meanwhile (count, where started … where waiting):\n\n```\n")
			for _, l := range m.goroutines {
				fmt.Fprintln(w, l)
			}
			fmt.Fprint(w, "```\n")
		}
	}

	for _, p := range profiles {
		p.print(w)
	}
	return nil
}

func verdict(ok bool, by float64, word string) string {
	if ok {
		return "met"
	}
	return fmt.Sprintf("**missed** (%.0f%% %s)", by*100, word)
}

func fmtRatio(pooled float64, perRound []float64) string {
	s := fmt.Sprintf("%.2f×", pooled)
	if len(perRound) > 1 {
		s += fmt.Sprintf(" [%.2f–%.2f]", slices.Min(perRound), slices.Max(perRound))
	}
	return s
}

func fmtKiB(bytes int64, calls int) string {
	if calls == 0 {
		return "0"
	}
	return fmt.Sprintf("%.1f", float64(bytes)/float64(calls)/1024)
}

func fmtMs(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }
func fmtUs(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

func rotate(list []string, k int) []string {
	out := make([]string, len(list))
	for i := range list {
		out[i] = list[(i+k)%len(list)]
	}
	return out
}
