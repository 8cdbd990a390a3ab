package main

import (
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// othersMeter tells how much CPU processes other than the bench's own
// (the bench, its upstream and Caddy) took while something was measured:
// the machine is shared, and when others take a core, latencies move.
type othersMeter struct {
	pids  []int
	start time.Time
	ours  time.Duration
	all   time.Duration
}

func startOthers(pids ...int) *othersMeter {
	m := &othersMeter{pids: pids, start: time.Now()}
	m.ours, m.all = m.read()
	return m
}

func (m *othersMeter) read() (ours, all time.Duration) {
	for _, pid := range m.pids {
		d, _ := benchkit.CPUTime(pid)
		ours += d
	}
	all, _ = benchkit.MachineBusy()
	return ours, all
}

// cores is how many CPUs' worth the others used since the start.
func (m *othersMeter) cores() float64 {
	if m == nil {
		return 0
	}
	ours, all := m.read()
	elapsed := time.Since(m.start).Seconds()
	if elapsed <= 0 {
		return 0
	}
	return max(0, (all-m.all)-(ours-m.ours)).Seconds() / elapsed
}
