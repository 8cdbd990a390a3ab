package registryapp

import (
	"net/http"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI puts the registry on Caddy's admin API, for local automation:
// the REST API of the site handler under /mcp-registry/ (servers, search,
// health), and the live routing table:
//
//	GET /mcp-registry/routes         the table: each routed server, and whether the aggregate has it
//	GET /mcp-registry/routes/caddy   the table as Caddy JSON routes, to freeze into a static config
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.mcp_registry",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/mcp-registry/", Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	app := active.Load()
	if app == nil {
		writeError(w, apiErr(http.StatusServiceUnavailable, "unavailable", "the mcp_registry app is not running: configure it (in a Caddyfile, the mcp_registry global option)"))
		return nil
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/mcp-registry/routes":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeError(w, apiErr(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s (allowed: GET)", r.Method, r.URL.Path))
			return nil
		}
		return writeJSON(w, http.StatusOK, map[string]any{"routes": app.reg.live.Routes()})
	case "/mcp-registry/routes/caddy":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeError(w, apiErr(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s (allowed: GET)", r.Method, r.URL.Path))
			return nil
		}
		return writeJSON(w, http.StatusOK, exportRoutes(app.reg.live.Routes()))
	}
	a := api{reg: app.reg, prefix: "/mcp-registry"}
	if !a.serve(w, r) {
		writeError(w, apiErr(http.StatusNotFound, "not_found", "no admin route %s %s under /mcp-registry/", r.Method, r.URL.Path))
	}
	return nil
}

// exportRoutes turns the live table into Caddy JSON routes: one
// mcp_gateway handler with every routed server, for a config's
// apps.http.servers.*.routes.
func exportRoutes(routes []caddymcp.LiveRoute) []map[string]any {
	servers := make([]*caddymcp.ServerConfig, len(routes))
	for i, r := range routes {
		servers[i] = r.Server
	}
	return []map[string]any{{
		"handle": []map[string]any{{"handler": "mcp_gateway", "servers": servers}},
	}}
}

// Interface guard
var _ caddy.AdminRouter = adminAPI{}
