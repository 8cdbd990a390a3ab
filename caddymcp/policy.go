package caddymcp

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

// Policy says which principals may use which servers, tools and methods. A
// request is allowed when one rule grants it; with no rule that does, it is
// refused. A tool a principal may not call is absent from its tools/list,
// and a server it may not use has no tools, prompts or resources for it.
type Policy struct {
	Rules []*Rule `json:"rules,omitempty"`
}

// Rule grants the principals it names the methods, servers and tools it
// lists; an empty list means all of them. Patterns are path.Match globs
// (read_*, tools/*).
type Rule struct {
	mcpauth.Who

	// Servers are the server names the rule grants.
	Servers []string `json:"servers,omitempty"`
	// Tools are the tool names (as the server names them) the rule grants.
	Tools []string `json:"tools,omitempty"`
	// Methods are the MCP methods the rule grants, among tools/list,
	// tools/call, prompts/list, prompts/get, resources/list,
	// resources/templates/list, resources/read, resources/subscribe,
	// resources/unsubscribe and completion/complete. Other methods
	// (initialize, ping, notifications, logging) are every caller's.
	Methods []string `json:"methods,omitempty"`
}

// governed are the methods a policy decides; the rest belong to every
// session.
var governed = map[string]bool{
	"tools/list": true, "tools/call": true, "prompts/list": true, "prompts/get": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
	"resources/subscribe": true, "resources/unsubscribe": true, "completion/complete": true,
}

func (p *Policy) validate() error {
	for i, r := range p.Rules {
		if r == nil {
			return fmt.Errorf("authorization: rules[%d]: empty rule", i)
		}
		if r.Who.Empty() {
			return fmt.Errorf("authorization: rules[%d]: names no principals, groups or scopes", i)
		}
		for field, pats := range map[string][]string{"servers": r.Servers, "tools": r.Tools, "methods": r.Methods} {
			for _, pat := range pats {
				if _, err := path.Match(pat, ""); err != nil {
					return fmt.Errorf("authorization: rules[%d]: %s: bad pattern %q", i, field, pat)
				}
			}
		}
		for _, m := range r.Methods {
			if !strings.ContainsAny(m, "*?[") && !governed[m] {
				return fmt.Errorf("authorization: rules[%d]: methods: %q is not a method a policy decides", i, m)
			}
		}
	}
	return nil
}

// allows reports whether a rule grants the principal the method on the
// server and tool; an empty server or tool is not asked about.
func (p *Policy) allows(who *mcpauth.Principal, method, server, tool string) bool {
	for _, r := range p.Rules {
		if r.Who.Matches(who) && matches(r.Methods, method) &&
			(server == "" || matches(r.Servers, server)) && (tool == "" || matches(r.Tools, tool)) {
			return true
		}
	}
	return false
}

// scopesFor returns the scopes that would grant the call where the
// principal's own do not: what an insufficient_scope challenge asks for.
func (p *Policy) scopesFor(who *mcpauth.Principal, method, server, tool string) []string {
	var scopes []string
	for _, r := range p.Rules {
		if len(r.Scopes) == 0 || !matches(r.Methods, method) || !matches(r.Servers, server) || (tool != "" && !matches(r.Tools, tool)) {
			continue
		}
		for _, s := range r.Scopes {
			if !who.HasScope(s) && !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	return scopes
}

// matches reports whether one of the patterns matches s; no patterns match
// everything.
func matches(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
