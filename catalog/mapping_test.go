package catalog

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"github.com/modelcontextprotocol/registry/pkg/model"
)

// mapWant is what mapping one server gives.
type mapWant struct {
	err       string // a part of the error; the rest is then unset
	name      string
	remote    *caddymcp.RemoteConfig
	container *caddymcp.ContainerConfig
	stdio     *caddymcp.StdioConfig
	variables string   // see variablesSummary
	notes     []string // each a part of some note
}

func (w mapWant) check(t *testing.T, e Entry, notes []string, err error) {
	t.Helper()
	for _, want := range w.notes {
		if !hasNote(notes, want) {
			t.Errorf("no note contains %q; notes:\n%s", want, strings.Join(notes, "\n"))
		}
	}
	if w.err != "" {
		if err == nil || !strings.Contains(err.Error(), w.err) {
			t.Errorf("error %v, want one containing %q", err, w.err)
		}
		return
	}
	if err != nil {
		t.Fatalf("error %v; notes:\n%s", err, strings.Join(notes, "\n"))
	}
	if e.Server.Name != w.name {
		t.Errorf("name %q, want %q", e.Server.Name, w.name)
	}
	for kind, got := range map[string][2]any{"remote": {e.Server.Remote, w.remote}, "container": {e.Server.Container, w.container}, "stdio": {e.Server.Stdio, w.stdio}} {
		if !reflect.DeepEqual(got[0], got[1]) {
			t.Errorf("%s:\n%s\nwant\n%s", kind, jsonOf(t, got[0]), jsonOf(t, got[1]))
		}
	}
	if w.container != nil && e.Image != w.container.Image {
		t.Errorf("Entry.Image %q, want %q", e.Image, w.container.Image)
	}
	if got := variablesSummary(e.Variables); got != w.variables {
		t.Errorf("variables %q, want %q", got, w.variables)
	}
}

// variablesSummary writes variables as "NAME(required,secret) NAME()".
func variablesSummary(vs []Variable) string {
	var parts []string
	for _, v := range vs {
		var flags []string
		if v.Required {
			flags = append(flags, "required")
		}
		if v.Secret {
			flags = append(flags, "secret")
		}
		parts = append(parts, v.Name+"("+strings.Join(flags, ",")+")")
	}
	return strings.Join(parts, " ")
}

func hasNote(notes []string, part string) bool {
	for _, n := range notes {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fixtureServers decodes every server of the fixture files: name@version →
// server.
func fixtureServers(t *testing.T) map[string]*apiv0.ServerJSON {
	t.Helper()
	out := map[string]*apiv0.ServerJSON{}
	docs := [][]byte{
		registryFixture(t, "server.get.2025-12-11.json"),
		registryFixture(t, "legacy.server.2025-07-09.sse.json"),
		registryFixture(t, "legacy.server.2025-07-09.oci.json"),
	}
	for _, file := range []string{"servers.json", "legacy.preview-2025-05-16.json"} {
		for _, item := range listedServers(t, file) {
			docs = append(docs, item)
		}
	}
	for _, doc := range docs {
		s, err := decodeServerJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		out[s.Name+"@"+s.Version] = s
	}
	return out
}

func TestMapServerFixtures(t *testing.T) {
	nothingRunnable := "nothing the gateway can run among: "
	airtable := func(v string) mapWant {
		return mapWant{
			name:      "airtable-mcp-server",
			container: &caddymcp.ContainerConfig{Image: "docker.io/domdomegg/airtable-mcp-server:" + v, Env: map[string]string{"AIRTABLE_API_KEY": "{env.AIRTABLE_API_KEY}"}},
			variables: "AIRTABLE_API_KEY(required,secret)",
			notes: []string{
				"not used: npm package airtable-mcp-server (chose oci package docker.io/domdomegg/airtable-mcp-server:" + v + ")",
				"provide AIRTABLE_API_KEY where the gateway runs (required, secret)",
				"the container runs with caddymcp's defaults, no network among them",
			},
		}
	}
	wants := map[string]mapWant{
		"io.github.domdomegg/airtable-mcp-server@1.7.2": airtable("1.7.2"),
		"io.github.domdomegg/airtable-mcp-server@1.7.3": airtable("1.7.3"),
		"io.github.domdomegg/time-mcp-nuget@1.0.8":      {err: "io.github.domdomegg/time-mcp-nuget: " + nothingRunnable + "nuget package TimeMcpServer"},
		"io.github.domdomegg/time-mcp-pypi@1.0.6": {name: "time-mcp-pypi",
			stdio: &caddymcp.StdioConfig{Command: "uvx", Args: []string{"time-mcp-pypi==1.0.6"}}},
		"io.github.example/configurable-server@1.0.0": {err: nothingRunnable + "npm package @example/mcp-server",
			notes: []string{"skipped: npm package @example/mcp-server speaks streamable-http: the gateway would have to start it and reach it over HTTP"}},
		"io.github.example/database-manager@3.1.0": {name: "database-manager",
			container: &caddymcp.ContainerConfig{Image: "docker.io/example/database-manager-mcp:3.1.0",
				Args: []string{"--host", "localhost", "{env.DATABASE_NAME}"},
				Env:  map[string]string{"DB_USERNAME": "{env.DB_USERNAME}", "DB_PASSWORD": "{env.DB_PASSWORD}", "SSL_MODE": "prefer"}},
			variables: "DATABASE_NAME(required) DB_PASSWORD(required,secret) DB_USERNAME(required)",
			notes: []string{
				"skipped: runtime argument --network: the gateway runs docker with its own options",
				"skipped: runtime argument -e: the gateway runs docker with its own options",
				"left out: optional argument --port has no value or default (give one with --var port=VALUE)",
				"provide DATABASE_NAME where the gateway runs (required)",
			}},
		"io.github.example/quay-sample-mcp@1.0.0": {name: "quay-sample-mcp",
			container: &caddymcp.ContainerConfig{Image: "quay.io/myorg/my-mcp-server:1.0.0"}},
		"io.github.example/weather-mcp@0.5.0": {name: "weather-mcp",
			stdio: &caddymcp.StdioConfig{Command: "uvx", Args: []string{"weather-mcp-server==0.5.0"},
				Env: map[string]string{"WEATHER_API_KEY": "{env.WEATHER_API_KEY}", "WEATHER_UNITS": "celsius"}},
			variables: "WEATHER_API_KEY(required,secret)"},
		"io.github.example/widget-mcp@0.3.0": {err: nothingRunnable + "cargo package widget-mcp"},
		"io.github.getcyphrex/cyphrex-mcp@0.1.0": {name: "cyphrex-mcp",
			remote: &caddymcp.RemoteConfig{URL: "https://mcp.cyphrex.io/mcp", Transport: "streamable"}},
		"io.github.joelverhagen/knapcode-samplemcpserver@0.4.0-beta": {err: nothingRunnable + "nuget package Knapcode.SampleMcpServer"},
		"io.github.joelverhagen/knapcode-samplemcpserver@0.5.0":      {err: nothingRunnable + "nuget package Knapcode.SampleMcpServer"},
		"io.github.modelcontextprotocol/filesystem@1.0.2": {name: "filesystem",
			container: &caddymcp.ContainerConfig{Image: "docker.io/mcp/filesystem:1.0.2", Args: []string{"/project"}, Env: map[string]string{"LOG_LEVEL": "info"}},
			notes: []string{
				"skipped: runtime argument --mount: the gateway runs docker with its own options",
				"not used: npm package @modelcontextprotocol/server-filesystem (chose oci package docker.io/mcp/filesystem:1.0.2)",
			}},
		"io.modelcontextprotocol.anonymous/brave-search@1.0.2": {name: "brave-search",
			stdio: &caddymcp.StdioConfig{Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-brave-search@1.0.2"},
				Env: map[string]string{"BRAVE_API_KEY": "{env.BRAVE_API_KEY}"}},
			variables: "BRAVE_API_KEY(required,secret)"},
		"io.modelcontextprotocol.anonymous/embedded-mcp@0.1.0":  {err: "io.modelcontextprotocol.anonymous/embedded-mcp: no packages and no remotes: nothing the gateway can run"},
		"io.modelcontextprotocol.anonymous/events-server@1.0.0": {err: `url variable "tenant_id" has no default: give it with --var tenant_id=VALUE`},
		"io.modelcontextprotocol.anonymous/hybrid-mcp@1.5.0": {name: "hybrid-mcp",
			remote: &caddymcp.RemoteConfig{URL: "https://mcp.anonymous.modelcontextprotocol.io/http", Transport: "streamable",
				Headers: map[string]string{"X-API-Key": "{env.X_API_KEY}", "X-Region": "us-east-1"}},
			variables: "X_API_KEY(required,secret)",
			notes: []string{
				"not used: sse remote https://mcp.anonymous.modelcontextprotocol.io/sse (chose streamable-http remote https://mcp.anonymous.modelcontextprotocol.io/http)",
				"not used: npm package @example/hybrid-mcp-server (chose streamable-http remote",
			}},
		"io.modelcontextprotocol.anonymous/mcp-fs@2.0.0": {name: "mcp-fs",
			remote: &caddymcp.RemoteConfig{URL: "https://mcp-fs.anonymous.modelcontextprotocol.io/http", Transport: "streamable"}},
		"io.modelcontextprotocol.anonymous/multi-tenant-server@1.0.0": {err: `url variable "tenant_id" has no default`},
		"io.modelcontextprotocol/everything@0.6.2": {name: "everything",
			stdio: &caddymcp.StdioConfig{Command: "npx", Args: []string{"-y", "@modelcontextprotocol/everything@0.6.2"}}},
		"io.modelcontextprotocol/text-editor@1.0.2": {err: nothingRunnable + "mcpb package https://github.com/modelcontextprotocol/text-editor-mcpb/releases/download/v1.0.2/text-editor.mcpb"},
		"io.snyk/cli-mcp@1.1298.0": {name: "cli-mcp",
			stdio: &caddymcp.StdioConfig{Command: "npx", Args: []string{"-y", "snyk@1.1298.0", "mcp", "-t", "stdio"}}},
	}
	servers := fixtureServers(t)
	for _, item := range listedServers(t, "servers.json") {
		var r apiv0.ServerResponse
		json.Unmarshal(item, &r)
		key := r.Server.Name + "@" + r.Server.Version
		t.Run(key, func(t *testing.T) {
			want, ok := wants[key]
			if !ok {
				t.Fatal("no expectation for this server")
			}
			s := servers[key]
			e, notes, err := mapServer(s, nil)
			want.check(t, e, notes, err)
			if err == nil && (e.Source != s.Name || e.Version != s.Version || e.Title != s.Title || e.Description != s.Description) {
				t.Errorf("source, version, title, description: got %q %q %q %q", e.Source, e.Version, e.Title, e.Description)
			}
			for _, p := range s.Packages {
				switch p.RegistryType {
				case "mcpb", "nuget", "cargo":
					if want := fmt.Sprintf("skipped: %s packages cannot be run by the gateway (%s)", p.RegistryType, p.Identifier); !hasNote(notes, want) {
						t.Errorf("no note %q; notes:\n%s", want, strings.Join(notes, "\n"))
					}
				}
			}
		})
	}
}

func TestMapServerLegacyAndPreview(t *testing.T) {
	servers := fixtureServers(t)
	for key, want := range map[string]mapWant{
		"io.github.slimslenderslacks/remote@0.1.0": {name: "remote",
			remote: &caddymcp.RemoteConfig{URL: "http://mcp-fs.anonymous.modelcontextprotocol.io/sse", Transport: "sse",
				Headers: map[string]string{"X-API-Key": "{env.X_API_KEY}", "X-Region": "us-east-1"}},
			variables: "X_API_KEY(required,secret)"},
		"io.github.slimslenderslacks/filesystem@1.0.2": {name: "filesystem",
			container: &caddymcp.ContainerConfig{Image: "mcp/filesystem:1.0.2", Args: []string{"/project"}, Env: map[string]string{"LOG_LEVEL": "info"}},
			notes:     []string{"skipped: runtime argument --mount: the gateway runs docker with its own options"}},
		"io.github.azure/azure-mcp@0.0.1-seed": {name: "azure-mcp",
			remote: &caddymcp.RemoteConfig{URL: "http://localhost:5008/sse", Transport: "sse"},
			notes:  []string{"skipped: unknown packages cannot be run by the gateway (Azure/azure-mcp)"}},
		"io.github.its-dart/dart-mcp-server@0.0.1-seed": {name: "dart-mcp-server",
			container: &caddymcp.ContainerConfig{Image: "dart-mcp-server:0.1.13",
				Args: []string{"-i", "--rm", "-e DART_TOKEN", "-e DART_TOKEN", "mcp/dart"},
				Env:  map[string]string{"DART_TOKEN": "{env.DART_TOKEN}"}},
			variables: "DART_TOKEN()",
			notes:     []string{"provide DART_TOKEN where the gateway runs (optional)"}},
	} {
		t.Run(key, func(t *testing.T) {
			e, notes, err := mapServer(servers[key], nil)
			want.check(t, e, notes, err)
		})
	}
	e, _, _ := mapServer(servers["io.github.slimslenderslacks/remote@0.1.0"], nil)
	want := []Variable{{Name: "X_API_KEY", Description: "API key for authentication", Required: true, Secret: true}}
	if !reflect.DeepEqual(e.Variables, want) {
		t.Errorf("variables %+v, want %+v", e.Variables, want)
	}
}

func TestMapServerWithVars(t *testing.T) {
	s := fixtureServers(t)["io.modelcontextprotocol.anonymous/multi-tenant-server@1.0.0"]
	e, notes, err := mapServer(s, map[string]string{"tenant_id": "us-cell1", "tenant": "typo"})
	mapWant{name: "multi-tenant-server",
		remote: &caddymcp.RemoteConfig{URL: "https://anonymous.modelcontextprotocol.io/mcp/us-cell1", Transport: "streamable"},
		notes:  []string{"unused: --var tenant matches nothing this server uses"},
	}.check(t, e, notes, err)
	if hasNote(notes, "--var tenant_id") {
		t.Errorf("tenant_id noted as unused: %q", notes)
	}
}

// plantSecrets gives every secret input of s a value, a default and a --var,
// all containing "planted", and returns how many it found.
func plantSecrets(s *apiv0.ServerJSON, vars map[string]string) int {
	n := 0
	plant := func(in *model.Input, keys ...string) {
		if in.IsSecret {
			n++
			in.Value, in.Default = fmt.Sprintf("planted-value-%d", n), fmt.Sprintf("planted-default-%d", n)
			for _, k := range keys {
				vars[k] = fmt.Sprintf("planted-var-%d", n)
			}
		}
	}
	withVariables := func(in *model.InputWithVariables, keys ...string) {
		plant(&in.Input, keys...)
		for name, v := range in.Variables {
			plant(&v, name)
			in.Variables[name] = v
		}
	}
	for i := range s.Remotes {
		for j := range s.Remotes[i].Headers {
			h := &s.Remotes[i].Headers[j]
			withVariables(&h.InputWithVariables, h.Name)
		}
	}
	for i := range s.Packages {
		p := &s.Packages[i]
		for j := range p.EnvironmentVariables {
			withVariables(&p.EnvironmentVariables[j].InputWithVariables, p.EnvironmentVariables[j].Name)
		}
		for _, args := range [][]model.Argument{p.RuntimeArguments, p.PackageArguments} {
			for j := range args {
				withVariables(&args[j].InputWithVariables, args[j].ValueHint, strings.TrimLeft(args[j].Name, "-"))
			}
		}
	}
	return n
}

func TestMapServerNeverStoresSecrets(t *testing.T) {
	planted := 0
	for key, s := range fixtureServers(t) {
		vars := map[string]string{}
		planted += plantSecrets(s, vars)
		e, notes, err := mapServer(s, vars)
		if err != nil {
			continue // the fixture tests say which fail, and why
		}
		if b := jsonOf(t, e); strings.Contains(b, "planted") {
			t.Errorf("%s: a secret in the entry: %s", key, b)
		}
		if n := strings.Join(notes, "\n"); strings.Contains(n, "planted") {
			t.Errorf("%s: a secret in the notes: %s", key, n)
		}
		if key == "io.github.domdomegg/airtable-mcp-server@1.7.3" &&
			(e.Server.Container.Env["AIRTABLE_API_KEY"] != "{env.AIRTABLE_API_KEY}" ||
				!hasNote(notes, "not stored: the --var AIRTABLE_API_KEY given for a secret") ||
				!hasNote(notes, "not stored: the document's value for secret AIRTABLE_API_KEY")) {
			t.Errorf("airtable: env %q, notes %q", e.Server.Container.Env, notes)
		}
	}
	if planted < 9 {
		t.Errorf("planted %d secrets, want the fixtures' 9 at least", planted)
	}
}

func TestMapServerInputs(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		vars      map[string]string
		want      mapWant
	}{
		{"remote: secrets, templates, literal braces", `{"name": "io.github.x/secrets", "version": "1", "remotes": [{
			"type": "streamable-http", "url": "https://{region}.example.com/mcp", "variables": {"region": {"default": "eu"}},
			"headers": [
				{"name": "Authorization", "value": "Bearer {token}", "variables": {"token": {"isSecret": true, "isRequired": true, "value": "s3cr3t"}}},
				{"name": "X-Key", "value": "s3cr3t", "isSecret": true},
				{"name": "X-Literal", "value": "{env.HOME}/{file./etc/passwd}"},
				{"name": "X-Plan", "default": "free"},
				{"name": "X-Team", "description": "team id"}]}]}`,
			map[string]string{"region": "us", "token": "s3cr3t-var", "X-Key": "s3cr3t-var", "stray": "1"},
			mapWant{name: "secrets",
				remote: &caddymcp.RemoteConfig{URL: "https://us.example.com/mcp", Transport: "streamable", Headers: map[string]string{
					"Authorization": "Bearer {env.TOKEN}", "X-Key": "{env.X_KEY}", "X-Literal": `\{env.HOME\}/\{file./etc/passwd\}`,
					"X-Plan": "free", "X-Team": "{env.X_TEAM}"}},
				variables: "TOKEN(required,secret) X_KEY(secret) X_TEAM()",
				notes: []string{
					"not stored: the --var token given for a secret; set TOKEN where the gateway runs",
					"not stored: the document's value for secret token",
					"not stored: the --var X-Key given for a secret; set X_KEY where the gateway runs",
					"unused: --var stray matches nothing this server uses",
				}}},
		{"npm: arguments and env", `{"name": "io.github.x/args", "version": "2", "packages": [{
			"registryType": "npm", "identifier": "@x/args", "version": "2.0.0", "registryBaseUrl": "https://npm.example.com", "transport": {"type": "stdio"},
			"runtimeArguments": [{"type": "named", "name": "--node-options", "value": "--max-old-space-size=64"}],
			"packageArguments": [
				{"type": "positional", "valueHint": "api_token", "isSecret": true, "isRequired": true},
				{"type": "named", "name": "--port"},
				{"type": "named", "name": "--mode", "isRepeated": true},
				{"type": "named", "name": "--dir", "value": "{root}/data", "variables": {"root": {"isRequired": true}}},
				{"type": "positional", "value": "{undeclared}"}],
			"environmentVariables": [{"name": "BAD-NAME", "value": "x"}, {"name": "PATH", "value": "/opt/bin"}]}]}`,
			map[string]string{"mode": "fast"},
			mapWant{name: "args",
				stdio: &caddymcp.StdioConfig{Command: "npx",
					Args: []string{"-y", "@x/args@2.0.0", "{env.API_TOKEN}", "--mode", "fast", "--dir", "{env.ROOT}/data", `\{undeclared\}`},
					Env:  map[string]string{"PATH": "/opt/bin"}},
				variables: "API_TOKEN(required,secret) ROOT(required)",
				notes: []string{
					"skipped: runtime argument --node-options: the gateway runs npx with its own options",
					"secret argument api_token: its value will show on the server's command line",
					"left out: optional argument --port has no value or default (give one with --var port=VALUE)",
					`skipped: environment variable "BAD-NAME": not a valid name`,
					"npm package @x/args is published to https://npm.example.com: npx fetches it from the registry it is configured with",
				}}},
		{"oci: registry base, docker's variables", `{"name": "io.github.x/Weird Name!", "version": "3", "packages": [{
			"registryType": "oci", "registryBaseUrl": "https://ghcr.io", "identifier": "x/img", "version": "3.0", "transport": {"type": "stdio"},
			"environmentVariables": [{"name": "DOCKER_HOST", "value": "tcp://10.0.0.1:2375"}, {"name": "HOME", "value": "/root"}, {"name": "OK", "value": "1"}]}]}`,
			nil,
			mapWant{name: "Weird-Name-",
				container: &caddymcp.ContainerConfig{Image: "ghcr.io/x/img:3.0", Env: map[string]string{"OK": "1"}},
				notes: []string{
					"skipped: environment variable DOCKER_HOST: it would configure docker, not the container",
					"skipped: environment variable HOME: it would configure docker, not the container",
				}}},
		{"pypi without version", `{"name": "io.github.x/py", "packages": [{"registryType": "pypi", "identifier": "py-mcp", "transport": {"type": "stdio"}}]}`,
			nil,
			mapWant{name: "py", stdio: &caddymcp.StdioConfig{Command: "uvx", Args: []string{"py-mcp"}},
				notes: []string{"pypi package py-mcp has no version: uvx takes the latest"}}},
		{"remote preferred, unknown remote type", `{"name": "io.github.x/r", "packages": [{"registryType": "oci", "identifier": "x/y:1", "transport": {"type": "stdio"}}],
			"remotes": [{"type": "websocket", "url": "wss://x/ws"}, {"type": "sse", "url": "https://x/sse"}]}`,
			nil,
			mapWant{name: "r", remote: &caddymcp.RemoteConfig{URL: "https://x/sse", Transport: "sse"},
				notes: []string{
					"skipped: websocket remote wss://x/ws: only streamable-http and sse remotes can be reached",
					"not used: oci package x/y:1 (chose sse remote https://x/sse)",
				}}},
		{"secret url variable", `{"name": "io.github.x/u", "remotes": [{"type": "sse", "url": "https://x/{key}", "variables": {"key": {"isSecret": true, "default": "k"}}}]}`,
			nil, mapWant{err: `io.github.x/u: url variable "key" is secret: it cannot go into a URL, where caddymcp expands no placeholders`}},
		{"refused by caddymcp", `{"name": "io.github.x/ftp", "remotes": [{"type": "sse", "url": "ftp://x/sse"}]}`,
			nil, mapWant{err: `io.github.x/ftp: server "ftp": remote: url "ftp://x/sse": scheme must be http or https`}},
		{"bad image", `{"name": "io.github.x/i", "packages": [{"registryType": "oci", "identifier": "{env.AWS_SECRET_ACCESS_KEY}", "transport": {"type": "stdio"}}]}`,
			nil, mapWant{err: `io.github.x/i: oci package identifier "{env.AWS_SECRET_ACCESS_KEY}" is not an image reference`}},
		{"name with nothing usable", `{"name": "io.github.x/___", "remotes": [{"type": "sse", "url": "https://x/sse"}]}`,
			nil, mapWant{err: `server name "": must be 1-64 letters`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := decodeServerJSON([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			e, notes, err := mapServer(s, tc.vars)
			tc.want.check(t, e, notes, err)
			if b := jsonOf(t, e); strings.Contains(b, "s3cr3t") {
				t.Errorf("a secret in the entry: %s", b)
			}
		})
	}
}

func TestMapServerIsDeterministic(t *testing.T) {
	docs := map[string][]byte{}
	for _, item := range listedServers(t, "servers.json") {
		var r apiv0.ServerResponse
		json.Unmarshal(item, &r)
		docs[r.Server.Name+"@"+r.Server.Version] = item
	}
	mapped := 0
	for key, doc := range docs {
		var first string
		for i := range 3 {
			s, err := decodeServerJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			e, notes, err := mapServer(s, map[string]string{"tenant_id": "t1", "unused_b": "b", "unused_a": "a"})
			got := fmt.Sprint(jsonOf(t, e), notes, err)
			switch {
			case i == 0:
				first = got
				if err == nil {
					mapped++
				}
			case got != first:
				t.Errorf("%s: mapped differently:\n%s\n%s", key, first, got)
			}
		}
	}
	if mapped < 14 {
		t.Errorf("only %d servers mapped", mapped)
	}
}

func TestImageRef(t *testing.T) {
	for _, tc := range []struct{ identifier, base, version, want string }{
		{"mcp/filesystem", "https://docker.io", "1.0.2", "mcp/filesystem:1.0.2"},
		{"busybox", "https://index.docker.io", "", "busybox"},
		{"x/img", "https://ghcr.io", "3", "ghcr.io/x/img:3"},
		{"quay.io/a/b:1.0", "https://ghcr.io", "2", "quay.io/a/b:1.0"},
		{"localhost:5000/a", "https://ghcr.io", "1", "localhost:5000/a:1"},
		{"a/b@sha256:0123", "", "1", "a/b@sha256:0123"},
		{"-privileged", "", "", `oci package identifier "-privileged" is not an image reference`},
		{"a/b", "registry", "1", `oci package registryBaseUrl "registry" is not a URL with a host`},
	} {
		got, err := imageRef(&model.Package{Identifier: tc.identifier, RegistryBaseURL: tc.base, Version: tc.version})
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("imageRef(%q, %q, %q) = %q, want %q", tc.identifier, tc.base, tc.version, got, tc.want)
		}
	}
}

func TestEntryName(t *testing.T) {
	for official, want := range map[string]string{
		"io.github.domdomegg/airtable-mcp-server": "airtable-mcp-server",
		"io.github.x/weird name+é":                "weird-name--",
		"io.github.x/_.-x":                        "x",
		"io.github.x/" + strings.Repeat("a", 80):  strings.Repeat("a", 64),
		"no-slash":                                "no-slash",
	} {
		if got := entryName(official); got != want {
			t.Errorf("entryName(%q) = %q, want %q", official, got, want)
		}
	}
}
