// Package catalog takes MCP servers from the official MCP Registry and pins
// them as OCI artifacts: catalogs of servers, content-addressed, that a team
// reviews in its own OCI registry and an mcp_gateway runs exactly
// (oci_ref). It reads every shape of the official server.json, maps each
// server to how the gateway runs it, and builds, pushes, pulls and caches
// the artifacts.
package catalog

import "github.com/caddy-mcp/caddy-mcp/caddymcp"

// Media types of a catalog artifact (OCI 1.1: an artifactType, the empty
// config, one layer).
const (
	ArtifactType   = "application/vnd.caddy-mcp.catalog.v1"
	LayerMediaType = "application/vnd.caddy-mcp.catalog.v1+json"
)

// schemaVersion is the version of the Catalog JSON; a newer one is refused.
const schemaVersion = 1

// Catalog is the content of an artifact: servers as the gateway runs them.
type Catalog struct {
	SchemaVersion int     `json:"schema_version"`
	Servers       []Entry `json:"servers"`
}

// Entry is one server of a catalog.
type Entry struct {
	// Server is how the gateway runs it: a name, and exactly one of stdio,
	// container and remote. Secrets appear only as placeholders
	// ({env.NAME}), never in clear.
	Server caddymcp.ServerConfig `json:"server"`

	// Source is the server's name in the official registry
	// (io.github.owner/name) and Version its version there.
	Source  string `json:"source,omitempty"`
	Version string `json:"version,omitempty"`

	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`

	// Image is the container image an oci package runs: the artifact's
	// subject when the catalog holds that one server.
	Image string `json:"image,omitempty"`

	// Variables are what the operator provides where the server runs
	// (the placeholders of Server), required or not.
	Variables []Variable `json:"variables,omitempty"`
}

// Variable is a value the operator provides, by environment variable.
type Variable struct {
	Name        string `json:"name"` // the environment variable: {env.<Name>}
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Secret      bool   `json:"secret,omitempty"`
}
