// Command policy is the policy program of the exec interceptor's tests. It
// reads the call document on standard input, and lets the call through
// unless the tool is "delete", or the call failed (in the after phase): then
// it writes a reason to standard error and exits with -exit.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func main() {
	record := flag.String("record", "", "write the document read to this file")
	sleep := flag.Duration("sleep", 0, "sleep this long before answering")
	spawn := flag.String("spawn", "", "first start a copy of this program that sleeps a minute, and write its pid to this file")
	exit := flag.Int("exit", 1, "exit status of a refusal")
	reason := flag.String("reason", "", "what to write to standard error on a refusal, instead of the usual reason")
	flag.Parse()

	if *spawn != "" {
		child := exec.Command(os.Args[0], "-sleep", "1m")
		child.Stderr = os.Stderr // holds the interceptor's pipe open
		if err := child.Start(); err != nil {
			fail(err)
		}
		if err := os.WriteFile(*spawn, []byte(strconv.Itoa(child.Process.Pid)), 0o600); err != nil {
			fail(err)
		}
	}
	doc, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	if *record != "" {
		if err := os.WriteFile(*record, doc, 0o600); err != nil {
			fail(err)
		}
	}
	time.Sleep(*sleep)

	var call struct {
		Phase   string `json:"phase"`
		Tool    string `json:"tool"`
		IsError bool   `json:"is_error"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(doc, &call); err != nil {
		fail(err)
	}
	why := ""
	switch {
	case call.Tool == "delete":
		why = fmt.Sprintf("tool %q is not allowed here\nthis second line is not the reason", call.Tool)
	case call.Phase == "after" && (call.IsError || call.Error != ""):
		why = "the call failed: " + strings.TrimSpace(call.Error)
	default:
		return
	}
	if *reason != "" {
		why = *reason
	}
	fmt.Fprint(os.Stderr, why)
	os.Exit(*exit)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "policy:", err)
	os.Exit(2)
}
