package caddymcp

import (
	"errors"
	"strings"
	"testing"
)

// TestUnavailableErrorHidesURLCredentials: the error a client gets for an
// unreachable remote names the server and the cause, but not the secrets an
// operator put in the URL.
func TestUnavailableErrorHidesURLCredentials(t *testing.T) {
	const raw = "https://user:pass@mcp.example.com/mcp?key=s3cret"
	err := &errUnavailable{server: "remote", url: raw, err: errors.New(`Post "` + raw + `": dial tcp: connection refused`)}
	msg := err.Error()
	for _, secret := range []string{"pass", "s3cret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q shows %q", msg, secret)
		}
	}
	for _, want := range []string{`server "remote"`, "mcp.example.com/mcp", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}
