package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// registryOptions are how we talk to OCI registries: credentials from the
// Docker config as usual, and the caller's context.
func registryOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// rawManifest is a manifest to put as it is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// push uploads an artifact to a repository, tagged if tag is set, and
// returns its digest reference; step hears what it does.
func push(a *artifact, repo name.Repository, tag string, step func(string), opts ...remote.Option) (name.Digest, error) {
	for _, blob := range []struct {
		what string
		b    []byte
		mt   types.MediaType
	}{{"config", emptyConfig, "application/vnd.oci.empty.v1+json"}, {"catalog layer", a.layer, LayerMediaType}} {
		step(fmt.Sprintf("pushing the %s (%d bytes) to %s", blob.what, len(blob.b), repo))
		if err := remote.WriteLayer(repo, static.NewLayer(blob.b, blob.mt), opts...); err != nil {
			return name.Digest{}, fmt.Errorf("pushing to %s: %w", repo, err)
		}
	}
	digest := repo.Digest(a.digest.String())
	var target name.Reference = digest
	if tag != "" {
		target = repo.Tag(tag)
	}
	step("pushing the manifest as " + target.String())
	if err := remote.Put(target, rawManifest(a.manifest), opts...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing the manifest to %s: %w", target, err)
	}
	return digest, nil
}

// pull fetches a catalog: a digest reference from the cache if it is there
// (digests do not change), a tag resolved at the registry each time.
func pull(ref name.Reference, cacheDir string, opts ...remote.Option) (*Catalog, name.Digest, error) {
	digest, isDigest := ref.(name.Digest)
	if !isDigest {
		desc, err := remote.Head(ref, opts...)
		if err != nil {
			return nil, name.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
		}
		digest = ref.Context().Digest(desc.Digest.String())
	}
	if c, err := readCache(cacheDir, digest); err == nil {
		return c, digest, nil
	}
	desc, err := remote.Get(digest, opts...)
	if err != nil {
		return nil, name.Digest{}, fmt.Errorf("fetching %s: %w", digest, err)
	}
	if got := hashOf(desc.Manifest); got.String() != digest.DigestStr() {
		return nil, name.Digest{}, fmt.Errorf("digest mismatch: %s has a manifest of digest %s", digest, got)
	}
	m, err := parseManifest(desc.Manifest)
	if err != nil {
		return nil, name.Digest{}, fmt.Errorf("%s: %w", digest, err)
	}
	layer, err := remote.Layer(ref.Context().Digest(m.Layers[0].Digest.String()), opts...)
	if err != nil {
		return nil, name.Digest{}, fmt.Errorf("fetching the catalog layer of %s: %w", digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, name.Digest{}, fmt.Errorf("fetching the catalog layer of %s: %w", digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxCatalog+1))
	if err != nil {
		return nil, name.Digest{}, fmt.Errorf("reading the catalog layer of %s: %w", digest, err)
	}
	c, err := parse(desc.Manifest, b)
	if err != nil {
		return nil, name.Digest{}, fmt.Errorf("%s: %w", digest, err)
	}
	if err := writeCache(cacheDir, digest, desc.Manifest, b); err != nil {
		return nil, name.Digest{}, err
	}
	return c, digest, nil
}

// defaultCacheDir is where pulled catalogs are kept: Caddy's data directory.
func defaultCacheDir() string { return filepath.Join(caddy.AppDataDir(), "mcp", "catalogs") }

// cacheFiles are the files of a cached catalog: its manifest and its layer.
func cacheFiles(dir string, d name.Digest) (manifest, layer string) {
	h, _ := v1.NewHash(d.DigestStr())
	base := filepath.Join(dir, h.Algorithm, h.Hex)
	return base + ".manifest.json", base + ".json"
}

// readCache reads a cached catalog, checked against its digest like a
// pulled one: a damaged or altered file is a cache miss.
func readCache(dir string, d name.Digest) (*Catalog, error) {
	if dir == "" {
		return nil, errors.New("no cache")
	}
	mf, lf := cacheFiles(dir, d)
	manifest, err := os.ReadFile(mf)
	if err != nil {
		return nil, err
	}
	if hashOf(manifest).String() != d.DigestStr() {
		return nil, fmt.Errorf("cached manifest of %s does not match its digest", d)
	}
	layer, err := os.ReadFile(lf)
	if err != nil {
		return nil, err
	}
	return parse(manifest, layer)
}

// writeCache stores a pulled catalog, each file whole or not at all (the
// layer first: a manifest is only there with its layer).
func writeCache(dir string, d name.Digest, manifest, layer []byte) error {
	if dir == "" {
		return nil
	}
	mf, lf := cacheFiles(dir, d)
	if err := os.MkdirAll(filepath.Dir(mf), 0o700); err != nil {
		return fmt.Errorf("caching %s: %w", d, err)
	}
	for _, f := range []struct {
		path string
		b    []byte
	}{{lf, layer}, {mf, manifest}} {
		if err := writeWhole(f.path, f.b); err != nil {
			return fmt.Errorf("caching %s: %w", d, err)
		}
	}
	return nil
}

// writeWhole writes a file through a temporary one and a rename.
func writeWhole(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
