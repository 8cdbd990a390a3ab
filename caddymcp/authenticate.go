package caddymcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

// metadataPath is where OAuth protected resource metadata (RFC 9728) is
// served: as is for the aggregate endpoint, suffixed with an endpoint's path
// for that endpoint.
const metadataPath = "/.well-known/oauth-protected-resource"

// provisionAccess sets up who may call: authentication, the policy, the
// interceptors and the audit log.
func (g *Gateway) provisionAccess(ctx caddy.Context) error {
	if g.Auth != nil {
		if err := g.Auth.Provision(ctx); err != nil {
			return err
		}
	}
	if g.Authorization != nil {
		if g.Auth == nil {
			return errors.New("authorization: needs auth, to know who calls (for Caddy's own auth handlers in front, auth { caddy_identity })")
		}
		if err := g.Authorization.validate(); err != nil {
			return err
		}
	}
	if g.Audit {
		g.audit = g.logger.Named("audit")
	}
	var err error
	g.chain, err = loadChain(ctx, g)
	return err
}

// guarded reports whether the gateway decides anything about callers.
func (g *Gateway) guarded() bool {
	return g.Auth != nil || g.Authorization != nil || g.audit != nil || len(g.chain) > 0
}

// admitCaller authenticates the request and gives it its access. A request
// that is refused has been answered.
func (g *Gateway) admitCaller(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	a := &access{policy: g.Authorization, chain: g.chain, audit: g.audit}
	if g.Auth != nil {
		a.auth, a.resource = g.Auth, g.Auth.ResourceURI(r, asClientSent(r).URL.Path)
		p, err := g.Auth.Authenticate(r, a.resource)
		if err != nil {
			var f *mcpauth.Failure
			if !errors.As(err, &f) {
				f = &mcpauth.Failure{Status: http.StatusUnauthorized, Code: "invalid_token", Description: err.Error()}
			}
			if g.audit != nil {
				g.audit.Info("unauthenticated", zap.String("resource", a.resource), zap.Int("status", f.Status),
					zap.String("error", f.Code), zap.String("reason", f.Description), zap.String("remote", r.RemoteAddr))
			}
			g.Auth.Challenge(w.Header(), r, a.resource, f)
			writeRPCError(w, f.Status, CodeRefused, failureMessage(f))
			return nil, false
		}
		a.principal = p
	}
	return withAccess(r, a), true
}

// failureMessage is what the client is told of an authentication failure.
func failureMessage(f *mcpauth.Failure) string {
	switch {
	case f.Code == "insufficient_scope":
		return "insufficient scope: " + f.Description
	case f.Status == http.StatusUnauthorized:
		return "unauthorized: " + f.Description
	}
	return "forbidden: " + f.Description
}

// serveMetadata serves the protected resource metadata of the aggregate
// endpoint, or of the endpoint whose path suffixes the well-known path,
// and reports whether the request was for it.
func (g *Gateway) serveMetadata(w http.ResponseWriter, r *http.Request) bool {
	suffix, ok := strings.CutPrefix(r.URL.Path, metadataPath)
	if !ok {
		return false
	}
	if suffix == "" || suffix == "/" {
		suffix = g.AggregatePath
	}
	if e, err := g.route(suffix); e == nil && err == nil {
		return false
	}
	g.Auth.ServeMetadata(w, r, g.Auth.ResourceURI(r, suffix))
	return true
}

// challengeScope answers a single request that the policy refuses but that
// more scopes would allow with 403 and an insufficient_scope challenge, so
// that the client can ask its authorization server for them (MCP
// authorization, scope challenge handling). It reports whether it did.
func (e *endpoint) challengeScope(w http.ResponseWriter, r *http.Request, a *access, msg *message) bool {
	if a.policy == nil || a.principal == nil || a.auth == nil || msg.Method != "tools/call" {
		return false
	}
	var params struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(msg.Params, &params) != nil {
		return false
	}
	server, tool := e.toolTarget(params.Name)
	if a.policy.allows(a.principal, "tools/call", server, tool) {
		return false
	}
	scopes := a.policy.scopesFor(a.principal, "tools/call", server, tool)
	if len(scopes) == 0 {
		return false // no scope would help: the call is refused as JSON-RPC
	}
	_ = a.decide("tools/call", server, tool) // for the audit log
	f := &mcpauth.Failure{Status: http.StatusForbidden, Code: "insufficient_scope", Scopes: scopes,
		Description: fmt.Sprintf("tool %q of server %q needs one of the scopes %s", tool, server, strings.Join(scopes, " "))}
	a.auth.Challenge(w.Header(), r, a.resource, f)
	writeRPCError(w, http.StatusForbidden, CodeRefused, failureMessage(f))
	return true
}
