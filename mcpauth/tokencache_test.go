package mcpauth

import (
	"fmt"
	"testing"
	"time"
)

func TestTokenCache(t *testing.T) {
	var c tokenCache
	now := time.Now()
	alice := &Principal{ID: "alice"}
	k := tokenKey("tok", "https://a.example/mcp")
	if tokenKey("tok", "https://b.example/mcp") == k {
		t.Fatal("a token verified for one resource would be taken for another")
	}
	c.put(k, alice, now.Add(10*time.Second), now)
	if got := c.get(k, now.Add(9*time.Second)); got != alice {
		t.Errorf("before the token's expiry: %v", got)
	}
	if got := c.get(k, now.Add(10*time.Second)); got != nil {
		t.Errorf("at the token's expiry: %v, want nothing", got)
	}
	c.put(k, alice, now.Add(time.Hour), now)
	if got := c.get(k, now.Add(tokenCacheFor)); got != nil {
		t.Errorf("after tokenCacheFor: %v, want nothing", got)
	}
	// A full cache makes room: first what expired, else everything.
	c = tokenCache{}
	for i := range tokenCacheMax {
		c.put(tokenKey(fmt.Sprint("short-lived ", i), "r"), alice, now.Add(time.Second), now)
	}
	c.put(tokenKey("new", "r"), alice, now.Add(time.Hour), now.Add(2*time.Second))
	if n := len(c.entries); n != 1 {
		t.Errorf("%d entries after the expired ones were dropped, want 1", n)
	}
	for i := range tokenCacheMax {
		c.put(tokenKey(fmt.Sprint("long-lived ", i), "r"), alice, now.Add(time.Hour), now)
	}
	if n := len(c.entries); n > tokenCacheMax {
		t.Errorf("%d entries, more than the cap %d", n, tokenCacheMax)
	}
}
