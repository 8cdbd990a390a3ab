package mcpauth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshal reads an auth block as a directive that holds one would: the
// dispenser on the `auth` token.
func unmarshal(src string) (*Config, error) {
	d := caddyfile.NewTestDispenser(src)
	d.Next()
	c := new(Config)
	return c, c.UnmarshalCaddyfile(d)
}

func TestCaddyfile(t *testing.T) {
	c, err := unmarshal(`auth {
		resource https://mcp.example.com/mcp
		resource_name "Team MCP"
		jwt {
			issuer https://id.example.com
			jwks_url https://id.example.com/.well-known/jwks.json
			audience https://mcp.example.com/mcp
			audience api://mcp api://mcp2
			algorithms RS256 ES256
			algorithms PS256
			clock_skew 45s
			principal_claim email
			groups_claim roles
			scopes_claim scp
			jwks_refresh 2h
		}
		api_key ci sha256:` + strings.Repeat("ab", 32) + ` {
			groups builders
			groups release
			scopes mcp:tools mcp:read
		}
		api_key ops sha256:` + strings.Repeat("cd", 32) + `
		caddy_identity
		authorization_servers https://id.example.com https://id2.example.com
		scopes_supported mcp:tools mcp:admin
		required_scopes mcp:tools
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
		"resource": "https://mcp.example.com/mcp",
		"resource_name": "Team MCP",
		"jwt": {
			"issuer": "https://id.example.com",
			"jwks_url": "https://id.example.com/.well-known/jwks.json",
			"audiences": ["https://mcp.example.com/mcp", "api://mcp", "api://mcp2"],
			"algorithms": ["RS256", "ES256", "PS256"],
			"clock_skew": 45000000000,
			"principal_claim": "email",
			"groups_claim": "roles",
			"scopes_claim": "scp",
			"jwks_refresh": 7200000000000
		},
		"api_keys": [
			{"principal": "ci", "hash": "sha256:` + strings.Repeat("ab", 32) + `", "groups": ["builders", "release"], "scopes": ["mcp:tools", "mcp:read"]},
			{"principal": "ops", "hash": "sha256:` + strings.Repeat("cd", 32) + `"}
		],
		"caddy_identity": true,
		"authorization_servers": ["https://id.example.com", "https://id2.example.com"],
		"scopes_supported": ["mcp:tools", "mcp:admin"],
		"required_scopes": ["mcp:tools"]
	}`
	got, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	_ = json.Unmarshal(got, &g)
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("adapted to\n%s\nwant\n%s", got, want)
	}
	// The JSON reads back to the same config, and that config provisions.
	var back Config
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, c) {
		t.Errorf("the JSON read back differs:\n%+v\n%+v", back, *c)
	}
	if err := provisionErr(t, &back); err != nil {
		t.Errorf("the adapted config is refused: %v", err)
	}

	// The block is read to its end and no further.
	d := caddyfile.NewTestDispenser("auth {\n caddy_identity\n}\nnext_option x")
	d.Next()
	if err := new(Config).UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if !d.Next() || d.Val() != "next_option" {
		t.Errorf("after the block the dispenser is on %q", d.Val())
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"auth x {\n}", `auth: takes no arguments, got ["x"], at Testfile:1`},
		{"auth {\n bogus\n}", `unrecognized auth option "bogus", at Testfile:2`},
		{"auth {\n resource\n}", "resource: want one argument, got 0, at Testfile:2"},
		{"auth {\n resource a b\n}", "resource: want one argument, got 2, at Testfile:2"},
		{"auth {\n resource a\n resource b\n}", "resource: given twice, at Testfile:3"},
		{"auth {\n caddy_identity yes\n}", `caddy_identity: takes no arguments, got ["yes"], at Testfile:2`},
		{"auth {\n scopes_supported\n}", "scopes_supported: want at least one argument, at Testfile:2"},
		{"auth {\n required_scopes\n}", "required_scopes: want at least one argument, at Testfile:2"},
		{"auth {\n authorization_servers\n}", "authorization_servers: want at least one argument, at Testfile:2"},
		{"auth {\n api_key alice\n}", "api_key: want <principal> sha256:<hex>, got 1 argument(s), at Testfile:2"},
		{"auth {\n api_key alice sha256:00 extra\n}", "api_key: want <principal> sha256:<hex>, got 3 argument(s), at Testfile:2"},
		{"auth {\n api_key alice sha256:00 {\n  roles x\n }\n}", `unrecognized api_key option "roles", at Testfile:3`},
		{"auth {\n api_key alice sha256:00 {\n  groups\n }\n}", "groups: want at least one argument, at Testfile:3"},
		{"auth {\n jwt x\n}", `jwt: takes no arguments, got ["x"], at Testfile:2`},
		{"auth {\n jwt {\n }\n jwt {\n }\n}", "jwt: given twice, at Testfile:4"},
		{"auth {\n jwt {\n  issuer\n }\n}", "issuer: want one argument, got 0, at Testfile:3"},
		{"auth {\n jwt {\n  issuer a b\n }\n}", "issuer: want one argument, got 2, at Testfile:3"},
		{"auth {\n jwt {\n  audience\n }\n}", "audience: want at least one argument, at Testfile:3"},
		{"auth {\n jwt {\n  algorithms\n }\n}", "algorithms: want at least one argument, at Testfile:3"},
		{"auth {\n jwt {\n  clock_skew soon\n }\n}", `clock_skew "soon": `},
		{"auth {\n jwt {\n  jwks_refresh\n }\n}", "jwks_refresh: want one argument, got 0, at Testfile:3"},
		{"auth {\n jwt {\n  secret x\n }\n}", `unrecognized jwt option "secret", at Testfile:3`},
	} {
		_, err := unmarshal(tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
}
