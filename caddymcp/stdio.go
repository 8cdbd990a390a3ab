package caddymcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// executablePlaceholder stands for the running Caddy binary in a stdio
// command, so that servers built into it need nothing installed.
const executablePlaceholder = "{mcp.executable}"

// Stop timing: a server gets stdinGrace to exit after its stdin closes (the
// spec's polite shutdown), then SIGTERM, then SIGKILL after killGrace. Node
// servers ignore a closed stdin, so the first step is kept short.
const (
	stdinGrace = 300 * time.Millisecond
	killGrace  = 2 * time.Second
)

func (c *StdioConfig) validate() error {
	if strings.TrimSpace(c.Command) == "" {
		return errors.New("stdio: command is required")
	}
	return nil
}

// processTransport runs a command in its own process group and speaks MCP
// over its stdin/stdout. Its stderr goes to the log, a line per entry, tagged
// with the server. Closing the connection stops the whole process group.
type processTransport struct {
	command string
	args    []string
	env     map[string]string
	dir     string
	logger  *zap.Logger
}

func (s *StdioConfig) transport(logger *zap.Logger) *processTransport {
	return &processTransport{command: s.Command, args: s.Args, env: s.Env, dir: s.Dir, logger: logger}
}

// Connect starts the process.
func (t *processTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	repl := caddy.NewReplacer()
	command := t.command
	if command == executablePlaceholder {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %v", executablePlaceholder, err)
		}
		command = exe
	}
	cmd := exec.Command(repl.ReplaceKnown(command, ""))
	for _, a := range t.args {
		cmd.Args = append(cmd.Args, repl.ReplaceKnown(a, ""))
	}
	cmd.Dir = t.dir
	cmd.Env = os.Environ()
	for k, v := range t.env {
		cmd.Env = append(cmd.Env, k+"="+repl.ReplaceKnown(v, ""))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Plain pipes, not StdoutPipe/StderrPipe: cmd.Wait would close those
	// under a reader still draining them, and wait for every process that
	// holds stderr open.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		stdout.Close()
		stdoutW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdin.Close()
		stdout.Close()
		stderr.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, stdin: stdin, stdout: stdout, exited: make(chan struct{}), stderrDone: make(chan struct{})}
	logger := t.logger.With(zap.Int("pid", cmd.Process.Pid))
	// Log the args as configured: expanded placeholders may hold secrets.
	logger.Info("upstream process started", zap.String("command", cmd.Path), zap.Strings("args", t.args))
	go func() {
		logLines(stderr, logger, &p.lastStderr)
		stderr.Close()
		close(p.stderrDone)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
		logger.Info("upstream process exited", zap.Error(p.err))
	}()
	return (&mcp.IOTransport{Reader: p, Writer: p}).Connect(ctx)
}

// logLines logs each line a process writes to stderr, and keeps the last.
func logLines(r io.Reader, logger *zap.Logger, last *atomic.Pointer[string]) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		last.Store(&line)
		logger.Info("upstream stderr", zap.String("line", line))
	}
}

// process is the stdin/stdout of a running command as one ReadWriteCloser.
type process struct {
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	stdout     io.ReadCloser
	exited     chan struct{}
	stderrDone chan struct{}
	err        error
	lastStderr atomic.Pointer[string]
	closeOnce  sync.Once
}

// Read reads stdout. At its end, the process has exited or is about to:
// the error then says how, so that "EOF" is not all a client learns.
func (p *process) Read(b []byte) (int, error) {
	n, err := p.stdout.Read(b)
	if err == io.EOF {
		if exitErr := p.exitError(); exitErr != nil {
			return n, exitErr
		}
	}
	return n, err
}

// exitError describes how the process ended, with its last stderr line; nil
// if it is still running a second after its pipes broke.
func (p *process) exitError() error {
	if !p.waitExit(time.Second) {
		return nil
	}
	select { // its last words, if they are on their way
	case <-p.stderrDone:
	case <-time.After(100 * time.Millisecond):
	}
	msg := "server process exited"
	if p.err != nil {
		msg += ": " + p.err.Error()
	}
	if last := p.lastStderr.Load(); last != nil {
		msg += fmt.Sprintf(" (last stderr line: %q)", *last)
	}
	return errors.New(msg)
}
func (p *process) Write(b []byte) (int, error) {
	n, err := p.stdin.Write(b)
	if err != nil {
		if exitErr := p.exitError(); exitErr != nil {
			return n, exitErr
		}
	}
	return n, err
}

// Close closes stdin, then signals the process group until it is gone.
func (p *process) Close() error {
	p.closeOnce.Do(func() {
		p.stdin.Close()
		if p.waitExit(stdinGrace) {
			return
		}
		pgid := -p.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		if p.waitExit(killGrace) {
			return
		}
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		p.waitExit(killGrace)
	})
	p.stdout.Close()
	return nil
}

func (p *process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// Interface guards
var (
	_ mcp.Transport      = (*processTransport)(nil)
	_ io.ReadWriteCloser = (*process)(nil)
)
