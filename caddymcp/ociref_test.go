package caddymcp

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestOCIRefs: a gateway takes a catalog's servers from the loader that
// package catalog registers, in order after its own; a failing catalog, a
// name taken twice and a build without catalog support are refused at load,
// naming the reference.
func TestOCIRefs(t *testing.T) {
	saved := catalogLoader
	t.Cleanup(func() { catalogLoader = saved })
	provision := func(g *Gateway) error {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		err := g.Provision(ctx)
		_ = g.Cleanup()
		return err
	}
	remote := func(name string) *ServerConfig {
		return &ServerConfig{Name: name, Remote: &RemoteConfig{URL: "https://" + name + ".example.com/mcp"}}
	}

	catalogLoader = nil
	if err := provision(&Gateway{OCIRefs: []string{"r/c:1"}}); err == nil || !strings.Contains(err.Error(), "no catalog support") {
		t.Errorf("without catalog support: %v", err)
	}

	RegisterCatalogLoader(func(_ context.Context, ref string) ([]*ServerConfig, error) {
		switch ref {
		case "r/c:1":
			return []*ServerConfig{remote("a"), remote("b")}, nil
		case "r/dup:1":
			return []*ServerConfig{remote("own")}, nil
		}
		return nil, errors.New("not found")
	})
	g := &Gateway{Servers: []*ServerConfig{remote("own")}, OCIRefs: []string{"r/c:1"}}
	if err := provision(g); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range g.Servers {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "own,a,b" {
		t.Errorf("served %v, want own, then the catalog's a and b", names)
	}
	if err := provision(&Gateway{OCIRefs: []string{"r/c:1", "r/missing:1"}}); err == nil || !strings.Contains(err.Error(), `oci_refs[1] "r/missing:1": not found`) {
		t.Errorf("a failing catalog: %v", err)
	}
	if err := provision(&Gateway{Servers: []*ServerConfig{remote("own")}, OCIRefs: []string{"r/dup:1"}}); err == nil || !strings.Contains(err.Error(), `duplicate server name "own"`) {
		t.Errorf("a catalog server named like one of the config's: %v", err)
	}
}
