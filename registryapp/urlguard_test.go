package registryapp

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustGuard(t *testing.T, allow ...string) *urlGuard {
	t.Helper()
	g, err := newURLGuard(allow)
	if err != nil {
		t.Fatalf("newURLGuard(%q): %v", allow, err)
	}
	return g
}

// TestURLGuardRefusedAddresses covers every refused class through checkURL,
// with IP literals and names refused before any lookup, so no DNS is used.
func TestURLGuardRefusedAddresses(t *testing.T) {
	g := mustGuard(t)
	for _, tc := range []struct{ url, want string }{
		{"http://127.0.0.1/", "address 127.0.0.1 is loopback"},
		{"http://127.255.255.254:8080/mcp", "is loopback"},
		{"http://[::1]/", "address ::1 is loopback"},
		{"http://[::ffff:127.0.0.1]/", "address ::ffff:127.0.0.1 is loopback"},
		{"http://0.0.0.0/", "is unspecified"},
		{"http://[::]/", "is unspecified"},
		{"http://0.1.2.3/", "0.0.0.0/8"},
		{"http://10.0.0.5/mcp", "address 10.0.0.5 is private"},
		{"http://172.16.0.1/", "is private"},
		{"http://172.31.255.255/", "is private"},
		{"http://192.168.1.1/", "is private"},
		{"http://[fc00::1]/", "is private"},
		{"http://[fd12:3456::1]/", "is private"},
		{"http://[::ffff:10.0.0.5]/", "is private"},
		{"http://100.64.0.1/", "carrier-grade NAT"},
		{"http://100.127.255.255/", "carrier-grade NAT"},
		{"http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is the cloud metadata service"},
		{"http://[::ffff:169.254.169.254]/", "metadata"},
		{"http://[fd00:ec2::254]/", "address fd00:ec2::254 is the cloud metadata service"},
		{"http://169.254.1.1/", "is link-local"},
		{"http://[fe80::1]/", "is link-local"},
		{"http://[fe80::1%25eth0]/", "is link-local"},
		{"http://224.0.0.1/", "is multicast"},
		{"http://239.255.255.250/", "is multicast"},
		{"http://[ff02::1]/", "is multicast"},
		{"http://255.255.255.255/", "is broadcast"},
		{"http://240.0.0.1/", "is reserved"},
		{"http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1: address 127.0.0.1 is loopback"},
		{"http://[64:ff9b::a9fe:a9fe]/", "metadata"},
		{"http://[64:ff9b::a00:5]/", "is private"},
		{"http://2130706433/", `url "http://2130706433/": address 127.0.0.1 is loopback`},
		{"http://0x7f.1/", "127.0.0.1 is loopback"},
		{"http://017700000001/", "127.0.0.1 is loopback"},
		{"http://0x7F000001/", "127.0.0.1 is loopback"},
		{"http://127.1/", "127.0.0.1 is loopback"},
		{"http://0177.0.0.1/", "127.0.0.1 is loopback"},
		{"http://0/", "0.0.0.0 is unspecified"},
		{"http://0xa9.0xfe.0xa9.0xfe/", "metadata"},
		{"http://127.0.0.1./", "is loopback"},
		{"http://1.2.3.4.5/", "looks like a numeric IPv4 address"},
		{"http://08.0.0.1/", "looks like a numeric IPv4 address"},
		{"http://4294967296/", "looks like a numeric IPv4 address"},
		{"http://1.2.3.256/", "looks like a numeric IPv4 address"},
		{"http://1572394766/", "non-standard form of 93.184.215.14 (write it as 93.184.215.14)"},
		{"http://010.0.0.5/", "non-standard form of 8.0.0.5"},
		{"http://localhost:8080/mcp", `host "localhost" is a loopback name`},
		{"http://LocalHost./", "loopback name"},
		{"http://api.localhost/", "loopback name"},
		{"http://metadata.google.internal/computeMetadata/v1/", "cloud metadata name"},
		{"http://metadata/", "cloud metadata name"},
		{"http://metadata./", "cloud metadata name"},
	} {
		err := g.checkURL(context.Background(), tc.url, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkURL(%q) = %v, want error containing %q", tc.url, err, tc.want)
		}
	}
	const want = `url "http://10.0.0.5/mcp": address 10.0.0.5 is private (allow it with allowed_networks)`
	if err := g.checkURL(context.Background(), "http://10.0.0.5/mcp", nil); err == nil || err.Error() != want {
		t.Errorf("checkURL message = %v, want %s", err, want)
	}
}

func TestURLGuardAcceptsPublic(t *testing.T) {
	g := mustGuard(t)
	long := "http://93.184.215.14/"
	long += strings.Repeat("a", maxURLLen-len(long))
	for _, u := range []string{
		"http://93.184.215.14/mcp",
		"https://93.184.215.14:8443/mcp?x=1",
		"HTTPS://93.184.215.14/",
		"http://93.184.215.14:65535/",
		"http://[2606:4700::1]/mcp",
		"http://172.32.0.1/",
		"http://100.128.0.1/",
		"http://[::ffff:93.184.215.14]/",
		"http://[64:ff9b::5db8:d70e]/", // NAT64 of 93.184.215.14
		long,
	} {
		if err := g.checkURL(context.Background(), u, nil); err != nil {
			t.Errorf("checkURL(%.60q): %v", u, err)
		}
	}
}

func TestURLGuardAllowList(t *testing.T) {
	for _, tc := range []struct {
		allow     []string
		pass, not []string
	}{
		{[]string{"10.1.0.0/16"}, []string{"http://10.1.2.3/"}, []string{"http://10.2.0.1/"}},
		{[]string{"10.0.0.5"}, []string{"http://10.0.0.5/", "http://[::ffff:10.0.0.5]/", "http://[64:ff9b::a00:5]/"}, []string{"http://10.0.0.6/"}},
		{[]string{"::ffff:10.0.0.0/120"}, []string{"http://10.0.0.9/"}, []string{"http://10.0.1.0/"}},
		{[]string{"fd00::/8"}, []string{"http://[fd12::1]/"}, []string{"http://[fc00::1]/", "http://[fd00:ec2::254]/"}},
		{[]string{" MCP.Internal. "}, []string{"http://mcp.internal:8080/mcp", "http://MCP.INTERNAL./"}, []string{"http://other.internal.localhost/"}},
		{[]string{"localhost"}, []string{"http://localhost:9000/"}, []string{"http://127.0.0.1/", "http://a.localhost/"}},
		{[]string{"metadata.google.internal"}, []string{"http://metadata.google.internal/"}, []string{"http://metadata/"}},
		{[]string{"loopback"}, []string{"http://127.0.0.1/", "http://127.9.9.9/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::7f00:1]/"},
			[]string{"http://10.0.0.1/", "http://localhost/", "http://0x7f.1/"}},
		{[]string{"private"}, []string{"http://10.0.0.5/", "http://172.16.0.1/", "http://192.168.1.1/", "http://[fd12::1]/", "http://100.64.0.1/"},
			[]string{"http://127.0.0.1/", "http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://169.254.1.1/"}},
		{[]string{"169.254.0.0/16"}, []string{"http://169.254.1.1/"}, []string{"http://169.254.169.254/"}},
		{[]string{"169.254.169.254"}, []string{"http://169.254.169.254/"}, []string{"http://169.254.1.1/"}},
		{[]string{"64:ff9b::/96"}, []string{"http://[64:ff9b::7f00:1]/"}, []string{"http://127.0.0.1/"}},
	} {
		g := mustGuard(t, tc.allow...)
		for _, u := range tc.pass {
			if err := g.checkURL(context.Background(), u, nil); err != nil {
				t.Errorf("allow %q: checkURL(%q): %v", tc.allow, u, err)
			}
		}
		for _, u := range tc.not {
			if err := g.checkURL(context.Background(), u, nil); err == nil {
				t.Errorf("allow %q: checkURL(%q) accepted, want refused", tc.allow, u)
			}
		}
	}
}

func TestURLGuardInvalidAllowEntries(t *testing.T) {
	for _, entry := range []string{"", "10.0.0.0/33", "10.0.0.256", "not a host", "*.corp", "http://x", "a..b", "fe80::1%eth0", "loopback/8"} {
		_, err := newURLGuard([]string{"loopback", entry})
		if err == nil || !strings.Contains(err.Error(), `"`+entry+`"`) {
			t.Errorf("newURLGuard(%q) = %v, want error naming it", entry, err)
		}
	}
}

func TestURLGuardMalformed(t *testing.T) {
	g := mustGuard(t, "loopback", "private")
	for _, tc := range []struct{ url, want string }{
		{"93.184.215.14/mcp", "missing scheme"},
		{"//93.184.215.14/mcp", "missing scheme"},
		{"ftp://93.184.215.14/", `scheme "ftp" not allowed`},
		{"file:///etc/passwd", `scheme "file" not allowed`},
		{"http:93.184.215.14", "missing host"},
		{"http:///mcp", "missing host"},
		{"http://:8080/mcp", "missing host"},
		{"http://93.184.215.14:0/", `port "0" out of range`},
		{"http://93.184.215.14:65536/", `port "65536" out of range`},
		{"http://93.184.215.14:abc/", "invalid url"},
		{"http://[::1/", "invalid url"},
		{"http://93.184.215.14/#frag", "fragment not allowed"},
		{"http://93.184.215.14/" + strings.Repeat("a", maxURLLen-len("http://93.184.215.14/")+1), "url is 2049 bytes long (at most 2048)"},
		{"http://user:s3cret@93.184.215.14/mcp", `url "http://93.184.215.14/mcp": user info not allowed`},
		{"http://token@93.184.215.14/", "user info not allowed"},
	} {
		err := g.checkURL(context.Background(), tc.url, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkURL(%.60q) = %v, want error containing %q", tc.url, err, tc.want)
		}
	}
	// Credentials must not leak into errors, which end up in API replies and logs.
	for _, u := range []string{"http://user:s3cret@93.184.215.14/", "http://user:s3cret@h:abc/", "ftp://user:s3cret@h/"} {
		if err := g.checkURL(context.Background(), u, nil); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("checkURL(%q) = %v, want error without the password", u, err)
		}
	}
}

func TestURLGuardCheckAddr(t *testing.T) {
	g := mustGuard(t)
	if err := g.checkAddr(netip.Addr{}); err == nil {
		t.Error("checkAddr(zero Addr) accepted")
	}
	for _, a := range []string{"93.184.215.14", "2606:4700::1", "::ffff:8.8.8.8"} {
		if err := g.checkAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("checkAddr(%s): %v", a, err)
		}
	}
}

// startDNS serves A and AAAA answers from records on 127.0.0.1 and returns a
// resolver that asks only it. Unknown names get NXDOMAIN; the name drop gets
// no answer at all.
func startDNS(t *testing.T, records map[string][]netip.Addr, drop string) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], records, drop); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// dnsAnswer builds the reply to one query, echoing its question.
func dnsAnswer(q []byte, records map[string][]netip.Addr, drop string) []byte {
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		end := i + 1 + int(q[i])
		if end > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:end]))
		i = end
	}
	if i+5 > len(q) {
		return nil
	}
	name := strings.ToLower(strings.Join(labels, "."))
	if name == drop {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	addrs, known := records[name]
	var answers []byte
	count := uint16(0)
	for _, a := range addrs {
		if (qtype == 1 && a.Is4()) || (qtype == 28 && a.Is6()) {
			b := a.AsSlice()
			// name as a pointer to the question, type, class IN, TTL 60, length, data
			answers = append(answers, 0xc0, 12, 0, byte(qtype), 0, 1, 0, 0, 0, 60, 0, byte(len(b)))
			answers = append(answers, b...)
			count++
		}
	}
	flags := uint16(0x8180) // response, recursion desired and available
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := append([]byte{}, q[0], q[1])
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = append(resp, 0, 1)
	resp = binary.BigEndian.AppendUint16(resp, count)
	resp = append(resp, 0, 0, 0, 0)
	resp = append(resp, q[12:i+5]...)
	return append(resp, answers...)
}

func TestURLGuardResolvedHosts(t *testing.T) {
	r := startDNS(t, map[string][]netip.Addr{
		"private.test": {netip.MustParseAddr("10.0.0.7")},
		"public.test":  {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("2606:4700::1")},
		"mixed.test":   {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("::1")},
		"mixed4.test":  {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("93.184.215.15"), netip.MustParseAddr("10.0.0.7")},
		"mapped.test":  {netip.MustParseAddr("::ffff:127.0.0.1")},
	}, "slow.test")
	ctx := context.Background()
	for _, tc := range []struct {
		allow     []string
		url, want string
	}{
		{nil, "http://private.test/mcp", `url "http://private.test/mcp": address 10.0.0.7 is private`},
		{nil, "https://public.test/mcp", ""},
		{nil, "https://PUBLIC.test./mcp", ""},
		{nil, "http://mixed.test/", "address ::1 is loopback"},
		{nil, "http://mixed4.test/", "address 10.0.0.7 is private"},
		{nil, "http://mapped.test/", "address ::ffff:127.0.0.1 is loopback"},
		{nil, "http://missing.test/", `resolving host "missing.test"`},
		{[]string{"10.0.0.0/24"}, "http://private.test/", ""},
		{[]string{"private"}, "http://private.test/", ""},
		{[]string{"loopback"}, "http://mixed.test/", ""},
		// An allow-listed name is not resolved: this one would never answer.
		{[]string{"slow.test"}, "http://slow.test/", ""},
		{[]string{"public.test"}, "http://private.test/", "is private"},
	} {
		err := mustGuard(t, tc.allow...).checkURL(ctx, tc.url, r)
		if tc.want == "" && err != nil {
			t.Errorf("allow %q: checkURL(%q): %v", tc.allow, tc.url, err)
		} else if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("allow %q: checkURL(%q) = %v, want error containing %q", tc.allow, tc.url, err, tc.want)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := mustGuard(t).checkURL(ctx, "http://slow.test/", r)
	if err == nil || !strings.Contains(err.Error(), `resolving host "slow.test"`) {
		t.Errorf("checkURL(slow.test) = %v, want a resolution error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("checkURL(slow.test) took %v despite a 200ms context", d)
	}
}

func TestURLGuardControl(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := ln.(*net.TCPListener)

	d := net.Dialer{Control: mustGuard(t).control, Timeout: 5 * time.Second}
	if c, err := d.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("dial to loopback accepted without an allow-list")
	} else if !strings.Contains(err.Error(), "is loopback") {
		t.Errorf("dial error = %v, want it to mention loopback", err)
	}
	tl.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := tl.Accept(); err == nil {
		c.Close()
		t.Error("refused dial still reached the listener")
	}

	d.Control = mustGuard(t, "loopback").control
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	defer c.Close()
	tl.SetDeadline(time.Now().Add(5 * time.Second))
	sc, err := tl.Accept()
	if err != nil {
		t.Fatalf("accept after allowed dial: %v", err)
	}
	sc.Close()

	if err := mustGuard(t).control("tcp", "not-an-address", nil); err == nil || !strings.Contains(err.Error(), `"not-an-address"`) {
		t.Errorf("control(not-an-address) = %v, want error naming it", err)
	}
}
