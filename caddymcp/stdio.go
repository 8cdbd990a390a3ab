package caddymcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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
	command    string
	args       []string
	env        map[string]string
	dir        string
	logger     *zap.Logger
	maxMessage int64 // the longest stdout line: max_message_size
}

func (s *StdioConfig) transport(logger *zap.Logger, maxMessage int64) *processTransport {
	return &processTransport{command: s.Command, args: s.Args, env: s.Env, dir: s.Dir, logger: logger, maxMessage: maxMessage}
}

// maxStderrLine is how much of a stderr line is logged (and kept as the
// last one); the rest is counted, not kept.
const maxStderrLine = 4 << 10

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
	logger := t.logger.With(zap.Int("pid", cmd.Process.Pid))
	p := &process{cmd: cmd, stdin: stdin, stdout: stdout, exited: make(chan struct{}), stderrDone: make(chan struct{}),
		maxLine: t.maxMessage, logger: logger}
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
	// p.Read holds each line to max_message_size. The SDK's own cap, on
	// what it buffers per message, is a backstop for a message spread over
	// many lines, with a margin so that p.Read's error, which says why,
	// comes first.
	backstop := t.maxMessage + min(t.maxMessage, math.MaxInt-t.maxMessage)
	return (&mcp.IOTransport{Reader: p, Writer: p, MaxLineLength: int(backstop)}).Connect(ctx)
}

// logLines logs each line a process writes to stderr, and keeps the last.
// A line longer than maxStderrLine is cut, and says by how much: the rest
// is read and dropped, so that the process never blocks on a full pipe.
func logLines(r io.Reader, logger *zap.Logger, last *atomic.Pointer[string]) {
	br := bufio.NewReaderSize(r, maxStderrLine)
	for {
		chunk, err := br.ReadSlice('\n')
		line := string(chunk)
		dropped := 0
		for err == bufio.ErrBufferFull {
			chunk, err = br.ReadSlice('\n')
			dropped += len(chunk)
		}
		if dropped > 0 {
			dropped -= len(chunk) - len(bytes.TrimRight(chunk, "\r\n"))
			line += fmt.Sprintf("… [%d more bytes cut]", dropped)
		} else {
			line = strings.TrimRight(line, "\r\n")
		}
		if line != "" || err == nil {
			last.Store(&line)
			logger.Info("upstream stderr", zap.String("line", line))
		}
		if err != nil {
			return
		}
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
	logger     *zap.Logger

	// Only the SDK's one reading goroutine uses these.
	maxLine int64 // max_message_size
	line    int64 // bytes of stdout since the last newline
	broken  error // a line went over maxLine
}

// Read reads stdout. At its end, the process has exited or is about to:
// the error then says how, so that "EOF" is not all a client learns. A
// line longer than max_message_size ends the reading there: the SDK then
// closes the connection, which stops the process, and a new one starts.
func (p *process) Read(b []byte) (int, error) {
	if p.broken != nil {
		return 0, p.broken
	}
	n, err := p.stdout.Read(b)
	if p.overLong(b[:n]) {
		p.broken = fmt.Errorf("server process wrote a line longer than %d bytes to stdout (max_message_size)", p.maxLine)
		p.logger.Error("upstream process broke the message size limit; stopping it", zap.Error(p.broken))
		return n, p.broken
	}
	if err == io.EOF {
		if exitErr := p.exitError(); exitErr != nil {
			return n, exitErr
		}
	}
	return n, err
}

// overLong counts the lines in what was just read, and reports whether one
// is longer than maxLine.
func (p *process) overLong(data []byte) bool {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			p.line += int64(len(data))
			return p.line > p.maxLine
		}
		if p.line+int64(i) > p.maxLine {
			return true
		}
		p.line, data = 0, data[i+1:]
	}
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
