package registryapp

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// adaptApps adapts a Caddyfile and returns its apps as generic JSON.
func adaptApps(t *testing.T, src string) (map[string]any, error) {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	if len(warnings) > 0 {
		t.Errorf("adapting gave warnings: %+v", warnings)
	}
	var cfg struct {
		Apps map[string]any `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Apps, nil
}

func TestCaddyfileGlobalOption(t *testing.T) {
	for _, tt := range []struct {
		name, global, want string
	}{
		{"empty", "mcp_registry", `{}`},
		{"every option", `mcp_registry {
		storage file_system /var/lib/mcp
		allowed_networks loopback 10.1.0.0/16
		allowed_networks mcp.internal
		allow_commands
		probe_interval 1m
		probe_timeout 5s
		exclude_unhealthy
		poll_interval 500ms
		template demo {
			stdio {mcp.executable} mcp demo-server
			env LEVEL debug
			deny_tools slow
		}
		template image {
			container ghcr.io/example/server:1 --flag
		}
	}`, `{
		"storage": {"module": "file_system", "root": "/var/lib/mcp"},
		"allowed_networks": ["loopback", "10.1.0.0/16", "mcp.internal"],
		"allow_commands": true,
		"probe": {"interval": "1m0s", "timeout": "5s"},
		"exclude_unhealthy": true,
		"poll_interval": 500000000,
		"templates": {
			"demo": {"stdio": {"command": "{mcp.executable}", "args": ["mcp", "demo-server"], "env": {"LEVEL": "debug"}}, "tools": {"deny": ["slow"]}},
			"image": {"container": {"image": "ghcr.io/example/server:1", "args": ["--flag"]}}
		}
	}`},
		{"probe off", "mcp_registry {\n\t\tprobe off\n\t}", `{"probe": {"disabled": true}}`},
		{"sync", "mcp_registry {\n\t\tsync https://registry.modelcontextprotocol.io {\n\t\t\tnames io.github.team/* io.example/*\n\t\t\tinterval 30m\n\t\t}\n\t}",
			`{"sync": {"url": "https://registry.modelcontextprotocol.io", "names": ["io.github.team/*", "io.example/*"], "interval": 1800000000000}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := adaptApps(t, "{\n\t"+tt.global+"\n}\n\nlocalhost {\n\tmcp_registry_api\n}\n")
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if got := apps["mcp_registry"]; !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				t.Errorf("apps.mcp_registry = %s\nwant %s", g, tt.want)
			}
			// What the Caddyfile makes, the app accepts.
			var a App
			b, _ := json.Marshal(apps["mcp_registry"])
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			if _, err := a.settings(); err != nil {
				t.Errorf("the adapted app is refused: %v", err)
			}
		})
	}
}

func TestCaddyfileHandler(t *testing.T) {
	for _, tt := range []struct{ directive, want string }{
		{"mcp_registry_api", `{"handler":"mcp_registry_api"}`},
		{"mcp_registry_api {\n\t\tprefix /registry\n\t}", `{"handler":"mcp_registry_api","prefix":"/registry"}`},
		{"mcp_registry_api /registry/*", `"match":[{"path":["/registry/*"]}]`},
		{"mcp_gateway {\n\t\tregistry\n\t}", `{"handler":"mcp_gateway","registry":true}`},
	} {
		apps, err := adaptApps(t, "{\n\tmcp_registry\n}\n\n:8080 {\n\t"+tt.directive+"\n}\n")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(apps["http"])
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("%s adapted to %s, want a handler %s", tt.directive, b, tt.want)
		}
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tt := range []struct{ name, global, site, want string }{
		{"unknown option", "mcp_registry {\n\t\tbogus\n\t}", "", `unrecognized mcp_registry option "bogus"`},
		{"argument on the option", "mcp_registry now", "", "wrong argument count"},
		{"bad duration", "mcp_registry {\n\t\tprobe_interval soon\n\t}", "", `probe_interval "soon"`},
		{"probe on", "mcp_registry {\n\t\tprobe on\n\t}", "", "the only setting is `probe off`"},
		{"remote template", "mcp_registry {\n\t\ttemplate r {\n\t\t\tremote https://example.com/mcp\n\t\t}\n\t}", "", `template "r": templates are stdio or container servers`},
		{"template twice", "mcp_registry {\n\t\ttemplate a {\n\t\t\tstdio x\n\t\t}\n\t\ttemplate a {\n\t\t\tstdio y\n\t\t}\n\t}", "", `template "a": defined twice`},
		{"empty allow-list", "mcp_registry {\n\t\tallowed_networks\n\t}", "", "wrong argument count"},
		{"sync without a URL", "mcp_registry {\n\t\tsync\n\t}", "", "wrong argument count"},
		{"sync option unknown", "mcp_registry {\n\t\tsync https://r.example {\n\t\t\tbogus\n\t\t}\n\t}", "", `unrecognized sync option "bogus"`},
		{"handler option unknown", "mcp_registry", "mcp_registry_api {\n\t\tbogus\n\t}", `unrecognized mcp_registry_api option "bogus"`},
		{"gateway registry with an argument", "mcp_registry", "mcp_gateway {\n\t\tregistry yes\n\t}", "wrong argument count"},
		{"handler prefix twice", "mcp_registry", "mcp_registry_api {\n\t\tprefix /a /b\n\t}", "wrong argument count"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			site := tt.site
			if site == "" {
				site = "respond ok"
			}
			_, err := adaptApps(t, "{\n\t"+tt.global+"\n}\n\n:8080 {\n\t"+site+"\n}\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestSettingsRefuse checks what the app refuses at load, naming the option.
func TestSettingsRefuse(t *testing.T) {
	for _, tt := range []struct {
		name string
		app  App
		want string
	}{
		{"bad allow-list entry", App{AllowedNetworks: []string{"10.0.0.0/33"}}, "allowed_networks"},
		{"template name", App{Templates: map[string]*Template{"Bad Name": {}}}, `templates: name "Bad Name"`},
		{"template without a kind", App{Templates: map[string]*Template{"t": {}}}, `templates: "t": exactly one of stdio or container`},
		{"template without a command", App{Templates: map[string]*Template{"t": {Stdio: new(caddymcp.StdioConfig)}}}, `templates: "t":`},
		{"negative probe", App{Probe: &ProbeSettings{Interval: -1}}, "must be positive"},
		{"sync URL", App{Sync: &SyncSettings{URL: "ftp://x"}}, `sync: url "ftp://x"`},
		{"sync pattern", App{Sync: &SyncSettings{URL: "https://x", Names: []string{"["}}}, `sync: names: pattern "["`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.app.settings(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
