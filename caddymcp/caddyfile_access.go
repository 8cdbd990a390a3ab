package caddymcp

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

// unmarshalAccess reads the options that decide who may call: auth,
// authorization, audit and interceptors (syntax in UnmarshalCaddyfile).
func (g *Gateway) unmarshalAccess(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "auth":
		if g.Auth != nil {
			return d.Err("auth: given twice")
		}
		g.Auth = new(mcpauth.Config)
		return g.Auth.UnmarshalCaddyfile(d)
	case "authorization":
		if d.NextArg() {
			return d.ArgErr()
		}
		if g.Authorization == nil {
			g.Authorization = new(Policy)
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if d.Val() != "allow" {
				return d.Errf("authorization: unrecognized option %q (expected allow)", d.Val())
			}
			r, err := unmarshalRule(d)
			if err != nil {
				return err
			}
			g.Authorization.Rules = append(g.Authorization.Rules, r)
		}
	case "audit":
		if d.NextArg() {
			return d.ArgErr()
		}
		g.Audit = true
	case "interceptors":
		if d.NextArg() {
			return d.ArgErr()
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			name := d.Val()
			mod, err := caddyfile.UnmarshalModule(d, "mcp.interceptors."+name)
			if err != nil {
				return err
			}
			g.InterceptorsRaw = append(g.InterceptorsRaw, caddyconfig.JSONModuleObject(mod, "interceptor", name, nil))
		}
	}
	return nil
}

// unmarshalRule reads an `allow { ... }` block of authorization.
func unmarshalRule(d *caddyfile.Dispenser) (*Rule, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	r := new(Rule)
	lists := map[string]*[]string{
		"principals": &r.Principals, "groups": &r.Groups, "scopes": &r.Scopes,
		"servers": &r.Servers, "tools": &r.Tools, "methods": &r.Methods,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		list, ok := lists[d.Val()]
		if !ok {
			return nil, d.Errf("authorization: allow: unrecognized option %q", d.Val())
		}
		args := d.RemainingArgs()
		if len(args) == 0 {
			return nil, d.ArgErr()
		}
		*list = append(*list, args...)
	}
	return r, nil
}
