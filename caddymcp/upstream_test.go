package caddymcp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

// TestRemoteClientClosesIdleConnections: a remote upstream's client, with
// configured headers (the wrapping transport), lets a stopped upstream close
// its kept-alive connections at once instead of at their idle timeout.
func TestRemoteClientClosesIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Token"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	client := (&RemoteConfig{URL: srv.URL, Headers: map[string]string{"X-Token": "t"}}).httpClient()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "t" {
		t.Fatalf("the header did not reach the server: %q", body)
	}
	client.CloseIdleConnections()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the kept-alive connection is still open after CloseIdleConnections")
	}
}
