package benchkit

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
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A benchmark's upstream is the benchmark's own binary run again with an
// environment variable naming the address to serve: a process of its own,
// so that its CPU time is measured apart from the client's.

// MaybeServe serves handler() and exits if the environment variable env
// names an address; otherwise it returns at once. what names the upstream
// in an error.
func MaybeServe(env, what string, handler func() http.Handler) {
	addr := os.Getenv(env)
	if addr == "" {
		return
	}
	if err := serve(addr, handler()); err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve serves h over HTTP/1.1 and h2c. It prints "listening ADDR" on
// stdout once it accepts connections, and returns when stdin closes (the
// benchmark that started it is gone or done).
func serve(addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: protocols}
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

// StartSelf runs this program again with env set to a loopback address to
// serve (see MaybeServe), and returns the child and the address it listens
// on.
func StartSelf(name, env string) (*Proc, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env+"=127.0.0.1:0")
	pr, pw := io.Pipe()
	p, err := StartProc(name, cmd, pw)
	if err != nil {
		return nil, "", err
	}
	// The first line is the address; the rest is read too, so that the
	// child never blocks on a full pipe.
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
			p.Stop()
			return nil, "", fmt.Errorf("%s did not start: %q\n%s", name, line, p.logs())
		}
		return p, addr, nil
	case <-time.After(30 * time.Second):
		p.Stop()
		return nil, "", fmt.Errorf("%s did not start within 30s:\n%s", name, p.logs())
	}
}

// EchoHandler serves the echo server over Streamable HTTP with sessions
// (stateful), on every path.
func EchoHandler() http.Handler {
	s := newEchoServer()
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}

// newEchoServer is the upstream MCP server that calls go to: one cheap
// tool, echo, that returns its text argument. It is a raw tool handler, so
// the server does no schema validation: the upstream's cost per call is
// the SDK's transport and dispatch, the same for every path measured.
func newEchoServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-echo", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{
		Name:        "echo",
		Description: "Returns its text argument.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`),
	}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Text}}}, nil
	})
	return s
}
