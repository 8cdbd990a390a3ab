package registryapp

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// The API's permissions. Every request of the API needs exactly one,
// following from its method and path (see permissionFor).
const (
	permRead     = "read"     // GET and HEAD: lists, servers, tools, search, the official API
	permRegister = "register" // POST servers, PUT, PATCH, POST import, POST refresh
	permToggle   = "toggle"   // POST enable and disable
	permDelete   = "delete"   // DELETE
	permAll      = "*"
)

var permissions = []string{permRead, permRegister, permToggle, permDelete}

// Permission grants the principals it names some of the API's
// permissions: read, register, toggle, delete, or * for all of them.
type Permission struct {
	mcpauth.Who
	Allow []string `json:"allow"`
}

// grants reports whether the permission grants perm.
func (p Permission) grants(perm string) bool {
	return slices.Contains(p.Allow, perm) || slices.Contains(p.Allow, permAll)
}

// permissionFor is the permission a request needs, or "" for one that
// needs none: /health and <prefix>/health, and paths that are not the
// API's. It follows how the API matches paths (api.serve and officialPath),
// so that nothing the API serves goes unchecked: every path under the
// prefix counts, and a method the API does not serve on a path needs the
// permission its kind of method would (then gets 405).
func permissionFor(prefix string, r *http.Request) string {
	path := r.URL.Path
	if path == "/health" {
		return ""
	}
	rest, ours := strings.CutPrefix(path, prefix)
	var parts []string
	if ours {
		parts = strings.Split(strings.Trim(rest, "/"), "/")
		if len(parts) == 1 && parts[0] == "health" {
			return ""
		}
	} else if _, ours = officialPath(r.URL.EscapedPath()); !ours {
		return ""
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return permRead
	case http.MethodDelete:
		return permDelete
	case http.MethodPost:
		if len(parts) == 3 && parts[0] == "servers" && (parts[2] == "enable" || parts[2] == "disable") {
			return permToggle
		}
	}
	return permRegister
}

// provisionAccess readies authentication and the permissions. With
// neither, the API is open, as it was before either existed: the site
// then puts Caddy's own authentication in front of it.
func (h *Handler) provisionAccess(ctx caddy.Context) error {
	h.audit = ctx.Logger().Named("audit")
	h.identity = h.Auth
	if h.identity == nil && len(h.Permissions) > 0 {
		// Permissions alone: the principal is the one Caddy's auth
		// handlers in front of this one set.
		h.identity = &mcpauth.Config{CaddyIdentity: true}
	}
	if h.identity != nil {
		if err := h.identity.Provision(ctx); err != nil {
			return err
		}
	}
	for i, p := range h.Permissions {
		if p.Who.Empty() {
			return fmt.Errorf("permissions[%d]: names nobody: give principals, groups or scopes", i)
		}
		if len(p.Allow) == 0 {
			return fmt.Errorf("permissions[%d]: allow is empty: give %s or *", i, strings.Join(permissions, ", "))
		}
		for _, a := range p.Allow {
			if a != permAll && !slices.Contains(permissions, a) {
				return fmt.Errorf("permissions[%d]: allow %q: unknown permission (want %s or *)", i, a, strings.Join(permissions, ", "))
			}
		}
	}
	return nil
}

// authorize lets a request of the API through, or answers it: 401 when
// it is not authenticated, 403 when its principal lacks the permission.
// Auth without permissions lets every authenticated principal do
// everything. Every decision is audited; credentials never are.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if h.identity == nil {
		return true
	}
	perm := permissionFor(h.Prefix, r)
	if perm == "" {
		return true
	}
	resource := h.identity.ResourceURI(r, h.Prefix)
	p, err := h.identity.Authenticate(r, resource)
	if err != nil {
		f := err.(*mcpauth.Failure)
		h.audit.Info("registry API request refused", zap.String("principal", ""), zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.String("permission", perm), zap.String("outcome", "unauthenticated"),
			zap.String("reason", f.Description))
		code, msg := "unauthorized", f.Description
		switch {
		case h.Auth == nil:
			msg = "no user: put Caddy's authentication (basic_auth, forward_auth, …) in front of mcp_registry_api"
		case f.Code == "":
			msg = "no credentials: send Authorization: Bearer <token> or X-API-Key: <key>"
		}
		if f.Status == http.StatusForbidden {
			code = "forbidden"
		}
		if h.Auth != nil {
			h.Auth.Challenge(w.Header(), r, resource, f)
		}
		writeError(w, apiErr(f.Status, code, "%s", msg))
		return false
	}
	fields := []zap.Field{zap.String("principal", p.ID), zap.String("auth", p.Method), zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.String("permission", perm)}
	if len(h.Permissions) > 0 && !slices.ContainsFunc(h.Permissions, func(g Permission) bool { return g.grants(perm) && g.Matches(p) }) {
		h.audit.Info("registry API request refused", append(fields, zap.String("outcome", "denied"))...)
		writeError(w, apiErr(http.StatusForbidden, "forbidden", "principal %q may not %s (needs permission %s)", p.ID, perm, perm))
		return false
	}
	h.audit.Debug("registry API request allowed", append(fields, zap.String("outcome", "granted"))...)
	return true
}

// serveMetadata answers the protected resource metadata of the API, which
// the challenge of a refusal points to, and reports whether r asked for it.
func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) bool {
	if h.Auth == nil || !strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource") {
		return false
	}
	resource := h.Auth.ResourceURI(r, h.Prefix)
	u, err := url.Parse(mcpauth.MetadataURL(resource))
	if err != nil || u.Path != r.URL.Path {
		return false
	}
	h.Auth.ServeMetadata(w, r, resource)
	return true
}
