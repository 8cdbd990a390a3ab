package peers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestConformanceAgainstGoServer runs the official conformance suite straight
// against the go-sdk everything-server: the baseline the gateway is measured
// against.
func TestConformanceAgainstGoServer(t *testing.T) {
	t.Parallel()
	url := StartGoConformanceHTTP(t)
	r := ConformanceSuite(t, url, "2025-11-25")
	t.Log(r.String())
	t.Logf("passing scenarios (%d): %s", len(r.Passed()), strings.Join(r.Passed(), " "))
	if len(r.Passed()) == 0 {
		t.Fatalf("no conformance scenario passed against the go-sdk everything-server\n%s", r.Output)
	}
	for _, name := range []string{"server-initialize", "ping", "tools-list", "tools-call-simple-text"} {
		s, ok := r.Scenario(name)
		if !ok {
			t.Errorf("scenario %s did not run", name)
			continue
		}
		if !s.Passed || s.Succeeded == 0 || s.Checks == nil {
			t.Errorf("scenario %s: passed=%v, %d checks succeeded, checks read: %v", name, s.Passed, s.Succeeded, s.Checks != nil)
		}
	}
}

// TestInspectorAgainstGoServer lists and calls tools of the go-sdk
// everything-server over streamable HTTP with the inspector CLI.
func TestInspectorAgainstGoServer(t *testing.T) {
	t.Parallel()
	url := StartGoConformanceHTTP(t)

	out := InspectorCLI(t, url, "--method", "tools/list")
	if names := toolNames(t, out); !slices.Contains(names, "test_simple_text") {
		t.Fatalf("tools/list has no test_simple_text: %v", names)
	}

	out = InspectorCLI(t, url, "--method", "tools/call", "--tool-name", "test_simple_text")
	if !strings.Contains(string(out), "This is a simple text response for testing.") {
		t.Fatalf("tools/call test_simple_text: %s", out)
	}

	res := InspectorCLIResult(t, url, "--method", "tools/call", "--tool-name", "no_such_tool", "--format", "json")
	if res.ExitCode == 0 || !strings.Contains(string(res.Stderr)+string(res.Stdout), "tool_not_found") {
		t.Fatalf("calling an unknown tool: exit %d, stdout %s, stderr %s", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// TestInspectorAgainstServerEverythingStdio drives the TypeScript
// server-everything over stdio with the inspector CLI.
func TestInspectorAgainstServerEverythingStdio(t *testing.T) {
	t.Parallel()
	cmd, args := ServerEverythingStdio(t)
	target := append([]string{cmd}, args...)

	out := InspectorCLI(t, append(target, "--method", "tools/list")...)
	if names := toolNames(t, out); !slices.Contains(names, "echo") {
		t.Fatalf("tools/list has no echo: %v", names)
	}

	out = InspectorCLI(t, append(target, "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=hello peers")...)
	if !strings.Contains(string(out), "Echo: hello peers") {
		t.Fatalf("tools/call echo: %s", out)
	}
}

func toolNames(t *testing.T, listOutput []byte) []string {
	t.Helper()
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(listOutput, &list); err != nil {
		t.Fatalf("tools/list output is not JSON: %v\n%s", err, listOutput)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// TestParseConformance checks the result parser on output shaped like the
// suite's, including a scenario that crashed before writing checks.json.
func TestParseConformance(t *testing.T) {
	dir := t.TempDir()
	write := func(sub, checks string) {
		t.Helper()
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "checks.json"), []byte(checks), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("server-tools-list-2026-11-21T15-02-18-225Z",
		`[{"id":"tools-list","name":"ToolsList","description":"d","status":"SUCCESS"},{"id":"i","name":"I","description":"d","status":"INFO"}]`)
	write("server-tools-call-sampling-2026-11-21T15-02-18-802Z",
		`[{"id":"tools-call-sampling","name":"S","description":"d","status":"FAILURE","errorMessage":"boom"}]`)
	write("server-server-sse-polling-2026-11-21T15-02-19-000Z",
		`[{"id":"p","name":"P","description":"d","status":"WARNING"}]`)
	stdout := "Running active suite (4 scenarios) against http://x/mcp\n\n" +
		"=== Running scenario: tools-list ===\n...\n\n" +
		"=== SUMMARY ===\n" +
		"✓ tools-list: 1 passed, 0 failed\n" +
		"✗ tools-call-sampling: 0 passed, 1 failed\n" +
		"✓ server-sse-polling: 0 passed, 0 failed\n" +
		"✗ crashed-scenario: 0 passed, 1 failed\n" +
		"\nTotal: 1 passed, 2 failed\n"

	got, err := parseConformance(stdout, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	r := Result{Scenarios: got}
	if want := []string{"tools-list", "server-sse-polling"}; !slices.Equal(r.Passed(), want) {
		t.Errorf("passed = %v, want %v", r.Passed(), want)
	}
	if want := []string{"tools-call-sampling", "crashed-scenario"}; !slices.Equal(r.Failed(), want) {
		t.Errorf("failed = %v, want %v", r.Failed(), want)
	}
	if s, _ := r.Scenario("tools-list"); s.Succeeded != 1 || len(s.Checks) != 2 {
		t.Errorf("tools-list = %+v", s)
	}
	if s, _ := r.Scenario("server-sse-polling"); s.Warnings != 1 || !s.Passed {
		t.Errorf("server-sse-polling = %+v", s)
	}
	if s, _ := r.Scenario("crashed-scenario"); s.Failed != 1 || s.Checks != nil {
		t.Errorf("crashed-scenario = %+v", s)
	}
	if s, _ := r.Scenario("tools-call-sampling"); len(s.FailedChecks()) != 1 || s.FailedChecks()[0].ErrorMessage != "boom" {
		t.Errorf("tools-call-sampling = %+v", s)
	}
	if !strings.Contains(r.String(), "tools-call-sampling: boom") {
		t.Errorf("String() = %s", r.String())
	}

	if _, err := parseConformance("no summary here", dir, ""); err == nil {
		t.Error("output without a summary parsed")
	}

	single, err := parseConformance("", dir, "tools-list")
	if err != nil || len(single) != 1 || !single[0].Passed {
		t.Errorf("single scenario = %+v, %v", single, err)
	}
	single, err = parseConformance("", dir, "missing")
	if err != nil || len(single) != 1 || single[0].Passed {
		t.Errorf("single missing scenario = %+v, %v", single, err)
	}
}

func TestGoModModule(t *testing.T) {
	for in, want := range map[string]string{
		"module github.com/caddy-mcp/caddy-mcp\n\ngo 1.26\n": "github.com/caddy-mcp/caddy-mcp",
		"// c\nmodule \"example.com/x\"\n":                   "example.com/x",
		"go 1.26\n":                                          "",
		"modulefoo bar\n":                                    "",
	} {
		if got := goModModule([]byte(in)); got != want {
			t.Errorf("goModModule(%q) = %q, want %q", in, got, want)
		}
	}
}
