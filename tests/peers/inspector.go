package peers

import (
	"path/filepath"
	"testing"
	"time"
)

// Entries of the npm peers, relative to node_modules.
const (
	inspectorEntry        = "@modelcontextprotocol/inspector/clients/launcher/build/index.js"
	serverEverythingEntry = "@modelcontextprotocol/server-everything/dist/index.js"
)

// inspectorTimeout bounds one inspector CLI run.
const inspectorTimeout = 2 * time.Minute

// InspectorCLI runs the MCP Inspector CLI (`mcp-inspector --cli args...`) with
// Node 22 and returns its stdout. It fails the test if the CLI exits non-zero;
// use InspectorCLIResult to look at a failing run.
//
// The target is the first argument: a URL ending in /mcp (streamable HTTP),
// or a command and its arguments for a stdio server. Examples:
//
//	peers.InspectorCLI(t, url, "--method", "tools/list")
//	peers.InspectorCLI(t, url, "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hi")
//	cmd, args := peers.ServerEverythingStdio(t)
//	peers.InspectorCLI(t, append(append([]string{cmd}, args...), "--method", "tools/list")...)
//
// Output is JSON by default: tools/list prints {"tools":[...]}, tools/call the
// CallToolResult. "--format", "json" makes errors JSON too.
func InspectorCLI(t testing.TB, args ...string) []byte {
	t.Helper()
	res := InspectorCLIResult(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("peers: inspector CLI %q exited %d\nstderr:\n%s\nstdout:\n%s",
			args, res.ExitCode, tail(res.Stderr, 4000), tail(res.Stdout, 4000))
	}
	return res.Stdout
}

// InspectorCLIResult runs the inspector CLI like InspectorCLI but returns
// whatever it did, exit code included (the CLI exits 5 when a tool call
// returns isError or names an unknown tool). It fails the test only if the
// CLI cannot be run or times out.
func InspectorCLIResult(t testing.TB, args ...string) CmdResult {
	t.Helper()
	node := Node(t)
	entry := npmFile(t, inspectorEntry)
	// The inspector keeps a catalog, a client config and secrets under
	// $HOME/.mcp-inspector: give each run its own empty home.
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"MCP_CATALOG_PATH=" + filepath.Join(home, "mcp.json"),
		"NO_COLOR=1",
		"FORCE_COLOR=0",
	}
	all := append([]string{entry, "--cli"}, args...)
	res, err := runCmd(t, inspectorTimeout, home, env, node, all...)
	if err != nil {
		t.Fatalf("peers: inspector CLI %q: %v\nstderr:\n%s", args, err, tail(res.Stderr, 4000))
	}
	return res
}

// ServerEverythingStdio returns the command line that starts the TypeScript
// reference server, @modelcontextprotocol/server-everything, over stdio with
// Node 22. Both the command and the script are absolute paths.
func ServerEverythingStdio(t testing.TB) (command string, args []string) {
	t.Helper()
	return Node(t), []string{npmFile(t, serverEverythingEntry), "stdio"}
}
