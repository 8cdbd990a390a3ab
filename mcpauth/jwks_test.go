package mcpauth

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// keyed is a config of is with the key set's clock and log in the test's
// hands.
func keyed(t *testing.T, is *issuer) (*Config, *clock, *observer.ObservedLogs) {
	t.Helper()
	c := provision(t, jwtConfig(is))
	clk := &clock{now: time.Now()}
	core, logs := observer.New(zap.DebugLevel)
	c.jwt.keys.now, c.jwt.keys.log = clk.Now, zap.New(core)
	return c, clk, logs
}

func tokenOf(t *testing.T, k signingKey) *http.Request {
	return request(withBearer(sign(t, k, claims()))...)
}

// TestKeyRotation: the issuer replaces its key; a token of the new key is
// accepted once the set is fetched again, which a token with the unknown
// kid causes, at most once per 30s.
func TestKeyRotation(t *testing.T) {
	keys := testKeys()
	old, next := keys["rsa"], keys["other"]
	is := newIssuer(t, old.jwk())
	c, clk, _ := keyed(t, is)

	if _, f := authenticate(t, c, tokenOf(t, old)); f != nil {
		t.Fatalf("the current key: %v", f)
	}
	if n := is.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for the first token, want 1", n)
	}
	is.serve(t, next.jwk())

	// Within 30s of the last fetch the set is not fetched again: the new
	// kid is unknown for now.
	clk.advance(10 * time.Second)
	if _, f := authenticate(t, c, tokenOf(t, next)); f == nil || f.Description != `no key "rsa2" in the JWKS` {
		t.Errorf("the new key 10s after a fetch: %v, want it unknown", f)
	}
	if n := is.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want still 1", n)
	}
	if _, f := authenticate(t, c, tokenOf(t, old)); f != nil {
		t.Errorf("the old key before the refresh: %v", f)
	}

	clk.advance(21 * time.Second)
	if _, f := authenticate(t, c, tokenOf(t, next)); f != nil {
		t.Errorf("the new key after 31s: %v", f)
	}
	if n := is.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
	// A token of the retired key not seen before is refused at once; one
	// already verified is honoured from the cache, for tokenCacheFor at most.
	fresh := claims()
	fresh["jti"] = "after-rotation"
	if _, f := authenticate(t, c, request(withBearer(sign(t, old, fresh))...)); f == nil || f.Description != `no key "rsa1" in the JWKS` {
		t.Errorf("a new token of the retired key: %v, want it unknown", f)
	}
	if _, f := authenticate(t, c, tokenOf(t, old)); f != nil {
		t.Errorf("a token of the retired key verified 31s ago: %v, want it still honoured", f)
	}
	clk.advance(tokenCacheFor)
	if _, f := authenticate(t, c, tokenOf(t, old)); f == nil || f.Description != `no key "rsa1" in the JWKS` {
		t.Errorf("the retired key after the cache's time: %v, want it unknown", f)
	}
}

// TestUnknownKidFlood sends many tokens with made-up kids at once: the
// JWKS is fetched at most once per 30s, and requests that arrive while a
// fetch is under way share it.
func TestUnknownKidFlood(t *testing.T) {
	keys := testKeys()
	is := newIssuer(t, keys["rsa"].jwk())
	c, clk, _ := keyed(t, is)
	if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f != nil {
		t.Fatal(f)
	}
	// Tokens are signed before the flood: signing is slow under -race.
	tokens := make([]string, 50)
	for i := range tokens {
		tokens[i] = signWith(t, jose.RS256, jose.JSONWebKey{Key: keys["other"].key, KeyID: fmt.Sprintf("made-up-%d", i)}, claims())
	}
	flood := func() {
		var wg sync.WaitGroup
		for _, tok := range tokens {
			wg.Go(func() {
				if _, err := c.Authenticate(request(withBearer(tok)...), testResource); err == nil {
					t.Error("a made-up kid was accepted")
				}
			})
		}
		wg.Wait()
	}
	for _, step := range []struct {
		advance time.Duration
		fetches int64
	}{{0, 1}, {31 * time.Second, 2}, {15 * time.Second, 2}, {14 * time.Second, 2}, {time.Second, 3}} {
		clk.advance(step.advance)
		flood()
		if n := is.fetches.Load(); n != step.fetches {
			t.Fatalf("after a flood at +%s: %d fetches, want %d", step.advance, n, step.fetches)
		}
	}

	// A flood of the issuer's new kid, while the fetch is slow: every
	// request waits for the one fetch and is accepted.
	is.serve(t, keys["rsa"].jwk(), keys["other"].jwk())
	clk.advance(31 * time.Second)
	slow := make(chan struct{})
	handler := is.srv.Config.Handler
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-slow
		handler.ServeHTTP(w, r)
	})
	var wg sync.WaitGroup
	accepted := make(chan bool, 20)
	for range 20 {
		wg.Go(func() {
			_, err := c.Authenticate(tokenOf(t, keys["other"]), testResource)
			accepted <- err == nil
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(slow)
	wg.Wait()
	close(accepted)
	for ok := range accepted {
		if !ok {
			t.Error("a request that arrived during the fetch was refused")
		}
	}
	if n := is.fetches.Load(); n != 4 {
		t.Errorf("%d fetches, want 4", n)
	}
}

// TestJWKSFailures: a failed fetch is logged and refuses the request with
// "keys unavailable" when there are no keys yet; once there are keys, they
// stay in use through failures.
func TestJWKSFailures(t *testing.T) {
	keys := testKeys()
	is := newIssuer(t, keys["rsa"].jwk())
	is.serveRaw(http.StatusInternalServerError, []byte("down"))
	c, clk, logs := keyed(t, is)

	if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f == nil || f.Status != 401 || f.Code != "invalid_token" || f.Description != "keys unavailable" {
		t.Fatalf("with the JWKS down: %v, want 401 keys unavailable", f)
	}
	wantLog := fmt.Sprintf("fetching JWKS %s: status 500", is.url())
	if errs := logs.FilterLevelExact(zap.ErrorLevel).FilterFieldKey("error").All(); len(errs) != 1 || errs[0].ContextMap()["error"] != wantLog {
		t.Errorf("logged %v, want one error %q", errs, wantLog)
	}

	// The next attempt waits 5s while there are no keys at all.
	is.serve(t, keys["rsa"].jwk())
	clk.advance(4 * time.Second)
	if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f == nil || f.Description != "keys unavailable" {
		t.Errorf("4s after a failure: %v, want no new fetch yet", f)
	}
	clk.advance(time.Second)
	if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f != nil {
		t.Errorf("5s after a failure, with the JWKS back: %v", f)
	}
	if n := is.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}

	// The JWKS goes bad in several ways; the keys fetched last stay in use.
	for _, bad := range []struct {
		status int
		body   []byte
		log    string
	}{
		{http.StatusOK, []byte("<html>"), "not a JWK set"},
		{http.StatusOK, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), "no usable keys among 1"},
		{http.StatusOK, bytes.Repeat([]byte(" "), 1<<20+1), "over 1048576 bytes"},
		{http.StatusNotFound, nil, "status 404"},
	} {
		is.serveRaw(bad.status, bad.body)
		clk.advance(31 * time.Second)
		logs.TakeAll()
		if _, f := authenticate(t, c, tokenOf(t, keys["other"])); f == nil || f.Description != `no key "rsa2" in the JWKS` {
			t.Errorf("an unknown kid with the JWKS bad (%s): %v", bad.log, f)
		}
		if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f != nil {
			t.Errorf("the last good key with the JWKS bad (%s): %v", bad.log, f)
		}
		errs := logs.FilterLevelExact(zap.ErrorLevel).All()
		if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0].ContextMap()["error"]), bad.log) {
			t.Errorf("logged %v, want an error with %q", errs, bad.log)
		}
	}
}

// TestJWKSRefresh: a key set older than jwks_refresh is fetched again in
// the background while the cached keys serve; keys of unsupported types in
// the set are skipped, not fatal.
func TestJWKSRefresh(t *testing.T) {
	keys := testKeys()
	is := newIssuer(t, keys["rsa"].jwk())
	c, clk, logs := keyed(t, is)
	if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f != nil {
		t.Fatal(f)
	}
	is.serveRaw(http.StatusOK, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},{"kty":"XYZ"},`+
		string(mustJSON(t, keys["rsa"].jwk()))+`,`+string(mustJSON(t, keys["ec"].jwk()))+`]}`))
	clk.advance(59 * time.Minute)
	if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f != nil || is.fetches.Load() != 1 {
		t.Fatalf("before the refresh: %v, %d fetches", f, is.fetches.Load())
	}
	clk.advance(time.Minute)
	if _, f := authenticate(t, c, tokenOf(t, keys["rsa"])); f != nil {
		t.Errorf("while the refresh runs: %v", f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, f := authenticate(t, c, tokenOf(t, keys["ec"])); f == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the refreshed set never served the new key: %v", f)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := is.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
	if skipped := logs.FilterMessage("JWKS key skipped").Len() + logs.FilterMessage("JWKS key skipped: not a public key").Len(); skipped != 2 {
		t.Errorf("%d keys logged as skipped, want 2 (the HMAC key and the unknown type)", skipped)
	}
	c.jwt.keys.mu.Lock()
	kept := c.jwt.keys.keys.Keys
	c.jwt.keys.mu.Unlock()
	if len(kept) != 2 || kept[0].KeyID != "rsa1" || kept[1].KeyID != "ec1" {
		t.Errorf("kept %d keys %+v, want rsa1 and ec1", len(kept), kept)
	}
}
