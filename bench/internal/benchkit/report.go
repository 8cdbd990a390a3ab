package benchkit

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Command is the command line that ran the benchmark in package pkg, for
// a report: figures mean little without it.
func Command(pkg string) string {
	return strings.TrimSpace("go run " + pkg + " " + strings.Join(os.Args[1:], " "))
}

// Machine describes the machine and toolchain the figures come from.
func Machine() string {
	return fmt.Sprintf("%d CPUs, %s %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Clip shortens a line to n bytes: the SDK's generic instantiations have
// names of several hundred, and error answers can be long.
func Clip(line string, n int) string {
	if len(line) <= n {
		return line
	}
	return line[:n] + "…"
}

// Percentile returns the p-th quantile (0 < p ≤ 1) of sorted durations, by
// the nearest-rank method.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
