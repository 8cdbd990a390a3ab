package mcpauth

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile reads an auth block; d is on its `auth` token, and
// the directive that holds the block calls it. Syntax:
//
//	auth {
//	    resource <uri>                        # canonical resource URI; default: per request
//	    resource_name <name>                  # for the metadata document
//	    jwt {
//	        issuer   <url>                    # required: the token's iss
//	        jwks_url <url>                    # required: https, or http on loopback
//	        audience <uri...>                 # repeatable; default: the resource URI
//	        algorithms <alg...>               # default RS256 ES256 EdDSA; also PS256 RS384 ES384
//	        clock_skew <duration>             # default 30s
//	        principal_claim <claim>           # default sub
//	        groups_claim <claim>              # default groups
//	        scopes_claim <claim>              # default scope (then scp)
//	        jwks_refresh <duration>           # default 1h
//	    }
//	    api_key <principal> sha256:<hex> [{   # repeatable; `caddy mcp api-key` makes one
//	        groups <group...>
//	        scopes <scope...>
//	    }]
//	    caddy_identity                        # the principal of Caddy's auth handlers in front
//	    authorization_servers <url...>        # for the metadata; default: the JWT issuer
//	    scopes_supported <scope...>
//	    required_scopes <scope...>            # every request needs all of them
//	}
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := noArgs(d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "resource":
			if err := oneArg(d, &c.Resource); err != nil {
				return err
			}
		case "resource_name":
			if err := oneArg(d, &c.ResourceName); err != nil {
				return err
			}
		case "jwt":
			if c.JWT != nil {
				return d.Err("jwt: given twice")
			}
			c.JWT = new(JWT)
			if err := c.JWT.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "api_key":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("api_key: want <principal> sha256:<hex>, got %d argument(s)", len(args))
			}
			k := APIKey{Principal: args[0], Hash: args[1]}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch d.Val() {
				case "groups":
					if err := moreArgs(d, &k.Groups); err != nil {
						return err
					}
				case "scopes":
					if err := moreArgs(d, &k.Scopes); err != nil {
						return err
					}
				default:
					return d.Errf("unrecognized api_key option %q", d.Val())
				}
			}
			c.APIKeys = append(c.APIKeys, k)
		case "caddy_identity":
			if err := noArgs(d); err != nil {
				return err
			}
			c.CaddyIdentity = true
		case "authorization_servers":
			if err := moreArgs(d, &c.AuthorizationServers); err != nil {
				return err
			}
		case "scopes_supported":
			if err := moreArgs(d, &c.ScopesSupported); err != nil {
				return err
			}
		case "required_scopes":
			if err := moreArgs(d, &c.RequiredScopes); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized auth option %q", opt)
		}
	}
	return nil
}

// unmarshalCaddyfile reads a jwt block; d is on its `jwt` token.
func (j *JWT) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := noArgs(d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch opt := d.Val(); opt {
		case "issuer":
			err = oneArg(d, &j.Issuer)
		case "jwks_url":
			err = oneArg(d, &j.JWKSURL)
		case "audience":
			err = moreArgs(d, &j.Audiences)
		case "algorithms":
			err = moreArgs(d, &j.Algorithms)
		case "clock_skew":
			err = duration(d, &j.ClockSkew)
		case "jwks_refresh":
			err = duration(d, &j.JWKSRefresh)
		case "principal_claim":
			err = oneArg(d, &j.PrincipalClaim)
		case "groups_claim":
			err = oneArg(d, &j.GroupsClaim)
		case "scopes_claim":
			err = oneArg(d, &j.ScopesClaim)
		default:
			err = d.Errf("unrecognized jwt option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// noArgs checks that an option has no arguments on its line.
func noArgs(d *caddyfile.Dispenser) error {
	opt := d.Val()
	if args := d.RemainingArgs(); len(args) > 0 {
		return d.Errf("%s: takes no arguments, got %q", opt, args)
	}
	return nil
}

// oneArg reads the one argument of an option that may be given once.
func oneArg(d *caddyfile.Dispenser, v *string) error {
	opt := d.Val()
	if *v != "" {
		return d.Errf("%s: given twice", opt)
	}
	args := d.RemainingArgs()
	if len(args) != 1 || args[0] == "" {
		return d.Errf("%s: want one argument, got %d", opt, len(args))
	}
	*v = args[0]
	return nil
}

// moreArgs appends the arguments, at least one, of a repeatable option.
func moreArgs(d *caddyfile.Dispenser, v *[]string) error {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("%s: want at least one argument", opt)
	}
	*v = append(*v, args...)
	return nil
}

func duration(d *caddyfile.Dispenser, v *caddy.Duration) error {
	opt := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s %q: %v", opt, s, err)
	}
	*v = caddy.Duration(dur)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Config)(nil)
