package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The benchmarks share one upstream and one Caddy per test binary, set up on
// first use (plain `go test` starts neither) and stopped by TestMain.
var shared struct {
	once    sync.Once
	env     *env
	cleanup func()
	err     error
	mu      sync.Mutex
	paths   map[string]*pathSessions
}

func TestMain(m *testing.M) {
	maybeServeUpstream() // the test binary doubles as the echo upstream
	code := m.Run()
	for _, p := range shared.paths {
		p.close()
	}
	if shared.cleanup != nil {
		shared.cleanup()
	}
	os.Exit(code)
}

// benchParallelism sets how many client sessions call concurrently in
// BenchmarkCallTool: RunParallel runs parallelism × GOMAXPROCS goroutines.
const benchParallelism = 8

func benchPath(b *testing.B, variant string) *pathSessions {
	b.Helper()
	shared.once.Do(func() {
		shared.env, shared.cleanup, shared.err = setup(config{upstream: "echo", payload: 16, protocol: "2025-11-25", rpIdle: 256}, os.Stderr)
	})
	if shared.err != nil {
		b.Fatal(shared.err)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if p, ok := shared.paths[variant]; ok {
		return p
	}
	n := benchParallelism * runtime.GOMAXPROCS(0)
	p, err := shared.env.openPath(context.Background(), shared.env.target(variant), "h1", n)
	if err != nil {
		b.Fatal(err)
	}
	if shared.paths == nil {
		shared.paths = map[string]*pathSessions{}
	}
	shared.paths[variant] = p
	return p
}

// BenchmarkCallTool measures tools/call on each path with
// benchParallelism × GOMAXPROCS concurrent sessions over HTTP/1.1, and
// reports each process's CPU time per call besides the wall time. The bench
// command (go run ./bench) is the full measurement: this is the quick look.
//
//	go test -run '^$' -bench CallTool ./bench/
func BenchmarkCallTool(b *testing.B) {
	for _, v := range allVariants {
		b.Run(v, func(b *testing.B) {
			p := benchPath(b, v)
			sessions := make(chan *mcp.ClientSession, len(p.ss))
			for _, s := range p.ss {
				sessions <- s.cs
			}
			params := &mcp.CallToolParams{Name: p.t.tool, Arguments: p.t.args}
			b.SetParallelism(benchParallelism)
			before, err := shared.env.cpuNow()
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				cs := <-sessions
				defer func() { sessions <- cs }()
				for pb.Next() {
					res, err := cs.CallTool(context.Background(), params)
					if err != nil {
						b.Error(err)
						return
					}
					if res.IsError {
						b.Errorf("tool error: %v", res.Content)
						return
					}
				}
			})
			b.StopTimer()
			after, err := shared.env.cpuNow()
			if err != nil {
				b.Fatal(err)
			}
			d := after.sub(before)
			b.ReportMetric(float64(d.caddy.Microseconds())/float64(b.N), "caddy-cpu-µs/op")
			b.ReportMetric(float64(d.upstream.Microseconds())/float64(b.N), "upstream-cpu-µs/op")
			b.ReportMetric(float64(d.client.Microseconds())/float64(b.N), "client-cpu-µs/op")
		})
	}
}

func TestSummarizeGoroutines(t *testing.T) {
	dump := "goroutine profile: total 7\n" +
		"5 @ 0x1 0x2 0x3\n" +
		"#\t0x1\truntime.gopark+0x10\t/x/proc.go:1\n" +
		"#\t0x2\tnet.(*netFD).Read+0x24\t/x/fd.go:2\n" +
		"#\t0x3\tnet/http.(*conn).serve+0x7f2\t/x/server.go:3\n" +
		"\n" +
		"2 @ 0x1 0x4\n" +
		"#\t0x1\truntime.gopark+0x10\t/x/proc.go:1\n" +
		"#\t0x4\tmain.worker+0x5\t/x/main.go:4\n"
	got := summarizeGoroutines(dump, 10)
	want := []string{
		fmt.Sprintf("%6d  %s", 5, "net/http.(*conn).serve … waits in net.(*netFD).Read"),
		fmt.Sprintf("%6d  %s", 2, "main.worker … waits in main.worker"),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("summarizeGoroutines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPerUnit(t *testing.T) {
	rows := []string{
		"  377.56MB 174.20% 174.20%   377.56MB 174.20%  github.com/segmentio/encoding/json.(*Decoder).readValue",
		"      -2kB  1.85% 176.05%     4.02MB  1.85%  bufio.NewReaderSize (inline)",
		"         0     0% 178.82%     4.02MB  1.85%  bufio.NewReader (inline)",
	}
	got := perUnit(rows, 1000, "call")
	want := []string{
		fmt.Sprintf("%10.1f KiB/call  %s", 377.56*1024/1000, "github.com/segmentio/encoding/json.(*Decoder).readValue"),
		fmt.Sprintf("%10.1f KiB/call  %s", -2.0/1000, "bufio.NewReaderSize (inline)"),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("perUnit =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := parseSize("12XB"); ok {
		t.Error("parseSize accepted 12XB")
	}
}
