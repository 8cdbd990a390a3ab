package interceptors

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

func init() {
	caddy.RegisterModule(SecretScan{})
}

// secretPattern is a named regexp that finds a kind of secret. When it has
// a group named "secret", that group is the secret (what allow patterns are
// matched against); otherwise the whole match is.
type secretPattern struct {
	name string
	re   *regexp.Regexp
}

// builtinSecrets are the well-known secret formats, each shaped so that
// ordinary text, UUIDs and hex digests do not match.
var builtinSecrets = []secretPattern{
	{"aws_access_key_id", regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"github_token", regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b`)},
	{"slack_token", regexp.MustCompile(`\bxox[abprs]-[A-Za-z0-9-]{10,}`)},
	{"private_key", regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----`)},
	{"jwt", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`)},
	{"google_api_key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
	{"stripe_secret_key", regexp.MustCompile(`\bsk_live_[0-9A-Za-z]{16,}`)},
	{jsonSecretField, regexp.MustCompile(`(?i)"(?:password|secret|token|api_key)"\s*:\s*"(?P<secret>[^"]{8,})"`)},
}

// jsonSecretField is the pattern of a password, secret, token or api_key
// field of 8 characters or more in a JSON object. Its regexp finds such
// fields in JSON text inside strings; fields of the scanned document itself
// are checked by key and value (see scanner.walk).
const jsonSecretField = "json_secret_field"

var secretFieldKey = regexp.MustCompile(`^(?i:password|secret|token|api_key)$`)

// SecretScan refuses calls whose arguments, and results that, contain a
// secret: a cloud or API credential, a private key, a JWT, or a password,
// secret, token or api_key field in JSON. It decodes the JSON and scans
// every string in it (object keys included), so that escapes such as \u0041
// hide nothing, and likewise JSON documents inside strings, up to 4 deep;
// a document that is not JSON is scanned as text. A refusal names the
// pattern that matched, never the matched text.
//
// The built-in patterns are aws_access_key_id, github_token, slack_token,
// private_key, jwt, google_api_key, stripe_secret_key and
// json_secret_field.
type SecretScan struct {
	// Patterns are more secrets to find: Go regular expressions by name; the
	// name is what a refusal shows. If a pattern has a group named
	// "secret", (?P<secret>...), that group is the secret the allow
	// patterns are matched against; otherwise the whole match is.
	Patterns map[string]string `json:"patterns,omitempty"`

	// Allow exempts a secret that one of these Go regular expressions
	// matches (anywhere in it, unless anchored with ^ and $), e.g. a
	// well-known example key.
	Allow []string `json:"allow,omitempty"`

	// Arguments scans the arguments of calls. Default: true.
	Arguments *bool `json:"arguments,omitempty"`

	// Results scans the results of calls, and the text of the error of a
	// call that failed. Default: true.
	Results *bool `json:"results,omitempty"`

	patterns []secretPattern
	allow    []*regexp.Regexp
}

// CaddyModule returns the Caddy module information.
func (SecretScan) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp.interceptors.secret_scan",
		New: func() caddy.Module { return new(SecretScan) },
	}
}

// Provision compiles the patterns.
func (s *SecretScan) Provision(caddy.Context) error {
	if !s.scansArguments() && !s.scansResults() {
		return fmt.Errorf("arguments and results are both off: nothing to scan")
	}
	s.patterns = slices.Clone(builtinSecrets)
	for _, name := range slices.Sorted(maps.Keys(s.Patterns)) {
		if slices.ContainsFunc(builtinSecrets, func(p secretPattern) bool { return p.name == name }) {
			return fmt.Errorf("pattern %q: the name of a built-in pattern", name)
		}
		re, err := regexp.Compile(s.Patterns[name])
		if err != nil {
			return fmt.Errorf("pattern %q: %v", name, err)
		}
		s.patterns = append(s.patterns, secretPattern{name, re})
	}
	for _, a := range s.Allow {
		re, err := regexp.Compile(a)
		if err != nil {
			return fmt.Errorf("allow %q: %v", a, err)
		}
		s.allow = append(s.allow, re)
	}
	return nil
}

func (s *SecretScan) scansArguments() bool { return s.Arguments == nil || *s.Arguments }

func (s *SecretScan) scansResults() bool { return s.Results == nil || *s.Results }

// Before refuses arguments that contain a secret.
func (s *SecretScan) Before(_ context.Context, c *caddymcp.Call) error {
	if !s.scansArguments() {
		return nil
	}
	if name := s.scanJSON(c.Arguments); name != "" {
		return fmt.Errorf("argument contains a secret (%s)", name)
	}
	return nil
}

// After refuses a result, or the error of a failed call, that contains a
// secret.
func (s *SecretScan) After(_ context.Context, _ *caddymcp.Call, o *caddymcp.Outcome) error {
	if !s.scansResults() {
		return nil
	}
	if name := s.scanJSON(o.Result); name != "" {
		return fmt.Errorf("result contains a secret (%s)", name)
	}
	if o.Err != nil {
		if name := s.scanText(o.Err.Error()); name != "" {
			return fmt.Errorf("error contains a secret (%s)", name)
		}
	}
	return nil
}

// scanJSON returns the name of the first pattern that finds a secret in
// the strings of a JSON document, or in its text if it is not JSON; "" if
// none does.
func (s *SecretScan) scanJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return s.scanText(string(raw))
	}
	return s.walk(v, 0)
}

// maxEmbedded is how deep walk follows JSON documents inside strings (a
// tool's text result is often JSON), each level another round of escapes.
const maxEmbedded = 4

// walk scans the strings of a decoded document, object keys in order, and
// the documents that strings holding JSON text embed, to the depth
// maxEmbedded.
func (s *SecretScan) walk(v any, embedded int) string {
	switch v := v.(type) {
	case string:
		if name := s.scanText(v); name != "" {
			return name
		}
		if embedded < maxEmbedded {
			if text := strings.TrimSpace(v); strings.HasPrefix(text, "{") || strings.HasPrefix(text, "[") {
				if doc, err := decodeJSON([]byte(text)); err == nil {
					return s.walk(doc, embedded+1)
				}
			}
		}
	case []any:
		for _, e := range v {
			if name := s.walk(e, embedded); name != "" {
				return name
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if name := s.scanText(k); name != "" {
				return name
			}
			if str, ok := v[k].(string); ok && secretFieldKey.MatchString(k) &&
				utf8.RuneCountInString(str) >= 8 && !s.allowed(str) {
				return jsonSecretField
			}
			if name := s.walk(v[k], embedded); name != "" {
				return name
			}
		}
	}
	return ""
}

// scanText returns the name of the first pattern that finds a secret in
// text that no allow pattern exempts, or "".
func (s *SecretScan) scanText(text string) string {
	for _, p := range s.patterns {
		group := p.re.SubexpIndex("secret")
		for _, m := range p.re.FindAllStringSubmatchIndex(text, -1) {
			secret := text[m[0]:m[1]]
			if group > 0 && m[2*group] >= 0 {
				secret = text[m[2*group]:m[2*group+1]]
			}
			if !s.allowed(secret) {
				return p.name
			}
		}
	}
	return ""
}

func (s *SecretScan) allowed(secret string) bool {
	return slices.ContainsFunc(s.allow, func(re *regexp.Regexp) bool { return re.MatchString(secret) })
}

// UnmarshalCaddyfile sets up the interceptor from Caddyfile tokens. Syntax:
//
//	secret_scan {
//	    pattern   <name> <regexp>   # another secret to find; repeatable
//	    allow     <regexp...>       # exempt secrets these match; repeatable
//	    arguments on|off            # scan arguments; default on
//	    results   on|off            # scan results and errors; default on
//	}
func (s *SecretScan) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // interceptor name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "pattern":
			var name, re string
			if !d.AllArgs(&name, &re) {
				return d.Errf("pattern: expected a name and a regexp")
			}
			if _, dup := s.Patterns[name]; dup {
				return d.Errf("pattern %q: defined twice", name)
			}
			if s.Patterns == nil {
				s.Patterns = map[string]string{}
			}
			s.Patterns[name] = re
		case "allow":
			res := d.RemainingArgs()
			if len(res) == 0 {
				return d.Errf("allow: at least one regexp is required")
			}
			s.Allow = append(s.Allow, res...)
		case "arguments", "results":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			if v != "on" && v != "off" {
				return d.Errf("%s %q: must be on or off", opt, v)
			}
			on := v == "on"
			if opt == "arguments" {
				s.Arguments = &on
			} else {
				s.Results = &on
			}
		default:
			return d.Errf("unrecognized secret_scan option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*SecretScan)(nil)
	_ caddymcp.Interceptor  = (*SecretScan)(nil)
	_ caddyfile.Unmarshaler = (*SecretScan)(nil)
)
