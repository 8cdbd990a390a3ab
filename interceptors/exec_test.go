package interceptors

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// buildPolicy builds testdata/policy into dir.
func buildPolicy(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "policy")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/policy").CombinedOutput()
	if err != nil {
		t.Fatalf("building the policy program: %v\n%s", err, out)
	}
	return bin
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	policy := buildPolicy(t, dir)
	record := filepath.Join(dir, "record.json")
	args := `{"path":"/tmp/notes","recursive":true}`

	t.Run("allow and the document", func(t *testing.T) {
		e := provisioned(t, &Exec{Command: policy, Args: []string{"-record", record}})
		if err := e.Before(t.Context(), newCall("fs", "search", args)); err != nil {
			t.Fatalf("Before: %v", err)
		}
		assertDocument(t, record, `{"phase":"before","server":"fs","tool":"search","principal":"alice","session":"s1","arguments":`+args+`}`)
	})

	t.Run("deny with the first line of stderr", func(t *testing.T) {
		e := provisioned(t, &Exec{Command: policy})
		err := e.Before(t.Context(), newCall("fs", "delete", args))
		if want := `tool "delete" is not allowed here`; errText(err) != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})

	t.Run("long reason is capped", func(t *testing.T) {
		e := provisioned(t, &Exec{Command: policy, Args: []string{"-reason", strings.Repeat("é", 1000)}})
		reason := errText(e.Before(t.Context(), newCall("fs", "delete", args)))
		if len(reason) > 512 || !strings.HasPrefix(reason, "éé") || !strings.HasSuffix(reason, "…") {
			t.Errorf("reason of %d bytes, %.20q…%q: want at most 512, cut with …", len(reason), reason, reason[max(0, len(reason)-8):])
		}
	})

	t.Run("deny without a reason", func(t *testing.T) {
		e := provisioned(t, &Exec{Command: policy, Args: []string{"-exit", "3", "-reason", " \n"}})
		err := e.Before(t.Context(), newCall("fs", "delete", args))
		if want := "policy program exit status 3"; errText(err) != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})

	t.Run("after", func(t *testing.T) {
		os.Remove(record)
		e := provisioned(t, &Exec{Command: policy, Args: []string{"-record", record}})
		failed := &caddymcp.Outcome{Err: errors.New("upstream went away")}
		if err := e.After(t.Context(), newCall("fs", "search", args), failed); err != nil {
			t.Errorf("After without after: %v", err)
		}
		if _, err := os.Stat(record); !os.IsNotExist(err) {
			t.Errorf("the program ran after the call without after: %v", err)
		}

		e = provisioned(t, &Exec{Command: policy, Args: []string{"-record", record}, RunAfter: true})
		ok := &caddymcp.Outcome{Result: json.RawMessage(`{"content":[{"type":"text","text":"3 files"}]}`)}
		if err := e.After(t.Context(), newCall("fs", "search", args), ok); err != nil {
			t.Errorf("After: %v", err)
		}
		assertDocument(t, record, `{"phase":"after","server":"fs","tool":"search","principal":"alice","session":"s1","arguments":`+args+
			`,"result":{"content":[{"type":"text","text":"3 files"}]},"is_error":false,"error":""}`)

		err := e.After(t.Context(), newCall("fs", "search", args), failed)
		if want := "the call failed: upstream went away"; errText(err) != want {
			t.Errorf("After a failed call: got %v, want %q", err, want)
		}
		assertDocument(t, record, `{"phase":"after","server":"fs","tool":"search","principal":"alice","session":"s1","arguments":`+args+
			`,"result":null,"is_error":false,"error":"upstream went away"}`)
	})

	t.Run("timeout kills the process group", func(t *testing.T) {
		pidFile := filepath.Join(dir, "child.pid")
		e := provisioned(t, &Exec{Command: policy, Args: []string{"-spawn", pidFile, "-sleep", "1m"}, Timeout: caddy.Duration(300 * time.Millisecond)})
		start := time.Now()
		err := e.Before(t.Context(), newCall("fs", "search", args))
		if want := "timed out after 300ms"; errText(err) != want {
			t.Errorf("got %v, want %q", err, want)
		}
		if took := time.Since(start); took > 900*time.Millisecond {
			t.Errorf("Before took %v with a timeout of 300ms", took)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the program's child %d outlived the timeout", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// assertDocument checks the document the policy program recorded.
func assertDocument(t *testing.T, record, want string) {
	t.Helper()
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the program recorded nothing: %v", err)
	}
	if string(got) != want {
		t.Errorf("document\n got %s\nwant %s", got, want)
	}
}

// alive reports whether a process runs: it exists and is no zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command's name in parentheses.
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func TestExecProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		e    *Exec
		want string
	}{
		{&Exec{}, "command is required"},
		{&Exec{Command: "/nonexistent/policy"}, `command "/nonexistent/policy": `},
		{&Exec{Command: "no-such-policy-program"}, `command "no-such-policy-program": exec: "no-such-policy-program": executable file not found in $PATH`},
		{&Exec{Command: "go", Timeout: -1}, "timeout -1ns: must not be negative"},
	} {
		if err := provision(t, tc.e); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: got error %v, want %q", tc.e, err, tc.want)
		}
	}
}

func TestExecCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"exec {\n command\n}":       "command: a program is required",
		"exec {\n timeout\n}":       "wrong argument count",
		"exec {\n timeout soon\n}":  `timeout "soon"`,
		"exec {\n after yes\n}":     "wrong argument count",
		"exec {\n shell sh -c x\n}": `unrecognized exec option "shell"`,
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v, want %q", in, err, want)
		}
	}
}
