package mcpauth

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Failure is why a request was refused: what the WWW-Authenticate
// challenge (RFC 6750 §3) and the response say. Its description never
// holds the credentials themselves.
type Failure struct {
	Status      int      // 401 or 403
	Code        string   // RFC 6750: "invalid_request", "invalid_token", "insufficient_scope"; "" for no credentials at all
	Description string   // what exactly was wrong, e.g. "token expired at 2026-11-21T19:00:00Z"
	Scopes      []string // for insufficient_scope: the scopes needed
}

func (f *Failure) Error() string {
	if f.Code == "" {
		return fmt.Sprintf("%d: %s", f.Status, f.Description)
	}
	return fmt.Sprintf("%d %s: %s", f.Status, f.Code, f.Description)
}

// Challenge sets the WWW-Authenticate header for a refusal:
//
//	Bearer resource_metadata="<metadata URL>", scope="a b", error="…", error_description="…"
//
// (MCP 2025-11-25, RFC 6750 §3, RFC 9728 §5.1). scope is the scopes the
// failure names, else the required scopes, and is left out when there are
// none; error and error_description are left out for a request that had no
// credentials (RFC 6750 §3.1). resource "" is this request's path's.
func (c *Config) Challenge(h http.Header, r *http.Request, resource string, f *Failure) {
	if resource == "" {
		resource = c.ResourceURI(r, r.URL.Path)
	}
	var b strings.Builder
	b.WriteString("Bearer ")
	param(&b, "resource_metadata", MetadataURL(resource))
	scopes := c.RequiredScopes
	if f != nil && len(f.Scopes) > 0 {
		scopes = f.Scopes
	}
	if len(scopes) > 0 {
		b.WriteString(", ")
		param(&b, "scope", strings.Join(scopes, " "))
	}
	if f != nil && f.Code != "" {
		b.WriteString(", ")
		param(&b, "error", f.Code)
		if f.Description != "" {
			b.WriteString(", ")
			param(&b, "error_description", f.Description)
		}
	}
	h.Set("WWW-Authenticate", b.String())
}

// param writes name="value", the value held to the characters RFC 6750
// allows in a quoted value (printable ASCII but " and \): a description
// may quote what a token claimed, and that must not break the header.
func param(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteString(`="`)
	for _, r := range value {
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// maxShown bounds how much of a value from a token a description repeats.
const maxShown = 100

// trim cuts a value from a token to maxShown bytes.
func trim(s string) string {
	if len(s) <= maxShown {
		return s
	}
	i := maxShown
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// quote is a value from a token, trimmed and quoted, for a description.
func quote(s string) string { return strconv.Quote(trim(s)) }
