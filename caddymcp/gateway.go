// Package caddymcp is the mcp_gateway HTTP handler: many MCP servers (local
// processes, containers, remote endpoints) behind one Caddy site.
package caddymcp

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Gateway{})
}

// Defaults of the handler's options.
const (
	defaultAggregatePath  = "/mcp"
	defaultServerPath     = "/servers/"
	defaultMaxRequestBody = 4 << 20
	defaultSessionTimeout = time.Hour
)

// Gateway is an MCP gateway: it serves MCP clients over Streamable HTTP
// (2025-11-25 sessions and 2026-07-28 stateless requests) and legacy SSE
// (2024-11-05), in front of the configured MCP servers.
//
// Each server has its own endpoint at <server_path><name>/mcp, names
// untouched, and the aggregate endpoint at aggregate_path serves all servers
// at once, their tools and prompts named <server>__<name>. Requests to other
// paths go to the next handler.
//
// Upstream processes and connections, and client sessions, are kept in
// process-wide pools: a config reload that leaves a server's config as it
// was restarts nothing and drops no session.
type Gateway struct {
	// Servers are the upstream MCP servers.
	Servers []*ServerConfig `json:"servers,omitempty"`

	// AggregatePath is the path of the endpoint that serves every server at
	// once. Default: /mcp.
	AggregatePath string `json:"aggregate_path,omitempty"`

	// ServerPath is the prefix of one-server endpoints, which are at
	// <server_path><name>/mcp. Default: /servers/.
	ServerPath string `json:"server_path,omitempty"`

	// AllowedOrigins lists the browser origins (scheme://host[:port], or "*")
	// allowed besides the site's own host and localhost. A request with any
	// other Origin header is refused with 403, which defeats DNS rebinding.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	// MaxRequestBody is the largest request body accepted, in bytes;
	// larger ones are refused with 413. Default: 4 MiB.
	MaxRequestBody int64 `json:"max_request_body,omitempty"`

	// SessionTimeout closes client sessions idle this long. Default: 1h.
	SessionTimeout caddy.Duration `json:"session_timeout,omitempty"`

	// OCIRefs are catalogs of servers to serve beside Servers: OCI
	// artifacts made by `caddy mcp import` or `caddy mcp catalog push`. A
	// digest reference (repo@sha256:…) is pulled once and then read from
	// the cache in Caddy's data directory; a tag is resolved again at every
	// config load.
	OCIRefs []string `json:"oci_refs,omitempty"`

	// Registry serves the servers of the mcp_registry app too, changes
	// live without a reload: each at <server_path><name>/mcp, and the
	// enabled ones on the aggregate endpoint. A server of Servers shadows a
	// registry server of the same name.
	Registry bool `json:"registry,omitempty"`

	// Auth authenticates the gateway's clients: OAuth 2.1 bearer tokens
	// (JWTs checked against the issuer's JWKS), API keys, or the identity
	// Caddy's auth handlers in front set. With auth, a request without valid
	// credentials is refused with 401, and each client session belongs to
	// the principal that opened it.
	Auth *mcpauth.Config `json:"auth,omitempty"`

	// Authorization says which principals may use which servers, tools and
	// methods. Without it, every authenticated principal may use
	// everything.
	Authorization *Policy `json:"authorization,omitempty"`

	// Audit logs every authentication failure and authorization decision
	// (the logger http.handlers.mcp_gateway.audit: denials at info,
	// grants at debug).
	Audit bool `json:"audit,omitempty"`

	// InterceptorsRaw are the interceptors every tools/call passes through,
	// in order (modules of the namespace mcp.interceptors).
	InterceptorsRaw []json.RawMessage `json:"interceptors,omitempty" caddy:"namespace=mcp.interceptors inline_key=interceptor"`

	logger    *zap.Logger
	live      *LiveSet
	opts      endpointOptions
	upstreams []*upstream
	byName    map[string]*endpoint
	aggregate *endpoint
	origins   map[string]bool
	chain     chain
	audit     *zap.Logger // nil: no audit log
}

// CaddyModule returns the Caddy module information.
func (Gateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcp_gateway",
		New: func() caddy.Module { return new(Gateway) },
	}
}

// Provision checks the config and takes the gateway's upstreams and
// endpoints from the pools, creating what is new. It does no I/O: servers
// start and connect on first use.
func (g *Gateway) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	if g.AggregatePath == "" {
		g.AggregatePath = defaultAggregatePath
	}
	if g.ServerPath == "" {
		g.ServerPath = defaultServerPath
	}
	if !strings.HasPrefix(g.AggregatePath, "/") {
		return fmt.Errorf("aggregate_path %q: must begin with /", g.AggregatePath)
	}
	if !strings.HasPrefix(g.ServerPath, "/") || !strings.HasSuffix(g.ServerPath, "/") {
		return fmt.Errorf("server_path %q: must begin and end with /", g.ServerPath)
	}
	if g.MaxRequestBody == 0 {
		g.MaxRequestBody = defaultMaxRequestBody
	}
	if g.MaxRequestBody < 0 {
		return fmt.Errorf("max_request_body %d: must be positive", g.MaxRequestBody)
	}
	if g.SessionTimeout < 0 {
		return fmt.Errorf("session_timeout %s: must be positive", time.Duration(g.SessionTimeout))
	}
	if g.SessionTimeout == 0 {
		g.SessionTimeout = caddy.Duration(defaultSessionTimeout)
	}
	g.origins = map[string]bool{}
	for _, o := range g.AllowedOrigins {
		if o != "*" && !isOrigin(o) {
			return fmt.Errorf("allowed_origins: %q is not an origin (scheme://host[:port], nothing after) or *", o)
		}
		g.origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	if err := g.provisionAccess(ctx); err != nil {
		return err
	}
	fromCatalogs, err := g.loadCatalogs()
	if err != nil {
		return err
	}
	g.Servers = append(g.Servers, fromCatalogs...)
	seen := map[string]int{}
	for i, s := range g.Servers {
		if s == nil {
			return fmt.Errorf("servers[%d]: empty server", i)
		}
		if err := s.Validate(); err != nil {
			return fmt.Errorf("servers[%d]: %w", i, err)
		}
		if j, dup := seen[s.Name]; dup {
			return fmt.Errorf("servers[%d]: duplicate server name %q (also servers[%d])", i, s.Name, j)
		}
		seen[s.Name] = i
	}

	if g.Registry {
		app, err := ctx.AppIfConfigured("mcp_registry")
		if err != nil {
			return fmt.Errorf("registry: %v (configure the mcp_registry app, in a Caddyfile the mcp_registry global option)", err)
		}
		src, ok := app.(LiveSource)
		if !ok {
			return fmt.Errorf("registry: app mcp_registry (%T) keeps no live set of servers", app)
		}
		g.live = src.LiveSet()
	}

	g.opts = endpointOptions{MaxRequestBody: g.MaxRequestBody, SessionTimeout: time.Duration(g.SessionTimeout)}
	members := make([]*member, 0, len(g.Servers))
	g.byName = make(map[string]*endpoint, len(g.Servers))
	for _, s := range g.Servers {
		u, err := loadUpstream(s, g.logger)
		if err != nil {
			return fmt.Errorf("servers[%d]: server %q: %w", seen[s.Name], s.Name, err)
		}
		g.upstreams = append(g.upstreams, u)
		m := &member{cfg: s, up: u}
		members = append(members, m)
		e, err := loadEndpoint(false, []*member{m}, g.opts, nil, g.logger.With(zap.String("endpoint", s.Name)))
		if err != nil {
			return err
		}
		g.byName[s.Name] = e
	}
	g.aggregate, err = loadEndpoint(true, members, g.opts, g.live, g.logger.With(zap.String("endpoint", "aggregate")))
	return err
}

// Cleanup gives back the handler's share of the pools; what no config uses
// any more is stopped.
func (g *Gateway) Cleanup() error {
	for _, e := range g.byName {
		releaseEndpoint(e.key)
	}
	if g.aggregate != nil {
		releaseEndpoint(g.aggregate.key)
	}
	for _, u := range g.upstreams {
		releaseUpstream(u.cfg)
	}
	return nil
}

// ServeHTTP serves the endpoint the path names.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if g.Auth != nil && g.serveMetadata(w, r) {
		return nil
	}
	e, err := g.route(r.URL.Path)
	if e == nil && err == nil {
		return next.ServeHTTP(w, r)
	}
	if origin := r.Header.Get("Origin"); origin != "" && !g.originAllowed(origin, r) {
		g.logger.Warn("refused origin", zap.String("origin", origin), zap.String("host", r.Host))
		writeRPCError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, fmt.Sprintf("origin %q is not allowed", origin))
		return nil
	}
	// Callers are known before anything about the servers is told, an
	// unknown name included.
	if g.guarded() {
		var ok bool
		if r, ok = g.admitCaller(w, r); !ok {
			return nil
		}
	}
	if err != nil {
		writeRPCError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, err.Error())
		return nil
	}
	e.ServeHTTP(w, r)
	return nil
}

// route finds the endpoint for a path: nil for a path that is not the
// gateway's, an error for a server that does not exist.
func (g *Gateway) route(p string) (*endpoint, error) {
	if p == g.AggregatePath {
		return g.aggregate, nil
	}
	rest, ok := strings.CutPrefix(p, g.ServerPath)
	if !ok {
		return nil, nil
	}
	name, ok := strings.CutSuffix(rest, "/mcp")
	if !ok || strings.Contains(name, "/") {
		return nil, nil
	}
	if e, ok := g.byName[name]; ok {
		return e, nil
	}
	if g.live != nil {
		if e, err := g.live.endpoint(name, g.opts, g.logger); e != nil || err != nil {
			return e, err
		}
	}
	return nil, fmt.Errorf("unknown MCP server %q", name)
}

// originAllowed accepts localhost, the site's own host (over TLS, or as an
// IP address), and the configured origins.
func (g *Gateway) originAllowed(origin string, r *http.Request) bool {
	o := strings.ToLower(strings.TrimSuffix(origin, "/"))
	if g.origins["*"] || g.origins[o] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	// The site's own host, where the Host header can be trusted: over TLS
	// (the certificate vouches for it) or as an IP address. A name over
	// plain HTTP is what DNS rebinding forges, Origin and Host alike.
	return strings.EqualFold(u.Host, r.Host) && (r.TLS != nil || ip != nil)
}

// isOrigin reports whether s is a browser origin: a scheme and a host, with
// no user, path, query or fragment, and no wildcard.
func isOrigin(s string) bool {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !strings.Contains(u.Host, "*")
}

// writeRPCError answers an HTTP-level refusal with a JSON-RPC error body, so
// that MCP clients can show why.
func writeRPCError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": code, "message": msg},
	})
}

// version is this module's version as built, for serverInfo. The build
// info is parsed once: every endpoint and upstream asks.
var version = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/caddy-mcp/caddy-mcp" {
				return d.Version
			}
		}
		if bi.Main.Path == "github.com/caddy-mcp/caddy-mcp" && bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
})

// Interface guards
var (
	_ caddy.Provisioner           = (*Gateway)(nil)
	_ caddy.CleanerUpper          = (*Gateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gateway)(nil)
	_ caddy.Destructor            = (*upstream)(nil)
	_ caddy.Destructor            = (*endpoint)(nil)
)
