package mcpauth

import (
	"slices"
	"time"
)

// Principal is who a request comes from.
type Principal struct {
	ID     string    // JWT subject (or the configured claim), API key owner, or Caddy's {http.auth.user.id}
	Groups []string  // from the groups claim, the API key, or {http.auth.user.groups}
	Scopes []string  // from the scope claim or the API key
	Method string    // "jwt", "api_key" or "caddy"
	Expiry time.Time // zero: none
}

// HasScope reports whether the principal was granted scope s.
func (p *Principal) HasScope(s string) bool {
	return p != nil && slices.Contains(p.Scopes, s)
}

// Who names principals: by id, group or scope. "*" in Principals matches
// any authenticated principal. An empty Who matches nobody, so that a
// policy entry someone forgot to fill in grants nothing.
type Who struct {
	Principals []string `json:"principals,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
}

// Matches reports whether p is one of the principals w names. Matches(nil)
// is false: an unauthenticated request is nobody.
func (w Who) Matches(p *Principal) bool {
	if p == nil {
		return false
	}
	if slices.Contains(w.Principals, "*") || slices.Contains(w.Principals, p.ID) {
		return true
	}
	for _, g := range p.Groups {
		if slices.Contains(w.Groups, g) {
			return true
		}
	}
	for _, s := range p.Scopes {
		if slices.Contains(w.Scopes, s) {
			return true
		}
	}
	return false
}

// Empty reports whether w names nobody.
func (w Who) Empty() bool {
	return len(w.Principals) == 0 && len(w.Groups) == 0 && len(w.Scopes) == 0
}
