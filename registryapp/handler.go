package registryapp

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the mcp_registry app's REST API in a site, so that Caddy's
// TLS and auth handlers can stand in front of it:
//
//	GET    <prefix>/servers                 list (enabled, health, tag, q; limit, cursor)
//	POST   <prefix>/servers                 register
//	GET|PUT|PATCH|DELETE <prefix>/servers/{name}
//	POST   <prefix>/servers/{name}/enable   POST <prefix>/servers/{name}/disable
//	GET    <prefix>/servers/{name}/tools    POST <prefix>/servers/{name}/refresh
//	GET    <prefix>/search?q=…              tools across servers, ranked
//	GET    <prefix>/health  and  /health    the registry's state
//	GET    /v0.1/servers…  and  /v0/servers…  the official MCP Registry's read API (official.go)
//
// Other paths go to the next handler.
//
// Who may do what: every request of the API needs one permission (read for
// GET and HEAD, register for POST servers, PUT, PATCH, import and refresh,
// toggle for enable and disable, delete for DELETE); /health and
// <prefix>/health are public. With Auth, requests are authenticated by
// mcpauth (bearer JWTs, API keys, Caddy's identity), the resource being
// <scheme>://<host><prefix> unless auth's resource says otherwise, and
// its protected resource metadata is served at
// /.well-known/oauth-protected-resource<prefix>. With Permissions and no
// Auth, the principal is the one Caddy's auth handlers in front set
// ({http.auth.user.id}). With Auth and no Permissions, every authenticated
// principal may do everything. With neither, everything is allowed to
// everyone: put Caddy's own authentication in front of the handler then.
type Handler struct {
	// Prefix is the API's path prefix. Default: /api.
	Prefix string `json:"prefix,omitempty"`

	// Auth authenticates the API's callers.
	Auth *mcpauth.Config `json:"auth,omitempty"`

	// Permissions grant permissions to principals; a request is allowed
	// when one of them names its principal and grants what it needs.
	Permissions []Permission `json:"permissions,omitempty"`

	api      api
	identity *mcpauth.Config // Auth, or Caddy's identity for Permissions alone; nil: open
	audit    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_registry_api",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the mcp_registry app and readies authentication.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.Prefix == "" {
		h.Prefix = "/api"
	}
	if !strings.HasPrefix(h.Prefix, "/") || strings.HasSuffix(h.Prefix, "/") {
		return fmt.Errorf("prefix %q: must begin with / and not end with one", h.Prefix)
	}
	app, err := ctx.AppIfConfigured("mcp_registry")
	if err != nil {
		return fmt.Errorf("mcp_registry_api: %v (configure the mcp_registry app, in a Caddyfile the mcp_registry global option)", err)
	}
	h.api = api{reg: app.(*App).reg, prefix: h.Prefix}
	return h.provisionAccess(ctx)
}

// ServeHTTP serves the API's paths and passes the others on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path == "/health" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, apiErr(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on /health (allowed: GET)", r.Method))
			return nil
		}
		return h.api.health(w)
	}
	if h.serveMetadata(w, r) || !h.authorize(w, r) {
		return nil
	}
	if h.api.serve(w, r) || h.api.official(w, r) {
		return nil
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
