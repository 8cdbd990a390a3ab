package caddymcp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/net/http/httpguts"
)

// validate checks a remote config. Its errors show the URL redacted
// (redactURL) and no header value: both may hold credentials.
func (r *RemoteConfig) validate() error {
	u, err := url.Parse(r.URL)
	if err != nil {
		if urlErr := (*url.Error)(nil); errors.As(err, &urlErr) {
			err = urlErr.Err // its text quotes the whole URL
		}
		return fmt.Errorf("remote: url %q: %v", redactURL(r.URL), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("remote: url %q: scheme must be http or https", redactURL(r.URL))
	}
	if u.Host == "" {
		return fmt.Errorf("remote: url %q: host is missing", redactURL(r.URL))
	}
	if r.Timeout < 0 {
		return fmt.Errorf("remote: timeout %s: must be positive", time.Duration(r.Timeout))
	}
	switch r.Transport {
	case "", "streamable", "sse":
	default:
		return fmt.Errorf(`remote: transport %q: must be "streamable" or "sse"`, r.Transport)
	}
	for name := range r.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("remote: header name %q is not a valid HTTP header name", name)
		}
	}
	return nil
}

// transport returns an MCP client transport for the remote server. Header
// values are expanded from placeholders on every request, so a rotated secret
// file or variable takes effect without a reload.
func (r *RemoteConfig) transport(client *http.Client) mcp.Transport {
	if r.Transport == "sse" {
		return &mcp.SSEClientTransport{Endpoint: r.URL, HTTPClient: client}
	}
	return &mcp.StreamableClientTransport{Endpoint: r.URL, HTTPClient: client, MaxRetries: 2}
}

// httpClient is the client for one remote upstream: its own connection pool,
// sized for many concurrent client sessions.
func (r *RemoteConfig) httpClient() *http.Client {
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: r.DialControl}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if len(r.Headers) == 0 {
		return &http.Client{Transport: base}
	}
	return &http.Client{Transport: &headerTransport{base: base, headers: r.Headers}}
}

// headerTransport adds configured headers, placeholders expanded.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	repl := caddy.NewReplacer()
	req = req.Clone(req.Context())
	for name, value := range t.headers {
		req.Header.Set(name, repl.ReplaceKnown(value, ""))
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *headerTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Interface guard
var _ http.RoundTripper = (*headerTransport)(nil)
