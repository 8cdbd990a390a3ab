package registryapp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// TestDialControlFollowsTheGuardInForce dials a real listener on loopback
// through the control function a registered URL's upstream gets: refused
// while loopback is not allowed, allowed once the config allows it (the
// function reads the config in force, so a reload takes effect on the next
// dial), and not vetted for a host allowed by name.
func TestDialControlFollowsTheGuardInForce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	r := &registry{}
	use := func(allow ...string) {
		g, err := newURLGuard(allow)
		if err != nil {
			t.Fatal(err)
		}
		r.cfg.Store(&settings{guard: g})
	}
	dial := func(url string) error {
		d := net.Dialer{Timeout: 2 * time.Second, Control: r.dialControl(url)}
		c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}

	use("192.0.2.0/24")
	if err := dial("http://mcp.example.net/mcp"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("dialing loopback without it allowed: %v, want a refusal naming loopback", err)
	}
	use("loopback")
	if err := dial("http://mcp.example.net/mcp"); err != nil {
		t.Errorf("dialing loopback with it allowed: %v", err)
	}
	use("mcp.example.net")
	if err := dial("http://MCP.example.net./mcp"); err != nil {
		t.Errorf("dialing for a host allowed by name: %v", err)
	}
	if err := dial("http://other.example.net/mcp"); err == nil {
		t.Error("dialing loopback for a host not allowed: no error")
	}
}

// TestWriteOfNoChangeWritesNothing: a write whose function hands back the
// stored record (an enable of an enabled server, an import of what is
// there) stores and journals nothing.
func TestWriteOfNoChangeWritesNothing(t *testing.T) {
	ctx := context.Background()
	st := &store{storage: &certmagic.FileStorage{Path: t.TempDir()}}
	r := newRegistry(st, zap.NewNop())
	t.Cleanup(func() { _ = r.Destruct() })
	g, err := newURLGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg.Store(&settings{guard: g, probe: ProbeSettings{Disabled: true}})
	rec := &Server{SchemaVersion: schemaVersion, Name: "x", URL: "https://x.example.com/mcp", Enabled: true, Revision: 1}
	if _, err := r.write(ctx, "x", func(*Server) (*Server, error) { return rec, nil }); err != nil {
		t.Fatal(err)
	}
	st.settle() // the journal entry follows the answer
	j1, err := st.readJournal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.write(ctx, "x", func(cur *Server) (*Server, error) { return cur, nil })
	if err != nil || got.Revision != 1 {
		t.Fatalf("an unchanged write: %+v %v", got, err)
	}
	st.settle()
	if j1.Seq != 1 {
		t.Fatalf("the first write left the journal at %d, want 1", j1.Seq)
	}
	if j2, err := st.readJournal(ctx); err != nil || j2.Seq != j1.Seq {
		t.Errorf("an unchanged write moved the journal from %d to %d (%v)", j1.Seq, j2.Seq, err)
	}
}
