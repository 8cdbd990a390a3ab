// Package benchkit is what the gateway benchmark (./bench) and the registry
// benchmark (./bench/registry) share: both are package main, so neither can
// import the other. It builds and runs Caddy and the benchmarks' own
// upstreams as real processes, reads their CPU and memory, and formats
// figures for the reports.
package benchkit

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process a benchmark started.
type Proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	mu    sync.Mutex
	log   strings.Builder
}

// Write keeps the child's output (its first MiB) for error messages.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log.Len() < 1<<20 {
		p.log.Write(b)
	}
	return len(b), nil
}

func (p *Proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// LogTail is the end of the child's output: enough to tell why it failed.
func (p *Proc) LogTail() string {
	s := p.logs()
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// Pid is the child's process id, for reading its CPU and memory.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StartProc starts a child that dies with the benchmark (Pdeathsig); its
// stderr, and its stdout unless given, are kept for error messages.
func StartProc(name string, cmd *exec.Cmd, stdout io.Writer) (*Proc, error) {
	p := &Proc{name: name, cmd: cmd, done: make(chan struct{})}
	if stdout == nil {
		stdout = p
	}
	cmd.Stdout = stdout
	cmd.Stderr = p
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Stop asks the child to end (stdin closed, SIGTERM) and kills it if it
// has not within 10 seconds.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// RaiseFileLimit lifts the soft limit on open files to the hard limit, for
// this process and the processes it starts (they inherit it): thousands of
// sessions or registry servers hold thousands of sockets.
func RaiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur == lim.Max {
		return nil
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
