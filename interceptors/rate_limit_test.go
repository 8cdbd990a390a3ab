package interceptors

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// callBy is a call of github/tool by principal.
func callBy(principal, tool string) *caddymcp.Call {
	c := newCall("github", tool, `{}`)
	c.Principal = principal
	return c
}

func TestRateLimitBurstAndRefill(t *testing.T) {
	// 5 per 100ms: a token every 20ms, 5 at once.
	rl := provisioned(t, &RateLimit{Events: 5, Window: caddy.Duration(100 * time.Millisecond)})
	for i := range 5 {
		if err := rl.Before(t.Context(), callBy("alice", "search")); err != nil {
			t.Fatalf("call %d of the burst refused: %v", i+1, err)
		}
	}
	err := rl.Before(t.Context(), callBy("alice", "search"))
	m := regexp.MustCompile(`^rate limit of 5 per 100ms for principal "alice" tool "search" exceeded; retry in (\d+ms)$`).FindStringSubmatch(errText(err))
	if m == nil {
		t.Fatalf("call 6: got %v, want a rate limit refusal", err)
	}
	if wait, _ := time.ParseDuration(m[1]); wait <= 0 || wait > 20*time.Millisecond {
		t.Errorf("retry in %v, want within the 20ms a token takes", wait)
	}

	// Other keys have buckets of their own.
	if err := rl.Before(t.Context(), callBy("bob", "search")); err != nil {
		t.Errorf("bob refused for alice's calls: %v", err)
	}
	if err := rl.Before(t.Context(), callBy("alice", "list_issues")); err != nil {
		t.Errorf("alice's other tool refused: %v", err)
	}

	// One token comes back after 20ms, and only one.
	time.Sleep(25 * time.Millisecond)
	if err := rl.Before(t.Context(), callBy("alice", "search")); err != nil {
		t.Errorf("refused after a token came back: %v", err)
	}
	if err := rl.Before(t.Context(), callBy("alice", "search")); err == nil {
		t.Error("two calls passed on one refilled token")
	}
}

func TestRateLimitPer(t *testing.T) {
	rl := provisioned(t, &RateLimit{Events: 2, Window: caddy.Duration(time.Hour), Burst: 1, Per: []string{"server", "session"}})
	if err := rl.Before(t.Context(), callBy("alice", "search")); err != nil {
		t.Fatal(err)
	}
	// Another principal and tool, but the same server and session.
	err := rl.Before(t.Context(), callBy("bob", "list_issues"))
	want := `rate limit of 2 per 1h0m0s for server "github" session "s1" exceeded; retry in 30m0s`
	if errText(err) != want {
		t.Errorf("got %v, want %q", err, want)
	}
	other := callBy("bob", "list_issues")
	other.Session = "s2"
	if err := rl.Before(t.Context(), other); err != nil {
		t.Errorf("another session refused: %v", err)
	}
}

func TestRateLimitMessage(t *testing.T) {
	rl := provisioned(t, &RateLimit{Events: 10, Window: caddy.Duration(time.Minute), Burst: 1})
	if err := rl.Before(t.Context(), callBy("alice", "search")); err != nil {
		t.Fatal(err)
	}
	err := rl.Before(t.Context(), callBy("alice", "search"))
	want := `rate limit of 10 per 1m0s for principal "alice" tool "search" exceeded; retry in 6s`
	if errText(err) != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestRateLimitEviction(t *testing.T) {
	// A bucket refills in 5 × 20ms = 100ms.
	rl := provisioned(t, &RateLimit{Events: 5, Window: caddy.Duration(100 * time.Millisecond)})
	for _, p := range []string{"a", "b", "c"} {
		if err := rl.Before(t.Context(), callBy(p, "search")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rl.buckets.m); n != 3 {
		t.Fatalf("%d buckets after 3 keys called, want 3", n)
	}
	time.Sleep(110 * time.Millisecond)
	if err := rl.Before(t.Context(), callBy("d", "search")); err != nil {
		t.Fatal(err)
	}
	if _, ok := rl.buckets.m[rateKey{"d", "search"}]; !ok || len(rl.buckets.m) != 1 {
		t.Errorf("buckets after the others refilled: %v, want only d's", rl.buckets.m)
	}
	// A bucket not yet full stays: c empties a new bucket just before the
	// next sweep, which must keep it.
	time.Sleep(90 * time.Millisecond)
	for range 5 {
		if err := rl.Before(t.Context(), callBy("c", "search")); err != nil {
			t.Fatal(err)
		}
	}
	cBucket := rl.buckets.m[rateKey{"c", "search"}]
	time.Sleep(15 * time.Millisecond)
	if err := rl.Before(t.Context(), callBy("e", "search")); err != nil {
		t.Fatal(err)
	}
	if got := rl.buckets.m[rateKey{"c", "search"}]; got != cBucket || len(rl.buckets.m) != 2 {
		t.Errorf("buckets after the second sweep: %v, want c's (%p) and e's", rl.buckets.m, cBucket)
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	rl := provisioned(t, &RateLimit{Events: 5, Window: caddy.Duration(time.Hour)})
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if rl.Before(t.Context(), callBy("alice", "search")) == nil {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Errorf("%d of 50 concurrent calls passed a burst of 5", n)
	}
}

func TestRoundUp(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		4200 * time.Millisecond:   4200 * time.Millisecond,
		4201 * time.Millisecond:   4300 * time.Millisecond,
		19200 * time.Microsecond:  20 * time.Millisecond,
		999999 * time.Microsecond: time.Second,
		time.Nanosecond:           time.Millisecond,
	} {
		if got := roundUp(in); got != want {
			t.Errorf("roundUp(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestRateLimitProvisionErrors(t *testing.T) {
	minute := caddy.Duration(time.Minute)
	for _, tc := range []struct {
		rl   *RateLimit
		want string
	}{
		{&RateLimit{Window: minute}, "events 0: must be positive"},
		{&RateLimit{Events: 10}, "window 0s: must be positive"},
		{&RateLimit{Events: 10, Window: minute, Burst: -1}, "burst -1: must not be negative"},
		{&RateLimit{Events: 10, Window: minute, Per: []string{"principal", "user"}}, `per "user": must be one of principal, tool, server, session`},
		{&RateLimit{Events: 10, Window: minute, Per: []string{"tool", "tool"}}, `per "tool": given twice`},
	} {
		if err := provision(t, tc.rl); errText(err) != tc.want {
			t.Errorf("%+v: got error %v, want %q", tc.rl, err, tc.want)
		}
	}
}

func TestRateLimitCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"rate_limit {\n rate 10\n}":      `rate "10": expected <events>/<window>, e.g. 10/1m`,
		"rate_limit {\n rate ten/1m\n}":  `rate "ten/1m": events "ten" is not a whole number`,
		"rate_limit {\n rate 10/soon\n}": `rate "10/soon": window "soon"`,
		"rate_limit {\n rate 10/1m 5\n}": "wrong argument count",
		"rate_limit {\n burst many\n}":   `burst "many": not a whole number`,
		"rate_limit {\n per\n}":          "per: expected one or more of principal, tool, server, session",
		"rate_limit {\n window 1m\n}":    `unrecognized rate_limit option "window"`,
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v, want %q", in, err, want)
		}
	}
}
