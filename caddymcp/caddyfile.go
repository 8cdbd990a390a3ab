package caddymcp

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("mcp_gateway", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("mcp_gateway", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gateway)
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return g, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	mcp_gateway [<matcher>] {
//	    aggregate_path   <path>              # default /mcp
//	    server_path      <prefix>            # default /servers/ → /servers/<name>/mcp
//	    allowed_origins  <origin...>         # besides the site's host and localhost; * for any
//	    max_request_body <size>              # default 4MiB
//	    session_timeout  <duration>          # default 1h
//	    registry                             # serve the mcp_registry app's servers too
//	    oci_ref          <reference>         # a catalog's servers (caddy mcp import); repeatable
//
//	    auth { ... }                         # who calls: JWT, API keys, Caddy's auth in front (see mcpauth.Config)
//	    authorization {                      # who may use what; repeat allow
//	        allow {
//	            principals <id...>           # who: ids (* any), groups or scopes
//	            groups     <group...>
//	            scopes     <scope...>
//	            servers    <pattern...>      # what: default all
//	            tools      <pattern...>
//	            methods    <method...>       # tools/call, tools/list, prompts/get, resources/read, ...
//	        }
//	    }
//	    audit                                # log every auth failure and decision
//	    interceptors {                       # every tools/call passes them, in order
//	        <name> [<args...>] [{ ... }]     # call_log, secret_scan, size_limit, rate_limit, tool_filter, exec, http
//	    }
//
//	    server <name> {
//	        # exactly one of:
//	        stdio     <command> [<args...>]
//	        container <image> [<args...>]
//	        remote    <url>
//
//	        env        <key> <value>         # stdio, container; repeatable
//	        dir        <path>                # stdio
//	        volume     <host:container[:ro|rw]> # container; repeatable
//	        network    <name>                # container; default none
//	        cpus       <n>                   # container; default 1
//	        memory     <size>                # container; default 512m
//	        pids_limit <n>                   # container; default 256
//	        read_only                        # container: read-only root filesystem
//	        runtime    <cli>                 # container; default docker
//	        transport  streamable|sse        # remote; default streamable
//	        header     <name> <value>        # remote; repeatable; placeholders allowed
//	        timeout    <duration>            # remote connect timeout; default 10s
//	        allow_tools <pattern...>         # only these tools (path.Match patterns)
//	        deny_tools  <pattern...>         # never these tools
//	        max_concurrent_calls <n>         # calls in flight to the server at once; default 0 (no cap)
//	        queue_timeout    <duration>      # wait for a free slot under the cap; default 10s
//	        call_timeout     <duration>      # bounds each call, its wait included; default none
//	        max_message_size <size>          # stdio, container: longest stdout line; default 16MiB
//	    }
//	}
func (g *Gateway) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "aggregate_path":
			if !d.AllArgs(&g.AggregatePath) {
				return d.ArgErr()
			}
		case "server_path":
			if !d.AllArgs(&g.ServerPath) {
				return d.ArgErr()
			}
		case "allowed_origins":
			origins := d.RemainingArgs()
			if len(origins) == 0 {
				return d.ArgErr()
			}
			g.AllowedOrigins = append(g.AllowedOrigins, origins...)
		case "max_request_body":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(v)
			if err != nil {
				return d.Errf("max_request_body %q: %v", v, err)
			}
			if size > math.MaxInt64 {
				return d.Errf("max_request_body %q: too large", v)
			}
			g.MaxRequestBody = int64(size)
		case "session_timeout":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("session_timeout %q: %v", v, err)
			}
			g.SessionTimeout = caddy.Duration(dur)
		case "oci_ref":
			var ref string
			if !d.AllArgs(&ref) {
				return d.ArgErr()
			}
			g.OCIRefs = append(g.OCIRefs, ref)
		case "registry":
			if d.NextArg() {
				return d.ArgErr()
			}
			g.Registry = true
		case "auth", "authorization", "audit", "interceptors":
			if err := g.unmarshalAccess(d); err != nil {
				return err
			}
		case "server":
			s, err := UnmarshalServer(d)
			if err != nil {
				return err
			}
			g.Servers = append(g.Servers, s)
		default:
			return d.Errf("unrecognized mcp_gateway option %q", d.Val())
		}
	}
	return nil
}

// UnmarshalServer reads a `server <name> { ... }` block (the syntax of
// UnmarshalCaddyfile); the mcp_registry app reads its templates with it.
func UnmarshalServer(d *caddyfile.Dispenser) (*ServerConfig, error) {
	s := &ServerConfig{}
	if !d.AllArgs(&s.Name) {
		return nil, d.Errf("server: expected exactly one name")
	}
	env := map[string]string{}
	var volumes []string
	container := &ContainerConfig{}
	remote := &RemoteConfig{}
	stdio := &StdioConfig{}
	type placed struct{ opt, where string }
	var specific []placed // kind-specific options, in file order
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		need := func(n int) error {
			if len(args) != n {
				return d.Errf("server %s: %s: expected %d argument(s), got %d", s.Name, opt, n, len(args))
			}
			return nil
		}
		var err error
		switch opt {
		case "stdio":
			if len(args) == 0 {
				return nil, d.Errf("server %s: stdio: command is required", s.Name)
			}
			stdio.Command, stdio.Args = args[0], args[1:]
			s.Stdio = stdio
		case "container":
			if len(args) == 0 {
				return nil, d.Errf("server %s: container: image is required", s.Name)
			}
			container.Image, container.Args = args[0], args[1:]
			s.Container = container
		case "remote":
			if err = need(1); err == nil {
				remote.URL = args[0]
				s.Remote = remote
			}
		case "env":
			if err = need(2); err == nil {
				env[args[0]] = args[1]
			}
		case "dir":
			if err = need(1); err == nil {
				stdio.Dir = args[0]
			}
		case "volume":
			if err = need(1); err == nil {
				volumes = append(volumes, args[0])
			}
		case "network":
			if err = need(1); err == nil {
				container.Network = args[0]
			}
		case "cpus":
			if err = need(1); err == nil {
				container.CPUs = args[0]
			}
		case "memory":
			if err = need(1); err == nil {
				container.Memory = args[0]
			}
		case "pids_limit":
			if err = need(1); err == nil {
				container.PidsLimit, err = strconv.Atoi(args[0])
				if err != nil {
					err = d.Errf("server %s: pids_limit %q: not a whole number", s.Name, args[0])
				}
			}
		case "read_only":
			if err = need(0); err == nil {
				container.ReadOnly = true
			}
		case "runtime":
			if err = need(1); err == nil {
				container.Runtime = args[0]
			}
		case "transport":
			if err = need(1); err == nil {
				remote.Transport = args[0]
			}
		case "header":
			if err = need(2); err == nil {
				if remote.Headers == nil {
					remote.Headers = map[string]string{}
				}
				remote.Headers[args[0]] = args[1]
			}
		case "timeout":
			if err = need(1); err == nil {
				t, perr := caddy.ParseDuration(args[0])
				if perr != nil {
					err = d.Errf("server %s: timeout %q: %v", s.Name, args[0], perr)
				}
				remote.Timeout = caddy.Duration(t)
			}
		case "max_concurrent_calls":
			if err = need(1); err == nil {
				s.MaxConcurrentCalls, err = strconv.Atoi(args[0])
				if err != nil {
					err = d.Errf("server %s: max_concurrent_calls %q: not a whole number", s.Name, args[0])
				}
			}
		case "queue_timeout", "call_timeout":
			if err = need(1); err == nil {
				t, perr := caddy.ParseDuration(args[0])
				if perr != nil {
					err = d.Errf("server %s: %s %q: %v", s.Name, opt, args[0], perr)
				}
				if opt == "queue_timeout" {
					s.QueueTimeout = caddy.Duration(t)
				} else {
					s.CallTimeout = caddy.Duration(t)
				}
			}
		case "max_message_size":
			if err = need(1); err == nil {
				size, perr := humanize.ParseBytes(args[0])
				switch {
				case perr != nil:
					err = d.Errf("server %s: max_message_size %q: %v", s.Name, args[0], perr)
				case size > math.MaxInt64:
					err = d.Errf("server %s: max_message_size %q: too large", s.Name, args[0])
				default:
					s.MaxMessageSize = int64(size)
				}
			}
		case "allow_tools", "deny_tools":
			if len(args) == 0 {
				return nil, d.Errf("server %s: %s: at least one pattern is required", s.Name, opt)
			}
			if s.Tools == nil {
				s.Tools = &ToolFilter{}
			}
			if opt == "allow_tools" {
				s.Tools.Allow = append(s.Tools.Allow, args...)
			} else {
				s.Tools.Deny = append(s.Tools.Deny, args...)
			}
		default:
			return nil, d.Errf("server %s: unrecognized option %q", s.Name, opt)
		}
		if err != nil {
			return nil, err
		}
		if _, ok := optionKinds[opt]; ok {
			specific = append(specific, placed{opt, fmt.Sprintf("%s:%d", d.File(), d.Line())})
		}
	}
	var kinds []string
	for kind, set := range map[string]bool{"stdio": s.Stdio != nil, "container": s.Container != nil, "remote": s.Remote != nil} {
		if set {
			kinds = append(kinds, kind)
		}
	}
	if len(kinds) > 1 {
		slices.Sort(kinds)
		return nil, d.Errf("server %s: only one of stdio, container or remote may be set, got %s", s.Name, strings.Join(kinds, " and "))
	}
	for _, p := range specific {
		if len(kinds) == 1 && !strings.Contains(optionKinds[p.opt], kinds[0]) {
			return nil, fmt.Errorf("server %s: option %q does not apply to a %s server (only %s), at %s", s.Name, p.opt, kinds[0], optionKinds[p.opt], p.where)
		}
	}
	if len(env) > 0 {
		stdio.Env, container.Env = env, env
	}
	container.Volumes = volumes
	return s, nil
}

// optionKinds says which kinds of server each kind-specific option is for.
var optionKinds = map[string]string{
	"env": "stdio, container", "dir": "stdio",
	"volume": "container", "network": "container", "cpus": "container", "memory": "container",
	"pids_limit": "container", "read_only": "container", "runtime": "container",
	"transport": "remote", "header": "remote", "timeout": "remote",
	"max_message_size": "stdio, container",
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Gateway)(nil)
