package interceptors

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// TestGatewayInterceptorsBlock adapts an mcp_gateway with an interceptors
// block as `caddy adapt` does: the chain keeps the file's order, each entry
// is its module's JSON, and the gateway provisions with it.
func TestGatewayInterceptorsBlock(t *testing.T) {
	src := `:8080 {
	mcp_gateway {
		interceptors {
			call_log
			size_limit {
				arguments 64KiB
			}
			tool_filter {
				deny */delete_*
			}
			rate_limit {
				rate 10/1m
			}
		}
		server demo {
			stdio cat
		}
	}
}
`
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapting: %v %v", err, warnings)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	handler := cfg.Apps.HTTP.Servers["srv0"].Routes[0].Handle[0]
	var g caddymcp.Gateway
	if err := json.Unmarshal(handler, &g); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"interceptor":"call_log"}`,
		`{"arguments":65536,"interceptor":"size_limit"}`,
		`{"deny":["*/delete_*"],"interceptor":"tool_filter"}`,
		`{"events":10,"interceptor":"rate_limit","window":60000000000}`,
	}
	if len(g.InterceptorsRaw) != len(want) {
		t.Fatalf("interceptors %s, want %d", g.InterceptorsRaw, len(want))
	}
	for i, raw := range g.InterceptorsRaw {
		if string(raw) != want[i] {
			t.Errorf("interceptors[%d] = %s, want %s", i, raw, want[i])
		}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := g.Provision(ctx); err != nil {
		t.Fatalf("the adapted gateway does not provision: %v", err)
	}
	if err := g.Cleanup(); err != nil {
		t.Fatal(err)
	}
}
