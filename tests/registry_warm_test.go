package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// countingUpstream is a go-sdk MCP server over Streamable HTTP that counts
// the sessions it is asked to open and to end.
type countingUpstream struct {
	*httptest.Server
	mu                 sync.Mutex
	initialized, ended int
}

func startCountingUpstream(t *testing.T) *countingUpstream {
	srv := mcp.NewServer(&mcp.Implementation{Name: "counted", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "hello", Description: "says hello"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello"}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	u := &countingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		u.mu.Lock()
		switch {
		case r.Method == http.MethodPost && bytes.Contains(body, []byte(`"method":"initialize"`)):
			u.initialized++
		case r.Method == http.MethodDelete:
			u.ended++
		}
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		u.CloseClientConnections() // the gateway's GET streams
		u.Close()
	})
	return u
}

func (u *countingUpstream) counts() (initialized, ended int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.initialized, u.ended
}

// TestRegistryWriteConnectsWhileStoring: a write that the registry probes
// starts the upstream's connect before it stores the record: here while it
// waits for the storage lock that another instance holds. The session it
// opens is the one the route serves (one initialize upstream for the write,
// its probe and a client), and a write that fails releases it (the upstream
// is told the session ended).
func TestRegistryWriteConnectsWhileStoring(t *testing.T) {
	s := registrySite(t, nil)
	s.start(t)
	first, second := startCountingUpstream(t), startCountingUpstream(t)

	// createHeld POSTs a server reaching up while another instance holds
	// the storage lock, waits until up is asked to initialize (the write
	// still waiting), frees the lock and returns the write's status.
	other := &certmagic.FileStorage{Path: filepath.Join(s.dir, "storage")}
	createHeld := func(up *countingUpstream) int {
		t.Helper()
		if err := other.Lock(context.Background(), "mcp_registry/write"); err != nil {
			t.Fatal(err)
		}
		created := make(chan int, 1)
		go func() {
			status, _, _ := apiCall(t, "POST", s.url("/api/servers"), map[string]any{"name": "warm", "url": up.URL}, nil)
			created <- status
		}()
		deadline := time.Now().Add(5 * time.Second)
		for init, _ := up.counts(); init == 0; init, _ = up.counts() {
			if time.Now().After(deadline) {
				t.Fatal("5 s into a write waiting for the storage lock, its upstream has not been asked to initialize")
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case status := <-created:
			t.Fatalf("the write answered %d while another instance held the storage lock", status)
		default:
		}
		if err := other.Unlock(context.Background(), "mcp_registry/write"); err != nil {
			t.Fatal(err)
		}
		return <-created
	}
	if status := createHeld(first); status != http.StatusCreated {
		t.Fatalf("POST /api/servers once the lock was free: %d, want 201", status)
	}

	cs := connect(t, s.url("/servers/warm/mcp"), h1Client(), nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "hello"})
	if err != nil || text(res) != "hello" {
		t.Fatalf("calling the new server's tool: %v %v", err, res)
	}
	if init, ended := first.counts(); init != 1 || ended != 0 {
		t.Errorf("after registering and calling: the upstream opened %d sessions and ended %d; want 1 and 0 (the write's connect serves the route)", init, ended)
	}

	// A create under a name that exists fails (409) after its connect has
	// reached the upstream: the connect's session is ended, not kept.
	if status := createHeld(second); status != http.StatusConflict {
		t.Fatalf("POST /api/servers with a name in use: %d, want 409", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for init, ended := second.counts(); init != ended; init, ended = second.counts() {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after a failed write: its upstream has %d sessions opened and %d ended; want every one ended", init, ended)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, _, rec := apiCall(t, "GET", s.url("/api/servers/warm"), nil, nil); status != http.StatusOK || rec["url"] != first.URL {
		t.Errorf("after the failed write the server is %d %v; want it unchanged", status, rec)
	}
}
