package main

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// profileResult is a CPU profile of Caddy, boiled down.
type profileResult struct {
	variant  string
	proto    string
	sessions int
	calls    int           // calls made while the profile ran (estimated)
	caddyCPU time.Duration // Caddy's CPU per call in the profiled slice
	path     string
	header   []string // pprof's summary lines
	cum      []string // top cumulative entries, all code
	ours     []string // top cumulative entries in caddymcp and the go-sdk
	flat     []string // top flat entries
	allocs   []string // top allocation sites over the profiled time
}

// oursPattern matches the gateway's own code and the MCP SDK's.
var oursPattern = regexp.MustCompile(`caddy-mcp/caddymcp|modelcontextprotocol/go-sdk`)

// analyzeProfile lists a profile's top entries with `go tool pprof -top`.
// allocsBefore and allocsAfter are allocation profiles taken around it.
func analyzeProfile(path, allocsBefore, allocsAfter string) (profileResult, error) {
	pr := profileResult{path: path}
	head, rows, err := benchkit.PprofTop(topNodes, "-cum", path)
	if err != nil {
		return pr, err
	}
	pr.header = head
	for _, r := range rows {
		if len(pr.cum) < 30 {
			pr.cum = append(pr.cum, r)
		}
		if oursPattern.MatchString(r) && len(pr.ours) < 40 {
			pr.ours = append(pr.ours, r)
		}
	}
	if _, rows, err = benchkit.PprofTop(topNodes, path); err != nil {
		return pr, err
	}
	pr.flat = rows[:min(len(rows), 25)]
	if _, rows, err = benchkit.PprofTop(topNodes, "-sample_index=alloc_space", "-diff_base="+allocsBefore, allocsAfter); err != nil {
		return pr, err
	}
	pr.allocs = rows[:min(len(rows), 15)]
	return pr, nil
}

// topNodes bounds pprof's tables: enough to find the gateway's own code
// below the runtime's and net/http's.
const topNodes = "-nodecount=400"

// perUnit rewrites pprof -top rows of a memory profile as bytes per unit
// (per call, per session) of the flat column, with the function name.
func perUnit(rows []string, n int, unit string) []string {
	var out []string
	for _, r := range rows {
		f := strings.Fields(r)
		if len(f) < 6 {
			continue
		}
		b, ok := parseSize(f[0])
		if !ok || b == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%10.1f KiB/%s  %s", b/float64(n)/1024, unit, strings.Join(f[5:], " ")))
	}
	return out
}

// parseSize reads a size as pprof prints it: 512B, 1.50kB, 377.56MB, -2GB.
func parseSize(s string) (float64, bool) {
	units := []struct {
		suffix string
		mult   float64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, false
			}
			return v * u.mult, true
		}
	}
	if s == "0" {
		return 0, true
	}
	return 0, false
}

func (p *profileResult) print(w io.Writer) {
	fmt.Fprintf(w, "\n## Where Caddy's time goes: %s, %s, %d sessions\n\n", p.variant, p.proto, p.sessions)
	fmt.Fprintf(w, "CPU profile from Caddy's admin /debug/pprof/profile during an extra, unreported slice (about %d calls while it ran, Caddy CPU %s µs/call). "+
		"Profile: `%s` (explore with `go tool pprof -http : %s`).\n\n", p.calls, fmtUs(p.caddyCPU), p.path, p.path)
	block := func(title string, lines []string) {
		fmt.Fprintf(w, "%s:\n\n```\n", title)
		fmt.Fprintln(w, benchkit.PprofColumns)
		for _, l := range lines {
			fmt.Fprintln(w, benchkit.Clip(l, 200))
		}
		fmt.Fprint(w, "```\n\n")
	}
	fmt.Fprintf(w, "```\n%s\n```\n\n", strings.Join(p.header, "\n"))
	block("Top cumulative, caddymcp and go-sdk only", p.ours)
	block("Top cumulative, all code", p.cum)
	block("Top flat", p.flat)
	fmt.Fprintf(w, "Where Caddy allocated meanwhile (alloc_space difference over the profile, flat, per call of the slice):\n\n```\n")
	for _, l := range perUnit(p.allocs, p.calls, "call") {
		fmt.Fprintln(w, benchkit.Clip(l, 200))
	}
	fmt.Fprint(w, "```\n")
}
