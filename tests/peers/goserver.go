package peers

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// goConformancePkg is the go-sdk's conformance server, built from the module
// version in go.mod.
const goConformancePkg = "github.com/modelcontextprotocol/go-sdk/conformance/everything-server"

var (
	goServerOnce sync.Once
	goServerPath string
	goServerErr  error
)

// GoConformanceServer builds the go-sdk conformance everything-server (once
// per test binary) and returns the binary's path. The server takes
// -http ADDR (streamable HTTP at ADDR, on every path; stdio without it) and
// -stateless (default true).
func GoConformanceServer(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	goServerOnce.Do(func() { goServerPath, goServerErr = buildGoConformanceServer(root) })
	if goServerErr != nil {
		t.Fatalf("peers: building %s: %v", goConformancePkg, goServerErr)
	}
	return goServerPath
}

func buildGoConformanceServer(root string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	// One directory shared by all test binaries: each binary builds once (the
	// build cache makes that quick) and renames its build into place, so the
	// file is always whole and nothing piles up in the temp dir.
	dir := filepath.Join(os.TempDir(), "caddy-mcp-peers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "everything-server-*.tmp")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp, goConformancePkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	final := filepath.Join(dir, "everything-server")
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return final, nil
}

// StartGoConformanceHTTP starts the go-sdk conformance everything-server in
// stateful streamable HTTP mode on a free port of 127.0.0.1, waits until it
// answers, and stops it when the test ends. It returns the MCP endpoint URL,
// "http://127.0.0.1:PORT/mcp". Stateful mode is the one in which the whole
// conformance suite passes (sampling and elicitation need it).
func StartGoConformanceHTTP(t testing.TB) (url string) {
	t.Helper()
	return startGoConformance(t, false)
}

// StartGoConformanceHTTPStateless is StartGoConformanceHTTP with the server
// in stateless mode (-stateless=true).
func StartGoConformanceHTTPStateless(t testing.TB) (url string) {
	t.Helper()
	return startGoConformance(t, true)
}

func startGoConformance(t testing.TB, stateless bool) string {
	t.Helper()
	bin := GoConformanceServer(t)
	var lastErr error
	for range 5 {
		addr := freeLoopbackAddr(t)
		url, err := startServer(t, bin, addr, "-http", addr, "-stateless="+strconv.FormatBool(stateless))
		if err == nil {
			return url
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("peers: starting the go-sdk everything-server: %v", lastErr)
	return ""
}

// startServer starts bin with args, listening at addr, and waits until it
// answers HTTP there. The server is killed when the test ends.
func startServer(t testing.TB, bin, addr string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var log bytes.Buffer // read only after Wait
	cmd.Stdout = &log
	cmd.Stderr = &log
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()

	url := "http://" + addr + "/mcp"
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("%s exited before answering: %s\n%s", filepath.Base(bin), cmd.ProcessState, log.String())
		default:
		}
		// Any HTTP answer will do: a GET without a session is refused.
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			killGroup(cmd)
			<-exited
			return "", fmt.Errorf("%s did not answer at %s within 30s: %v\n%s", filepath.Base(bin), url, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		killGroup(cmd)
		<-exited
		if t.Failed() {
			t.Logf("peers: log of %s at %s:\n%s", filepath.Base(bin), addr, tail(log.Bytes(), 8000))
		}
	})
	return url, nil
}

// freeLoopbackAddr returns a 127.0.0.1 address whose port was free a moment
// ago.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peers: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
