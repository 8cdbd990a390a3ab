// Command registry benchmarks the mcp_registry app in one run, on
// loopback, against a real Caddy process built from ./cmd/caddy (without
// the race detector):
//
//  1. registry write → serving: POST /api/servers, then initialize on the
//     new /servers/<name>/mcp until it answers 200, with a small and a
//     large registry (and the large one again once every server's tools
//     are listed);
//  2. the same change the way plain Caddy does it: a route POSTed to the
//     admin API's /config/…/routes (a config reload), with 100 and 1,000
//     routes;
//  3. registry writes under a closed-loop tools/call load of go-sdk
//     clients, over HTTP/1.1 and h2c, on one registry server's endpoint
//     and on the aggregate: failed calls, lost sessions, calls/s;
//  4. GET /api/servers with 1,000 servers;
//  5. GET /api/search over the tools of 1,000 servers (10 each);
//  6. Caddy's heap with 10,000 servers registered, then with their
//     100,000 tools listed.
//
// It prints markdown tables ready for the README; progress goes to stderr.
//
//	go run ./bench/registry          # the full run
//	go run ./bench/registry -quick   # smaller sizes, a minute or two
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

type config struct {
	writes, warmWrites int
	small, large       int
	listed             int
	routes             []int
	loadSessions       int
	loadWrites         int
	loadWarm           time.Duration
	loadBefore         time.Duration
	loadPaths          []string
	protos             []string
	catalog            int
	listSamples        int
	searchSamples      int
	profile            bool
	profileDur         time.Duration
	idleWait           time.Duration
	caddyBin           string
	out                string
	steps              []string
	storageDir         string
}

// allSteps are the parts of a run, each with a Caddy of its own.
var allSteps = []string{"small", "plain", "catalog", "large"}

// quickDefaults are the -quick sizes, for flags not set explicitly.
var quickDefaults = map[string]string{
	"writes": "50", "warm-writes": "5", "small": "20", "large": "1000", "routes": "20,200",
	"load-sessions": "16", "load-writes": "100", "load-warm": "1s", "load-before": "1s", "catalog": "100",
	"list-samples": "100", "listed": "100", "idle-wait": "6s", "search-samples": "200", "profile": "false",
}

func main() {
	maybeServeUpstream()

	var c config
	var quick bool
	var routes, loadPaths, protos, steps string
	flag.BoolVar(&quick, "quick", false, "smaller sizes and fewer samples, for a quick run")
	flag.IntVar(&c.writes, "writes", 300, "measured write → serving samples per registry size and per route count")
	flag.IntVar(&c.warmWrites, "warm-writes", 20, "unmeasured samples before those")
	flag.IntVar(&c.small, "small", 100, "servers registered in the small registry")
	flag.IntVar(&c.large, "large", 10000, "servers registered in the large registry")
	flag.IntVar(&c.listed, "listed", 1000, "servers of the large registry whose tools (10 each) are listed for the memory figures; the whole registry's is extrapolated from them")
	flag.StringVar(&routes, "routes", "100,1000", "routes already in plain Caddy's config, comma-separated")
	flag.IntVar(&c.loadSessions, "load-sessions", 64, "client sessions of the call load")
	flag.IntVar(&c.loadWrites, "load-writes", 1000, "registry writes during the call load")
	flag.DurationVar(&c.loadWarm, "load-warm", 3*time.Second, "call load before anything is measured")
	flag.DurationVar(&c.loadBefore, "load-before", 5*time.Second, "call load measured before the writes")
	flag.StringVar(&loadPaths, "load-paths", "one_server,aggregate", "paths of the call load: one_server (/servers/load/mcp), aggregate (/mcp)")
	flag.StringVar(&protos, "proto", "h1,h2c", "client hops of the call load: h1, h2c")
	flag.IntVar(&c.catalog, "catalog", 1000, "servers (10 tools each) for the list and search figures")
	flag.IntVar(&c.listSamples, "list-samples", 500, "GET /api/servers samples per page size")
	flag.IntVar(&c.searchSamples, "search-samples", 2000, "GET /api/search samples")
	flag.BoolVar(&c.profile, "profile", true, "profile Caddy: CPU during extra writes in the large registry, heap at each memory stage")
	flag.DurationVar(&c.profileDur, "profile-duration", 5*time.Second, "length of each CPU profile")
	flag.DurationVar(&c.idleWait, "idle-wait", 95*time.Second, "wait before the heap is measured after the create → delete cycles (at least 6s): 6s shows whether deleted servers' upstream connections closed at once, 95s what is left past their 90s idle timeout")
	flag.StringVar(&c.caddyBin, "caddy", "", "a prebuilt Caddy binary (default: build ./cmd/caddy without -race)")
	flag.StringVar(&caddyGOGC, "caddy-gogc", "", "GOGC for Caddy alone (default: Go's, 100); e.g. 400 shows how much of a p99 is Caddy's garbage collector")
	flag.StringVar(&steps, "steps", strings.Join(allSteps, ","), "parts to run: small (write → serving, call load), plain (plain Caddy), catalog (list, search), large (write → serving, memory)")
	flag.StringVar(&c.storageDir, "storage-dir", "", "where Caddy's storage goes (default: a temp dir under $TMPDIR); e.g. /dev/shm to take the disk's fsyncs out")
	flag.StringVar(&c.out, "out", filepath.Join(os.TempDir(), "caddy-mcp-registry-bench"), "directory for Caddy's profiles")
	flag.Parse()

	if quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickDefaults {
			if !set[name] {
				if err := flag.Set(name, v); err != nil {
					fatalf("-quick: %s=%s: %v", name, v, err)
				}
			}
		}
	}
	var err error
	if c.routes, err = benchkit.ParseInts(routes); err != nil {
		fatalf("-routes: %v", err)
	}
	c.loadPaths, c.protos, c.steps = benchkit.SplitList(loadPaths), benchkit.SplitList(protos), benchkit.SplitList(steps)
	for _, s := range c.steps {
		if !slices.Contains(allSteps, s) {
			fatalf("-steps: unknown step %q (have %s)", s, strings.Join(allSteps, ", "))
		}
	}
	for _, p := range c.loadPaths {
		if p != "one_server" && p != "aggregate" {
			fatalf("-load-paths: %q is neither one_server nor aggregate", p)
		}
	}
	for _, p := range c.protos {
		if p != "h1" && p != "h2c" {
			fatalf("-proto: %q is neither h1 nor h2c", p)
		}
	}
	if c.writes < 1 || c.small < 1 || c.large < 1 || c.listed < 1 || c.catalog < 1 || c.listSamples < 1 || c.searchSamples < 1 {
		fatalf("-writes, -small, -large, -listed, -catalog and the sample counts must be positive")
	}
	if c.listed > c.large {
		fatalf("-listed %d: more than the %d servers of -large", c.listed, c.large)
	}

	benchkit.Main("bench/registry", func(ctx context.Context) error { return run(ctx, c, os.Stdout, os.Stderr) })
}

func fatalf(format string, args ...any) { benchkit.Fatalf("bench/registry", format, args...) }

// results is everything the run measured, for the report.
type results struct {
	serve      []*serveResult
	loads      []*loadResult
	lists      []*getResult
	search     *getResult
	mem        []memStage
	registered time.Duration // registering the large registry through the API
	refreshed  time.Duration // listing its servers' tools
	refreshedC time.Duration // listing the catalog's
	cpuTops    []cpuTop
	heapTops   map[string][]string
}

// cpuTop is the top of a CPU profile of Caddy during writes.
type cpuTop struct {
	label string
	rows  []string
}

// memStage is Caddy's memory at one point of the large registry's life.
type memStage struct {
	label          string
	servers, tools int
	cycles         int // write → serve cycles since the stage before
	mem            benchkit.GoMem
}

func run(ctx context.Context, c config, w, logw io.Writer) error {
	began := time.Now()
	if err := benchkit.RaiseFileLimit(); err != nil {
		return fmt.Errorf("raising the open-file limit: %w", err)
	}
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "caddy-mcp-registry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Caddy's directories, storage included, go under -storage-dir.
	dirs := work
	if c.storageDir != "" {
		if dirs, err = os.MkdirTemp(c.storageDir, "caddy-mcp-registry-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dirs)
	}
	bin := c.caddyBin
	if bin == "" {
		if bin, err = benchkit.BuildCaddy(root, work, logw); err != nil {
			return err
		}
	}
	up, err := startUpstream()
	if err != nil {
		return err
	}
	defer up.Stop()
	if c.profile {
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			return err
		}
	}

	res := &results{heapTops: map[string][]string{}}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"small", func() error { return smallRegistry(ctx, c, bin, dirs, up, res, logw) }},
		{"plain", func() error { return plainCaddy(ctx, c, bin, dirs, up, res, logw) }},
		{"catalog", func() error { return catalogRegistry(ctx, c, bin, dirs, up, res, logw) }},
		{"large", func() error { return largeRegistry(ctx, c, bin, dirs, up, res, logw) }},
	}
	for _, s := range steps {
		if !slices.Contains(c.steps, s.name) {
			continue
		}
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	took := time.Since(began).Round(time.Second)
	fmt.Fprintf(logw, "bench/registry: %s in all\n", took)
	report(w, c, root, res, took)
	return nil
}

// withCaddy starts a Caddy, runs fn with it, and stops it; a failure
// carries the end of Caddy's log.
func withCaddy(bin, work, name string, build func(admin, listen, storage string) map[string]any, prepare func(string) error, fn func(*caddyProc) error) error {
	cd, err := startCaddy(bin, work, name, build, prepare)
	if err != nil {
		return err
	}
	defer cd.Stop()
	if err := fn(cd); err != nil {
		return fmt.Errorf("%w\ncaddy log:\n%s", err, cd.LogTail())
	}
	return nil
}

// smallRegistry: write → serving with the small registry, then the call
// load with writes.
func smallRegistry(ctx context.Context, c config, bin, work string, up *upstreamProc, res *results, logw io.Writer) error {
	fmt.Fprintf(logw, "registry with %d servers (records written into the storage before Caddy starts)...\n", c.small)
	prepare := func(storage string) error { return writeRecords(storage, c.small, up.toolURL) }
	return withCaddy(bin, work, "small", registryConfig, prepare, func(cd *caddyProc) error {
		if err := checkServers(ctx, cd, c.small); err != nil {
			return err
		}
		r, err := directInitialize(ctx, cd, up, c.writes, c.warmWrites, logw)
		if err != nil {
			return err
		}
		res.serve = append(res.serve, r)
		for _, probe := range []bool{true, false} {
			r, err := registryWriteServe(ctx, cd, up, fmt.Sprintf("registry, %d servers", c.small), probe, c.writes, c.warmWrites, logw)
			if err != nil {
				return err
			}
			res.serve = append(res.serve, r)
		}

		client := newHTTPClient("h1")
		defer client.CloseIdleConnections()
		if _, err := expect(ctx, client, http.StatusCreated, http.MethodPost, cd.Base+"/api/servers", map[string]any{"name": loadServer, "url": up.echoURL(false)}); err != nil {
			return err
		}
		for _, path := range c.loadPaths {
			for _, proto := range c.protos {
				fmt.Fprintf(logw, "call load: %d sessions on %s over %s, %d registry writes...\n", c.loadSessions, path, proto, c.loadWrites)
				l, err := callLoadWithWrites(ctx, cd, up, path, proto, c.loadSessions, c.loadWrites, c.loadWarm, c.loadBefore, logw)
				if err != nil {
					return fmt.Errorf("call load on %s over %s: %w", path, proto, err)
				}
				fmt.Fprintf(logw, "  %.0f calls/s before, %.0f during; %d failed calls, %d lost sessions, %d write errors\n",
					l.before.rate(), l.during.rate(), l.failed, l.lost, l.writeErrors)
				res.loads = append(res.loads, l)
			}
		}
		return nil
	})
}

// plainCaddy: the route change through plain Caddy's admin API.
func plainCaddy(ctx context.Context, c config, bin, work string, up *upstreamProc, res *results, logw io.Writer) error {
	upHost := strings.TrimPrefix(up.base, "http://")
	build := func(admin, listen, storage string) map[string]any {
		return benchkit.SiteConfig(admin, listen, storage, plainRoutes(c.routes[0], upHost))
	}
	return withCaddy(bin, work, "plain", build, nil, func(cd *caddyProc) error {
		for _, n := range c.routes {
			fmt.Fprintf(logw, "plain Caddy, %d routes: POST a route to the admin API, DELETE it again...\n", n)
			r, err := plainRouteChange(ctx, cd, up, n, c.writes, c.warmWrites, logw)
			if err != nil {
				return err
			}
			res.serve = append(res.serve, r)
		}
		return nil
	})
}

// catalogRegistry: list and search with c.catalog servers, all listed.
func catalogRegistry(ctx context.Context, c config, bin, work string, up *upstreamProc, res *results, logw io.Writer) error {
	fmt.Fprintf(logw, "registry with %d servers, %d tools each, for list and search...\n", c.catalog, toolsPerServer)
	prepare := func(storage string) error { return writeRecords(storage, c.catalog, up.toolURL) }
	return withCaddy(bin, work, "catalog", registryConfig, prepare, func(cd *caddyProc) error {
		if err := checkServers(ctx, cd, c.catalog); err != nil {
			return err
		}
		var err error
		if res.refreshedC, err = refreshAll(ctx, cd, c.catalog, logw); err != nil {
			return err
		}
		if err := checkTools(ctx, cd, c.catalog*toolsPerServer); err != nil {
			return err
		}
		fmt.Fprintln(logw, "GET /api/servers...")
		if res.lists, err = listServers(ctx, cd, c.catalog, c.listSamples); err != nil {
			return err
		}
		fmt.Fprintln(logw, "GET /api/search...")
		res.search, err = searchTools(ctx, cd, c.searchSamples)
		return err
	})
}

// largeRegistry: memory from empty to c.large servers to their tools, and
// write → serving at that size, before and after the tools are listed.
func largeRegistry(ctx context.Context, c config, bin, work string, up *upstreamProc, res *results, logw io.Writer) error {
	fmt.Fprintf(logw, "large registry: from empty to %d servers through the API, then the tools of %d of them...\n", c.large, c.listed)
	return withCaddy(bin, work, "large", registryConfig, nil, func(cd *caddyProc) error {
		// stage measures the heap after wait: certmagic's file storage
		// leaves a goroutine per lock taken (one per write) that ends
		// within 5s of the unlock, so the wait is at least 6s.
		stage := func(label string, servers, tools, cycles int, wait time.Duration) error {
			benchkit.SleepCtx(ctx, max(wait, 6*time.Second))
			m, err := cd.MemAfterGC(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(logw, "  heap in use %s: %.1f MiB\n", label, float64(m.HeapInuse)/(1<<20))
			res.mem = append(res.mem, memStage{label: label, servers: servers, tools: tools, cycles: cycles, mem: m})
			if c.profile {
				return cd.SaveAdmin(ctx, "/debug/pprof/heap", heapFile(c.out, len(res.mem)-1))
			}
			return nil
		}
		// profile takes a CPU profile of Caddy during extra, unmeasured
		// write → serve cycles.
		profiled := 0
		profile := func(label, file string) error {
			if !c.profile {
				return nil
			}
			fmt.Fprintf(logw, "profiling Caddy's CPU during write → serve cycles with %s...\n", label)
			path := filepath.Join(c.out, "caddy-cpu-writes-"+file+".pprof")
			n, err := profileWrites(ctx, cd, up, c.profileDur, path, logw)
			if err != nil {
				return err
			}
			profiled = n
			_, rows, err := benchkit.PprofTop("-cum", "-nodecount=30", path)
			res.cpuTops = append(res.cpuTops, cpuTop{label: label, rows: rows})
			return err
		}
		if err := stage("empty registry", 0, 0, 0, 0); err != nil {
			return err
		}
		var err error
		if res.registered, err = registerAll(ctx, cd, up, c.large, logw); err != nil {
			return err
		}
		if err := checkServers(ctx, cd, c.large); err != nil {
			return err
		}
		if err := stage(fmt.Sprintf("%d servers registered", c.large), c.large, 0, 0, 0); err != nil {
			return err
		}
		for _, probe := range []bool{true, false} {
			r, err := registryWriteServe(ctx, cd, up, fmt.Sprintf("registry, %d servers", c.large), probe, c.writes, c.warmWrites, logw)
			if err != nil {
				return err
			}
			res.serve = append(res.serve, r)
		}
		if err := profile(fmt.Sprintf("%d servers", c.large), "registered"); err != nil {
			return err
		}
		// What the create → initialize → delete cycles leave behind (the
		// profile's included), apart from what the tools cost, after
		// -idle-wait.
		cycles := 2*(c.writes+c.warmWrites) + profiled
		if err := stage(fmt.Sprintf("after %d create → initialize → delete cycles, %s later", cycles, c.idleWait), c.large, 0, cycles, c.idleWait); err != nil {
			return err
		}

		tools := c.listed * toolsPerServer
		if res.refreshed, err = refreshAll(ctx, cd, c.listed, logw); err != nil {
			return err
		}
		if err := checkTools(ctx, cd, tools); err != nil {
			return err
		}
		if err := stage(fmt.Sprintf("%d servers, %d tools listed (of %d servers)", c.large, tools, c.listed), c.large, tools, 0, 0); err != nil {
			return err
		}
		r, err := registryWriteServe(ctx, cd, up, fmt.Sprintf("registry, %d servers, %d tools listed (of %d servers)", c.large, tools, c.listed), true, c.writes, c.warmWrites, logw)
		if err != nil {
			return err
		}
		res.serve = append(res.serve, r)

		if err := profile(fmt.Sprintf("%d servers, %d tools listed", c.large, tools), "listed"); err != nil {
			return err
		}
		if !c.profile {
			return nil
		}
		for i := 1; i < len(res.mem); i++ {
			_, top, err := benchkit.PprofTop("-sample_index=inuse_space", "-nodecount=15", "-diff_base="+heapFile(c.out, i-1), heapFile(c.out, i))
			if err != nil {
				return err
			}
			res.heapTops[res.mem[i].label] = top
		}
		return nil
	})
}

func heapFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("caddy-heap-large-%d.pprof", i))
}

// checkServers makes sure the registry has all the servers it should.
func checkServers(ctx context.Context, cd *caddyProc, n int) error {
	h, err := cd.registryHealth(ctx)
	if err != nil {
		return err
	}
	if h.Servers < n || h.Enabled < n {
		return fmt.Errorf("the registry has %d servers (%d enabled), want %d", h.Servers, h.Enabled, n)
	}
	return nil
}

// checkTools makes sure the registry has indexed every tool.
func checkTools(ctx context.Context, cd *caddyProc, n int) error {
	h, err := cd.registryHealth(ctx)
	if err != nil {
		return err
	}
	if h.Tools != n {
		return fmt.Errorf("the registry has %d tools, want %d", h.Tools, n)
	}
	return nil
}

// commit describes the checkout measured.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown commit"
	}
	return strings.TrimSpace(string(out))
}
