package mcpauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
)

// The test's resource and issuer.
const (
	testResource = "https://mcp.example.com/mcp"
	testIssuer   = "https://id.example.com"
)

// signingKey is a private key with the kid and alg it signs with.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// Keys are generated once: RSA 2048 takes a while under the race detector.
var testKeys = sync.OnceValue(func() map[string]signingKey {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	rsaOther, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return map[string]signingKey{
		"rsa":   {"rsa1", jose.RS256, rsaKey},
		"ec":    {"ec1", jose.ES256, ecKey},
		"ed":    {"ed1", jose.EdDSA, edKey},
		"other": {"rsa2", jose.RS256, rsaOther}, // not in the JWKS unless a test puts it there
	}
})

// issuer is an authorization server's JWKS endpoint on loopback. It
// counts fetches, and a test may change the keys it serves or make it fail.
type issuer struct {
	srv     *httptest.Server
	fetches atomic.Int64

	mu     sync.Mutex
	body   []byte
	status int
}

func newIssuer(t testing.TB, keys ...jose.JSONWebKey) *issuer {
	t.Helper()
	is := &issuer{status: http.StatusOK}
	is.serve(t, keys...)
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		body, status := is.body, is.status
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// serve makes the endpoint serve a JWKS of keys.
func (is *issuer) serve(t testing.TB, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	is.serveRaw(http.StatusOK, b)
}

func (is *issuer) serveRaw(status int, body []byte) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.status, is.body = status, body
}

func (is *issuer) url() string { return is.srv.URL + "/.well-known/jwks.json" }

// standardIssuer serves the public RSA, EC and Ed25519 keys.
func standardIssuer(t testing.TB) *issuer {
	k := testKeys()
	return newIssuer(t, k["rsa"].jwk(), k["ec"].jwk(), k["ed"].jwk())
}

// provision provisions c as Caddy would, failing the test on an error.
func provision(t testing.TB, c *Config) *Config {
	t.Helper()
	if err := provisionErr(t, c); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return c
}

func provisionErr(t testing.TB, c *Config) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return c.Provision(ctx)
}

// jwtConfig is a config that verifies JWTs of testIssuer from is.
func jwtConfig(is *issuer) *Config {
	return &Config{JWT: &JWT{Issuer: testIssuer, JWKSURL: is.url()}}
}

// claims are a valid token's claims for testResource, issued now; a test
// changes what it attacks.
func claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": testIssuer, "sub": "alice", "aud": testResource,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// sign makes a compact JWS of the claims with k.
func sign(t testing.TB, k signingKey, c map[string]any) string {
	t.Helper()
	return signWith(t, k.alg, jose.JSONWebKey{Key: k.key, KeyID: k.kid}, c)
}

func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, c map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request is a request to testResource with the given header lines.
func request(header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, testResource, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

// authenticate authenticates r for testResource and returns the failure,
// if any, as a *Failure.
func authenticate(t *testing.T, c *Config, r *http.Request) (*Principal, *Failure) {
	t.Helper()
	p, err := c.Authenticate(r, testResource)
	if err == nil {
		if p == nil {
			t.Fatal("Authenticate returned neither a principal nor an error")
		}
		return p, nil
	}
	f, ok := err.(*Failure)
	if !ok {
		t.Fatalf("Authenticate returned a %T, not a *Failure: %v", err, err)
	}
	if p != nil {
		t.Errorf("Authenticate returned a principal %+v with the failure %v", p, f)
	}
	return nil, f
}

// clock is a settable clock for the key set's rate limits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
