package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstreamEnv, when set in the environment, makes this program (the bench
// command or its test binary) serve the echo upstream on the address it
// names instead of doing anything else. The bench starts its upstream this
// way, as a process of its own, so that the upstream's CPU time is measured
// apart from the client's.
const upstreamEnv = "CADDY_MCP_BENCH_UPSTREAM"

// maybeServeUpstream serves the echo upstream and exits if upstreamEnv is
// set; otherwise it returns at once.
func maybeServeUpstream() {
	addr := os.Getenv(upstreamEnv)
	if addr == "" {
		return
	}
	if err := serveEcho(addr); err != nil {
		fmt.Fprintln(os.Stderr, "echo upstream:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// echoArgs are the echo tool's arguments.
type echoArgs struct {
	Text string `json:"text"`
}

// newEchoServer is the bench's upstream MCP server: one cheap tool, echo,
// that returns its text argument. It is a raw tool handler, so the server
// does no schema validation: the upstream's cost per call is the SDK's
// transport and dispatch, which is the same for every path measured.
func newEchoServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-echo", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{
		Name:        "echo",
		Description: "Returns its text argument.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`),
	}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args echoArgs
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Text}}}, nil
	})
	return s
}

// serveEcho serves the echo server over Streamable HTTP with sessions
// (stateful), on every path, HTTP/1.1 and h2c. It prints "listening ADDR" on
// stdout once it accepts connections, and returns when stdin closes (the
// bench that started it is gone or done).
func serveEcho(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := newEchoServer()
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:   mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil),
		Protocols: protocols,
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = l.Close()
	}()
	fmt.Printf("listening %s\n", l.Addr())
	if err := srv.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// proc is a child process the bench started.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	mu    sync.Mutex
	log   strings.Builder
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log.Len() < 1<<20 {
		p.log.Write(b)
	}
	return len(b), nil
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProc starts a child that dies with the bench (Pdeathsig) and that
// stop ends.
func startProc(name string, cmd *exec.Cmd, stdout io.Writer) (*proc, error) {
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
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

// stop asks the process to end (stdin closed, SIGTERM) and kills it if it
// has not within 10 seconds.
func (p *proc) stop() {
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

// upstreamProc is the running upstream MCP server.
type upstreamProc struct {
	*proc
	url  string // Streamable HTTP endpoint
	tool string // the tool the bench calls
	args map[string]any
	h2c  bool // whether it serves h2c too
}

// startEchoUpstream runs this program again as the echo upstream.
func startEchoUpstream(payload int) (*upstreamProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), upstreamEnv+"=127.0.0.1:0")
	pr, pw := io.Pipe()
	p, err := startProc("echo upstream", cmd, pw)
	if err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		first := true
		for sc.Scan() {
			if first {
				lines <- sc.Text()
				first = false
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		addr, found := strings.CutPrefix(line, "listening ")
		if !ok || !found {
			p.stop()
			return nil, fmt.Errorf("echo upstream did not start: %q\n%s", line, p.logs())
		}
		return &upstreamProc{proc: p, url: "http://" + addr + "/mcp", tool: "echo",
			args: map[string]any{"text": strings.Repeat("x", payload)}, h2c: true}, nil
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("echo upstream did not start within 30s:\n%s", p.logs())
	}
}

// everythingPkg is the go-sdk conformance server.
const everythingPkg = "github.com/modelcontextprotocol/go-sdk/conformance/everything-server"

// startEverythingUpstream builds and runs the go-sdk conformance
// everything-server over Streamable HTTP with sessions (-stateless=false);
// the bench calls its test_simple_text tool.
func startEverythingUpstream(root, dir string) (*upstreamProc, error) {
	bin := filepath.Join(dir, "everything-server")
	build := exec.Command("go", "build", "-o", bin, everythingPkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", everythingPkg, err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProc("everything-server", exec.Command(bin, "-http", addr, "-stateless=false"), nil)
	if err != nil {
		return nil, err
	}
	url := "http://" + addr + "/mcp"
	if err := waitHTTP(p, url); err != nil {
		p.stop()
		return nil, err
	}
	return &upstreamProc{proc: p, url: url, tool: "test_simple_text", args: map[string]any{}}, nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers at all, or p exits.
func waitHTTP(p *proc, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited early:\n%s", p.name, p.logs())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer at %s within 60s: %v\n%s", p.name, url, err, p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
