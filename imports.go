// Package caddymcproot is the root of the caddy-mcp module. It exists for
// xcaddy: `xcaddy build --with github.com/caddy-mcp/caddy-mcp` blank-imports
// the module's root package, so this package blank-imports every package
// of the module that registers Caddy modules, Caddyfile directives or
// commands.
package caddymcproot

import (
	_ "github.com/caddy-mcp/caddy-mcp/caddymcp"
	_ "github.com/caddy-mcp/caddy-mcp/catalog"
	_ "github.com/caddy-mcp/caddy-mcp/interceptors"
	_ "github.com/caddy-mcp/caddy-mcp/registryapp"
)
