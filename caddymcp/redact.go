package caddymcp

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// What the gateway must not show of a server's config in its logs, or in
// the errors clients see: a remote server's header values (its credentials),
// the password and secret-looking query values of its URL, and the values
// of a process's secret environment variables. Secrets are hidden by value,
// wherever they appear: in errors of net/http and the MCP SDK, which quote
// request URLs, in an upstream's answer quoted back, in a process's stderr.

// redacted replaces what is hidden.
const redacted = "REDACTED"

// minSecretLen: shorter values are not hidden, as hiding every "1" or "on"
// would garble every message without protecting anything.
const minSecretLen = 4

// secretWords are what names of query parameters and environment variables
// that hold secrets contain (lower-case): token, api_key, apikey,
// client_secret, password, sig, signature, auth, authorization...
var secretWords = []string{"token", "key", "secret", "passw", "pwd", "sig", "auth", "credential"}

// secretName reports whether a query parameter or variable name looks like
// it holds a secret.
func secretName(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// redactURL returns a URL fit for a log or an error: its password and the
// values of its secret-looking query parameters replaced with REDACTED, the
// rest as it was. A URL that does not parse loses its user info and query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		s, _, hadQuery := strings.Cut(raw, "?")
		if scheme, rest, ok := strings.Cut(s, "://"); ok {
			host, path, _ := strings.Cut(rest, "/")
			if i := strings.LastIndexByte(host, '@'); i >= 0 {
				host = redacted + "@" + host[i+1:]
			}
			s = scheme + "://" + host
			if path != "" {
				s += "/" + path
			}
		}
		if hadQuery {
			s += "?" + redacted
		}
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	if u.RawQuery != "" {
		pairs := strings.Split(u.RawQuery, "&")
		for i, p := range pairs {
			if k, _, ok := strings.Cut(p, "="); ok && secretName(queryKey(k)) {
				pairs[i] = k + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
	}
	return u.String()
}

// queryKey unescapes a query parameter name, as far as it can.
func queryKey(k string) string {
	if s, err := url.QueryUnescape(k); err == nil {
		return s
	}
	return k
}

// urlSecrets returns the secrets in a URL: its password and the values of
// its secret-looking query parameters, as written and unescaped.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok {
		out = append(out, p, url.QueryEscape(p), url.PathEscape(p))
	}
	for p := range strings.SplitSeq(u.RawQuery, "&") {
		if k, v, ok := strings.Cut(p, "="); ok && secretName(queryKey(k)) {
			out = append(out, v)
			if s, err := url.QueryUnescape(v); err == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// redactor hides one server's secrets. Header and environment values may
// hold placeholders ({env.TOKEN}, {file.…}), expanded anew on every use:
// the redactor expands them when it is asked to hide, at most once per
// second, and keeps hiding values that have rotated since.
type redactor struct {
	fixed      []string // from the URL, which has no placeholders
	configured []string // header and secret env values as configured

	mu       sync.Mutex
	expanded time.Time
	seen     map[string]bool
	list     []string // fixed and seen, longest first
}

// maxSeenSecrets bounds the values kept across rotations.
const maxSeenSecrets = 64

// newRedactor collects what to hide of a server's config. Every header
// value is a secret, and each word of one after the first (the token of
// "Bearer <token>"); an environment variable is one when its name looks
// like it, or its value comes from a placeholder (where operators put
// secrets).
func newRedactor(cfg *ServerConfig) *redactor {
	r := &redactor{}
	var env map[string]string
	switch {
	case cfg.Remote != nil:
		r.fixed = urlSecrets(cfg.Remote.URL)
		for _, v := range cfg.Remote.Headers {
			r.configured = append(r.configured, v)
		}
	case cfg.Stdio != nil:
		env = cfg.Stdio.Env
	case cfg.Container != nil:
		env = cfg.Container.Env
	}
	for k, v := range env {
		if secretName(k) || strings.Contains(v, "{") {
			r.configured = append(r.configured, v)
		}
	}
	return r
}

// secrets returns the strings to hide, longest first, so that no part of a
// longer one is left when a shorter one inside it is replaced.
func (r *redactor) secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.list != nil && time.Since(r.expanded) < time.Second {
		return r.list
	}
	r.expanded = time.Now()
	repl := caddy.NewReplacer()
	var fresh []string
	for _, v := range r.configured {
		v = repl.ReplaceKnown(v, "")
		fresh = append(fresh, v)
		if words := strings.Fields(v); len(words) > 1 {
			fresh = append(fresh, words[1:]...)
		}
	}
	if r.seen == nil || len(r.seen)+len(fresh) > maxSeenSecrets {
		r.seen = map[string]bool{} // made at first use: most servers' logs never need it
	}
	for _, s := range append(fresh, r.fixed...) {
		if len(s) >= minSecretLen {
			r.seen[s] = true
		}
	}
	list := slices.Collect(maps.Keys(r.seen))
	slices.SortFunc(list, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	r.list = slices.Clip(list)
	return r.list
}

// scrub replaces every secret in s.
func (r *redactor) scrub(s string) string {
	for _, secret := range r.secrets() {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// redactingCore is a zapcore.Core that scrubs the message and the string,
// byte string, error and Stringer fields of every entry.
type redactingCore struct {
	zapcore.Core
	r *redactor
}

// redactLogs makes a logger hide r's secrets.
func redactLogs(l *zap.Logger, r *redactor) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return redactingCore{Core: c, r: r} }))
}

func (c redactingCore) With(fields []zapcore.Field) zapcore.Core {
	return redactingCore{Core: c.Core.With(c.scrubFields(fields)), r: c.r}
}

// Check lets the wrapped core decide (its level, its sampling), and has the
// entry written here, to be scrubbed.
func (c redactingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Core.Check(e, nil) != nil {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c redactingCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = c.r.scrub(e.Message)
	return c.Core.Write(e, c.scrubFields(fields))
}

// scrubFields returns the fields with their text scrubbed; errors and
// Stringers become strings.
func (c redactingCore) scrubFields(fields []zapcore.Field) []zapcore.Field {
	if len(c.r.secrets()) == 0 {
		return fields
	}
	out := slices.Clone(fields)
	for i, f := range out {
		switch f.Type {
		case zapcore.StringType:
			out[i].String = c.r.scrub(f.String)
		case zapcore.ByteStringType:
			out[i] = zap.String(f.Key, c.r.scrub(string(f.Interface.([]byte))))
		case zapcore.ErrorType, zapcore.StringerType:
			// fmt.Sprint, as zap does, survives a method that panics.
			out[i] = zap.String(f.Key, c.r.scrub(fmt.Sprint(f.Interface)))
		}
	}
	return out
}
