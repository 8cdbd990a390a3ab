package benchkit

import (
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses, utime 250 and stime 50
	// ticks: 3 s.
	stat := "1234 (caddy (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, want 3s", got)
	}
	if _, err := parseStatCPU("1234 (caddy) S 1 2"); err == nil {
		t.Error("parseStatCPU accepted a short line")
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS(strings.NewReader("Name:\tcaddy\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\nThreads:\t9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 2048<<10 {
		t.Errorf("parseVmRSS = %d, want %d", got, 2048<<10)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tcaddy\n")); err == nil {
		t.Error("parseVmRSS accepted a status without VmRSS")
	}
}

func TestParseProcStatBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseProcStatBusy("cpu  100 20 30 5000 50 1 2 3 40 4\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := 156 * time.Second / clockTicks; got != want {
		t.Errorf("parseProcStatBusy = %v, want %v", got, want)
	}
}
