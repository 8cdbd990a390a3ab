package caddymcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestRemoteSecretsStayOutOfErrorsAndLogs: the credentials of a remote
// server, in its URL's query and in a header, reach the server, but neither
// the error a client gets nor any log line shows them: not for a closed
// port, where net/http quotes the URL, and not for a server that answers
// 500 with the URL and the header quoted back.
func TestRemoteSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	const secret, secret2 = "SECRET", "SECRET2"

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	got := make(chan string, 16)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query().Get("api_key") + " " + r.Header.Get("Authorization")
		http.Error(w, fmt.Sprintf("no: %s %s", r.URL, r.Header.Get("Authorization")), http.StatusInternalServerError)
	}))
	defer failing.Close()

	for _, tc := range []struct{ name, base string }{{"closed port", closed}, {"500", failing.URL}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &ServerConfig{Name: "creds", Remote: &RemoteConfig{
				URL:     tc.base + "/mcp?api_key=" + secret + "&x=1",
				Headers: map[string]string{"Authorization": "Bearer " + secret2},
			}}
			u, logs := startUpstream(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err := u.call(ctx, func(ctx context.Context, cs *mcp.ClientSession) error { return cs.Ping(ctx, nil) })
			if err == nil {
				t.Fatal("a call to a server that cannot answer succeeded")
			}
			if tc.base == failing.URL {
				select {
				case sent := <-got:
					if sent != secret+" Bearer "+secret2 {
						t.Fatalf("the server got %q: the credentials did not reach it", sent)
					}
				default:
					t.Fatal("the request did not reach the server")
				}
			}
			var unavailable *errUnavailable
			if !errors.As(err, &unavailable) {
				t.Fatalf("error %v: want an errUnavailable", err)
			}
			msg := err.Error()
			if strings.Contains(msg, secret) {
				t.Errorf("error shows a secret: %s", msg)
			}
			if !strings.Contains(msg, `server "creds"`) {
				t.Errorf("error %q does not name the server", msg)
			}
			if tc.base == closed {
				// net/http quotes the URL: hiding the secret takes redaction.
				if !strings.Contains(unavailable.err.Error(), secret) {
					t.Fatalf("wrapped error %q: want the URL with its secret", unavailable.err)
				}
				if !strings.Contains(msg, "api_key=REDACTED&x=1") {
					t.Errorf("error %q lacks the redacted URL", msg)
				}
			} else {
				// The SDK drops the body; the fast path quotes it (fastpath.go),
				// in an error made as here: the body echoes both secrets.
				resp, err := u.remoteClient().Get(cfg.Remote.URL)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				<-got
				quoted := u.unavailable(fmt.Errorf("upstream answered %s: %s", resp.Status, body))
				if !strings.Contains(quoted.err.Error(), secret2) {
					t.Fatalf("body %q does not echo the header", body)
				}
				if m := quoted.Error(); strings.Contains(m, secret) || !strings.Contains(m, "/mcp?api_key=REDACTED&x=1 REDACTED") {
					t.Errorf("fast-path error shows a secret, or not the rest: %s", m)
				}
			}
			if logs.Len() == 0 {
				t.Fatal("nothing was logged")
			}
			urlLogged := false
			for _, e := range logs.All() {
				text := entryText(e)
				if strings.Contains(text, secret) {
					t.Errorf("log shows a secret: %s", text)
				}
				urlLogged = urlLogged || strings.Contains(text, "api_key=REDACTED")
			}
			if tc.base == closed && !urlLogged {
				t.Errorf("no log line quotes the URL, redacted: %v", logs.All())
			}
		})
	}
}

// TestRedactURL: the password and the values of secret-looking query
// parameters go, the rest stays, order and escaping included.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp"},
		{"https://user:pa%40ss@mcp.example.com/mcp", "https://user:REDACTED@mcp.example.com/mcp"},
		{"https://user@mcp.example.com/mcp", "https://user@mcp.example.com/mcp"},
		{"https://h/mcp?api_key=s&x=1&Token=t&y=2", "https://h/mcp?api_key=REDACTED&x=1&Token=REDACTED&y=2"},
		{"https://h/?X-Amz-Signature=abc&X-Amz-Date=1&apikey=k&ACCESS_TOKEN=a&auth=z&sig=q&password=p&client_secret=c",
			"https://h/?X-Amz-Signature=REDACTED&X-Amz-Date=1&apikey=REDACTED&ACCESS_TOKEN=REDACTED&auth=REDACTED&sig=REDACTED&password=REDACTED&client_secret=REDACTED"},
		{"https://h/?api%5Fkey=s&page=2&flag", "https://h/?api%5Fkey=REDACTED&page=2&flag"},
		// Unparseable: all but scheme, host and path goes.
		{"https://u:p@h/m%zz?token=t", "https://REDACTED@h/m%zz?REDACTED"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRedactorSecrets: header values (and the token of "Bearer <token>"),
// secret environment values and placeholder-sourced ones, expanded, are
// hidden; short and ordinary values are not.
func TestRedactorSecrets(t *testing.T) {
	t.Setenv("CADDYMCP_TEST_TOKEN", "from-the-environment")
	r := newRedactor(&ServerConfig{Name: "s", Stdio: &StdioConfig{Command: "x", Env: map[string]string{
		"GITHUB_TOKEN": "ghp_literal",
		"FROM_ENV":     "{env.CADDYMCP_TEST_TOKEN}",
		"NODE_ENV":     "production",
		"API_KEY":      "abc", // too short to hide
	}}})
	got := r.scrub("ghp_literal from-the-environment production abc")
	if want := "REDACTED REDACTED production abc"; got != want {
		t.Errorf("stdio: %q, want %q", got, want)
	}

	r = newRedactor(&ServerConfig{Name: "s", Remote: &RemoteConfig{URL: "https://u:hunter22@h/mcp?token=tok-123",
		Headers: map[string]string{"Authorization": "Bearer abc.def.ghi", "X-Tenant": "acme-corp"}}})
	got = r.scrub("hunter22 tok-123 abc.def.ghi Bearer acme-corp")
	if want := "REDACTED REDACTED REDACTED Bearer REDACTED"; got != want {
		t.Errorf("remote: %q, want %q", got, want)
	}
}

// TestRedactingLoggerLetsTheCoreDecide: the redacting logger scrubs what
// it writes, and writes only what the configured core would: its level,
// and its sampling (here: the first of identical entries per second).
func TestRedactingLoggerLetsTheCoreDecide(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	sampled := zapcore.NewSamplerWithOptions(core, time.Second, 1, 0)
	r := newRedactor(&ServerConfig{Name: "s", Remote: &RemoteConfig{URL: "https://h/mcp?token=tok-secret"}})
	_, relayed := newLogRelay(zap.New(sampled))
	logger := redactLogs(relayed, r).With(zap.String("url", "https://h/mcp?token=tok-secret"))

	logger.Debug("below the level tok-secret")
	logger.Info("twice tok-secret", zap.Error(errors.New("failed: tok-secret")), zap.Stringer("s", stringer("tok-secret!")))
	logger.Info("twice tok-secret", zap.Error(errors.New("failed: tok-secret")))

	got := logs.All()
	if len(got) != 1 {
		t.Fatalf("got %d entries, want the one info entry the sampler lets through: %v", len(got), got)
	}
	want := map[string]any{"url": "https://h/mcp?token=REDACTED", "error": "failed: REDACTED", "s": "REDACTED!"}
	if got[0].Message != "twice REDACTED" || fmt.Sprint(got[0].ContextMap()) != fmt.Sprint(want) {
		t.Errorf("entry %q %v, want %q %v", got[0].Message, got[0].ContextMap(), "twice REDACTED", want)
	}
}

type stringer string

func (s stringer) String() string { return string(s) }
