package peers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// conformanceEntry is the conformance package's bin entry, relative to
// node_modules.
const conformanceEntry = "@modelcontextprotocol/conformance/dist/index.js"

// Check statuses written by the conformance suite.
const (
	StatusSuccess = "SUCCESS"
	StatusFailure = "FAILURE"
	StatusWarning = "WARNING"
	StatusInfo    = "INFO"
)

// Check is one entry of a scenario's checks.json.
type Check struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Status       string          `json:"status"`
	ErrorMessage string          `json:"errorMessage,omitempty"`
	Details      json.RawMessage `json:"details,omitempty"`
}

// Scenario is the outcome of one conformance scenario.
type Scenario struct {
	Name string
	// Passed is the suite's own verdict: no check of the scenario failed.
	// Warnings do not fail a scenario (as in the suite's exit code).
	Passed bool
	// Succeeded, Failed and Warnings count the checks by status.
	Succeeded, Failed, Warnings int
	// Checks are the scenario's checks.json; nil when the scenario crashed
	// before writing one (then Failed is at least 1).
	Checks []Check
}

// FailedChecks returns the scenario's checks whose status is FAILURE.
func (s Scenario) FailedChecks() []Check {
	var out []Check
	for _, c := range s.Checks {
		if c.Status == StatusFailure {
			out = append(out, c)
		}
	}
	return out
}

// Result is the outcome of one run of the conformance suite.
type Result struct {
	// Scenarios in the order they ran.
	Scenarios []Scenario
	// ExitCode of the suite: 0 when no scenario failed.
	ExitCode int
	// Output is the suite's stdout then stderr.
	Output   string
	Duration time.Duration
}

// Passed returns the names of the scenarios that passed.
func (r Result) Passed() []string { return r.names(true) }

// Failed returns the names of the scenarios that failed.
func (r Result) Failed() []string { return r.names(false) }

func (r Result) names(passed bool) []string {
	var out []string
	for _, s := range r.Scenarios {
		if s.Passed == passed {
			out = append(out, s.Name)
		}
	}
	return out
}

// Scenario returns the named scenario's outcome.
func (r Result) Scenario(name string) (Scenario, bool) {
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// String is a short human summary, with the failed checks of failed scenarios.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conformance: %d scenarios: %d passing, %d failing (exit %d, %v)",
		len(r.Scenarios), len(r.Passed()), len(r.Failed()), r.ExitCode, r.Duration.Round(time.Millisecond))
	for _, s := range r.Scenarios {
		if s.Passed {
			continue
		}
		fmt.Fprintf(&b, "\n  FAIL %s (%d ok, %d failed)", s.Name, s.Succeeded, s.Failed)
		for _, c := range s.FailedChecks() {
			msg := c.ErrorMessage
			if msg == "" {
				msg = c.Description
			}
			fmt.Fprintf(&b, "\n    - %s: %s", c.ID, msg)
		}
	}
	return b.String()
}

// ConformanceOptions selects what RunConformance runs.
type ConformanceOptions struct {
	// SpecVersion filters scenarios by spec version, e.g. "2025-11-25"
	// (cumulative); empty runs every version's scenarios.
	SpecVersion string
	// Suite is "active" (the default when empty), "all" or "pending".
	Suite string
	// Scenario runs that one scenario only (Suite is then ignored).
	Scenario string
	// Timeout for the whole run; 10 minutes when zero.
	Timeout time.Duration
}

// ConformanceSuite runs the official MCP conformance suite (its active
// scenarios) in server mode against the MCP endpoint url, e.g.
// "http://127.0.0.1:8080/mcp", and returns the outcome of every scenario.
// Failing scenarios do not fail the test: the caller judges the Result.
// The test fails only when the suite cannot be run or its results read.
func ConformanceSuite(t testing.TB, url string, specVersion string) Result {
	t.Helper()
	return RunConformance(t, url, ConformanceOptions{SpecVersion: specVersion})
}

// RunConformance runs the conformance suite in server mode with opts.
func RunConformance(t testing.TB, url string, opts ConformanceOptions) Result {
	t.Helper()
	node := Node(t)
	entry := npmFile(t, conformanceEntry)
	work := t.TempDir()
	outDir := filepath.Join(work, "results")

	args := []string{entry, "server", "--url", url, "--output-dir", outDir}
	if opts.SpecVersion != "" {
		args = append(args, "--spec-version", opts.SpecVersion)
	}
	if opts.Scenario != "" {
		args = append(args, "--scenario", opts.Scenario)
	} else if opts.Suite != "" {
		args = append(args, "--suite", opts.Suite)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	// NO_COLOR keeps ANSI colour codes out of the text that is parsed.
	res, err := runCmd(t, timeout, work, []string{"NO_COLOR=1", "FORCE_COLOR=0"}, node, args...)
	output := string(res.Stdout) + string(res.Stderr)
	if err != nil {
		t.Fatalf("peers: conformance suite against %s: %v\noutput:\n%s", url, err, tail([]byte(output), 8000))
	}
	scenarios, err := parseConformance(string(res.Stdout), outDir, opts.Scenario)
	if err != nil {
		t.Fatalf("peers: conformance suite against %s (exit %d): %v\noutput:\n%s", url, res.ExitCode, err, tail([]byte(output), 8000))
	}
	return Result{Scenarios: scenarios, ExitCode: res.ExitCode, Output: output, Duration: res.Duration}
}

// summaryLine matches a line of the suite's "=== SUMMARY ===" block, e.g.
// "✓ tools-list: 1 passed, 0 failed".
var summaryLine = regexp.MustCompile(`^([✓✗]) (\S+): (\d+) passed, (\d+) failed`)

// resultDirName matches a result directory: "server-" + scenario + "-" + an
// ISO time with ':' and '.' made '-'.
var resultDirName = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$`)

// parseConformance reads the per-scenario checks.json files under outDir and,
// for a suite run, the summary on stdout, which also lists the scenarios that
// crashed before writing a checks.json. single is the scenario name of a
// single-scenario run (which prints no summary), or "".
func parseConformance(stdout, outDir, single string) ([]Scenario, error) {
	checks, err := readChecks(outDir)
	if err != nil {
		return nil, err
	}

	if single != "" {
		s := Scenario{Name: single}
		if cs, ok := checks[single]; ok {
			s.Checks = cs
			s.count()
		} else {
			s.Failed = 1
		}
		s.Passed = s.Failed == 0
		return []Scenario{s}, nil
	}

	_, summary, ok := strings.Cut(stdout, "=== SUMMARY ===")
	if !ok {
		return nil, fmt.Errorf("no summary in the suite's output")
	}
	var out []Scenario
	for line := range strings.Lines(summary) {
		m := summaryLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		s := Scenario{Name: m[2]}
		if cs, ok := checks[s.Name]; ok {
			s.Checks = cs
			s.count()
		} else {
			// The scenario threw before it wrote checks.json; the summary's
			// counts are all there is.
			s.Succeeded, _ = strconv.Atoi(m[3])
			s.Failed, _ = strconv.Atoi(m[4])
		}
		s.Passed = m[1] == "✓" && s.Failed == 0
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the suite's summary lists no scenario")
	}
	return out, nil
}

func (s *Scenario) count() {
	s.Succeeded, s.Failed, s.Warnings = 0, 0, 0
	for _, c := range s.Checks {
		switch c.Status {
		case StatusSuccess:
			s.Succeeded++
		case StatusFailure:
			s.Failed++
		case StatusWarning:
			s.Warnings++
		}
	}
}

// readChecks maps scenario names to their checks.json under outDir. A
// scenario run more than once keeps its latest run (directory names sort by
// time).
func readChecks(outDir string) (map[string][]Check, error) {
	entries, err := os.ReadDir(outDir)
	if os.IsNotExist(err) {
		return map[string][]Check{}, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	out := make(map[string][]Check)
	for _, dir := range names {
		m := resultDirName.FindStringSubmatch(dir)
		if m == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(outDir, dir, "checks.json"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var cs []Check
		if err := json.Unmarshal(data, &cs); err != nil {
			return nil, fmt.Errorf("%s/checks.json: %w", dir, err)
		}
		out[m[1]] = cs
	}
	return out, nil
}
