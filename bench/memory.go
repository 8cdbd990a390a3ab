package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// memResult is Caddy's memory cost of idle client sessions on one path.
type memResult struct {
	variant    string
	proto      string
	standalone bool // whether each session holds the standalone GET stream
	sessions   int
	open       time.Duration // time to open them all
	before     benchkit.GoMem
	after      benchkit.GoMem
	upRSS      int64    // upstream RSS delta
	heapTop    []string // heap profile delta, top entries
	goroutines []string // Caddy's goroutines while the sessions idle, grouped
}

func (m *memResult) heapPer() float64 {
	return float64(m.after.HeapInuse-m.before.HeapInuse) / float64(m.sessions)
}

func (m *memResult) stackPer() float64 {
	return float64(m.after.StackInuse-m.before.StackInuse) / float64(m.sessions)
}

func (m *memResult) rssPer() float64 {
	return float64(m.after.RSS-m.before.RSS) / float64(m.sessions)
}

func (m *memResult) goroutinesPer() float64 {
	return float64(m.after.Goroutines-m.before.Goroutines) / float64(m.sessions)
}

// idleMemory opens n sessions on one path (initialize + initialized, with or
// without the standalone GET stream), lets them sit idle, and measures what
// they cost Caddy: heap and stack in use after a forced GC, and RSS.
//
// With profileDir set, it also saves Caddy's heap profile before and after
// (the difference is what the sessions hold) and its goroutines while the
// sessions idle.
func (e *env) idleMemory(ctx context.Context, variant, proto string, standalone bool, n int, profileDir string) (*memResult, error) {
	t := e.target(variant)
	r := &memResult{variant: variant, proto: proto, standalone: standalone, sessions: n}
	var err error
	if r.before, err = e.caddy.MemAfterGC(ctx); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("caddy-idle-%s-%s-get-%v", variant, proto, standalone)
	if profileDir != "" {
		if err := e.caddy.SaveAdmin(ctx, "/debug/pprof/heap", filepath.Join(profileDir, name+"-before.heap")); err != nil {
			return nil, err
		}
	}
	upBefore, err := benchkit.RSS(e.up.Pid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ss, err := e.openSessions(ctx, t, proto, standalone, n, 32)
	if err != nil {
		return nil, err
	}
	r.open = time.Since(start)
	defer func() {
		closeSessions(ss, 32)
		// Let Caddy finish tearing the sessions down before the next
		// measurement takes its baseline.
		e.settle(ctx)
	}()
	// The standalone GET streams open asynchronously after initialized:
	// wait until Caddy's goroutine count stops moving.
	e.settle(ctx)
	if r.after, err = e.caddy.MemAfterGC(ctx); err != nil {
		return nil, err
	}
	upAfter, err := benchkit.RSS(e.up.Pid())
	if err != nil {
		return nil, err
	}
	r.upRSS = upAfter - upBefore
	if profileDir != "" {
		before, after := filepath.Join(profileDir, name+"-before.heap"), filepath.Join(profileDir, name+"-after.heap")
		if err := e.caddy.SaveAdmin(ctx, "/debug/pprof/heap", after); err != nil {
			return nil, err
		}
		_, rows, err := benchkit.PprofTop(topNodes, "-sample_index=inuse_space", "-diff_base="+before, after)
		if err != nil {
			return nil, err
		}
		r.heapTop = rows[:min(len(rows), 20)]
		b, err := e.caddy.AdminGet(ctx, "/debug/pprof/goroutine?debug=1")
		if err != nil {
			return nil, err
		}
		r.goroutines = summarizeGoroutines(string(b), 12)
	}
	// A sanity check that the sessions are really there, holding what we
	// think they hold: every GET stream through Caddy is at least one
	// goroutine.
	if standalone && r.after.Goroutines-r.before.Goroutines < int64(n) {
		return nil, fmt.Errorf("%s: %d sessions with GET streams added only %d goroutines to Caddy", variant, n, r.after.Goroutines-r.before.Goroutines)
	}
	return r, nil
}

// settle waits until Caddy's goroutine count is the same on three reads
// 250 ms apart, or 10 s.
func (e *env) settle(ctx context.Context) {
	deadline := time.Now().Add(10 * time.Second)
	last, same := int64(-1), 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		g, err := e.caddy.Goroutines(ctx)
		if err != nil {
			return
		}
		if g == last {
			same++
			if same >= 2 {
				return
			}
		} else {
			last, same = g, 0
		}
		benchkit.SleepCtx(ctx, 250*time.Millisecond)
	}
}

// summarizeGoroutines groups a debug=1 goroutine dump by where each
// goroutine started and where it waits, largest groups first.
func summarizeGoroutines(dump string, top int) []string {
	counts := map[string]int{}
	for _, rec := range strings.Split(dump, "\n\n") {
		lines := strings.Split(strings.TrimSpace(rec), "\n")
		// The dump's first record follows its "goroutine profile:" line.
		for len(lines) > 0 && !strings.Contains(lines[0], " @ ") {
			lines = lines[1:]
		}
		if len(lines) == 0 {
			continue
		}
		countStr, _, _ := strings.Cut(lines[0], " @ ")
		count, err := strconv.Atoi(countStr)
		if err != nil {
			continue
		}
		var funcs []string
		for _, l := range lines[1:] {
			// "#\t0x4a1b2c\tpkg.func+0x12\tfile:line"
			f := strings.Split(strings.TrimSpace(l), "\t")
			if len(f) >= 3 && f[0] == "#" {
				fn, _, _ := strings.Cut(f[2], "+0x")
				funcs = append(funcs, fn)
			}
		}
		if len(funcs) == 0 {
			continue
		}
		waits := funcs[0]
		for _, fn := range funcs {
			if !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") && !strings.HasPrefix(fn, "sync.") {
				waits = fn
				break
			}
		}
		counts[funcs[len(funcs)-1]+" … waits in "+waits] += count
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return counts[b] - counts[a] })
	var out []string
	for _, k := range keys[:min(len(keys), top)] {
		out = append(out, fmt.Sprintf("%6d  %s", counts[k], k))
	}
	return out
}
