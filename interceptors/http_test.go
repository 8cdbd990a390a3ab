package interceptors

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// policyService is a policy service on 127.0.0.1 that answers by tool name
// and records the last request.
type policyService struct {
	*httptest.Server
	mu     sync.Mutex
	body   string
	header http.Header
}

func newPolicyService(t *testing.T) *policyService {
	t.Helper()
	ps := &policyService{}
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ps.mu.Lock()
		ps.body, ps.header = string(body), r.Header.Clone()
		ps.mu.Unlock()
		var call struct {
			Tool string `json:"tool"`
		}
		if r.Method != http.MethodPost || json.Unmarshal(body, &call) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		switch call.Tool {
		case "delete":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"reason":"deleting is not allowed for alice"}`)
		case "teapot":
			http.Error(w, "I'm a teapot", http.StatusTeapot)
		case "huge":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, strings.Repeat("e", 100<<10))
		case "silent":
			w.WriteHeader(http.StatusForbidden)
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		case "slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(ps.Close)
	return ps
}

func (ps *policyService) last() (string, http.Header) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.body, ps.header
}

func TestHTTP(t *testing.T) {
	ps := newPolicyService(t)
	t.Setenv("TEST_POLICY_TOKEN", "tok-123")
	tenantFile := filepath.Join(t.TempDir(), "tenant")
	if err := os.WriteFile(tenantFile, []byte("acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := provisioned(t, &HTTP{
		URL:     ps.URL + "/check",
		Timeout: caddy.Duration(300 * time.Millisecond),
		Headers: map[string]string{"Authorization": "Bearer {env.TEST_POLICY_TOKEN}", "X-Tenant": "{file." + tenantFile + "}"},
	})
	args := `{"query":"is:open"}`

	if err := h.Before(t.Context(), newCall("github", "search", args)); err != nil {
		t.Fatalf("allowed call refused: %v", err)
	}
	body, header := ps.last()
	if want := `{"phase":"before","server":"github","tool":"search","principal":"alice","session":"s1","arguments":` + args + `}`; body != want {
		t.Errorf("document\n got %s\nwant %s", body, want)
	}
	for k, want := range map[string]string{"Authorization": "Bearer tok-123", "X-Tenant": "acme", "Content-Type": "application/json"} {
		if got := header.Get(k); got != want {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}

	for tool, want := range map[string]string{
		"delete":   "deleting is not allowed for alice",
		"teapot":   "I'm a teapot",
		"huge":     strings.Repeat("e", 509) + "…",
		"silent":   "policy service answered 403 Forbidden",
		"redirect": "policy service answered 307 Temporary Redirect", // not followed
		"slow":     "policy service unavailable",
	} {
		if got := errText(h.Before(t.Context(), newCall("github", tool, args))); got != want {
			t.Errorf("tool %s: got %q, want %q", tool, got, want)
		}
	}

	// fail_open lets a call through when the service does not answer in
	// time, but a refusal it answers still stands.
	h.FailOpen = true
	if err := h.Before(t.Context(), newCall("github", "slow", args)); err != nil {
		t.Errorf("fail_open: a call refused for a slow service: %v", err)
	}
	if err := h.Before(t.Context(), newCall("github", "delete", args)); err == nil {
		t.Error("fail_open: the service's refusal was ignored")
	}
}

func TestHTTPAfter(t *testing.T) {
	ps := newPolicyService(t)
	h := provisioned(t, &HTTP{URL: ps.URL})
	outcome := &caddymcp.Outcome{Result: json.RawMessage(`{"content":[]}`), IsError: true}
	if err := h.After(t.Context(), newCall("github", "search", `{}`), outcome); err != nil {
		t.Fatal(err)
	}
	if body, _ := ps.last(); body != "" {
		t.Errorf("the service was asked after the call without after: %s", body)
	}

	h = provisioned(t, &HTTP{URL: ps.URL, RunAfter: true})
	if err := h.After(t.Context(), newCall("github", "search", `{}`), outcome); err != nil {
		t.Fatal(err)
	}
	want := `{"phase":"after","server":"github","tool":"search","principal":"alice","session":"s1","arguments":{},"result":{"content":[]},"is_error":true,"error":""}`
	if body, _ := ps.last(); body != want {
		t.Errorf("document\n got %s\nwant %s", body, want)
	}
	err := h.After(t.Context(), newCall("github", "delete", `{}`), &caddymcp.Outcome{Err: errors.New("boom")})
	if errText(err) != "deleting is not allowed for alice" {
		t.Errorf("After: got %v, want the service's refusal", err)
	}
}

func TestHTTPUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/check"
	ln.Close()

	h := provisioned(t, &HTTP{URL: url})
	if got := errText(h.Before(t.Context(), newCall("github", "search", `{}`))); got != "policy service unavailable" {
		t.Errorf("fail closed: got %q, want a refusal", got)
	}
	h = provisioned(t, &HTTP{URL: url, FailOpen: true})
	if err := h.Before(t.Context(), newCall("github", "search", `{}`)); err != nil {
		t.Errorf("fail_open: got %v, want the call let through", err)
	}
}

func TestHTTPProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		h    *HTTP
		want string
	}{
		{&HTTP{}, `url "": must be an absolute http or https URL`},
		{&HTTP{URL: "/check"}, `url "/check": must be an absolute http or https URL`},
		{&HTTP{URL: "ftp://policy.example/"}, `url "ftp://policy.example/": must be an absolute http or https URL`},
		{&HTTP{URL: "http://policy.example:port/"}, `url "http://policy.example:port/": parse`},
		{&HTTP{URL: "http://policy.example/", Timeout: caddy.Duration(-time.Second)}, "timeout -1s: must not be negative"},
	} {
		if err := provision(t, tc.h); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: got error %v, want %q", tc.h, err, tc.want)
		}
	}
}

func TestHTTPCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"http {\n url\n}":                  "wrong argument count",
		"http {\n header Authorization\n}": "header: expected a name and a value",
		"http {\n timeout later\n}":        `timeout "later"`,
		"http {\n fail_open yes\n}":        "wrong argument count",
		"http {\n method PUT\n}":           `unrecognized http option "method"`,
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v, want %q", in, err, want)
		}
	}
}
