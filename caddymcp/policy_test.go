package caddymcp

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

func TestPolicyAllows(t *testing.T) {
	p := &Policy{Rules: []*Rule{
		{Who: mcpauth.Who{Principals: []string{"alice"}}, Servers: []string{"github"}, Tools: []string{"list_*", "get_issue"}},
		{Who: mcpauth.Who{Groups: []string{"ops"}}, Servers: []string{"*"}, Methods: []string{"tools/list", "resources/*"}},
		{Who: mcpauth.Who{Scopes: []string{"mcp:write"}}, Servers: []string{"github"}, Tools: []string{"create_*"}},
	}}
	if err := p.validate(); err != nil {
		t.Fatal(err)
	}
	alice := &mcpauth.Principal{ID: "alice"}
	writer := &mcpauth.Principal{ID: "alice", Scopes: []string{"mcp:write"}}
	ops := &mcpauth.Principal{ID: "olga", Groups: []string{"ops"}}
	cases := []struct {
		who                  *mcpauth.Principal
		method, server, tool string
		want                 bool
	}{
		{alice, "tools/call", "github", "list_repos", true},
		{alice, "tools/call", "github", "get_issue", true},
		{alice, "tools/call", "github", "delete_repo", false},
		{alice, "tools/call", "slack", "list_channels", false},
		{alice, "tools/list", "", "", true}, // some rule grants her the method
		{alice, "tools/call", "github", "create_issue", false},
		{writer, "tools/call", "github", "create_issue", true},
		{ops, "tools/call", "github", "list_repos", false},
		{ops, "tools/list", "github", "", true},
		{ops, "resources/read", "slack", "", true},
		{nil, "tools/list", "", "", false}, // nobody
		{&mcpauth.Principal{ID: "eve"}, "tools/list", "", "", false},
	}
	for _, c := range cases {
		if got := p.allows(c.who, c.method, c.server, c.tool); got != c.want {
			t.Errorf("allows(%v, %s, %s, %s) = %v, want %v", c.who, c.method, c.server, c.tool, got, c.want)
		}
	}
	if got := p.scopesFor(alice, "tools/call", "github", "create_issue"); !slices.Equal(got, []string{"mcp:write"}) {
		t.Errorf("scopesFor create_issue = %v, want [mcp:write]", got)
	}
	if got := p.scopesFor(alice, "tools/call", "github", "delete_repo"); got != nil {
		t.Errorf("scopesFor delete_repo = %v: no scope grants it", got)
	}
	if got := p.scopesFor(writer, "tools/call", "github", "create_issue"); got != nil {
		t.Errorf("scopesFor a principal that has the scope = %v", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		rule *Rule
		want string
	}{
		{nil, "rules[0]: empty rule"},
		{&Rule{Servers: []string{"x"}}, "rules[0]: names no principals, groups or scopes"},
		{&Rule{Who: mcpauth.Who{Principals: []string{"a"}}, Tools: []string{"[x"}}, `tools: bad pattern "[x"`},
		{&Rule{Who: mcpauth.Who{Principals: []string{"a"}}, Methods: []string{"tools/lst"}}, `methods: "tools/lst" is not a method a policy decides`},
	} {
		err := (&Policy{Rules: []*Rule{c.rule}}).validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rule %+v: %v, want %q", c.rule, err, c.want)
		}
	}
}

// TestProvisionAccessErrors: what the gateway refuses at load about who may
// call, each error naming the option.
func TestProvisionAccessErrors(t *testing.T) {
	for _, c := range []struct {
		config, want string
	}{
		{`{"authorization":{"rules":[{"principals":["a"]}]}}`, "authorization: needs auth"},
		{`{"auth":{"caddy_identity":true},"authorization":{"rules":[{"servers":["x"]}]}}`, "rules[0]: names no principals, groups or scopes"},
		{`{"auth":{"jwt":{"issuer":"https://id.example","jwks_url":"ftp://id.example/keys"}}}`, `jwks_url "ftp://id.example/keys"`},
		{`{"interceptors":[{"interceptor":"no_such_thing"}]}`, "loading interceptors"},
	} {
		var g Gateway
		if err := json.Unmarshal([]byte(c.config), &g); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := g.Provision(ctx)
		_ = g.Cleanup()
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.config, err, c.want)
		}
	}
}
