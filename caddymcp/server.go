package caddymcp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// ServerConfig describes one upstream MCP server. Exactly one of Stdio,
// Container and Remote is set.
type ServerConfig struct {
	// Name identifies the server: it is the <name> of /servers/<name>/mcp and
	// the prefix of its tools on the aggregate endpoint. Letters, digits, '-',
	// '_' and '.', at most 64 characters.
	Name string `json:"name"`

	// Stdio runs a local process that speaks MCP on stdin/stdout.
	Stdio *StdioConfig `json:"stdio,omitempty"`

	// Container runs an image with `docker run -i --rm --init` and speaks MCP
	// on its stdin/stdout.
	Container *ContainerConfig `json:"container,omitempty"`

	// Remote reaches a server over Streamable HTTP or legacy SSE.
	Remote *RemoteConfig `json:"remote,omitempty"`

	// Tools filters the upstream's tools on every endpoint that serves them.
	Tools *ToolFilter `json:"tools,omitempty"`

	// MaxConcurrentCalls caps the calls in flight to the server at once:
	// what clients ask of it (tools, prompts, resources, completion,
	// subscriptions), not what the gateway asks itself (listing), counted
	// across every endpoint and client session that uses the server (they
	// share one process or connection). A call beyond the cap waits for a
	// free slot, up to QueueTimeout. Default 0: no cap, as the gateway cannot
	// know what a server can take, and a remote one may scale out.
	MaxConcurrentCalls int `json:"max_concurrent_calls,omitempty"`

	// QueueTimeout is how long a call waits for a free slot when
	// MaxConcurrentCalls are in flight, before it fails; only with
	// MaxConcurrentCalls. Default: 10s.
	QueueTimeout caddy.Duration `json:"queue_timeout,omitempty"`

	// CallTimeout bounds each call a client makes of the server (tools,
	// prompts, resources, completion...), from the moment the gateway takes
	// it, a wait for a free slot included, to the server's answer; the server
	// is told the call is cancelled. Default 0: no bound but the client's
	// own, since tools may rightly run long, or wait on a person (elicitation).
	CallTimeout caddy.Duration `json:"call_timeout,omitempty"`

	// MaxMessageSize is the longest line, in bytes, that a stdio or container
	// server may write to its stdout: one JSON-RPC message. A longer one is
	// not buffered: the server is taken for broken and restarted. Default:
	// 16 MiB; at least 4 KiB.
	MaxMessageSize int64 `json:"max_message_size,omitempty"`
}

// Defaults and bounds of the per-server limits.
const (
	defaultQueueTimeout   = 10 * time.Second
	defaultMaxMessageSize = 16 << 20
	minMaxMessageSize     = 4 << 10 // below, a size is a unit mistake: tool lists alone are larger
)

// StdioConfig is a local process speaking MCP over stdio.
type StdioConfig struct {
	// Command is the program to run. The placeholder {mcp.executable}
	// stands for the running Caddy binary, so that servers built into it (like
	// `caddy mcp demo-server`) need nothing installed.
	Command string `json:"command"`
	// Args are the program's arguments.
	Args []string `json:"args,omitempty"`
	// Env adds variables to the process's environment, which otherwise
	// is Caddy's own. Values may use Caddy placeholders such as {env.TOKEN}.
	Env map[string]string `json:"env,omitempty"`
	// Dir is the working directory; empty means Caddy's own.
	Dir string `json:"dir,omitempty"`
}

// ContainerConfig is a container image speaking MCP over stdio, run with
// `docker run -i --rm --init` and hardened by default.
type ContainerConfig struct {
	// Image is the image reference (name[:tag][@digest]).
	Image string `json:"image"`
	// Args are passed to the image's entrypoint.
	Args []string `json:"args,omitempty"`
	// Env sets variables inside the container (values may use placeholders).
	Env map[string]string `json:"env,omitempty"`
	// Volumes are bind mounts in docker's `host:container[:ro]` form.
	Volumes []string `json:"volumes,omitempty"`
	// Network is the docker network; default "none" (no network access).
	Network string `json:"network,omitempty"`
	// CPUs limits CPU (docker --cpus); default "1".
	CPUs string `json:"cpus,omitempty"`
	// Memory limits memory (docker --memory); default "512m".
	Memory string `json:"memory,omitempty"`
	// PidsLimit caps the number of processes in the container (docker
	// --pids-limit), which stops a fork bomb; default 256.
	PidsLimit int `json:"pids_limit,omitempty"`
	// ReadOnly mounts the image's root filesystem read-only, with a tmpfs
	// on /tmp. Off by default because many servers write outside /tmp.
	ReadOnly bool `json:"read_only,omitempty"`
	// Runtime is the docker-compatible CLI to run; default "docker".
	Runtime string `json:"runtime,omitempty"`
}

// RemoteConfig is a server reached over HTTP.
type RemoteConfig struct {
	// URL is the server's endpoint (http or https).
	URL string `json:"url"`
	// Transport is "streamable" (default) or "sse" (legacy 2024-11-05).
	Transport string `json:"transport,omitempty"`
	// Headers are added to every upstream request; values may use Caddy
	// placeholders such as {env.TOKEN} or {file./run/secrets/token}.
	Headers map[string]string `json:"headers,omitempty"`
	// Timeout bounds connecting and initializing; default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// DialControl, if set, vets every address dialed: the registry's SSRF
	// guard, which a DNS answer that changes after registration
	// (rebinding) would get around otherwise. Not part of the JSON config.
	DialControl func(network, address string, c syscall.RawConn) error `json:"-"`
}

// ToolFilter selects an upstream's tools by name. Patterns use path.Match
// syntax (`*`, `?`, `[...]`). A tool is served when Allow is empty or one of
// its patterns matches, and no Deny pattern matches.
type ToolFilter struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

var serverNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks the configuration; errors name the offending option.
func (s *ServerConfig) Validate() error {
	if !serverNamePattern.MatchString(s.Name) {
		return fmt.Errorf("server name %q: must be 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit", s.Name)
	}
	kinds := 0
	for _, set := range []bool{s.Stdio != nil, s.Container != nil, s.Remote != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("server %q: exactly one of stdio, container or remote is required, got %d", s.Name, kinds)
	}
	var err error
	switch {
	case s.Stdio != nil:
		err = s.Stdio.validate()
	case s.Container != nil:
		err = s.Container.validate()
	case s.Remote != nil:
		err = s.Remote.validate()
	}
	if err != nil {
		return fmt.Errorf("server %q: %w", s.Name, err)
	}
	if err := s.Tools.validate(); err != nil {
		return fmt.Errorf("server %q: %w", s.Name, err)
	}
	if err := s.validateLimits(); err != nil {
		return fmt.Errorf("server %q: %w", s.Name, err)
	}
	return nil
}

// validateLimits checks max_concurrent_calls, queue_timeout, call_timeout
// and max_message_size.
func (s *ServerConfig) validateLimits() error {
	if s.MaxConcurrentCalls < 0 {
		return fmt.Errorf("max_concurrent_calls %d: must be positive (0: no limit)", s.MaxConcurrentCalls)
	}
	if s.QueueTimeout < 0 {
		return fmt.Errorf("queue_timeout %s: must be positive", time.Duration(s.QueueTimeout))
	}
	if s.QueueTimeout > 0 && s.MaxConcurrentCalls == 0 {
		return fmt.Errorf("queue_timeout %s: applies only with max_concurrent_calls, which is not set", time.Duration(s.QueueTimeout))
	}
	if s.CallTimeout < 0 {
		return fmt.Errorf("call_timeout %s: must be positive (0: none)", time.Duration(s.CallTimeout))
	}
	if s.MaxMessageSize != 0 {
		if s.Remote != nil {
			return fmt.Errorf("max_message_size %d: applies to stdio and container servers only", s.MaxMessageSize)
		}
		if s.MaxMessageSize < minMaxMessageSize {
			return fmt.Errorf("max_message_size %d: must be at least %d bytes (4KiB)", s.MaxMessageSize, minMaxMessageSize)
		}
	}
	return nil
}

// key identifies the server's upstream in the process-wide pool: two configs
// with the same key share one process or connection, across reloads too.
// MaxMessageSize is part of it, as a process reads it once, when it starts;
// the other limits are not: a reload changes them without a restart.
func (s *ServerConfig) key() string {
	upstreamPart := struct {
		Name           string
		Stdio          *StdioConfig
		Container      *ContainerConfig
		Remote         *RemoteConfig
		Guarded        bool
		MaxMessageSize int64
	}{s.Name, s.Stdio, s.Container, s.Remote, s.Remote != nil && s.Remote.DialControl != nil, s.MaxMessageSize}
	b, _ := json.Marshal(upstreamPart) // plain structs: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
