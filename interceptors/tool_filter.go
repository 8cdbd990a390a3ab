package interceptors

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

func init() {
	caddy.RegisterModule(ToolFilter{})
}

// ToolFilter refuses calls of tools by name. Patterns have the syntax of
// path.Match and are matched against "<server>/<tool>": "github/*" is every
// tool of the server github, "*/delete_*" every tool whose name begins with
// delete_ (a * does not match a /).
type ToolFilter struct {
	// Allow, when not empty, lets through only the calls of tools that one
	// of these patterns matches.
	Allow []string `json:"allow,omitempty"`

	// Deny refuses the calls of tools that one of these patterns matches,
	// even when an allow pattern matches them too.
	Deny []string `json:"deny,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (ToolFilter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp.interceptors.tool_filter",
		New: func() caddy.Module { return new(ToolFilter) },
	}
}

// Provision checks the patterns.
func (tf *ToolFilter) Provision(caddy.Context) error {
	if len(tf.Allow) == 0 && len(tf.Deny) == 0 {
		return fmt.Errorf("no allow or deny pattern")
	}
	for _, list := range []struct {
		name     string
		patterns []string
	}{{"allow", tf.Allow}, {"deny", tf.Deny}} {
		for _, p := range list.patterns {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("%s pattern %q: %v", list.name, p, err)
			}
		}
	}
	return nil
}

// Before refuses a call of a denied tool, or of a tool no allow pattern
// matches.
func (tf *ToolFilter) Before(_ context.Context, c *caddymcp.Call) error {
	name := c.Server + "/" + c.Tool
	for _, p := range tf.Deny {
		if ok, _ := path.Match(p, name); ok {
			return fmt.Errorf("tool %q is denied by pattern %q", name, p)
		}
	}
	if len(tf.Allow) == 0 {
		return nil
	}
	for _, p := range tf.Allow {
		if ok, _ := path.Match(p, name); ok {
			return nil
		}
	}
	return fmt.Errorf("tool %q matches no allow pattern (%s)", name, strings.Join(tf.Allow, " "))
}

// After does nothing.
func (*ToolFilter) After(context.Context, *caddymcp.Call, *caddymcp.Outcome) error { return nil }

// UnmarshalCaddyfile sets up the interceptor from Caddyfile tokens. Both
// options are repeatable. Syntax:
//
//	tool_filter {
//	    allow <server/tool pattern...>   # only these tools
//	    deny  <server/tool pattern...>   # never these tools; wins over allow
//	}
func (tf *ToolFilter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // interceptor name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		patterns := d.RemainingArgs()
		switch opt {
		case "allow":
			tf.Allow = append(tf.Allow, patterns...)
		case "deny":
			tf.Deny = append(tf.Deny, patterns...)
		default:
			return d.Errf("unrecognized tool_filter option %q", opt)
		}
		if len(patterns) == 0 {
			return d.Errf("%s: at least one pattern is required", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*ToolFilter)(nil)
	_ caddymcp.Interceptor  = (*ToolFilter)(nil)
	_ caddyfile.Unmarshaler = (*ToolFilter)(nil)
)
