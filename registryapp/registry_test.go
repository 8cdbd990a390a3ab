package registryapp

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
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

// probelessRegistry is a registry on st, not started (no polling), with
// the probe off, destroyed when the test ends.
func probelessRegistry(t *testing.T, st *store) *registry {
	t.Helper()
	r := newRegistry(st, zap.NewNop())
	t.Cleanup(func() { _ = r.Destruct() })
	g, err := newURLGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg.Store(&settings{guard: g, probe: ProbeSettings{Disabled: true}})
	return r
}

// TestWriteOfNoChangeWritesNothing: a write whose function hands back the
// stored record (an enable of an enabled server, an import of what is
// there) stores and journals nothing.
func TestWriteOfNoChangeWritesNothing(t *testing.T) {
	ctx := context.Background()
	st := &store{storage: &certmagic.FileStorage{Path: t.TempDir()}}
	r := probelessRegistry(t, st)
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

// gatedStorage is the real file storage with a gate on writes of the
// journal, which wait until it opens, and a count of the write locks taken.
type gatedStorage struct {
	*certmagic.FileStorage
	gate  chan struct{}
	locks atomic.Int32
}

func (g *gatedStorage) Store(ctx context.Context, key string, value []byte) error {
	if key == journalKey {
		<-g.gate
	}
	return g.FileStorage.Store(ctx, key, value)
}

func (g *gatedStorage) Lock(ctx context.Context, name string) error {
	g.locks.Add(1)
	return g.FileStorage.Lock(ctx, name)
}

// TestWritesDuringAJournalFlush: a write that comes while the journal of
// the one before is still being written neither waits for it nor takes
// the storage lock anew; the flush then writes both entries and gives the
// lock back, so another instance can take it. A failed write with no flush
// running gives the lock back at once.
func TestWritesDuringAJournalFlush(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	gs := &gatedStorage{FileStorage: &certmagic.FileStorage{Path: dir}, gate: make(chan struct{})}
	st := &store{storage: gs}
	r := probelessRegistry(t, st)
	create := func(name string) func(*Server) (*Server, error) {
		return func(*Server) (*Server, error) {
			return &Server{SchemaVersion: schemaVersion, Name: name, URL: "https://" + name + ".example.com/mcp", Enabled: true, Revision: 1}, nil
		}
	}
	if _, err := r.write(ctx, "one", create("one")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.write(ctx, "two", create("two"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		close(gs.gate)
		t.Fatal("a write waited for the journal of the write before it")
	}
	if n := gs.locks.Load(); n != 1 {
		t.Errorf("two writes, the second during the first's journal flush, took the storage lock %d times; want 1", n)
	}

	other := &certmagic.FileStorage{Path: dir}
	if ok, err := other.TryLock(ctx, writeLock); err != nil || ok {
		t.Fatalf("during the flush another instance took the storage lock (%v, %v)", ok, err)
	}
	close(gs.gate)
	st.settle()
	j, err := (&store{storage: other}).readJournal(ctx)
	if names, ok := j.since(0); err != nil || !ok || strings.Join(names, ",") != "one,two" {
		t.Errorf("after the flush another instance reads the changes %v (%v, %v), want one,two", names, ok, err)
	}
	if ok, err := other.TryLock(ctx, writeLock); err != nil || !ok {
		t.Fatalf("after the flush another instance cannot take the storage lock (%v, %v)", ok, err)
	}
	_ = other.Unlock(ctx, writeLock)

	refused := errors.New("refused")
	if _, err := r.write(ctx, "three", func(*Server) (*Server, error) { return nil, refused }); err != refused {
		t.Fatalf("a refused write: %v", err)
	}
	if ok, err := other.TryLock(ctx, writeLock); err != nil || !ok {
		t.Fatalf("after a refused write another instance cannot take the storage lock (%v, %v)", ok, err)
	}
	_ = other.Unlock(ctx, writeLock)
}
