package registryapp

import (
	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddy-mcp/caddy-mcp/mcpauth"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("mcp_registry", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("mcp_registry_api", parseHandler)
	httpcaddyfile.RegisterDirectiveOrder("mcp_registry_api", httpcaddyfile.Before, "reverse_proxy")
}

func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "mcp_registry", Value: caddyconfig.JSON(a, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the mcp_registry global option.
// Syntax:
//
//	mcp_registry {
//	    storage <module> { ... }          # default: Caddy's storage
//	    allowed_networks <entry...>       # CIDR, IP, host name, loopback, private
//	    allow_commands                    # let the API register stdio and container servers
//	    probe_interval <duration>         # default 30s
//	    probe_timeout  <duration>         # default 10s
//	    probe off                         # no active probes
//	    exclude_unhealthy                 # keep unhealthy servers off the aggregate
//	    poll_interval <duration>          # other instances' changes; default 1s
//	    sync <base URL> {                 # follow a registry that speaks the official API
//	        names    <pattern...>         # path.Match on official names; default all
//	        interval <duration>           # default 1h
//	    }
//
//	    template <name> {                 # what records with "template": "<name>" run
//	        stdio     <command> [<args...>]    # or
//	        container <image> [<args...>]
//	        ...                           # the options of an mcp_gateway server block
//	    }
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "storage":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			mod, err := caddyfile.UnmarshalModule(d, "caddy.storage."+name)
			if err != nil {
				return err
			}
			a.StorageRaw = caddyconfig.JSONModuleObject(mod, "module", name, nil)
		case "allowed_networks":
			nets := d.RemainingArgs()
			if len(nets) == 0 {
				return d.ArgErr()
			}
			a.AllowedNetworks = append(a.AllowedNetworks, nets...)
		case "allow_commands":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.AllowCommands = true
		case "probe_interval", "probe_timeout", "poll_interval":
			opt := d.Val()
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s %q: %v", opt, v, err)
			}
			if a.Probe == nil && opt != "poll_interval" {
				a.Probe = new(ProbeSettings)
			}
			switch opt {
			case "probe_interval":
				a.Probe.Interval = Duration(dur)
			case "probe_timeout":
				a.Probe.Timeout = Duration(dur)
			default:
				a.PollInterval = caddy.Duration(dur)
			}
		case "probe":
			var v string
			if !d.AllArgs(&v) || v != "off" {
				return d.Err("probe: the only setting is `probe off`")
			}
			if a.Probe == nil {
				a.Probe = new(ProbeSettings)
			}
			a.Probe.Disabled = true
		case "exclude_unhealthy":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.ExcludeUnhealthy = true
		case "sync":
			a.Sync = new(SyncSettings)
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.Sync.URL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch d.Val() {
				case "names":
					names := d.RemainingArgs()
					if len(names) == 0 {
						return d.ArgErr()
					}
					a.Sync.Names = append(a.Sync.Names, names...)
				case "interval":
					var v string
					if !d.AllArgs(&v) {
						return d.ArgErr()
					}
					dur, err := caddy.ParseDuration(v)
					if err != nil {
						return d.Errf("sync interval %q: %v", v, err)
					}
					a.Sync.Interval = caddy.Duration(dur)
				default:
					return d.Errf("unrecognized sync option %q", d.Val())
				}
			}
		case "template":
			s, err := caddymcp.UnmarshalServer(d)
			if err != nil {
				return err
			}
			if s.Remote != nil {
				return d.Errf("template %q: templates are stdio or container servers; remote servers are registered through the API", s.Name)
			}
			if a.Templates == nil {
				a.Templates = map[string]*Template{}
			}
			if _, dup := a.Templates[s.Name]; dup {
				return d.Errf("template %q: defined twice", s.Name)
			}
			a.Templates[s.Name] = &Template{Stdio: s.Stdio, Container: s.Container, Tools: s.Tools}
		default:
			return d.Errf("unrecognized mcp_registry option %q", d.Val())
		}
	}
	return nil
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the API handler. Syntax:
//
//	mcp_registry_api [<matcher>] {
//	    prefix <path>                     # default /api; /health is served too
//	    auth { ... }                      # mcpauth's auth block: jwt, api_key, caddy_identity, ...
//	    permission <read|register|toggle|delete|*...> {   # repeatable
//	        principals <id...>            # * is any authenticated principal
//	        groups <group...>
//	        scopes <scope...>
//	    }
//	}
//
// Without auth and permission, the API is open to whoever reaches it.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "prefix":
			if !d.AllArgs(&h.Prefix) {
				return d.ArgErr()
			}
		case "auth":
			if h.Auth != nil {
				return d.Err("auth: given twice")
			}
			h.Auth = new(mcpauth.Config)
			if err := h.Auth.UnmarshalCaddyfile(d); err != nil {
				return err
			}
		case "permission":
			p := Permission{Allow: d.RemainingArgs()}
			if len(p.Allow) == 0 {
				return d.Errf("permission: want one or more of read, register, toggle, delete or *")
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				var list *[]string
				opt := d.Val()
				switch opt {
				case "principals":
					list = &p.Principals
				case "groups":
					list = &p.Groups
				case "scopes":
					list = &p.Scopes
				default:
					return d.Errf("unrecognized permission option %q", opt)
				}
				args := d.RemainingArgs()
				if len(args) == 0 {
					return d.Errf("permission %s: want at least one argument", opt)
				}
				*list = append(*list, args...)
			}
			h.Permissions = append(h.Permissions, p)
		default:
			return d.Errf("unrecognized mcp_registry_api option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
