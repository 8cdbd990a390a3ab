// Package peers gives Go tests the real MCP peers that live outside Go:
// the official conformance suite, the MCP Inspector CLI and the TypeScript
// server-everything (all from the npm packages pinned in tests/node), the Node
// 22 binary that runs them, and the go-sdk conformance everything-server.
//
// The npm side is installed by `npm ci --prefix tests/node` (run from the
// repository root; .ci/run does it). When it is missing, the helpers fail the
// test with that instruction: they never skip.
package peers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// modulePath is the module whose go.mod marks the repository root.
const modulePath = "github.com/caddy-mcp/caddy-mcp"

// minNodeMajor is the oldest Node major version the npm peers run on
// (the conformance suite needs fs.globSync, new in Node 22).
const minNodeMajor = 22

const installHint = "run `npm ci --prefix tests/node` from the repository root (.ci/run does this)"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the repository root: the nearest directory at or above
// the test's working directory whose go.mod declares this module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() { rootDir, rootErr = findRepoRoot() })
	if rootErr != nil {
		t.Fatalf("peers: %v", rootErr)
	}
	return rootDir
}

func findRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for dir := wd; ; {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && goModModule(data) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for module %s at or above %s", modulePath, wd)
		}
		dir = parent
	}
}

// goModModule returns the module path declared in a go.mod file.
func goModModule(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// NodeModules returns the absolute path of tests/node/node_modules.
func NodeModules(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "tests", "node", "node_modules")
}

// npmFile returns the absolute path of a file inside tests/node/node_modules,
// failing the test with the install instruction when it is absent.
func npmFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(NodeModules(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("peers: %s is missing (%v): %s", p, err, installHint)
	}
	return p
}

var (
	nodeOnce sync.Once
	nodeErr  error
)

// Node returns the path of the Node 22 binary installed by the npm package
// `node` (tests/node/node_modules/node/bin/node). The machine's own node is
// never used: the peers need Node >= 22.
func Node(t testing.TB) string {
	t.Helper()
	p := npmFile(t, "node/bin/node")
	nodeOnce.Do(func() { nodeErr = checkNode(p) })
	if nodeErr != nil {
		t.Fatalf("peers: %v: %s", nodeErr, installHint)
	}
	return p
}

func checkNode(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %v", path, err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < minNodeMajor {
		return fmt.Errorf("%s is Node %q, need >= %d", path, v, minNodeMajor)
	}
	return nil
}

// CmdResult is what a finished peer command left behind.
type CmdResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
	Duration time.Duration
}

// runCmd runs name with args in dir, with env added to the test process's
// environment, and waits at most timeout. A command that exits non-zero is not
// an error here (the caller judges the exit code); one that cannot be started
// or is killed by the timeout or the test's end is.
func runCmd(t testing.TB, timeout time.Duration, dir string, env []string, name string, args ...string) (CmdResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := CmdResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: stopped after %v: %w", filepath.Base(name), res.Duration.Round(time.Millisecond), ctx.Err())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return res, nil
}

// tail returns at most the last n bytes of b, for failure messages.
func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "…" + string(b[len(b)-n:])
}
