package main

import (
	"maps"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

// Paths on the site. The gateway's one server is named "up".
const (
	rpPath        = "/rp/mcp"
	oneServerPath = "/servers/up/mcp"
	aggregatePath = "/mcp"
	serverName    = "up"

	authPrefix        = "/auth"      // the gateway with auth and a policy
	interceptedPrefix = "/intercept" // the gateway with interceptors
	benchAPIKey       = "mcpk_bench-key-for-the-auth-path"
)

// caddyConfig is one config holding both paths under test: a plain
// reverse_proxy to the upstream under /rp/, and the gateway, with the same
// upstream as its one remote server, for everything else.
//
// The reverse proxy's idle pool per host is raised from Caddy's default (32)
// to rpIdle, the size of the gateway's own upstream pool (256), so that at 64
// sessions the baseline does not churn connections the gateway keeps.
func caddyConfig(dir, admin, listen, upstreamURL string, rpIdle int) map[string]any {
	upstreamHost := strings.TrimPrefix(strings.TrimSuffix(upstreamURL, "/mcp"), "http://")
	keepAlive := map[string]any{}
	if rpIdle > 0 {
		keepAlive["max_idle_conns_per_host"] = rpIdle
	}
	return benchkit.SiteConfig(admin, listen, filepath.Join(dir, "storage"), []map[string]any{
		{
			"match": []map[string]any{{"path": []string{"/rp/*"}}},
			"handle": []map[string]any{{
				"handler":   "reverse_proxy",
				"upstreams": []map[string]any{{"dial": upstreamHost}},
				"transport": map[string]any{"protocol": "http", "keep_alive": keepAlive},
			}},
		},
		gatewayRoute(authPrefix, upstreamURL, map[string]any{
			"auth":          map[string]any{"api_keys": []map[string]any{{"principal": "bench", "hash": mcpauth.HashKey(benchAPIKey)}}},
			"authorization": map[string]any{"rules": []map[string]any{{"principals": []string{"bench"}, "servers": []string{serverName}}}},
		}),
		gatewayRoute(interceptedPrefix, upstreamURL, map[string]any{
			"interceptors": []map[string]any{{"interceptor": "call_log"}, {"interceptor": "secret_scan"}},
		}),
		gatewayRoute("", upstreamURL, nil),
	})
}

// gatewayRoute is a route to an mcp_gateway with the upstream as its one
// server, under prefix ("" for every path), with more options.
func gatewayRoute(prefix, upstreamURL string, options map[string]any) map[string]any {
	g := map[string]any{
		"handler":        "mcp_gateway",
		"aggregate_path": prefix + aggregatePath,
		"server_path":    prefix + "/servers/",
		"servers":        []map[string]any{{"name": serverName, "remote": map[string]any{"url": upstreamURL}}},
	}
	maps.Copy(g, options)
	route := map[string]any{"handle": []map[string]any{g}}
	if prefix != "" {
		route["match"] = []map[string]any{{"path": []string{prefix + "/*"}}}
	}
	return route
}

// startCaddy runs bin with the config in dir and waits until the site
// answers.
func startCaddy(bin, dir, upstreamURL string, rpIdle int) (*benchkit.Caddy, error) {
	return benchkit.StartCaddy("caddy", bin, dir, 60*time.Second, func(admin, listen string) map[string]any {
		return caddyConfig(dir, admin, listen, upstreamURL, rpIdle)
	})
}
