package caddymcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// LiveSet is a set of servers that changes while Caddy runs, without a
// config reload: the mcp_registry app keeps one, and a gateway with
// `registry` on serves its servers beside its own, each at
// <server_path><name>/mcp and, where the set says so, on the aggregate.
//
// It is the live routing table. A change replaces one entry atomically:
// requests that found the old entry finish on it, new ones find the new
// one, and the work does not grow with the number of servers (the
// aggregate endpoints that include the set rebuild their member list).
// Retired upstreams stop once their calls in flight have ended.
type LiveSet struct {
	id       string
	logger   *zap.Logger
	observer LiveObserver

	servers sync.Map // name → *liveServer

	mu         sync.Mutex // serializes changes
	closed     bool
	aggregates map[*endpoint]*attached // aggregate endpoints that include the set
	tools      []LiveTool
}

// LiveTool is a tool that the live set's owner adds to the aggregate
// endpoints that include the set: the registry's tool search.
type LiveTool struct {
	Tool *mcp.Tool
	// Handler answers a call. exposed names a server's tool as the endpoint
	// that was called shows it, "" if it does not show it.
	Handler func(ctx context.Context, req *mcp.CallToolRequest, exposed func(server, tool string) string) (*mcp.CallToolResult, error)
}

// attached is an aggregate endpoint that includes the set: the set's
// aggregate servers join its own members, except those named like one of its
// own (the config's own wins).
type attached struct {
	names map[string]bool
}

// LiveObserver hears what the servers of a live set do.
type LiveObserver interface {
	// ToolsChanged is called with a server's tools after each listing.
	ToolsChanged(server string, tools []*mcp.Tool)
	// Unavailable is called when connecting to a server failed.
	Unavailable(server string, err error)
}

// LiveSource is implemented by apps that keep a live set (mcp_registry).
type LiveSource interface {
	LiveSet() *LiveSet
}

// liveServer is one entry of a live set.
type liveServer struct {
	cfg       *ServerConfig
	m         *member
	aggregate bool // on aggregate endpoints too

	mu      sync.Mutex
	retired bool
	ends    map[endpointOptions]*endpoint // one-server endpoints, made on first use
}

// retireGrace bounds how long a replaced or removed server's calls in
// flight may go on before its upstream is stopped anyway.
const retireGrace = 5 * time.Minute

// NewLiveSet returns an empty live set; observer may be nil.
func NewLiveSet(logger *zap.Logger, observer LiveObserver) *LiveSet {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &LiveSet{id: hex.EncodeToString(b), logger: logger, observer: observer, aggregates: map[*endpoint]*attached{}}
}

// Set adds a server, or replaces the one of the same name, and says whether
// aggregate endpoints include it. The server is routed when Set returns (no
// I/O: it connects on first use). An unchanged config keeps its upstream
// and client sessions.
func (l *LiveSet) Set(cfg *ServerConfig, aggregate bool) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("the live set is closed")
	}
	var old *liveServer
	if v, ok := l.servers.Load(cfg.Name); ok {
		old = v.(*liveServer)
	}
	if old != nil && old.cfg.key() == cfg.key() && filtersEqual(old.cfg.Tools, cfg.Tools) {
		if old.aggregate != aggregate {
			l.servers.Store(cfg.Name, &liveServer{cfg: old.cfg, m: old.m, aggregate: aggregate, ends: old.takeEndpoints()})
			l.joinAggregates(old.m, aggregate)
		}
		return nil
	}
	up, err := loadUpstream(cfg, l.logger)
	if err != nil {
		return fmt.Errorf("server %q: %w", cfg.Name, err)
	}
	m := &member{cfg: cfg, up: up}
	l.servers.Store(cfg.Name, &liveServer{cfg: cfg, m: m, aggregate: aggregate, ends: map[endpointOptions]*endpoint{}})
	if old != nil {
		l.retire(old)
		if old.aggregate {
			l.joinAggregates(old.m, false)
		}
	}
	up.observe(l) // after retire: a new tool filter keeps the upstream
	if aggregate {
		l.joinAggregates(m, true)
	}
	return nil
}

// Remove takes a server out of the set; it reports whether it was there.
func (l *LiveSet) Remove(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.servers.LoadAndDelete(name)
	if !ok {
		return false
	}
	old := v.(*liveServer)
	l.retire(old)
	if old.aggregate {
		l.joinAggregates(old.m, false)
	}
	return true
}

// LiveRoute is one entry of the live routing table.
type LiveRoute struct {
	Server    *ServerConfig `json:"server"`
	Aggregate bool          `json:"aggregate"`
}

// Routes lists the live routing table, by name.
func (l *LiveSet) Routes() []LiveRoute {
	var routes []LiveRoute
	l.servers.Range(func(_, v any) bool {
		s := v.(*liveServer)
		routes = append(routes, LiveRoute{Server: s.cfg, Aggregate: s.aggregate})
		return true
	})
	slices.SortFunc(routes, func(a, b LiveRoute) int { return strings.Compare(a.Server.Name, b.Server.Name) })
	return routes
}

// Probe checks a server: a session there is gets a ping; without one, the
// connect (initialize and list) is the check. It returns the time taken;
// the tools reach the observer with the listing.
func (l *LiveSet) Probe(ctx context.Context, name string) (time.Duration, error) {
	v, ok := l.servers.Load(name)
	if !ok {
		return 0, fmt.Errorf("unknown MCP server %q", name)
	}
	u := v.(*liveServer).m.up
	u.mu.Lock()
	connecting := u.session == nil
	u.mu.Unlock()
	start := time.Now()
	err := u.call(ctx, func(ctx context.Context, cs *mcp.ClientSession) error {
		if connecting {
			return nil // the connect was the check: initialize and list
		}
		return cs.Ping(ctx, nil)
	})
	return time.Since(start), err
}

// Close stops every server of the set.
func (l *LiveSet) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.servers.Range(func(k, v any) bool {
		l.servers.Delete(k)
		s := v.(*liveServer)
		s.m.up.unobserve(l)
		if s.aggregate {
			l.joinAggregates(s.m, false)
		}
		s.stop()
		return true
	})
}

// endpoint returns the one-server endpoint for a name, or nil.
func (l *LiveSet) endpoint(name string, opts endpointOptions, logger *zap.Logger) (*endpoint, error) {
	for {
		v, ok := l.servers.Load(name)
		if !ok {
			return nil, nil
		}
		e, err := v.(*liveServer).endpoint(opts, logger)
		if e != nil || err != nil {
			return e, err
		}
		// Retired meanwhile: the table has its successor.
	}
}

func (s *liveServer) endpoint(opts endpointOptions, logger *zap.Logger) (*endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return nil, nil
	}
	if e := s.ends[opts]; e != nil {
		return e, nil
	}
	e, err := loadEndpoint(false, []*member{s.m}, opts, nil, logger.With(zap.String("endpoint", s.cfg.Name)))
	if err != nil {
		return nil, err
	}
	s.ends[opts] = e
	return e, nil
}

// takeEndpoints hands the entry's endpoints to its successor.
func (s *liveServer) takeEndpoints() map[endpointOptions]*endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = true
	ends := s.ends
	s.ends = nil
	return ends
}

// retire stops a replaced or removed server once the calls in flight on
// its upstream have ended. l.mu is held.
func (l *LiveSet) retire(s *liveServer) {
	s.m.up.unobserve(l)
	s.mu.Lock()
	s.retired = true
	s.mu.Unlock()
	go func() {
		// A request that found the entry just before it was replaced
		// starts its call within moments.
		time.Sleep(100 * time.Millisecond)
		for deadline := time.Now().Add(retireGrace); s.m.up.calls.busy() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		s.stop()
	}()
}

// stop gives back the entry's endpoints (closing their client sessions) and
// its upstream.
func (s *liveServer) stop() {
	for _, e := range s.takeEndpoints() {
		releaseEndpoint(e.key)
	}
	releaseUpstream(s.cfg)
}

// AddTool adds a tool to every aggregate endpoint that includes the set,
// now and later.
func (l *LiveSet) AddTool(t LiveTool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tools = append(l.tools, t)
	for e := range l.aggregates {
		e.addLiveTool(t)
	}
}

// attach makes an aggregate endpoint include the set's servers beside its
// own members, and the set's tools.
func (l *LiveSet) attach(e *endpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &attached{names: make(map[string]bool, len(e.own))}
	for _, m := range e.own {
		a.names[m.cfg.Name] = true
	}
	l.aggregates[e] = a
	for _, t := range l.tools {
		e.addLiveTool(t)
	}
	var live []*member
	l.servers.Range(func(_, v any) bool {
		if s := v.(*liveServer); s.aggregate && !a.names[s.cfg.Name] {
			live = append(live, s.m)
		}
		return true
	})
	e.join(live)
}

func (e *endpoint) addLiveTool(t LiveTool) {
	e.addTool(t.Tool, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := sessionAccess(ctx, req)
		return t.Handler(ctx, req, func(server, tool string) string {
			if a != nil && !a.visible("tools/call", server, tool) {
				return "" // a tool the caller may not call is not found either
			}
			return e.exposedName(server, tool)
		})
	})
}

// exposedName is a member's tool's name on the endpoint, or "".
func (e *endpoint) exposedName(server, tool string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.tools[server+"__"+tool]; ok && x.m.cfg.Name == server && x.name == tool {
		return server + "__" + tool
	}
	for name, x := range e.tools { // names fitted to the pattern, or collisions
		if x.m.cfg.Name == server && x.name == tool {
			return name
		}
	}
	return ""
}

func (l *LiveSet) unwatch(e *endpoint) {
	l.mu.Lock()
	delete(l.aggregates, e)
	l.mu.Unlock()
}

// joinAggregates adds a member to every attached aggregate, or takes it
// off: the work is the member's, whatever the size of the set. l.mu is
// held.
func (l *LiveSet) joinAggregates(m *member, join bool) {
	for e, a := range l.aggregates {
		switch {
		case a.names[m.cfg.Name]:
		case join:
			e.addMember(m)
		default:
			e.removeMember(m)
		}
	}
}

// published and unavailable pass an upstream's news to the observer, if
// the upstream is still the set's server of that name.
func (l *LiveSet) published(u *upstream) {
	if l.observer == nil || !l.current(u) {
		return
	}
	if cat := u.catalog.Load(); cat != nil {
		l.observer.ToolsChanged(u.cfg.Name, cat.tools)
	}
}

func (l *LiveSet) unavailable(u *upstream, err error) {
	if l.observer != nil && l.current(u) {
		l.observer.Unavailable(u.cfg.Name, err)
	}
}

func (l *LiveSet) current(u *upstream) bool {
	v, ok := l.servers.Load(u.cfg.Name)
	return ok && v.(*liveServer).m.up == u
}

func filtersEqual(a, b *ToolFilter) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Allow, b.Allow) && slices.Equal(a.Deny, b.Deny)
}

// Interface guard
var _ upstreamObserver = (*LiveSet)(nil)

// Warm starts connecting the upstream of cfg ahead of Set, so that the
// connect overlaps whatever the caller does before routing the server
// (a registry stores its record). The returned release gives up the
// upstream; a Set of the same config since keeps it, with its session.
func (l *LiveSet) Warm(cfg *ServerConfig) (release func()) {
	if cfg.Validate() != nil {
		return func() {}
	}
	up, err := loadUpstream(cfg, l.logger)
	if err != nil {
		return func() {}
	}
	go func() { _, _ = up.connected(context.Background()) }()
	return func() { releaseUpstream(cfg) }
}
