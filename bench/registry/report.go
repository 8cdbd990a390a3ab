package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// Targets of the issue.
const (
	serveP99Target  = 10 * time.Millisecond
	listP50Target   = 5 * time.Millisecond
	searchP99Target = 5 * time.Millisecond
)

// report prints the results as markdown.
func report(w io.Writer, c config, root string, res *results, took time.Duration) {
	fmt.Fprintf(w, "\n## mcp_registry benchmark\n\n")
	fmt.Fprintf(w, "Command: `%s` — %s in all.\n\n", benchkit.Command("./bench/registry"), took)
	build := "Caddy built from ./cmd/caddy without -race"
	if c.caddyBin != "" {
		build = "Caddy: the prebuilt `" + c.caddyBin + "`"
	}
	fmt.Fprintf(w, "Machine: %s; caddy-mcp %s. %s, a separate process, logs at WARN, "+
		"file_system storage; the registry with `allowed_networks: [loopback]` and the health probe at its defaults (off for the servers registered in bulk); one site with "+
		"`mcp_registry_api` and `mcp_gateway` with `registry: true`. Upstream: the bench's own go-sdk server process on loopback "+
		"(an echo server with sessions, and tool servers of %d generated tools each, stateless).",
		benchkit.Machine(), commit(root), build, toolsPerServer)
	if caddyGOGC != "" {
		fmt.Fprintf(w, " Caddy runs with GOGC=%s (Go's default is 100).", caddyGOGC)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\n### Registry write → serving, beside plain Caddy's admin-API route change\n\n")
	fmt.Fprintf(w, "Registry: `POST /api/servers {name, url}` (the echo upstream), then `POST` initialize to `/servers/<name>/mcp` until it answers 200 "+
		"(the gateway connects to the upstream meanwhile: initialize and list); \"serving\" is from sending the write to that 200. With the default "+
		"probe, the write starts that connect; with the probe off (`\"probe\": {\"disabled\": true}` in the record), the first initialize does. "+
		"Each server is deleted again, untimed, so the registry keeps its size. The floor: initialize straight to the upstream on a new connection, "+
		"no write and no Caddy. Plain Caddy: `POST /config/apps/http/servers/%s/routes` with a `reverse_proxy` route to the "+
		"same upstream (a full config reload), then initialize through it until 200; the route is deleted again, untimed. %d samples each after %d "+
		"unmeasured; every sample on a new connection (a reload closes kept-alive ones).\n\n", benchkit.SiteName, c.writes, c.warmWrites)
	fmt.Fprintln(w, "| change | write answer p50 ms | p99 ms | first initialize p50 ms | p99 ms | **serving p50 ms** | **p99 ms** | max ms | non-200 before serving | others (cores) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range res.serve {
		wrote50, wrote99 := fmtMs(r.write.pct(.5)), fmtMs(r.write.pct(.99))
		if len(r.write) == 0 { // the floor: nothing written
			wrote50, wrote99 = "—", "—"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %.2f |\n", r.label, wrote50, wrote99,
			fmtMs(r.init.pct(.5)), fmtMs(r.init.pct(.99)), fmtMs(r.serve.pct(.5)), fmtMs(r.serve.pct(.99)), fmtMs(r.serve.max()), r.retries, r.others)
	}
	fmt.Fprintln(w, "| the design this replaces: the gateway polls every 30 s, then reloads nginx | — | — | — | — | ~15,000 (mean wait) | 30,000 + reload | — | — | — |")
	fmt.Fprintln(w, "\n\"first initialize\" is serving − write answer. \"others\": CPU that processes other than the bench's used meanwhile; "+
		"the machine is shared, and when others take a core, p99s move.")
	fmt.Fprintf(w, "\nTarget: registry write → serving p99 ≤ %s, the same at %d and at %d servers:\n\n", serveP99Target, c.small, c.large)
	for _, r := range res.serve {
		if strings.HasPrefix(r.label, "registry") {
			fmt.Fprintf(w, "- %s: p99 %s ms — %s\n", r.label, fmtMs(r.serve.pct(.99)), verdict(r.serve.pct(.99) <= serveP99Target))
		}
	}

	if len(res.loads) > 0 {
		l0 := res.loads[0]
		fmt.Fprintf(w, "\n### Registry writes under a call load\n\n")
		fmt.Fprintf(w, "%d go-sdk client sessions (protocol 2025-11-25, one HTTP client each, standalone GET stream open, no transport retries) "+
			"call `echo` in a closed loop on one registry server's endpoint (`/servers/%s/mcp`) or `%s__echo` on the aggregate (`/mcp`), "+
			"registry of %d servers + `%s`. After %s of warm-up, calls are measured for %s, then during %d writes by one writer, one at a time, to "+
			"%d other servers in turn: create, PATCH (a new URL: a new upstream), disable, enable, delete; after a create, PATCH or enable, "+
			"one initialize on that server's route (untimed), so that the gateway connects to it and the aggregate's tools change. "+
			"A failed call is any error or tool error; a lost session is one whose call after the writes fails.\n\n",
			l0.sessions, loadServer, loadServer, c.small, loadServer, c.loadWarm, c.loadBefore, c.loadWrites, churnServers)
		fmt.Fprintln(w, "| path | client hop | writes | write p50 ms | write p99 ms | calls/s before | calls/s during | during/before | call p50/p99 ms before | call p50/p99 ms during | failed calls | lost sessions | list_changed received | others (cores) |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, l := range res.loads {
			ratio := 0.0
			if l.before.rate() > 0 {
				ratio = l.during.rate() / l.before.rate()
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %.0f | %.0f | %.2f | %s / %s | %s / %s | %d | %d | %d | %.2f |\n",
				l.path, l.proto, len(l.writes), fmtMs(l.writes.pct(.5)), fmtMs(l.writes.pct(.99)), l.before.rate(), l.during.rate(), ratio,
				fmtMs(l.before.lat.pct(.5)), fmtMs(l.before.lat.pct(.99)), fmtMs(l.during.lat.pct(.5)), fmtMs(l.during.lat.pct(.99)),
				l.failed, l.lost, l.listChangedEvents, l.others)
		}
		fmt.Fprintf(w, "\nTarget: 0 failed calls and 0 lost sessions:\n\n")
		for _, l := range res.loads {
			fmt.Fprintf(w, "- %s over %s: %d failed, %d lost — %s\n", l.path, l.proto, l.failed, l.lost, verdict(l.failed == 0 && l.lost == 0 && l.writeErrors == 0))
			if l.firstFailure != nil {
				fmt.Fprintf(w, "  - first failed call: %s\n", clip(l.firstFailure.Error(), 300))
			}
			if l.firstLost != nil {
				fmt.Fprintf(w, "  - first lost session: %s\n", clip(l.firstLost.Error(), 300))
			}
			if l.writeErrors > 0 {
				fmt.Fprintf(w, "  - %d writes failed; the first: %s\n", l.writeErrors, clip(l.firstWriteErr.Error(), 300))
			}
		}
	}

	fmt.Fprintf(w, "\n### List and search\n\n")
	fmt.Fprintf(w, "A registry of %d servers (records written into the storage before Caddy starts), each reaching its own upstream tool server "+
		"of %d tools, all listed (`POST /api/servers/{name}/refresh`, %s for all): %d tools indexed. One client, one kept-alive connection, "+
		"requests one after another; %d list samples per page size, %d search samples (after a tenth as many unmeasured).\n\n",
		c.catalog, toolsPerServer, res.refreshedC.Round(time.Millisecond), c.catalog*toolsPerServer, c.listSamples, c.searchSamples)
	fmt.Fprintln(w, "| request | p50 ms | p99 ms | max ms | answer KiB | target | verdict | others (cores) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|---|---:|")
	for _, r := range res.lists {
		target, ok := "p50 ≤ 5 ms", r.lat.pct(.5) <= listP50Target
		fmt.Fprintf(w, "| %s, %d servers | %s | %s | %s | %.1f | %s | %s | %.2f |\n", r.label, c.catalog, fmtMs(r.lat.pct(.5)), fmtMs(r.lat.pct(.99)), fmtMs(r.lat.max()),
			float64(r.bytes)/1024, target, verdict(ok), r.others)
	}
	if r := res.search; r != nil {
		fmt.Fprintf(w, "| %s, %d tools | %s | %s | %s | %.1f | p99 ≤ 5 ms | %s | %.2f |\n", r.label, c.catalog*toolsPerServer, fmtMs(r.lat.pct(.5)),
			fmtMs(r.lat.pct(.99)), fmtMs(r.lat.max()), float64(r.bytes)/1024, verdict(r.lat.pct(.99) <= searchP99Target), r.others)
		fmt.Fprintf(w, "\nSearch: %s. The peer registry's semantic search: p50 310 ms; its list: p50 133 ms.\n", r.note)
	}

	if len(res.mem) > 0 {
		fmt.Fprintf(w, "\n### Memory\n\n")
		fmt.Fprintf(w, "One Caddy, from an empty registry: %d servers registered through the API (%s, 4 writers), each reaching its own upstream "+
			"tool server; then %d of them probed (`refresh`, 8 at a time, %s): the gateway connects to each (one client session and one "+
			"kept-alive connection per server), lists its %d tools, the registry indexes them and the aggregate `/mcp` mirrors them. "+
			"Caddy's `go_memstats_heap_inuse_bytes` (admin `/metrics`) after two forced GCs (`/debug/pprof/heap?gc=1`).\n\n",
			c.large, res.registered.Round(time.Second), c.listed, res.refreshed.Round(time.Second), toolsPerServer)
		fmt.Fprintln(w, "| stage | servers | tools | heap in use MiB | Δ heap MiB | Δ per server or tool | goroutines | RSS MiB |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
		for i, s := range res.mem {
			delta, per := "", ""
			if i > 0 {
				prev := res.mem[i-1]
				d := s.mem.HeapInuse - prev.mem.HeapInuse
				delta = fmt.Sprintf("%+.1f", float64(d)/(1<<20))
				switch {
				case s.tools > prev.tools:
					per = fmt.Sprintf("%.2f KiB per tool", float64(d)/float64(s.tools-prev.tools)/1024)
				case s.servers > prev.servers:
					per = fmt.Sprintf("%.2f KiB per server", float64(d)/float64(s.servers-prev.servers)/1024)
				case s.cycles > 0:
					per = fmt.Sprintf("%.2f KiB per cycle", float64(d)/float64(s.cycles)/1024)
				}
			}
			fmt.Fprintf(w, "| %s | %d | %d | %.1f | %s | %s | %d | %.0f |\n", s.label, s.servers, s.tools, float64(s.mem.HeapInuse)/(1<<20),
				delta, per, s.mem.Goroutines, float64(s.mem.RSS)/(1<<20))
		}
		if n := len(res.mem); n >= 3 && res.mem[n-1].tools > 0 {
			empty, reg, beforeTools, listed := res.mem[0], res.mem[1], res.mem[n-2], res.mem[n-1]
			perServer := float64(reg.mem.HeapInuse-empty.mem.HeapInuse) / float64(reg.servers)
			perTool := float64(listed.mem.HeapInuse-beforeTools.mem.HeapInuse) / float64(listed.tools)
			allTools := reg.servers * toolsPerServer
			est := perServer*float64(reg.servers) + perTool*float64(allTools)
			label := "Measured"
			if listed.tools < allTools {
				label = fmt.Sprintf("**Extrapolated** (linearly, from the %d tools of %d servers measured)", listed.tools, listed.tools/toolsPerServer)
			}
			fmt.Fprintf(w, "\n%s: the registry with %d servers and %d tools holds ≈ %.0f MiB of heap: %.1f KiB per server registered, "+
				"plus %.2f KiB per tool listed (each listed server's connection and client session included, i.e. %.1f KiB per listed server "+
				"with its %d tools).\n", label, reg.servers, allTools, est/(1<<20), perServer/1024, perTool/1024,
				perTool*toolsPerServer/1024, toolsPerServer)
		}
		for i := 1; i < len(res.mem); i++ {
			top, ok := res.heapTops[res.mem[i].label]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "\nWhat \"%s\" added to the heap (inuse_space, after − before, sampled; profiles in %s):\n\n", res.mem[i].label, c.out)
			printTop(w, top)
		}
	}
	for _, t := range res.cpuTops {
		fmt.Fprintf(w, "\n### Where a write's time goes with %s\n\nCaddy's CPU profile (%s) during unmeasured write → serve cycles "+
			"(create, initialize, delete), top cumulative entries:\n\n", t.label, c.profileDur)
		printTop(w, t.rows)
	}
}

// printTop prints the rows of a pprof -top table under its column header,
// as a code block.
func printTop(w io.Writer, rows []string) {
	fmt.Fprintln(w, "```")
	for _, l := range append([]string{benchkit.PprofColumns}, rows...) {
		fmt.Fprintln(w, clip(l, 220))
	}
	fmt.Fprintln(w, "```")
}
