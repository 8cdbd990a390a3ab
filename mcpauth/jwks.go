package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// JWKS fetching limits.
const (
	jwksTimeout  = 10 * time.Second
	jwksMaxBytes = 1 << 20
	// refetchGap spaces fetches that an unknown kid or a failed fetch
	// causes: tokens with made-up kids must not turn the gateway into a
	// flood of requests to the authorization server.
	refetchGap = 30 * time.Second
	// firstFetchGap spaces retries while there is no key set at all, so an
	// authorization server that starts after Caddy is picked up soon.
	firstFetchGap = 5 * time.Second
)

// errKeysUnavailable is what a request learns when there are no keys to
// check its token with; the cause is logged, not told to the client.
var errKeysUnavailable = errors.New("keys unavailable")

// keySet is an issuer's JWKS, fetched on first use and cached: fetched
// again when older than refresh (in the background, the cached keys
// serving meanwhile) or when a token names an unknown kid (at most once per
// refetchGap). Concurrent needs share one fetch, and a failed fetch keeps
// the last good keys in use.
type keySet struct {
	url     string
	refresh time.Duration
	client  *http.Client
	base    context.Context // the config's: unloading it cancels a fetch
	log     *zap.Logger
	now     func() time.Time

	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetched   time.Time     // of the keys
	attempted time.Time     // the last fetch's start
	pending   chan struct{} // closed when the fetch under way ends
}

func newKeySet(ctx context.Context, url string, refresh time.Duration, log *zap.Logger) *keySet {
	client := &http.Client{
		Timeout: jwksTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return checkJWKSURL(req.URL.String())
		},
	}
	return &keySet{url: url, refresh: refresh, client: client, base: ctx, log: log, now: time.Now}
}

// lookup returns the keys that may have signed a token with kid (every key
// when kid is empty), fetching the set when it should.
func (k *keySet) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	for waited := false; ; waited = true {
		k.mu.Lock()
		set, now := k.keys, k.now()
		var found []jose.JSONWebKey
		if set != nil {
			found = set.Keys
			if kid != "" {
				found = set.Key(kid)
			}
		}
		gap := refetchGap
		if set == nil {
			gap = firstFetchGap
		}
		stale := set != nil && now.Sub(k.fetched) >= k.refresh
		mayFetch := k.pending == nil && (k.attempted.IsZero() || now.Sub(k.attempted) >= gap)
		if mayFetch && !waited && (len(found) == 0 || stale) {
			k.startFetch(now)
		}
		pending := k.pending
		k.mu.Unlock()

		switch {
		case len(found) > 0:
			return found, nil
		case pending == nil || waited:
			if set == nil {
				return nil, errKeysUnavailable
			}
			return nil, fmt.Errorf("no key %s in the JWKS", quote(kid))
		}
		select {
		case <-pending:
		case <-ctx.Done():
			return nil, errKeysUnavailable
		}
	}
}

// startFetch fetches the set in the background. k.mu is held.
func (k *keySet) startFetch(now time.Time) {
	done := make(chan struct{})
	k.pending, k.attempted = done, now
	go func() {
		set, err := k.fetch()
		if err != nil {
			k.log.Error("JWKS unavailable: the last good keys stay in use", zap.Error(err))
		} else {
			k.log.Debug("JWKS fetched", zap.String("url", k.url), zap.Int("keys", len(set.Keys)))
		}
		k.mu.Lock()
		if err == nil {
			k.keys, k.fetched = set, k.now()
		}
		k.pending = nil
		k.mu.Unlock()
		close(done)
	}()
}

// fetch gets and parses the JWKS. Keys that do not parse, or that are not
// public keys of a supported type, are skipped with a warning, so that one
// new kind of key in the set does not lock everyone out.
func (k *keySet) fetch() (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(k.base, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS %s: %v", k.url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS %s: %v", k.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS %s: status %d", k.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS %s: %v", k.url, err)
	}
	if len(body) > jwksMaxBytes {
		return nil, fmt.Errorf("fetching JWKS %s: over %d bytes", k.url, jwksMaxBytes)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("fetching JWKS %s: not a JWK set: %v", k.url, err)
	}
	set := new(jose.JSONWebKeySet)
	for i, r := range raw.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(r); err != nil {
			k.log.Warn("JWKS key skipped", zap.String("url", k.url), zap.Int("index", i), zap.Error(err))
			continue
		}
		if !key.IsPublic() {
			// A set that publishes a private key is broken; its public
			// half still checks signatures, and the secret is not kept.
			key = key.Public()
		}
		if !key.Valid() || key.Key == nil {
			k.log.Warn("JWKS key skipped: not a public key", zap.String("url", k.url), zap.Int("index", i), zap.String("kid", key.KeyID))
			continue
		}
		set.Keys = append(set.Keys, key)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("fetching JWKS %s: no usable keys among %d", k.url, len(raw.Keys))
	}
	return set, nil
}
