package registryapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

const (
	// allowKey is named in refusals so an operator knows what to change.
	allowKey = "allowed_networks"
	// maxURLLen bounds what a client may register: longer is abuse.
	maxURLLen   = 2048
	metadataWhy = "the cloud metadata service"
)

var pfx = netip.MustParsePrefix

// refusedNets lists the networks a registered URL may not reach; the first
// match not allowed names the reason, so specific entries come first.
var refusedNets = []struct {
	net netip.Prefix
	why string
}{
	{pfx("0.0.0.0/32"), "unspecified"}, {pfx("::/128"), "unspecified"},
	{pfx("0.0.0.0/8"), `in 0.0.0.0/8 ("this network")`},
	{pfx("127.0.0.0/8"), "loopback"}, {pfx("::1/128"), "loopback"},
	{pfx("169.254.169.254/32"), metadataWhy}, {pfx("fd00:ec2::254/128"), metadataWhy},
	{pfx("169.254.0.0/16"), "link-local"}, {pfx("fe80::/10"), "link-local"},
	{pfx("10.0.0.0/8"), "private"}, {pfx("172.16.0.0/12"), "private"},
	{pfx("192.168.0.0/16"), "private"}, {pfx("fc00::/7"), "private"},
	{pfx("100.64.0.0/10"), "carrier-grade NAT"},
	{pfx("224.0.0.0/4"), "multicast"}, {pfx("ff00::/8"), "multicast"},
	{pfx("255.255.255.255/32"), "broadcast"}, {pfx("240.0.0.0/4"), "reserved"},
}

// nat64 is the well-known NAT64 prefix: through it, the embedded IPv4 is reached.
var nat64 = pfx("64:ff9b::/96")

var shorthands = map[string][]netip.Prefix{
	"loopback": {pfx("127.0.0.0/8"), pfx("::1/128")},
	"private": {pfx("10.0.0.0/8"), pfx("172.16.0.0/12"), pfx("192.168.0.0/16"),
		pfx("fc00::/7"), pfx("100.64.0.0/10")},
}

// urlGuard refuses upstream URLs that point at the gateway's own network
// unless the operator allowed them.
type urlGuard struct {
	nets  []netip.Prefix
	hosts map[string]bool // lower-case, no trailing dot
}

// newURLGuard parses the operator's allow-list (CIDR prefixes, addresses,
// exact host names, "loopback", "private").
func newURLGuard(allow []string) (*urlGuard, error) {
	g := &urlGuard{hosts: map[string]bool{}}
	for _, entry := range allow {
		e := strings.ToLower(strings.TrimSpace(entry))
		if nets, ok := shorthands[e]; ok {
			g.nets = append(g.nets, nets...)
		} else if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("invalid allow-list entry %q: %v", entry, err)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 { // checkAddr sees such addresses unmapped
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			g.nets = append(g.nets, p.Masked())
		} else if a, err := netip.ParseAddr(e); err == nil && a.Zone() == "" {
			g.nets = append(g.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else if name := strings.TrimSuffix(e, "."); validHostName(name) {
			g.hosts[name] = true // checkURL skips resolving it: the operator vouches for it
		} else {
			return nil, fmt.Errorf("invalid allow-list entry %q (want a CIDR prefix, IP address, host name, \"loopback\" or \"private\")", entry)
		}
	}
	return g, nil
}

// validHostName accepts DNS names but not numeric IPv4 forms ("10.0.0.256"),
// which as names would never match what checkURL compares them with.
func validHostName(name string) bool {
	_, numeric, _ := inetAton(name)
	return !numeric && !strings.Contains("."+name+".", "..") &&
		strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == ""
}

// checkURL validates a URL a client registers, resolving its host so that a
// name pointing into the gateway's network is refused like the address itself.
func (g *urlGuard) checkURL(ctx context.Context, raw string, r *net.Resolver) error {
	if len(raw) > maxURLLen {
		return fmt.Errorf("url is %d bytes long (at most %d)", len(raw), maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil { // unwrapped: *url.Error repeats the URL, credentials included
		return fmt.Errorf("invalid url: %v", errors.Unwrap(err))
	}
	if u.User != nil {
		u.User = nil
		return fmt.Errorf("url %q: user info not allowed (put credentials in headers)", u.String())
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("url %q: "+format, append([]any{raw}, args...)...)
	}
	switch {
	case u.Scheme == "":
		return fail("missing scheme (want http or https)")
	case u.Scheme != "http" && u.Scheme != "https":
		return fail("scheme %q not allowed (want http or https)", u.Scheme)
	case strings.Contains(raw, "#"):
		return fail("fragment not allowed")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail("port %q out of range 1-65535", p)
		}
	}
	host := u.Hostname()
	name := strings.ToLower(strings.TrimRight(host, "."))
	switch {
	case name == "":
		return fail("missing host")
	case g.hosts[name]:
		return nil
	case name == "localhost" || strings.HasSuffix(name, ".localhost"):
		return fail("host %q is a loopback name (allow it with %s)", host, allowKey)
	case name == "metadata" || name == "metadata.google.internal":
		return fail("host %q is a cloud metadata name (allow it with %s)", host, allowKey)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(name); err == nil {
		addrs = []netip.Addr{a}
	} else if a, numeric, err := inetAton(name); numeric {
		// Resolvers disagree on "127.1" or "2130706433": some read them as
		// addresses, so refuse what they could denote and demand the plain form.
		if err != nil {
			return fail("host %q looks like a numeric IPv4 address but is not one: %v", host, err)
		}
		if g.checkAddr(a) == nil {
			return fail("host %q is a non-standard form of %s (write it as %s)", host, a, a)
		}
		addrs = []netip.Addr{a}
	} else {
		if r == nil {
			r = net.DefaultResolver
		}
		var lerr error
		if addrs, lerr = r.LookupNetIP(ctx, "ip", host); lerr != nil { // an empty answer is an error too
			return fail("resolving host %q: %v", host, lerr)
		}
	}
	for _, a := range addrs {
		if err := g.checkAddr(a); err != nil {
			return fail("%v", err)
		}
	}
	return nil
}

// inetAton reads host as inet_aton(3) would ("127.1", "0x7f000001", "0177.1");
// numeric: host is only numbers and dots; err: yet it denotes no address.
func inetAton(host string) (a netip.Addr, numeric bool, err error) {
	parts := strings.Split(host, ".")
	for _, p := range parts {
		if hex, ok := strings.CutPrefix(p, "0x"); p == "" || strings.Trim(p, "0123456789") != "" && (!ok || strings.Trim(hex, "0123456789abcdef") != "") {
			return netip.Addr{}, false, nil
		}
	}
	if len(parts) > 4 {
		return netip.Addr{}, true, fmt.Errorf("%d parts (at most 4)", len(parts))
	}
	var v uint64
	for i, p := range parts {
		bits := 8 // every part but the last is one byte; the last fills the rest
		if i == len(parts)-1 {
			bits = 8 * (5 - len(parts))
		}
		n, err := strconv.ParseUint(p, 0, bits) // base 0: "0x" hex, leading "0" octal
		if err != nil {
			return netip.Addr{}, true, fmt.Errorf("part %q: %v", p, errors.Unwrap(err))
		}
		v = v<<bits | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true, nil
}

// checkAddr reports why an address is refused, or nil. It judges IPv4-mapped
// and NAT64 forms by the IPv4 address they carry.
func (g *urlGuard) checkAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return errors.New("invalid address")
	}
	a := ip.Unmap().WithZone("")
	if nat64.Contains(a) {
		v4 := netip.AddrFrom4([4]byte(a.AsSlice()[12:]))
		if err := g.checkAddr(v4); err != nil && !g.allows(a, false) {
			return fmt.Errorf("address %s is a NAT64 form of %s: %w", ip, v4, err)
		}
		return nil
	}
	// Metadata endpoints hand out credentials: only an entry naming the exact
	// address (not "private" or a wide prefix) lets them through.
	for _, n := range refusedNets {
		if n.net.Contains(a) && !g.allows(a, n.why == metadataWhy) {
			return fmt.Errorf("address %s is %s (allow it with %s)", ip, n.why, allowKey)
		}
	}
	return nil
}

// allows reports whether an entry covers a; exact demands a one-address entry.
func (g *urlGuard) allows(a netip.Addr, exact bool) bool {
	for _, p := range g.nets {
		if p.Contains(a) && (!exact || p.IsSingleIP()) {
			return true
		}
	}
	return false
}

// control is a net.Dialer Control function: checking the address actually
// dialed defeats DNS rebinding after checkURL's lookup.
func (g *urlGuard) control(network, address string, _ syscall.RawConn) error {
	host, _, _ := net.SplitHostPort(address)
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%s dial to %q: not an IP address and port", network, address)
	}
	return g.checkAddr(a)
}
