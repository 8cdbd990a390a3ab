package interceptors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

func init() {
	caddy.RegisterModule(HTTP{})
}

// maxPolicyResponse is the most of a policy service's response read.
const maxPolicyResponse = 64 << 10

// HTTP asks an operator's policy service about each call: it POSTs the
// call as a JSON document, the same as the exec interceptor writes (see
// Exec; the arguments are included), to a URL. A 2xx response lets the
// call through. Any other refuses it, with the "reason" of a JSON response
// body {"reason": "..."} or else the body's first 512 bytes as the reason;
// redirects are not followed. A service that cannot be reached or does not
// answer in time refuses the call too, unless FailOpen is set.
type HTTP struct {
	// URL is where to POST, http or https. Required.
	URL string `json:"url"`

	// Headers are sent with each request, e.g. a bearer token. Their values
	// may hold the placeholders {env.*} and {file.*}, expanded once, at
	// load time.
	Headers map[string]string `json:"headers,omitempty"`

	// Timeout is how long the service may take to answer. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// FailOpen lets calls through when the service cannot be reached or
	// does not answer in time, rather than refusing them: availability
	// over enforcement. Refusals the service answers are obeyed either
	// way.
	FailOpen bool `json:"fail_open,omitempty"`

	// RunAfter asks the service after each call too, with the call's
	// outcome, so that it may refuse a result.
	RunAfter bool `json:"after,omitempty"`

	header http.Header
	client *http.Client
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (HTTP) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp.interceptors.http",
		New: func() caddy.Module { return new(HTTP) },
	}
}

// Provision checks the URL and sets up the client.
func (h *HTTP) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	u, err := url.Parse(h.URL)
	if err != nil {
		return fmt.Errorf("url %q: %v", h.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: must be an absolute http or https URL", h.URL)
	}
	timeout, err := askTimeout(h.Timeout)
	if err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	h.header = http.Header{}
	for k, v := range h.Headers {
		h.header.Set(k, repl.ReplaceKnown(v, ""))
	}
	h.header.Set("Content-Type", "application/json")
	h.client = &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return nil
}

// Cleanup closes the idle connections to the service.
func (h *HTTP) Cleanup() error {
	if h.client != nil {
		h.client.CloseIdleConnections()
	}
	return nil
}

// Before asks the service about the call.
func (h *HTTP) Before(ctx context.Context, c *caddymcp.Call) error {
	return h.ask(ctx, c, nil)
}

// After asks the service about the outcome, if RunAfter is set.
func (h *HTTP) After(ctx context.Context, c *caddymcp.Call, o *caddymcp.Outcome) error {
	if !h.RunAfter {
		return nil
	}
	return h.ask(ctx, c, o)
}

// ask posts the call once; nil means the service let it through.
func (h *HTTP) ask(ctx context.Context, c *caddymcp.Call, o *caddymcp.Outcome) error {
	doc, err := policyDocument(c, o)
	if err != nil {
		return fmt.Errorf("encoding the call for the policy service: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("policy service request: %v", err)
	}
	req.Header = h.header.Clone()
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // the call ended; not the service's fault
		}
		if h.FailOpen {
			h.logger.Warn("policy service unavailable; letting the call through (fail_open)", zap.String("url", h.URL), zap.Error(err))
			return nil
		}
		h.logger.Error("policy service unavailable; refusing the call", zap.String("url", h.URL), zap.Error(err))
		return fmt.Errorf("policy service unavailable")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicyResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("policy service answered %s, and reading its reason failed: %v", resp.Status, err)
	}
	var answer struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Reason != "" {
		return errors.New(capText(answer.Reason, maxReason))
	}
	if text := strings.TrimSpace(capText(string(body), maxReason)); text != "" {
		return errors.New(text)
	}
	return fmt.Errorf("policy service answered %s", resp.Status)
}

// UnmarshalCaddyfile sets up the interceptor from Caddyfile tokens. Syntax:
//
//	http [<url>] {
//	    url       <url>              # required, here or after http
//	    header    <name> <value>     # repeatable; {env.*} and {file.*} expanded
//	    timeout   <duration>         # default 5s
//	    fail_open                    # let calls through when the service is unavailable
//	    after                        # ask after each call too
//	}
func (h *HTTP) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // interceptor name
	if d.NextArg() {
		h.URL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "url":
			if !d.AllArgs(&h.URL) {
				return d.ArgErr()
			}
		case "header":
			var name, value string
			if !d.AllArgs(&name, &value) {
				return d.Errf("header: expected a name and a value")
			}
			if h.Headers == nil {
				h.Headers = map[string]string{}
			}
			h.Headers[name] = value
		case "timeout":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			t, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("timeout %q: %v", v, err)
			}
			h.Timeout = caddy.Duration(t)
		case "fail_open", "after":
			opt := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if opt == "fail_open" {
				h.FailOpen = true
			} else {
				h.RunAfter = true
			}
		default:
			return d.Errf("unrecognized http option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*HTTP)(nil)
	_ caddy.CleanerUpper    = (*HTTP)(nil)
	_ caddymcp.Interceptor  = (*HTTP)(nil)
	_ caddyfile.Unmarshaler = (*HTTP)(nil)
)
