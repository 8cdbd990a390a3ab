package catalog

import (
	"bytes"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func testCatalog(names ...string) *Catalog {
	c := &Catalog{SchemaVersion: schemaVersion}
	for _, n := range names {
		c.Servers = append(c.Servers, Entry{
			Server: caddymcp.ServerConfig{Name: n, Remote: &caddymcp.RemoteConfig{
				URL: "https://" + n + ".example.com/mcp", Headers: map[string]string{"Authorization": "Bearer {env.TOKEN}", "X-Region": "eu"},
			}},
			Source: "io.example/" + n, Version: "1.0.0",
			Variables: []Variable{{Name: "TOKEN", Required: true, Secret: true}},
		})
	}
	return c
}

// TestArtifactDigestIsDeterministic: the same catalog always gives the same
// bytes and digest (no time, no map order), a different one another.
func TestArtifactDigestIsDeterministic(t *testing.T) {
	a, err := build(testCatalog("one", "two"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		b, err := build(testCatalog("one", "two"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.digest != a.digest || !bytes.Equal(b.manifest, a.manifest) || !bytes.Equal(b.layer, a.layer) {
			t.Fatalf("the same catalog built twice: %s then %s", a.digest, b.digest)
		}
	}
	c, err := build(testCatalog("one", "three"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.digest == a.digest {
		t.Error("two different catalogs have the same digest")
	}
	for _, want := range []string{`"artifactType":"` + ArtifactType + `"`, `"mediaType":"application/vnd.oci.empty.v1+json"`, `"data":"e30="`, LayerMediaType} {
		if !strings.Contains(string(a.manifest), want) {
			t.Errorf("the manifest lacks %s:\n%s", want, a.manifest)
		}
	}
}

// TestPushPullInMemoryRegistry pushes a catalog to go-containerregistry's
// registry on loopback, pulls it by tag and by digest, and checks the cache:
// a digest is served from disk with the registry gone, a tag is not.
func TestPushPullInMemoryRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	host := strings.TrimPrefix(srv.URL, "http://")
	repo, err := name.NewRepository(host+"/team/catalog", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(testCatalog("one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := push(a, repo, "v1", func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if digest.DigestStr() != a.digest.String() {
		t.Errorf("pushed as %s, built as %s", digest, a.digest)
	}
	cache := t.TempDir()
	c, got, err := pull(repo.Tag("v1"), cache)
	if err != nil {
		t.Fatal(err)
	}
	if got.DigestStr() != a.digest.String() || c.Servers[0].Server.Name != "one" || c.Servers[0].Server.Remote.Headers["Authorization"] != "Bearer {env.TOKEN}" {
		t.Errorf("pulled %s: %+v", got, c.Servers)
	}

	// Not ours: an image in the same registry.
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag("image"), img); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pull(repo.Tag("image"), cache); err == nil || !strings.Contains(err.Error(), "not a caddy-mcp catalog") {
		t.Errorf("pulling an image: %v, want it refused as not a catalog", err)
	}

	// The registry goes away: the digest is cached, the tag cannot be
	// resolved.
	srv.Close()
	if c, _, err := pull(digest, cache); err != nil || c.Servers[0].Server.Name != "one" {
		t.Errorf("pulling a cached digest with the registry gone: %v", err)
	}
	if _, _, err := pull(repo.Tag("v1"), cache); err == nil || !strings.Contains(err.Error(), "resolving") {
		t.Errorf("pulling a tag with the registry gone: %v, want a resolving error", err)
	}

	// A cache file changed on disk is not trusted.
	_, layerFile := cacheFiles(cache, digest)
	if err := os.WriteFile(layerFile, []byte(`{"schema_version":1,"servers":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pull(digest, cache); err == nil {
		t.Error("a tampered cache was served with the registry gone")
	}
}

func TestParseRefusesWhatIsNotACatalog(t *testing.T) {
	a, err := build(testCatalog("one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parse(a.manifest, append(bytes.Clone(a.layer), ' ')); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("a layer that is not the manifest's: %v", err)
	}
	for _, tt := range []struct{ name, manifest, want string }{
		{"not JSON", `{`, "not JSON"},
		{"an image", `{"schemaVersion":2,"layers":[]}`, "not a caddy-mcp catalog: an image"},
		{"another artifact", `{"schemaVersion":2,"artifactType":"application/x-other","layers":[]}`, `an artifact of type "application/x-other"`},
		{"two layers", `{"artifactType":"` + ArtifactType + `","layers":[{"mediaType":"` + LayerMediaType + `"},{"mediaType":"` + LayerMediaType + `"}]}`, "has 2 layers"},
		{"too large", `{"artifactType":"` + ArtifactType + `","layers":[{"mediaType":"` + LayerMediaType + `","size":99999999}]}`, "over"},
	} {
		if _, err := parseManifest([]byte(tt.manifest)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	for _, tt := range []struct{ name, layer, want string }{
		{"newer schema", `{"schema_version":2,"servers":[]}`, "schema_version 2"},
		{"no servers", `{"schema_version":1,"servers":[]}`, "no servers"},
		{"unknown field", `{"schema_version":1,"servers":[],"extra":1}`, "unknown field"},
		{"invalid server", `{"schema_version":1,"servers":[{"server":{"name":"x"}}]}`, "exactly one of stdio, container or remote"},
		{"duplicate", `{"schema_version":1,"servers":[{"server":{"name":"x","remote":{"url":"https://a/"}}},{"server":{"name":"x","remote":{"url":"https://b/"}}}]}`, "duplicate server name"},
	} {
		if _, err := decodeCatalog([]byte(tt.layer)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}
