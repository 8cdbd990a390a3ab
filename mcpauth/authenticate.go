package mcpauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Authenticate finds who r comes from, for the protected resource at
// resource ("" : this request's path's, see ResourceURI). The credentials,
// in order:
//
//   - Authorization: Bearer <token>: an API key if the token hashes to
//     one, else a JWT when jwt is configured and the token has a JWS's
//     shape;
//   - X-API-Key: <key>;
//   - none: with caddy_identity, the principal Caddy's auth handlers in
//     front set ({http.auth.user.id}, groups from {http.auth.user.groups}).
//
// An Authorization header of another scheme (Basic, as basic_auth reads
// it) is not ours and counts as none. The error is always a *Failure.
func (c *Config) Authenticate(r *http.Request, resource string) (*Principal, error) {
	p, f := c.authenticate(r, resource)
	if f != nil {
		return nil, f
	}
	if missing := missingScopes(p, c.RequiredScopes); len(missing) > 0 {
		return nil, &Failure{
			Status: http.StatusForbidden, Code: "insufficient_scope", Scopes: c.RequiredScopes,
			Description: fmt.Sprintf("principal %s lacks scope %s (required: %s)", quote(p.ID), strings.Join(missing, " "), strings.Join(c.RequiredScopes, " ")),
		}
	}
	return p, nil
}

func (c *Config) authenticate(r *http.Request, resource string) (*Principal, *Failure) {
	token, hasBearer, err := bearer(r.Header)
	if err != nil {
		return nil, &Failure{Status: http.StatusUnauthorized, Code: "invalid_request", Description: err.Error()}
	}
	apiKey, hasKey := r.Header["X-Api-Key"]
	switch {
	case hasBearer && hasKey:
		return nil, &Failure{Status: http.StatusUnauthorized, Code: "invalid_request", Description: "both Authorization and X-API-Key: send one credential"}
	case hasKey:
		if len(apiKey) != 1 || apiKey[0] == "" {
			return nil, &Failure{Status: http.StatusUnauthorized, Code: "invalid_request", Description: "X-API-Key must be one non-empty value"}
		}
		if p := c.apiKey(apiKey[0]); p != nil {
			return p, nil
		}
		return nil, invalidToken("unknown API key")
	case hasBearer:
		if p := c.apiKey(token); p != nil {
			return p, nil
		}
		if c.jwt == nil || !looksLikeJWS(token) {
			if c.jwt != nil && len(c.keys) == 0 {
				return nil, invalidToken("malformed token: not a JWT (header.payload.signature)")
			}
			return nil, invalidToken("unknown API key")
		}
		if resource == "" {
			resource = c.ResourceURI(r, r.URL.Path)
		}
		p, err := c.jwt.verify(r.Context(), token, resource)
		if err != nil {
			return nil, invalidToken(err.Error())
		}
		return p, nil
	}
	if c.CaddyIdentity {
		if p := caddyPrincipal(r); p != nil {
			return p, nil
		}
	}
	return nil, &Failure{Status: http.StatusUnauthorized, Description: "no credentials"}
}

// bearer returns the token of an Authorization: Bearer header, and whether
// there was one. Other schemes are not ours and are ignored.
func bearer(h http.Header) (string, bool, error) {
	values := h.Values("Authorization")
	var token string
	found := false
	for _, v := range values {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		if found {
			return "", true, errors.New("more than one Bearer token")
		}
		found, token = true, strings.TrimSpace(rest)
		if token == "" {
			return "", true, errors.New("the Bearer token is empty")
		}
	}
	return token, found, nil
}

// apiKey returns the principal of a key, or nil. Keys are looked up by
// their hash, which the config holds instead of the key, and the match is
// confirmed in constant time.
func (c *Config) apiKey(key string) *Principal {
	sum := sha256.Sum256([]byte(key))
	k, ok := c.keys[sum]
	if !ok || subtle.ConstantTimeCompare(sum[:], k.sum[:]) != 1 {
		return nil
	}
	return &Principal{ID: k.Principal, Groups: slices.Clone(k.Groups), Scopes: slices.Clone(k.Scopes), Method: "api_key"}
}

// caddyPrincipal is the principal that Caddy's auth handlers in front set
// in the request's replacer, or nil.
func caddyPrincipal(r *http.Request) *Principal {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return nil
	}
	id, _ := repl.GetString("http.auth.user.id")
	if id == "" {
		return nil
	}
	groups, _ := repl.GetString("http.auth.user.groups")
	return &Principal{ID: id, Groups: strings.FieldsFunc(groups, func(r rune) bool { return r == ',' || r == ' ' }), Method: "caddy"}
}

func missingScopes(p *Principal, required []string) []string {
	var missing []string
	for _, s := range required {
		if !p.HasScope(s) {
			missing = append(missing, s)
		}
	}
	return missing
}

func invalidToken(desc string) *Failure {
	return &Failure{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc}
}
