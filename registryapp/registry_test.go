package registryapp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
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
