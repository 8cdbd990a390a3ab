package catalog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"github.com/modelcontextprotocol/registry/pkg/model"
)

// registryFixture reads a file of ../shared/fixtures/official-registry,
// relative to the directory holding go.mod.
func registryFixture(t *testing.T, name string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = filepath.Dir(dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "..", "shared", "fixtures", "official-registry", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listedServers returns the items of a list fixture as raw JSON: each
// {"server": …, "_meta": …}, or for the preview each bare server.
func listedServers(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	var list struct{ Servers []json.RawMessage }
	if err := json.Unmarshal(registryFixture(t, name), &list); err != nil {
		t.Fatal(err)
	}
	return list.Servers
}

func TestDecodeServerJSONCurrentShapes(t *testing.T) {
	items := listedServers(t, "servers.json")
	if len(items) != 22 {
		t.Fatalf("servers.json has %d items, want 22", len(items))
	}
	for _, item := range items {
		var want apiv0.ServerResponse
		if err := json.Unmarshal(item, &want); err != nil {
			t.Fatal(err)
		}
		var bare struct{ Server json.RawMessage }
		json.Unmarshal(item, &bare)
		for shape, doc := range map[string][]byte{"envelope": item, "server.json": bare.Server} {
			got, err := decodeServerJSON(doc)
			if err != nil {
				t.Fatalf("%s %s: %v", want.Server.Name, shape, err)
			}
			if !reflect.DeepEqual(*got, want.Server) {
				t.Errorf("%s %s: decoded\n%+v\nwant\n%+v", want.Server.Name, shape, *got, want.Server)
			}
		}
	}

	got, err := decodeServerJSON(registryFixture(t, "server.get.2025-12-11.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "io.github.domdomegg/airtable-mcp-server" || got.Version != "1.7.3" || len(got.Packages) != 3 ||
		!got.Packages[0].EnvironmentVariables[0].IsSecret {
		t.Errorf("server.get: got %+v", got)
	}
}

func TestDecodeServerJSONLegacy(t *testing.T) {
	sse, err := decodeServerJSON(registryFixture(t, "legacy.server.2025-07-09.sse.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantRemote := model.Transport{Type: "sse", URL: "http://mcp-fs.anonymous.modelcontextprotocol.io/sse", Headers: []model.KeyValueInput{
		{Name: "X-API-Key", InputWithVariables: model.InputWithVariables{Input: model.Input{Description: "API key for authentication", IsRequired: true, IsSecret: true}}},
		{Name: "X-Region", InputWithVariables: model.InputWithVariables{Input: model.Input{Description: "Service region", Default: "us-east-1", Choices: []string{"us-east-1", "eu-west-1", "ap-southeast-1"}}}},
	}}
	if sse.Schema != model.CurrentSchemaURL || sse.Name != "io.github.slimslenderslacks/remote" || sse.Version != "0.1.0" ||
		len(sse.Remotes) != 1 || !reflect.DeepEqual(sse.Remotes[0], wantRemote) {
		t.Errorf("2025-07-09 sse: got %+v", sse)
	}

	oci, err := decodeServerJSON(registryFixture(t, "legacy.server.2025-07-09.oci.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := oci.Packages[0]
	mount := p.RuntimeArguments[0]
	if p.RegistryType != "oci" || p.RegistryBaseURL != "https://docker.io" || p.Identifier != "mcp/filesystem" ||
		p.Version != "1.0.2" || p.Transport.Type != "stdio" ||
		mount.Type != "named" || mount.Name != "--mount" || !mount.IsRequired || !mount.IsRepeated ||
		mount.Value != "type=bind,src={source_path},dst={target_path}" ||
		mount.Variables["source_path"].Format != "filepath" || !mount.Variables["source_path"].IsRequired ||
		mount.Variables["target_path"].Default != "/project" ||
		p.PackageArguments[0].ValueHint != "target_dir" || p.PackageArguments[0].Value != "/project" ||
		p.EnvironmentVariables[0].Name != "LOG_LEVEL" || p.EnvironmentVariables[0].Default != "info" {
		t.Errorf("2025-07-09 oci: got %+v", p)
	}
}

func TestDecodeServerJSONPreview(t *testing.T) {
	items := listedServers(t, "legacy.preview-2025-05-16.json")
	if len(items) != 2 {
		t.Fatalf("preview fixture has %d items, want 2", len(items))
	}
	azure, err := decodeServerJSON(items[0])
	if err != nil {
		t.Fatal(err)
	}
	if azure.Name != "io.github.azure/azure-mcp" || azure.Version != "0.0.1-seed" ||
		!reflect.DeepEqual(azure.Remotes, []model.Transport{{Type: "sse", URL: "http://localhost:5008/sse"}}) ||
		azure.Packages[0].RegistryType != "unknown" || azure.Packages[0].Identifier != "Azure/azure-mcp" ||
		azure.Repository.URL != "https://github.com/Azure/azure-mcp" {
		t.Errorf("azure: got %+v", azure)
	}
	dart, err := decodeServerJSON(items[1])
	if err != nil {
		t.Fatal(err)
	}
	p := dart.Packages[0]
	if p.RegistryType != "oci" || p.Identifier != "dart-mcp-server" || p.Version != "0.1.13" || p.Transport.Type != "stdio" ||
		len(p.PackageArguments) != 4 || p.PackageArguments[2].Type != "named" || p.PackageArguments[2].Name != "-e DART_TOKEN" ||
		!p.PackageArguments[0].IsRequired || p.EnvironmentVariables[0].Name != "DART_TOKEN" {
		t.Errorf("dart: got %+v", p)
	}
}

func TestDecodeServerJSONIgnoresUnknownFields(t *testing.T) {
	doc := `{"$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
		"name": "io.github.x/y", "version": "1", "futureField": {"a": 1},
		"packages": [{"registryType": "npm", "identifier": "y", "version": "1", "transport": {"type": "stdio"}, "sbom": "…"}]}`
	s, err := decodeServerJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if s.Packages[0].Identifier != "y" {
		t.Errorf("got %+v", s)
	}
}

func TestDecodeServerJSONRefuses(t *testing.T) {
	const current = `"$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json", `
	small := `{"name": "io.github.x/y"}`
	for _, tc := range []struct{ name, doc, err string }{
		{"not JSON", `{"name": `, "server document is not JSON"},
		{"array", `[{"name": "io.github.x/y"}]`, "server document is a JSON array, not an object"},
		{"string", `"io.github.x/y"`, "server document is a JSON string, not an object"},
		{"over 1 MiB", small + strings.Repeat(" ", maxDocument+1-len(small)), "server document of 1048577 bytes: over 1 MiB"},
		{"no name", `{"description": "x", "version": "1"}`, "server document has no name"},
		{"empty name", `{"name": ""}`, "server document has no name"},
		{"list", `{"servers": [], "metadata": {"count": 0}}`, "server document is a list of servers, not one server"},
		{"server not an object", `{"server": [1]}`, `server response: "server" is a JSON array, not an object`},
		{"unknown $schema date", `{"$schema": "https://static.modelcontextprotocol.io/schemas/2025-01-27/server.schema.json", "name": "io.github.x/y"}`,
			`server io.github.x/y: unknown $schema https://static.modelcontextprotocol.io/schemas/2025-01-27/server.schema.json: known are the server.schema.json of 2025-07-09, 2025-09-16, 2025-09-29, 2025-10-11, 2025-10-17, 2025-12-11`},
		{"$schema of another document", `{"$schema": "https://example.com/schema.json", "name": "io.github.x/y"}`, "unknown $schema https://example.com/schema.json"},
		{"snake_case in a camelCase document", `{` + current + `"name": "io.github.x/y", "remotes": [{"type": "sse", "url": "https://x/sse", "headers": [{"name": "K", "value": "v", "is_secret": true}]}]}`,
			`server io.github.x/y: remotes[0].headers[0].is_secret: a snake_case field in a camelCase document (write "isSecret")`},
		{"camelCase in a 2025-07-09 document", `{"$schema": "https://static.modelcontextprotocol.io/schemas/2025-07-09/server.schema.json", "name": "io.github.x/y", "packages": [{"registry_type": "npm", "identifier": "y", "environment_variables": [{"name": "K", "isSecret": true}]}]}`,
			"packages[0].environment_variables[0].isSecret: a camelCase field in a snake_case (2025-07-09 or preview) document"},
		{"mixed, no $schema", `{"name": "io.github.x/y", "packages": [{"registry_type": "npm", "registryBaseUrl": "https://registry.npmjs.org"}]}`,
			"packages[0].registryBaseUrl: a camelCase field in a snake_case"},
		{"wrong type", `{` + current + `"name": "io.github.x/y", "packages": {"registryType": "npm"}}`, "server io.github.x/y: json: cannot unmarshal object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := decodeServerJSON([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %+v, %v; want an error containing %q", s, err, tc.err)
			}
		})
	}

	// Exactly 1 MiB is still read.
	if _, err := decodeServerJSON([]byte(small + strings.Repeat(" ", maxDocument-len(small)))); err != nil {
		t.Errorf("a document of exactly 1 MiB: %v", err)
	}
	// A variable's name is the publisher's choice, not a field.
	named := `{` + current + `"name": "io.github.x/y", "remotes": [{"type": "sse", "url": "https://x/{is_secret}", "variables": {"is_secret": {"default": "a"}}}]}`
	if _, err := decodeServerJSON([]byte(named)); err != nil {
		t.Errorf("a variable named is_secret: %v", err)
	}
}
