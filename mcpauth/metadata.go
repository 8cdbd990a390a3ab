package mcpauth

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// wellKnown is the well-known path of protected resource metadata
// (RFC 9728 §3).
const wellKnown = "/.well-known/oauth-protected-resource"

// MetadataURL is the protected resource metadata URL of a resource: the
// well-known path inserted between the host and the resource's path
// (RFC 9728 §3.1), https://host/.well-known/oauth-protected-resource/mcp
// for https://host/mcp. "" for a resource that is not an absolute URI.
func MetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return ""
	}
	m := url.URL{Scheme: u.Scheme, Host: u.Host, Path: wellKnown + strings.TrimSuffix(u.Path, "/"), RawQuery: u.RawQuery}
	return m.String()
}

// metadata is the protected resource metadata document (RFC 9728 §2).
type metadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// ServeMetadata answers a request for the protected resource metadata of
// resource ("": the resource whose path follows the well-known path in
// r's). The document tells MCP clients where to get a token; it is public
// and open to every origin (CORS), as browser-based clients fetch it
// before they have any credentials.
func (c *Config) ServeMetadata(w http.ResponseWriter, r *http.Request, resource string) {
	if resource == "" {
		resource = c.ResourceURI(r, strings.TrimPrefix(r.URL.Path, wellKnown))
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Headers", "*")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, r.Method+" is not allowed on protected resource metadata (allowed: GET, HEAD, OPTIONS)", http.StatusMethodNotAllowed)
		return
	}
	doc := metadata{
		Resource:               resource,
		AuthorizationServers:   c.AuthorizationServers,
		ScopesSupported:        c.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           c.ResourceName,
	}
	if len(doc.AuthorizationServers) == 0 && c.JWT != nil {
		doc.AuthorizationServers = []string{c.JWT.Issuer}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

// ResourceURI is the canonical URI of the protected resource at path, as
// tokens must name it (RFC 8707, the MCP specification's canonical server
// URI): c.Resource when set, else scheme://host + path, scheme and host in
// lower case, without the scheme's default port, a trailing slash, a query
// or a fragment. The scheme is https when r came over TLS: behind a proxy
// that ends TLS, set resource.
func (c *Config) ResourceURI(r *http.Request, path string) string {
	if c.Resource != "" {
		return c.Resource
	}
	scheme, defaultPort := "http", "80"
	if r.TLS != nil {
		scheme, defaultPort = "https", "443"
	}
	host := strings.ToLower(r.Host)
	if h, port, err := net.SplitHostPort(host); err == nil && port == defaultPort {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return scheme + "://" + host + strings.TrimRight(path, "/")
}
