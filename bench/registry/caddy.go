package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/caddy-mcp/caddy-mcp/bench/internal/benchkit"
)

// caddyGOGC is GOGC for the Caddys under test alone ("": Go's default).
var caddyGOGC string

// caddyProc is a Caddy under test.
type caddyProc struct {
	*benchkit.Caddy
	storage string // the storage root (file_system)
}

// startCaddy writes the config that build makes for the admin and site
// addresses into its own directory under work, lets prepare fill the
// storage (if prepare is not nil), runs bin with it, and waits until both
// addresses answer.
func startCaddy(bin, work, name string, build func(admin, listen, storage string) map[string]any, prepare func(storage string) error) (*caddyProc, error) {
	dir := filepath.Join(work, name)
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	if prepare != nil {
		if err := prepare(storage); err != nil {
			return nil, err
		}
	}
	// Reading many records takes a while: wait long.
	var env []string
	if caddyGOGC != "" {
		env = append(env, "GOGC="+caddyGOGC)
	}
	c, err := benchkit.StartCaddy("caddy ("+name+")", bin, dir, 5*time.Minute, func(admin, listen string) map[string]any {
		return build(admin, listen, storage)
	}, env...)
	if err != nil {
		return nil, err
	}
	return &caddyProc{Caddy: c, storage: storage}, nil
}

// registryConfig is Caddy with the registry: its API under /api/, the
// gateway serving its servers at /servers/<name>/mcp and /mcp. Loopback
// upstreams are allowed; the health probe keeps its defaults, and the
// servers the bench registers in bulk turn it off (offProbe), so that no
// background work runs for them unless the bench asks (POST …/refresh
// probes one server).
func registryConfig(admin, listen, storage string) map[string]any {
	cfg := benchkit.SiteConfig(admin, listen, storage, []map[string]any{{"handle": []map[string]any{
		{"handler": "mcp_registry_api"},
		{"handler": "mcp_gateway", "registry": true},
	}}})
	cfg["apps"].(map[string]any)["mcp_registry"] = map[string]any{
		"allowed_networks": []string{"loopback"},
	}
	return cfg
}

// plainRoute is a route of plain Caddy that proxies one path to the
// upstream, as a route per MCP server in a static config would.
func plainRoute(path, upstreamHost string) map[string]any {
	return map[string]any{
		"match":  []map[string]any{{"path": []string{path}}},
		"handle": []map[string]any{{"handler": "reverse_proxy", "upstreams": []map[string]any{{"dial": upstreamHost}}}},
	}
}

// plainRoutes are n such routes, /servers/s<i>/mcp.
func plainRoutes(n int, upstreamHost string) []map[string]any {
	routes := make([]map[string]any, n)
	for i := range routes {
		routes[i] = plainRoute(fmt.Sprintf("/servers/s%d/mcp", i), upstreamHost)
	}
	return routes
}

// writeRecords writes n registry records straight into a file_system
// storage root, as the registry stores them (schema version 1, enabled,
// revision 1), before Caddy starts: the fast way to a big registry. Server
// i is named srvName(i) and reaches url(i).
func writeRecords(storage string, n int, url func(int) string) error {
	dir := filepath.Join(storage, "mcp_registry", "servers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now().UTC()
	for i := range n {
		b, err := json.Marshal(map[string]any{
			"schema_version": 1, "name": srvName(i), "url": url(i), "enabled": true, "probe": offProbe,
			"created_at": now, "updated_at": now, "revision": 1,
		})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, srvName(i)+".json"), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// offProbe is a record's probe setting that turns it off.
var offProbe = map[string]any{"disabled": true}

// srvName names the i-th pre-registered server.
func srvName(i int) string { return fmt.Sprintf("srv-%05d", i) }
