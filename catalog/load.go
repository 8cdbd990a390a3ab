package catalog

import (
	"context"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/google/go-containerregistry/pkg/name"
)

func init() {
	caddymcp.RegisterCatalogLoader(load)
}

// Pull fetches the catalog a reference names: through the cache in Caddy's
// data directory for a digest, resolved at its registry for a tag. It
// returns the catalog and its digest reference.
func Pull(ctx context.Context, ref string) (*Catalog, name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, name.Digest{}, err
	}
	return pull(r, defaultCacheDir(), registryOptions(ctx)...)
}

// load gives mcp_gateway the servers of a catalog reference (oci_refs).
func load(ctx context.Context, ref string) ([]*caddymcp.ServerConfig, error) {
	c, _, err := Pull(ctx, ref)
	if err != nil {
		return nil, err
	}
	servers := make([]*caddymcp.ServerConfig, len(c.Servers))
	for i := range c.Servers {
		servers[i] = &c.Servers[i].Server
	}
	return servers, nil
}
