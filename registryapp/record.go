package registryapp

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/http/httpguts"
)

// schemaVersion is the version of the stored record shape. A record of a
// newer version is refused rather than misread.
const schemaVersion = 1

// Server is one record of the registry: what an operator registered (the
// spec) and what the registry observed of it (Status, never stored).
type Server struct {
	SchemaVersion int      `json:"schema_version"`
	Name          string   `json:"name"`
	Title         string   `json:"title,omitempty"`
	Description   string   `json:"description,omitempty"`
	Version       string   `json:"version,omitempty"`
	Tags          []string `json:"tags,omitempty"`

	// How to reach it: a remote URL, or a template of the operator's
	// config, or (where the operator allows commands) a process or image.
	URL       string                    `json:"url,omitempty"`
	Transport string                    `json:"transport,omitempty"` // "streamable" (default) or "sse"
	Headers   map[string]string         `json:"headers,omitempty"`
	Template  string                    `json:"template,omitempty"`
	Stdio     *caddymcp.StdioConfig     `json:"stdio,omitempty"`
	Container *caddymcp.ContainerConfig `json:"container,omitempty"`
	Tools     *caddymcp.ToolFilter      `json:"tools,omitempty"`

	Enabled bool           `json:"enabled"`
	Probe   *ProbeSettings `json:"probe,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Revision counts the record's writes; it is its ETag.
	Revision int64 `json:"revision"`

	Status *Status `json:"status,omitempty"`
}

// ProbeSettings tune a server's health probe.
type ProbeSettings struct {
	// Disabled turns the active probe off; failures on live traffic
	// still count.
	Disabled bool `json:"disabled,omitempty"`
	// Interval between probes; default the app's.
	Interval Duration `json:"interval,omitempty"`
	// Timeout of one probe; default the app's.
	Timeout Duration `json:"timeout,omitempty"`
}

// Health values.
const (
	HealthUnknown   = "unknown"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthNeedsAuth = "needs_auth"
)

// Status is what the registry observed of a server.
type Status struct {
	Health    string     `json:"health"`
	Reason    string     `json:"reason,omitempty"`
	LatencyMS float64    `json:"latency_ms,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	LastCheck *time.Time `json:"last_check,omitempty"`
	ToolCount int        `json:"tool_count"`
	Failures  int        `json:"consecutive_failures,omitempty"`
}

// Tool is a server's tool as the registry indexes it.
type Tool struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	InputSchema any    `json:"input_schema,omitempty"`
}

// Limits on what a record may hold.
const (
	maxTitle       = 200
	maxDescription = 4000
	maxVersion     = 64
	maxTags        = 32
	maxTag         = 64
	maxHeaders     = 32
	maxHeaderValue = 8 << 10
)

// Server names are path-safe and case-folded: lower-case letters, digits,
// '.', '-' and '_', starting with a letter or digit, at most 64.
var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	tagPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)
)

// fieldError is a validation error that names the offending field.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func fieldErr(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// validate checks the spec part of a record. Where it reaches the server is
// checked against the app's policy separately (policy.go).
func (s *Server) validate() error {
	if !namePattern.MatchString(s.Name) {
		return fieldErr("name", "%q must be 1-64 lower-case letters, digits, '.', '-' or '_', starting with a letter or digit", s.Name)
	}
	for _, f := range []struct {
		field, value string
		max          int
	}{{"title", s.Title, maxTitle}, {"description", s.Description, maxDescription}, {"version", s.Version, maxVersion}} {
		if len(f.value) > f.max {
			return fieldErr(f.field, "%d bytes, at most %d", len(f.value), f.max)
		}
	}
	if len(s.Tags) > maxTags {
		return fieldErr("tags", "%d tags, at most %d", len(s.Tags), maxTags)
	}
	for i, t := range s.Tags {
		if len(t) > maxTag || !tagPattern.MatchString(t) {
			return fieldErr(fmt.Sprintf("tags[%d]", i), "%q must be 1-%d letters, digits or . _ : / -, starting with a letter or digit", t, maxTag)
		}
	}
	kinds := 0
	for _, set := range []bool{s.URL != "", s.Template != "", s.Stdio != nil, s.Container != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fieldErr("url", "exactly one of url, template, stdio or container is required, got %d", kinds)
	}
	if s.URL == "" && (s.Transport != "" || len(s.Headers) > 0) {
		return fieldErr("transport", "transport and headers go with url")
	}
	switch s.Transport {
	case "", "streamable", "sse":
	default:
		return fieldErr("transport", `%q must be "streamable" or "sse"`, s.Transport)
	}
	if len(s.Headers) > maxHeaders {
		return fieldErr("headers", "%d headers, at most %d", len(s.Headers), maxHeaders)
	}
	for name, value := range s.Headers {
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			return fieldErr("headers", "%q is not a valid HTTP header name", name)
		case !httpguts.ValidHeaderFieldValue(value) || len(value) > maxHeaderValue:
			return fieldErr("headers."+name, "the value is not a valid HTTP header value of at most %d bytes", maxHeaderValue)
		case hopByHop[http.CanonicalHeaderKey(name)]:
			return fieldErr("headers", "%q is set by the gateway itself", name)
		}
	}
	if p := s.Probe; p != nil && (p.Interval < 0 || p.Timeout < 0) {
		return fieldErr("probe", "interval and timeout must be positive")
	}
	return nil
}

// hopByHop are headers a record may not set: the transport owns them.
var hopByHop = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Connection": true, "Transfer-Encoding": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Mcp-Session-Id": true, "Mcp-Protocol-Version": true, "Accept": true,
}

// clone returns a deep copy of the spec (Status is shared: it is replaced,
// never changed in place).
func (s *Server) clone() *Server {
	c := *s
	c.Tags = slices.Clone(s.Tags)
	c.Headers = maps.Clone(s.Headers)
	if s.Probe != nil {
		p := *s.Probe
		c.Probe = &p
	}
	return &c
}

// hasTag reports whether the server has the tag, case-insensitively.
func (s *Server) hasTag(tag string) bool {
	return slices.ContainsFunc(s.Tags, func(t string) bool { return strings.EqualFold(t, tag) })
}

// Duration is a time.Duration written as Go's duration string ("30s") in
// records and API answers; it reads strings and, as Caddy does, integer
// nanoseconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var cd caddy.Duration
	if err := cd.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("duration %s: %v", b, err)
	}
	*d = Duration(cd)
	return nil
}
