package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstreamEnv, when set, makes this program serve the bench's upstream MCP
// servers on the address it names instead of running the bench.
const upstreamEnv = "CADDY_MCP_REGISTRY_BENCH_UPSTREAM"

// maybeServeUpstream serves the upstream and exits if upstreamEnv is set.
func maybeServeUpstream() {
	benchkit.MaybeServe(upstreamEnv, "upstream", upstreamHandler)
}

// toolServer is upstream tool server i: serverTools(i), each answering
// with its own name.
func toolServer(i int) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-tools-" + strconv.Itoa(i), Version: "1"}, nil)
	for _, t := range serverTools(i) {
		name := t.name
		s.AddTool(&mcp.Tool{Name: t.name, Description: t.description, InputSchema: t.schema},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil
			})
	}
	return s
}

// toolPath is where upstream tool server i is served.
func toolPath(i int) string { return "/tools/" + strconv.Itoa(i) + "/mcp" }

// upstreamHandler serves:
//   - /tools/<i>/mcp: tool server i, stateless (no session, no GET stream:
//     thousands of registry servers cost the upstream no state between
//     requests and Caddy one keep-alive connection each);
//   - every other path: the echo server over Streamable HTTP with sessions
//     and the standalone GET stream, as a typical remote server is.
func upstreamHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/tools/", mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		rest, _ := strings.CutPrefix(r.URL.Path, "/tools/")
		n, ok := strings.CutSuffix(rest, "/mcp")
		i, err := strconv.Atoi(n)
		if !ok || err != nil || i < 0 {
			return nil
		}
		return toolServer(i)
	}, &mcp.StreamableHTTPOptions{Stateless: true}))
	mux.Handle("/", benchkit.EchoHandler())
	return mux
}

// upstreamProc is the running upstream.
type upstreamProc struct {
	*benchkit.Proc
	base string // http://127.0.0.1:port
}

// echoURL is the echo server's endpoint; alt gives another path to the
// same server (a different URL, hence a different upstream in Caddy).
func (u *upstreamProc) echoURL(alt bool) string {
	if alt {
		return u.base + "/echo-alt/mcp"
	}
	return u.base + "/mcp"
}

func (u *upstreamProc) toolURL(i int) string { return u.base + toolPath(i) }

// startUpstream runs this program again as the upstream.
func startUpstream() (*upstreamProc, error) {
	p, addr, err := benchkit.StartSelf("upstream", upstreamEnv)
	if err != nil {
		return nil, err
	}
	return &upstreamProc{Proc: p, base: "http://" + addr}, nil
}
