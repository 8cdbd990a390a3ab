package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// upstreamEnv, when set in the environment, makes this program (the bench
// command or its test binary) serve the echo upstream on the address it
// names instead of doing anything else.
const upstreamEnv = "CADDY_MCP_BENCH_UPSTREAM"

// maybeServeUpstream serves the echo upstream and exits if upstreamEnv is
// set; otherwise it returns at once.
func maybeServeUpstream() {
	benchkit.MaybeServe(upstreamEnv, "echo upstream", benchkit.EchoHandler)
}

// upstreamProc is the running upstream MCP server.
type upstreamProc struct {
	*benchkit.Proc
	url  string // Streamable HTTP endpoint
	tool string // the tool the bench calls
	args map[string]any
	h2c  bool // whether it serves h2c too
}

// startEchoUpstream runs this program again as the echo upstream.
func startEchoUpstream(payload int) (*upstreamProc, error) {
	p, addr, err := benchkit.StartSelf("echo upstream", upstreamEnv)
	if err != nil {
		return nil, err
	}
	return &upstreamProc{Proc: p, url: "http://" + addr + "/mcp", tool: "echo",
		args: map[string]any{"text": strings.Repeat("x", payload)}, h2c: true}, nil
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
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := benchkit.StartProc("everything-server", exec.Command(bin, "-http", addr, "-stateless=false"), nil)
	if err != nil {
		return nil, err
	}
	url := "http://" + addr + "/mcp"
	if err := benchkit.WaitHTTP(p, url, 60*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return &upstreamProc{Proc: p, url: url, tool: "test_simple_text", args: map[string]any{}}, nil
}
