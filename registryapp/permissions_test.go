package registryapp

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
	"github.com/caddyserver/caddy/v2"
)

// TestPermissionFor maps every route of the API, and a few that are not,
// to the permission it needs.
func TestPermissionFor(t *testing.T) {
	for _, tt := range []struct{ method, path, want string }{
		{"GET", "/health", ""},
		{"POST", "/health", ""},
		{"GET", "/api/health", ""},
		{"HEAD", "/api/health/", ""},
		{"GET", "/", ""},
		{"GET", "/index.html", ""},
		{"POST", "/mcp", ""},
		{"GET", "/v0.2/servers", ""},
		{"GET", "/v0/serversx", ""},

		{"GET", "/api/servers", "read"},
		{"HEAD", "/api/servers", "read"},
		{"GET", "/api/servers/", "read"},
		{"GET", "/api/servers/a", "read"},
		{"GET", "/api/servers/a/tools", "read"},
		{"GET", "/api/search", "read"},
		{"GET", "/v0.1/servers", "read"},
		{"GET", "/v0.1/servers/io.example%2Fa/versions/latest", "read"},
		{"HEAD", "/v0/servers", "read"},
		{"OPTIONS", "/api/servers", "read"},
		{"GET", "/api/no-such-route", "read"},
		{"GET", "/apiservers", "read"}, // the API serves it: the prefix is matched as a string

		{"POST", "/api/servers", "register"},
		{"PUT", "/api/servers/a", "register"},
		{"PATCH", "/api/servers/a", "register"},
		{"POST", "/api/import", "register"},
		{"POST", "/api/servers/a/refresh", "register"},
		{"POST", "/api/servers/a", "register"},
		{"PUT", "/v0.1/servers", "register"},
		{"PROPFIND", "/api/servers", "register"},

		{"POST", "/api/servers/a/enable", "toggle"},
		{"POST", "/api/servers/a/disable/", "toggle"},
		{"PUT", "/api/servers/a/enable", "register"},

		{"DELETE", "/api/servers/a", "delete"},
		{"DELETE", "/api/servers", "delete"},
		{"DELETE", "/v0.1/servers/a", "delete"},
	} {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if got := permissionFor("/api", r); got != tt.want {
			t.Errorf("%s %s needs %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestPermissionsRefused(t *testing.T) {
	keys := &mcpauth.Config{APIKeys: []mcpauth.APIKey{{Principal: "a", Hash: mcpauth.HashKey("k")}}}
	for _, tt := range []struct {
		name string
		h    Handler
		want string
	}{
		{"unknown permission", Handler{Permissions: []Permission{{Who: mcpauth.Who{Principals: []string{"a"}}, Allow: []string{"read", "write"}}}},
			`permissions[0]: allow "write": unknown permission (want read, register, toggle, delete or *)`},
		{"nothing allowed", Handler{Permissions: []Permission{{Who: mcpauth.Who{Principals: []string{"a"}}}}},
			"permissions[0]: allow is empty: give read, register, toggle, delete or *"},
		{"nobody named", Handler{Auth: keys, Permissions: []Permission{{Who: mcpauth.Who{Principals: []string{"a"}}, Allow: []string{"*"}}, {Allow: []string{"read"}}}},
			"permissions[1]: names nobody: give principals, groups or scopes"},
		{"auth refused", Handler{Auth: &mcpauth.Config{}}, "auth: nothing authenticates"},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := tt.h.provisionAccess(ctx)
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: got %v\nwant %s", tt.name, err, tt.want)
		}
	}
}

// TestCaddyfileAccess adapts the handler's auth and permission options and
// checks that the JSON reads back into a handler.
func TestCaddyfileAccess(t *testing.T) {
	hash := mcpauth.HashKey("mcpk_reader")
	apps, err := adaptApps(t, `{
	mcp_registry
}

:8080 {
	mcp_registry_api {
		prefix /registry
		auth {
			jwt {
				issuer https://id.example.com
				jwks_url https://id.example.com/jwks.json
			}
			api_key reader `+hash+` {
				groups readers
			}
		}
		permission read {
			principals reader
			groups readers staff
		}
		permission register toggle {
			scopes registry:write
		}
		permission * {
			principals admin
			principals root
		}
	}
}
`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(apps["http"])
	var cfg struct {
		Servers map[string]struct {
			Routes []struct {
				Handle []json.RawMessage `json:"handle"`
			} `json:"routes"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	for _, s := range cfg.Servers {
		raw = s.Routes[0].Handle[0]
	}
	var got, want any
	_ = json.Unmarshal(raw, &got)
	_ = json.Unmarshal([]byte(`{
		"handler": "mcp_registry_api",
		"prefix": "/registry",
		"auth": {
			"jwt": {"issuer": "https://id.example.com", "jwks_url": "https://id.example.com/jwks.json"},
			"api_keys": [{"principal": "reader", "hash": "`+hash+`", "groups": ["readers"]}]
		},
		"permissions": [
			{"principals": ["reader"], "groups": ["readers", "staff"], "allow": ["read"]},
			{"scopes": ["registry:write"], "allow": ["register", "toggle"]},
			{"principals": ["admin", "root"], "allow": ["*"]}
		]
	}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adapted to %s", raw)
	}
	var h Handler
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.provisionAccess(ctx); err != nil {
		t.Errorf("the adapted handler is refused: %v", err)
	}
	if len(h.Permissions) != 3 || !h.Permissions[2].grants(permDelete) || h.Permissions[1].grants(permDelete) || !h.Permissions[1].grants(permToggle) {
		t.Errorf("permissions read back as %+v", h.Permissions)
	}
}

func TestCaddyfileAccessErrors(t *testing.T) {
	for _, tt := range []struct{ site, want string }{
		{"mcp_registry_api {\n\t\tpermission {\n\t\t\tprincipals a\n\t\t}\n\t}", "permission: want one or more of read, register, toggle, delete or *"},
		{"mcp_registry_api {\n\t\tpermission read {\n\t\t\tusers a\n\t\t}\n\t}", `unrecognized permission option "users"`},
		{"mcp_registry_api {\n\t\tpermission read {\n\t\t\tgroups\n\t\t}\n\t}", "permission groups: want at least one argument"},
		{"mcp_registry_api {\n\t\tauth {\n\t\t\tcaddy_identity\n\t\t}\n\t\tauth {\n\t\t\tcaddy_identity\n\t\t}\n\t}", "auth: given twice"},
		{"mcp_registry_api {\n\t\tauth {\n\t\t\tbogus\n\t\t}\n\t}", `unrecognized auth option "bogus"`},
	} {
		_, err := adaptApps(t, "{\n\tmcp_registry\n}\n\n:8080 {\n\t"+tt.site+"\n}\n")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error containing %q", tt.site, err, tt.want)
		}
	}
}
