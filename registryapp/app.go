// Package registryapp is the mcp_registry app: a registry of MCP servers
// kept in Caddy's storage, served live by mcp_gateway handlers without a
// config reload, managed through a REST API in a site and Caddy's admin API.
package registryapp

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the mcp_registry app. Its servers are records in Caddy's storage
// (the file system in Caddy's data directory unless Storage says otherwise;
// instances sharing a storage share the registry). A write through the API
// is stored, then swapped into the live routing table that mcp_gateway
// handlers with `registry` on read: served when the API answers, with no
// config reload. A config reload keeps every server; a restart restores
// them from the storage.
type App struct {
	// Storage is where records are kept; default: Caddy's storage.
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=caddy.storage inline_key=module"`

	// Templates are stdio and container servers that records may use by
	// name: the API registers remote servers, and commands and images come
	// from the operator's config only.
	Templates map[string]*Template `json:"templates,omitempty"`

	// AllowCommands lets the API register stdio and container servers
	// directly. Off by default: whoever may write the registry could then
	// run any program on this host.
	AllowCommands bool `json:"allow_commands,omitempty"`

	// AllowedNetworks lets API-registered URLs reach addresses the SSRF
	// guard refuses otherwise (loopback, private, link-local, metadata):
	// CIDR prefixes, IP addresses, host names, or "loopback" / "private".
	AllowedNetworks []string `json:"allowed_networks,omitempty"`

	// Probe sets the health probe's defaults: every 30s, 10s timeout.
	Probe *ProbeSettings `json:"probe,omitempty"`

	// ExcludeUnhealthy keeps unhealthy servers (and those that need
	// credentials) out of aggregate endpoints until a probe succeeds.
	ExcludeUnhealthy bool `json:"exclude_unhealthy,omitempty"`

	// PollInterval is how often the storage is checked for other
	// instances' changes. Default: 1s.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`

	// Sync follows an upstream registry that speaks the official API.
	Sync *SyncSettings `json:"sync,omitempty"`

	key string
	reg *registry
	cfg *settings
}

// Template is a stdio or container server that records refer to by name.
type Template struct {
	Stdio     *caddymcp.StdioConfig     `json:"stdio,omitempty"`
	Container *caddymcp.ContainerConfig `json:"container,omitempty"`
	// Tools filters the server's tools unless the record has a filter.
	Tools *caddymcp.ToolFilter `json:"tools,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp_registry",
		New: func() caddy.Module { return new(App) },
	}
}

// active is the app of the running config, for the admin API.
var active atomic.Pointer[App]

// Provision checks the config and takes the registry of its storage from
// the pool (no I/O: records are read in Start).
func (a *App) Provision(ctx caddy.Context) error {
	logger := ctx.Logger()
	storage := ctx.Storage()
	if a.StorageRaw != nil {
		mod, err := ctx.LoadModule(a, "StorageRaw")
		if err != nil {
			return fmt.Errorf("storage: %v", err)
		}
		if storage, err = mod.(caddy.StorageConverter).CertMagicStorage(); err != nil {
			return fmt.Errorf("storage: %v", err)
		}
	}
	cfg, err := a.settings()
	if err != nil {
		return err
	}
	a.cfg = cfg
	a.key = storageKey(storage, a.StorageRaw)
	v, _, err := registries.LoadOrNew(a.key, func() (caddy.Destructor, error) {
		return newRegistry(&store{storage: storage}, logger), nil
	})
	if err != nil {
		return err
	}
	a.reg = v.(*registry)
	a.reg.logger.Store(logger)
	return nil
}

// settings checks the options and fills in defaults.
func (a *App) settings() (*settings, error) {
	for name, t := range a.Templates {
		if !namePattern.MatchString(name) {
			return nil, fmt.Errorf("templates: name %q must be 1-64 lower-case letters, digits, '.', '-' or '_'", name)
		}
		if t == nil || (t.Stdio == nil) == (t.Container == nil) {
			return nil, fmt.Errorf("templates: %q: exactly one of stdio or container is required", name)
		}
		probe := caddymcp.ServerConfig{Name: name, Stdio: t.Stdio, Container: t.Container, Tools: t.Tools}
		if err := probe.Validate(); err != nil {
			return nil, fmt.Errorf("templates: %q: %v", name, err)
		}
	}
	guard, err := newURLGuard(a.AllowedNetworks)
	if err != nil {
		return nil, fmt.Errorf("allowed_networks: %v", err)
	}
	if (a.Probe != nil && (a.Probe.Interval < 0 || a.Probe.Timeout < 0)) || a.PollInterval < 0 {
		return nil, fmt.Errorf("probe interval and timeout, and poll_interval, must be positive")
	}
	var probe ProbeSettings
	if a.Probe != nil {
		probe = *a.Probe
	}
	if probe.Interval == 0 {
		probe.Interval = Duration(defaultProbeInterval)
	}
	if probe.Timeout == 0 {
		probe.Timeout = Duration(defaultProbeTimeout)
	}
	if a.Sync != nil {
		if err := a.Sync.validate(); err != nil {
			return nil, err
		}
	}
	poll := time.Duration(a.PollInterval)
	if poll == 0 {
		poll = time.Second
	}
	return &settings{
		templates: a.Templates, allowCommands: a.AllowCommands, guard: guard,
		probe: probe, excludeUnhealthy: a.ExcludeUnhealthy, poll: poll, sync: a.Sync,
	}, nil
}

// storageKey identifies a storage, so that configs using the same one share
// a registry.
func storageKey(s certmagic.Storage, raw json.RawMessage) string {
	if str, ok := s.(fmt.Stringer); ok {
		return str.String()
	}
	return fmt.Sprintf("%T %s", s, raw)
}

// Start reads the records (on the first start of this storage's registry)
// and applies the config's settings to every server.
func (a *App) Start() error {
	if err := a.reg.start(a.cfg); err != nil {
		return fmt.Errorf("reading the registry from storage: %w", err)
	}
	active.Store(a)
	return nil
}

// Stop forgets the registry for the admin API unless a newer config has
// taken over.
func (a *App) Stop() error {
	active.CompareAndSwap(a, nil)
	return nil
}

// Cleanup gives back the app's share of the pooled registry.
func (a *App) Cleanup() error {
	if a.key != "" {
		_, _ = registries.Delete(a.key)
	}
	return nil
}

// LiveSet is the registry's live routing table, for mcp_gateway handlers.
func (a *App) LiveSet() *caddymcp.LiveSet { return a.reg.live }

// Interface guards
var (
	_ caddy.App           = (*App)(nil)
	_ caddy.Provisioner   = (*App)(nil)
	_ caddy.CleanerUpper  = (*App)(nil)
	_ caddymcp.LiveSource = (*App)(nil)
)
