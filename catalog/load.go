package catalog

import (
	"context"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/google/go-containerregistry/pkg/name"
)

func init() {
	caddymcp.RegisterCatalogLoader(load)
}

// load gives mcp_gateway the servers of a catalog reference (oci_refs):
// pulled, or read from the cache for a digest.
func load(ctx context.Context, ref string) ([]*caddymcp.ServerConfig, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	c, _, err := pull(r, defaultCacheDir(), registryOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	servers := make([]*caddymcp.ServerConfig, len(c.Servers))
	for i := range c.Servers {
		servers[i] = &c.Servers[i].Server
	}
	return servers, nil
}
