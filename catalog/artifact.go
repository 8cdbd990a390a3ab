package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxCatalog bounds a catalog's JSON: far more than thousands of servers.
const maxCatalog = 16 << 20

// emptyConfig is OCI 1.1's empty descriptor, the config of an artifact
// that needs none.
var emptyConfig = []byte("{}")

// artifact is a catalog built as an OCI 1.1 artifact: its manifest and its
// one layer, byte for byte, so that the same catalog always has the same
// digest (nothing in it depends on time or on map order).
type artifact struct {
	manifest []byte
	layer    []byte
	digest   v1.Hash // of the manifest: what a reference pins
}

// build makes the artifact of a catalog. subject, if set, is the descriptor
// of the image the catalog's one server runs (OCI referrers find the
// catalog from the image).
func build(c *Catalog, subject *v1.Descriptor) (*artifact, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	layer, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	layer = append(layer, '\n')
	if len(layer) > maxCatalog {
		return nil, fmt.Errorf("the catalog is %d bytes, over %d", len(layer), maxCatalog)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config: v1.Descriptor{
			MediaType: "application/vnd.oci.empty.v1+json",
			Size:      int64(len(emptyConfig)),
			Digest:    hashOf(emptyConfig),
			Data:      emptyConfig,
		},
		Layers: []v1.Descriptor{{
			MediaType:   LayerMediaType,
			Size:        int64(len(layer)),
			Digest:      hashOf(layer),
			Annotations: map[string]string{"org.opencontainers.image.title": "catalog.json"},
		}},
		Subject: subject,
	}
	if len(c.Servers) == 1 {
		e := c.Servers[0]
		m.Annotations = map[string]string{"io.caddy-mcp.server.name": e.Server.Name}
		if e.Source != "" {
			m.Annotations["io.modelcontextprotocol.server.name"] = e.Source
		}
		if e.Version != "" {
			m.Annotations["org.opencontainers.image.version"] = e.Version
		}
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &artifact{manifest: manifest, layer: layer, digest: hashOf(manifest)}, nil
}

// parseManifest reads an artifact's manifest, refusing what is not one of
// our catalogs.
func parseManifest(manifest []byte) (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("the manifest is not JSON: %v", err)
	}
	if m.ArtifactType != ArtifactType {
		what := "an image or another kind of artifact"
		if m.ArtifactType != "" {
			what = fmt.Sprintf("an artifact of type %q", m.ArtifactType)
		}
		return nil, fmt.Errorf("not a caddy-mcp catalog: %s (want artifactType %q)", what, ArtifactType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType {
		return nil, fmt.Errorf("a catalog has one layer of type %q; this artifact has %d layers", LayerMediaType, len(m.Layers))
	}
	if m.Layers[0].Size > maxCatalog {
		return nil, fmt.Errorf("the catalog layer is %d bytes, over %d", m.Layers[0].Size, maxCatalog)
	}
	return &m, nil
}

// parse reads an artifact's manifest and layer back into a catalog,
// refusing what is not one of ours or does not match its digests.
func parse(manifest, layer []byte) (*Catalog, error) {
	m, err := parseManifest(manifest)
	if err != nil {
		return nil, err
	}
	if got, want := hashOf(layer), m.Layers[0].Digest; got != want || int64(len(layer)) != m.Layers[0].Size {
		return nil, fmt.Errorf("digest mismatch: the catalog layer is %s (%d bytes), the manifest says %s (%d bytes)", got, len(layer), want, m.Layers[0].Size)
	}
	return decodeCatalog(layer)
}

// decodeCatalog reads a catalog's JSON.
func decodeCatalog(b []byte) (*Catalog, error) {
	if len(b) > maxCatalog {
		return nil, fmt.Errorf("the catalog is %d bytes, over %d", len(b), maxCatalog)
	}
	var c Catalog
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("the catalog is not valid: %v", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks what the gateway will run: a known schema version, unique
// names, servers the gateway accepts.
func (c *Catalog) validate() error {
	if c.SchemaVersion != schemaVersion {
		return fmt.Errorf("catalog schema_version %d: this build reads %d", c.SchemaVersion, schemaVersion)
	}
	if len(c.Servers) == 0 {
		return errors.New("the catalog has no servers")
	}
	seen := map[string]bool{}
	for i, e := range c.Servers {
		if err := e.Server.Validate(); err != nil {
			return fmt.Errorf("servers[%d]: %w", i, err)
		}
		if seen[e.Server.Name] {
			return fmt.Errorf("servers[%d]: duplicate server name %q", i, e.Server.Name)
		}
		seen[e.Server.Name] = true
	}
	return nil
}

func hashOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
