package interceptors

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"golang.org/x/time/rate"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

func init() {
	caddy.RegisterModule(RateLimit{})
}

// rateKeyParts are what a rate limit's key may be made of.
var rateKeyParts = []string{"principal", "tool", "server", "session"}

// RateLimit refuses calls beyond a rate, counted per key (by default each
// principal's calls of each tool) with a token bucket: a key may make Burst
// calls at once, and gets Events calls back per Window.
type RateLimit struct {
	// Events is how many calls a key may make per Window. Required.
	Events int `json:"events"`

	// Window is the duration over which Events calls are allowed.
	// Required.
	Window caddy.Duration `json:"window"`

	// Burst is how many calls a key that has been idle may make at once.
	// Default: Events.
	Burst int `json:"burst,omitempty"`

	// Per is what a key is made of, among principal (who calls: "" when
	// the gateway authenticates nobody, so that all share one key), tool
	// (the tool's name, whatever its server), server and session (the
	// client's session, "" for stateless requests). Default: principal and
	// tool.
	Per []string `json:"per,omitempty"`

	per     []int // indexes into rateKeyParts
	limit   rate.Limit
	burst   int
	buckets *buckets
}

// buckets are the token buckets of the keys that called lately.
type buckets struct {
	mu sync.Mutex
	m  map[rateKey]*rate.Limiter
	// refill is how long an empty bucket takes to fill up; a full bucket
	// is no different from a new one, so it can go.
	refill time.Duration
	swept  time.Time
}

// rateKey holds a call's values of the configured key parts, in order.
type rateKey [4]string

// CaddyModule returns the Caddy module information.
func (RateLimit) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp.interceptors.rate_limit",
		New: func() caddy.Module { return new(RateLimit) },
	}
}

// Provision checks the rate and the key.
func (rl *RateLimit) Provision(caddy.Context) error {
	if rl.Events <= 0 {
		return fmt.Errorf("events %d: must be positive", rl.Events)
	}
	if rl.Window <= 0 {
		return fmt.Errorf("window %v: must be positive", time.Duration(rl.Window))
	}
	if rl.Burst < 0 {
		return fmt.Errorf("burst %d: must not be negative", rl.Burst)
	}
	rl.burst = rl.Burst
	if rl.burst == 0 {
		rl.burst = rl.Events
	}
	per := rl.Per
	if len(per) == 0 {
		per = []string{"principal", "tool"}
	}
	rl.per = nil
	for _, p := range per {
		i := slices.Index(rateKeyParts, p)
		if i < 0 {
			return fmt.Errorf("per %q: must be one of %s", p, strings.Join(rateKeyParts, ", "))
		}
		if slices.Contains(rl.per, i) {
			return fmt.Errorf("per %q: given twice", p)
		}
		rl.per = append(rl.per, i)
	}
	rl.limit = rate.Limit(float64(rl.Events) / time.Duration(rl.Window).Seconds())
	rl.buckets = &buckets{
		m:      map[rateKey]*rate.Limiter{},
		refill: time.Duration(float64(rl.Window) * float64(rl.burst) / float64(rl.Events)),
	}
	return nil
}

// Before refuses a call of a key that has used up its calls.
func (rl *RateLimit) Before(_ context.Context, c *caddymcp.Call) error {
	values := [...]string{c.Principal, c.Tool, c.Server, c.Session} // as in rateKeyParts
	var key rateKey
	for j, i := range rl.per {
		key[j] = values[i]
	}

	b := rl.buckets
	b.mu.Lock()
	now := time.Now()
	if now.Sub(b.swept) >= b.refill {
		for k, lim := range b.m {
			if lim.TokensAt(now) >= float64(rl.burst) {
				delete(b.m, k)
			}
		}
		b.swept = now
	}
	lim := b.m[key]
	if lim == nil {
		lim = rate.NewLimiter(rl.limit, rl.burst)
		b.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay > 0 {
		r.CancelAt(now)
	}
	b.mu.Unlock()

	if delay == 0 {
		return nil
	}
	var who strings.Builder
	for j, i := range rl.per {
		fmt.Fprintf(&who, " %s %q", rateKeyParts[i], key[j])
	}
	return fmt.Errorf("rate limit of %d per %v for%s exceeded; retry in %v",
		rl.Events, time.Duration(rl.Window), who.String(), roundUp(delay))
}

// After does nothing: a call counts when it begins.
func (*RateLimit) After(context.Context, *caddymcp.Call, *caddymcp.Outcome) error { return nil }

// roundUp rounds a wait up to a tenth of a second, or to a millisecond
// when shorter than a second, so that a client retrying on time is let
// through.
func roundUp(d time.Duration) time.Duration {
	unit := time.Millisecond
	if d >= time.Second {
		unit = 100 * time.Millisecond
	}
	return (d + unit - 1).Truncate(unit)
}

// UnmarshalCaddyfile sets up the interceptor from Caddyfile tokens. Syntax:
//
//	rate_limit {
//	    rate  <events>/<window>   # e.g. 10/1m; required
//	    burst <n>                 # default <events>
//	    per   <part...>           # principal, tool, server, session; repeatable; default principal tool
//	}
func (rl *RateLimit) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // interceptor name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "rate":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			events, window, ok := strings.Cut(v, "/")
			if !ok {
				return d.Errf("rate %q: expected <events>/<window>, e.g. 10/1m", v)
			}
			n, err := strconv.Atoi(events)
			if err != nil {
				return d.Errf("rate %q: events %q is not a whole number", v, events)
			}
			dur, err := caddy.ParseDuration(window)
			if err != nil {
				return d.Errf("rate %q: window %q: %v", v, window, err)
			}
			rl.Events, rl.Window = n, caddy.Duration(dur)
		case "burst":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("burst %q: not a whole number", v)
			}
			rl.Burst = n
		case "per":
			parts := d.RemainingArgs()
			if len(parts) == 0 {
				return d.Errf("per: expected one or more of %s", strings.Join(rateKeyParts, ", "))
			}
			rl.Per = append(rl.Per, parts...)
		default:
			return d.Errf("unrecognized rate_limit option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*RateLimit)(nil)
	_ caddymcp.Interceptor  = (*RateLimit)(nil)
	_ caddyfile.Unmarshaler = (*RateLimit)(nil)
)
