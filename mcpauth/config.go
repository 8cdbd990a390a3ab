// Package mcpauth authenticates requests to the MCP gateway and the
// registry API: the OAuth 2.1 resource-server half of MCP authorization
// (specification 2025-11-25). It verifies bearer tokens (JWTs signed by an
// authorization server, checked against its JWKS, or API keys known by
// their hash), or takes the principal from Caddy's own authentication
// handlers, and it answers refusals and protected resource metadata
// (RFC 9728) the way MCP clients expect.
package mcpauth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// Defaults of the JWT options.
const (
	defaultClockSkew      = 30 * time.Second
	defaultJWKSRefresh    = time.Hour
	defaultPrincipalClaim = "sub"
	defaultGroupsClaim    = "groups"
	defaultScopesClaim    = "scope"
)

// defaultAlgorithms are the JWS algorithms allowed unless the config lists
// its own.
var defaultAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// supportedAlgorithms are the asymmetric algorithms a config may allow. No
// "none" and no HMAC: a resource server holds only public keys, and an
// HMAC "verified" with a public key is the algorithm confusion attack.
var supportedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA}

// Config authenticates requests. JSON is the truth; the Caddyfile adapts
// to it (see UnmarshalCaddyfile). Provision it before use.
type Config struct {
	// Resource is the canonical URI of the protected resource, the audience
	// tokens must name. Empty: derived per request (see ResourceURI).
	Resource string `json:"resource,omitempty"`

	// ResourceName is a human-readable name for the protected resource
	// metadata document; optional.
	ResourceName string `json:"resource_name,omitempty"`

	// JWT verifies bearer tokens issued by an authorization server.
	JWT *JWT `json:"jwt,omitempty"`

	// APIKeys are keys known by their hash, each of one principal.
	APIKeys []APIKey `json:"api_keys,omitempty"`

	// CaddyIdentity takes the principal of a request without credentials of
	// its own from Caddy's auth handlers in front ({http.auth.user.id}, as
	// basic_auth sets it, or forward_auth with copy_headers and a vars
	// handler or placeholder).
	CaddyIdentity bool `json:"caddy_identity,omitempty"`

	// AuthorizationServers are the issuers that clients should ask for
	// tokens, as the protected resource metadata lists them. Default: the
	// JWT issuer.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`

	// ScopesSupported are the scopes the metadata lists.
	ScopesSupported []string `json:"scopes_supported,omitempty"`

	// RequiredScopes must all be granted to every request (403
	// insufficient_scope otherwise).
	RequiredScopes []string `json:"required_scopes,omitempty"`

	keys map[[sha256.Size]byte]*apiKey
	jwt  *verifier
	log  *zap.Logger
}

// JWT verifies bearer tokens that are JWTs signed by an authorization
// server whose public keys are its JWKS.
type JWT struct {
	// Issuer must equal the token's iss.
	Issuer string `json:"issuer"`

	// JWKSURL is where the issuer publishes its keys: https, or http on
	// loopback only. Fetched on first use, then cached.
	JWKSURL string `json:"jwks_url"`

	// Audiences are the audiences a token may name (one is enough).
	// Default: the resource URI (RFC 8707), so that a token issued for
	// another resource is refused.
	Audiences []string `json:"audiences,omitempty"`

	// Algorithms are the JWS algorithms allowed. Default: RS256, ES256 and
	// EdDSA; PS256, RS384 and ES384 may be added.
	Algorithms []string `json:"algorithms,omitempty"`

	// ClockSkew is the tolerance of the exp, nbf and iat checks. Default:
	// 30s.
	ClockSkew caddy.Duration `json:"clock_skew,omitempty"`

	// PrincipalClaim names the claim that identifies the principal.
	// Default: sub.
	PrincipalClaim string `json:"principal_claim,omitempty"`

	// GroupsClaim names the claim of the principal's groups (an array of
	// strings or a space-separated string). Default: groups.
	GroupsClaim string `json:"groups_claim,omitempty"`

	// ScopesClaim names the claim of the granted scopes (a space-separated
	// string or an array). Default: scope, and scp when there is no scope.
	ScopesClaim string `json:"scopes_claim,omitempty"`

	// JWKSRefresh is how often the JWKS is fetched again. Default: 1h. A
	// token with an unknown kid fetches it sooner, at most once per 30s.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`
}

// APIKey is a key of one principal, stored as its hash only.
type APIKey struct {
	Principal string   `json:"principal"`
	Hash      string   `json:"hash"` // "sha256:<64 hex>" of the key, as HashKey gives it
	Groups    []string `json:"groups,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
}

// Provision checks the config and readies it. It does no I/O: the JWKS is
// fetched on first use. Errors name the field at fault.
func (c *Config) Provision(ctx caddy.Context) error {
	if c.JWT == nil && len(c.APIKeys) == 0 && !c.CaddyIdentity {
		return fmt.Errorf("auth: nothing authenticates: configure jwt, api_keys or caddy_identity")
	}
	if c.Resource != "" {
		if err := checkResource(c.Resource); err != nil {
			return fmt.Errorf("auth: resource %q: %v", c.Resource, err)
		}
	}
	for _, s := range c.AuthorizationServers {
		if u, err := url.Parse(s); err != nil || !u.IsAbs() || u.Host == "" {
			return fmt.Errorf("auth: authorization_servers: %q is not an absolute URL", s)
		}
	}
	for _, s := range c.ScopesSupported {
		if err := checkScope(s); err != nil {
			return fmt.Errorf("auth: scopes_supported: %v", err)
		}
	}
	for _, s := range c.RequiredScopes {
		if err := checkScope(s); err != nil {
			return fmt.Errorf("auth: required_scopes: %v", err)
		}
	}
	c.log = ctx.Logger().Named("auth")
	c.keys = make(map[[sha256.Size]byte]*apiKey, len(c.APIKeys))
	for i := range c.APIKeys {
		k := &apiKey{APIKey: &c.APIKeys[i]}
		if k.Principal == "" {
			return fmt.Errorf("auth: api_keys[%d]: principal is required", i)
		}
		var err error
		if k.sum, err = parseHash(k.Hash); err != nil {
			return fmt.Errorf("auth: api_keys[%d] (principal %q): %v", i, k.Principal, err)
		}
		if other, dup := c.keys[k.sum]; dup {
			return fmt.Errorf("auth: api_keys[%d] (principal %q): the same key as principal %q's", i, k.Principal, other.Principal)
		}
		c.keys[k.sum] = k
	}
	if c.JWT != nil {
		v, err := c.JWT.verifier(ctx, c.log)
		if err != nil {
			return fmt.Errorf("auth: jwt: %v", err)
		}
		c.jwt = v
	}
	return nil
}

// verifier checks the JWT options and resolves their defaults.
func (j *JWT) verifier(ctx context.Context, log *zap.Logger) (*verifier, error) {
	if j.Issuer == "" {
		return nil, fmt.Errorf("issuer is required")
	}
	if j.JWKSURL == "" {
		return nil, fmt.Errorf("jwks_url is required")
	}
	if err := checkJWKSURL(j.JWKSURL); err != nil {
		return nil, fmt.Errorf("jwks_url %q: %v", j.JWKSURL, err)
	}
	for _, a := range j.Audiences {
		if a == "" {
			return nil, fmt.Errorf("audiences: an audience is empty")
		}
	}
	v := &verifier{
		issuer:    j.Issuer,
		audiences: j.Audiences,
		algs:      defaultAlgorithms,
		skew:      defaultClockSkew,
		principal: cmp.Or(j.PrincipalClaim, defaultPrincipalClaim),
		groups:    cmp.Or(j.GroupsClaim, defaultGroupsClaim),
		scopes:    j.ScopesClaim,
	}
	if len(j.Algorithms) > 0 {
		v.algs = nil
		for _, a := range j.Algorithms {
			alg := jose.SignatureAlgorithm(a)
			if !slices.Contains(supportedAlgorithms, alg) {
				return nil, fmt.Errorf("algorithm %q is not supported (supported: %s)", a, algList(supportedAlgorithms))
			}
			v.algs = append(v.algs, alg)
		}
	}
	switch {
	case j.ClockSkew < 0:
		return nil, fmt.Errorf("clock_skew %s: must not be negative", time.Duration(j.ClockSkew))
	case j.ClockSkew > 0:
		v.skew = time.Duration(j.ClockSkew)
	}
	refresh := defaultJWKSRefresh
	switch {
	case j.JWKSRefresh < 0:
		return nil, fmt.Errorf("jwks_refresh %s: must not be negative", time.Duration(j.JWKSRefresh))
	case j.JWKSRefresh > 0:
		refresh = time.Duration(j.JWKSRefresh)
	}
	v.keys = newKeySet(ctx, j.JWKSURL, refresh, log)
	return v, nil
}

// checkResource accepts an absolute http(s) URI without a fragment, as
// RFC 8707 wants a resource indicator.
func checkResource(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("must be an absolute http(s) URI without a fragment")
	}
	return nil
}

// checkJWKSURL accepts https, and http to loopback: keys fetched in clear
// over a network could be anyone's.
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("must be https (http only on loopback)")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkScope accepts a scope token of RFC 6749 §3.3.
func checkScope(s string) error {
	if s == "" {
		return fmt.Errorf("a scope is empty")
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return fmt.Errorf("scope %q: scopes are printable ASCII without spaces, quotes or backslashes", s)
		}
	}
	return nil
}

// apiKey is a configured key with its hash decoded.
type apiKey struct {
	*APIKey
	sum [sha256.Size]byte
}

// parseHash reads "sha256:<64 hex>".
func parseHash(h string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	// The value is not quoted back: it could be a key pasted by mistake.
	hexSum, ok := strings.CutPrefix(h, hashPrefix)
	b, err := hex.DecodeString(hexSum)
	if !ok || err != nil || len(b) != sha256.Size {
		return sum, fmt.Errorf("hash: want sha256:<64 hex digits> of the key (caddy mcp api-key prints one), got %d characters", len(h))
	}
	copy(sum[:], b)
	return sum, nil
}

func algList(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
