// Command caddy is Caddy with the MCP gateway plugged in. It is the build
// that xcaddy.json describes, kept in the repository so that `go build
// ./cmd/caddy` (or `go run ./cmd/caddy`) needs nothing but Go.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy modules here
	_ "github.com/caddy-mcp/caddy-mcp"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
