package caddymcp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// catalogLoader loads the servers of a catalog, an OCI artifact named by a
// reference. Package catalog provides it (RegisterCatalogLoader): this
// package does not depend on it, and a build without it refuses oci_refs.
var catalogLoader func(ctx context.Context, ref string) ([]*ServerConfig, error)

// RegisterCatalogLoader sets how oci_refs are loaded; package catalog calls
// it from its init.
func RegisterCatalogLoader(load func(ctx context.Context, ref string) ([]*ServerConfig, error)) {
	catalogLoader = load
}

// catalogTimeout bounds pulling a catalog while a config loads.
const catalogTimeout = 30 * time.Second

// loadCatalogs returns the servers of the gateway's oci_refs, in order.
func (g *Gateway) loadCatalogs() ([]*ServerConfig, error) {
	if len(g.OCIRefs) == 0 {
		return nil, nil
	}
	if catalogLoader == nil {
		return nil, errors.New("oci_refs: this build has no catalog support (package github.com/caddy-mcp/caddy-mcp/catalog)")
	}
	var servers []*ServerConfig
	for i, ref := range g.OCIRefs {
		ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
		got, err := catalogLoader(ctx, ref)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("oci_refs[%d] %q: %w", i, ref, err)
		}
		servers = append(servers, got...)
	}
	return servers, nil
}
