package demo_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// terminateAfter bounds how long closing a session waits for the server
// to exit on its own before signalling it. The demo server exits as soon
// as its stdin is closed, so the bound is never reached.
const terminateAfter = 2 * time.Second

// caddyBinary builds ./cmd/caddy once per test binary run.
var caddyBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "caddy-mcp-demo-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "caddy")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", bin, "github.com/caddy-mcp/caddy-mcp/cmd/caddy").CombinedOutput()
	if err != nil {
		return "", &buildError{err, out}
	}
	return bin, nil
})

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "go build ./cmd/caddy: " + e.err.Error() + "\n" + string(e.out)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := caddyBinary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// buildCaddy returns the path of a freshly built caddy binary, skipping
// the test when that is not possible or wanted.
func buildCaddy(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the caddy binary; skipped in short mode")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not available")
	}
	bin, err := caddyBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// demoServerCommand returns the command that runs the demo server, with
// its stderr captured so that failures can show it.
func demoServerCommand(t *testing.T, bin string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "mcp", "demo-server")
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo server stderr:\n%s", stderr)
		}
	})
	return cmd
}

func TestDemoServerCommand(t *testing.T) {
	bin := buildCaddy(t)
	cmd := demoServerCommand(t, bin)

	client := mcp.NewClient(&mcp.Implementation{Name: "demo-command-test", Version: "v0.0.0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.CommandTransport{
		Command:           cmd,
		TerminateDuration: terminateAfter,
	}, nil)
	if err != nil {
		t.Fatalf("connecting to %s mcp demo-server: %v", bin, err)
	}
	closed := false
	defer func() {
		if !closed {
			cs.Close()
		}
	}()

	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"add", "ask", "echo", "slow", "time"}; !slices.Equal(names, want) {
		t.Errorf("tools = %v, want %v", names, want)
	}

	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{
		Name:      "add",
		Arguments: map[string]any{"a": 40, "b": 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("add failed: %v", res.Content)
	}
	if sc, ok := res.StructuredContent.(map[string]any); !ok || sc["sum"] != 42.0 {
		t.Errorf("add structured content = %#v, want {sum: 42}", res.StructuredContent)
	}

	// Closing stdin must end the server by itself, promptly and cleanly:
	// Close reports the process's exit status, and it would only signal the
	// process after terminateAfter.
	start := time.Now()
	closed = true
	if err := cs.Close(); err != nil {
		t.Errorf("closing the session: %v", err)
	}
	if d := time.Since(start); d >= terminateAfter {
		t.Errorf("the server took %s to exit after its stdin was closed", d)
	}
}

func TestDemoServerCommandSignal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	bin := buildCaddy(t)
	cmd := demoServerCommand(t, bin)
	// Own pipes rather than cmd.StdinPipe and StdoutPipe: Wait closes
	// those, and the client may still be reading when the process exits.
	stdinR, stdin, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	err = cmd.Start()
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdin.Close()
		stdout.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Once the server has answered the handshake, the command has installed
	// its signal handler; stdin stays open, so only the signal can end it.
	client := mcp.NewClient(&mcp.Implementation{Name: "demo-command-test", Version: "v0.0.0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.IOTransport{Reader: stdout, Writer: stdin}, nil)
	if err != nil {
		cmd.Process.Kill()
		<-done
		stdin.Close()
		stdout.Close()
		t.Fatal(err)
	}
	defer cs.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo server ended with %v after SIGTERM, want a clean exit", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("demo server did not exit after SIGTERM")
	}
}

// syncBuffer is a bytes.Buffer safe for a process to write while a test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
