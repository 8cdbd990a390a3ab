package registryapp

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// registries holds the registry of each storage, across config reloads: a
// reload keeps every server, its upstream and its clients' sessions.
var registries = caddy.NewUsagePool()

// registry is the state of the mcp_registry app: the records (as stored,
// with what was observed of them), the live routing table they make, the
// tool index, the health prober and the follower of other instances.
type registry struct {
	store  *store
	live   *caddymcp.LiveSet
	index  *searchIndex
	logger atomic.Pointer[zap.Logger] // the newest config's
	cfg    atomic.Pointer[settings]

	mu      sync.RWMutex
	servers map[string]*entry
	seq     int64           // the journal entry applied last
	probing map[string]bool // servers whose probe runs: it records its own failure

	started  sync.Once
	startErr error
	stop     context.CancelFunc
	probes   prober
}

// entry is a record with what the registry observed of it.
type entry struct {
	rec    *Server
	status Status
	tools  []Tool
}

// settings are what the app's config says about the registry.
type settings struct {
	templates        map[string]*Template
	allowCommands    bool
	guard            *urlGuard
	probe            ProbeSettings // defaults filled in
	excludeUnhealthy bool
	poll             time.Duration
	sync             *SyncSettings
}

func newRegistry(st *store, logger *zap.Logger) *registry {
	r := &registry{store: st, index: newSearchIndex(), servers: map[string]*entry{}, probing: map[string]bool{}}
	r.logger.Store(logger)
	r.live = caddymcp.NewLiveSet(logger, r)
	r.live.AddTool(r.searchTool())
	r.probes.r = r
	return r
}

func (r *registry) log() *zap.Logger { return r.logger.Load() }

// start reads every record from the store and starts following the store
// and probing servers; later calls (config reloads) only apply the new
// settings to every server.
func (r *registry) start(cfg *settings) error {
	r.cfg.Store(cfg)
	first := false
	r.started.Do(func() {
		first = true
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		if r.startErr = r.resync(ctx); r.startErr != nil {
			return
		}
		go r.follow(ctx)
		go r.syncLoop(ctx)
		r.probes.start(ctx)
	})
	if r.startErr != nil || first {
		return r.startErr
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.servers {
		r.route(e)
	}
	r.probes.rescheduleAll()
	return nil
}

// Destruct stops the registry once no config uses it.
func (r *registry) Destruct() error {
	if r.stop != nil {
		r.stop()
	}
	r.probes.stopAll()
	r.live.Close()
	r.store.settle()
	return nil
}

// config resolves how to reach a record's server.
func (r *registry) config(s *Server) (*caddymcp.ServerConfig, error) {
	cfg := &caddymcp.ServerConfig{Name: s.Name, Tools: s.Tools}
	switch {
	case s.URL != "":
		cfg.Remote = &caddymcp.RemoteConfig{URL: s.URL, Transport: s.Transport, Headers: s.Headers, DialControl: r.dialControl(s.URL)}
	case s.Template != "":
		t := r.cfg.Load().templates[s.Template]
		if t == nil {
			return nil, fieldErr("template", "%q is not a template of this registry's config", s.Template)
		}
		cfg.Stdio, cfg.Container = t.Stdio, t.Container
		if cfg.Tools == nil {
			cfg.Tools = t.Tools
		}
	default:
		cfg.Stdio, cfg.Container = s.Stdio, s.Container
	}
	if err := cfg.Validate(); err != nil {
		field := "url"
		switch {
		case s.Template != "":
			field = "template"
		case s.Stdio != nil:
			field = "stdio"
		case s.Container != nil:
			field = "container"
		}
		return nil, fieldErr(field, "%v", err)
	}
	return cfg, nil
}

// dialControl vets the addresses a registered URL's upstream dials, with
// the guard of the config in force (a host allowed by name is not vetted).
func (r *registry) dialControl(rawURL string) func(network, address string, c syscall.RawConn) error {
	u, _ := url.Parse(rawURL)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	return func(network, address string, c syscall.RawConn) error {
		g := r.cfg.Load().guard
		if g.hosts[host] {
			return nil
		}
		return g.control(network, address, c)
	}
}

// route puts an entry's server in the live table as its record and health
// say: disabled servers are not routed; unhealthy ones leave the aggregate
// if the config says so. r.mu is held.
func (r *registry) route(e *entry) {
	name := e.rec.Name
	if !e.rec.Enabled {
		r.live.Remove(name)
		return
	}
	cfg, err := r.config(e.rec)
	if err != nil {
		r.live.Remove(name)
		e.status = Status{Health: HealthUnhealthy, Reason: err.Error(), LastError: err.Error(), ToolCount: len(e.tools)}
		r.log().Error("registry server cannot be served", zap.String("server", name), zap.Error(err))
		return
	}
	healthy := e.status.Health != HealthUnhealthy && e.status.Health != HealthNeedsAuth
	if err := r.live.Set(cfg, healthy || !r.cfg.Load().excludeUnhealthy); err != nil {
		r.log().Error("routing registry server", zap.String("server", name), zap.Error(err))
	}
}

// write changes one record: under the store's locks it first applies what
// other instances changed, then fn's change to the store, the journal and
// the live table. It returns once the change is served.
func (r *registry) write(ctx context.Context, name string, fn func(cur *Server) (*Server, error)) (*Server, error) {
	j, err := r.store.begin(ctx)
	if err != nil {
		return nil, err
	}
	// The writer has its answer once the change is stored and served; the
	// journal entry, for other instances, follows (a journal that fails to
	// write is logged: the change stands, and other instances find it at
	// their next full read).
	changed := ""
	defer func() { r.store.end(changed, r.journalFailed) }()
	if j.Seq != r.seq {
		if err := r.catchUp(ctx, j); err != nil {
			return nil, err
		}
	}
	cur, err := r.store.get(ctx, name)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if next != nil && next == cur {
		return cur, nil // nothing changed: nothing to store, journal or serve anew
	}
	if next == nil {
		if cur == nil {
			return nil, errNotFound
		}
		err = r.store.remove(ctx, name)
	} else {
		if _, err := r.config(next); err != nil {
			return nil, err
		}
		err = r.store.put(ctx, next)
	}
	if err != nil {
		return nil, err
	}
	changed = name
	r.apply(name, next, j.Seq+1)
	if next != nil && next.Enabled && (cur == nil || !cur.Enabled || !sameReach(cur, next)) {
		// A server just registered, changed or switched on: probe it now
		// (its connect began before the write: warm), so that its first
		// client need not wait and its health and tools show at once.
		r.probes.now(name)
	}
	return next, nil
}

// journalFailed logs a journal that could not be written.
func (r *registry) journalFailed(err error) {
	r.log().Error("journaling registry writes", zap.Error(err))
}

// warm starts connecting the upstream of a record about to be written when
// the write will probe it (enabled, reached anew, probe on), so that the
// connect overlaps the write's locks and storage instead of following them.
// The caller releases it once the write is done: the live table holds the
// upstream by then, if the write was served.
func (r *registry) warm(s *Server) (release func()) {
	none := func() {}
	if !s.Enabled || !r.probed(s) {
		return none
	}
	if cur, ok := r.get(s.Name); ok && cur.Enabled && sameReach(cur, s) {
		return none
	}
	cfg, err := r.config(s)
	if err != nil {
		return none
	}
	return r.live.Warm(cfg)
}

// apply installs a record as stored (nil: deleted) after journal entry seq.
func (r *registry) apply(name string, rec *Server, seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq = max(r.seq, seq)
	e := r.servers[name]
	if rec == nil {
		if e != nil {
			delete(r.servers, name)
			r.live.Remove(name)
			r.index.removeServer(name)
			r.probes.cancel(name)
		}
		return
	}
	if e == nil {
		e = &entry{status: Status{Health: HealthUnknown}}
		r.servers[name] = e
	} else if e.rec.Revision == rec.Revision && e.rec.UpdatedAt.Equal(rec.UpdatedAt) {
		return // already applied
	}
	reach := e.rec == nil || !sameReach(e.rec, rec)
	e.rec = rec
	if reach {
		e.status = Status{Health: HealthUnknown}
		e.tools = nil
	}
	if !rec.Enabled {
		e.status = Status{Health: HealthUnknown, Reason: "disabled", ToolCount: len(e.tools)}
	}
	r.route(e)
	r.index.setServer(name, rec.Tags, indexed(e.tools))
	r.probes.schedule(name, reach)
}

// sameReach reports whether two records reach the same server the same way.
func sameReach(a, b *Server) bool { return reachOf(a) == reachOf(b) }

func reachOf(s *Server) string {
	b, _ := json.Marshal([]any{s.URL, s.Transport, s.Headers, s.Template, s.Stdio, s.Container, s.Tools})
	return string(b)
}

// resync reads every record and makes the registry match the store.
func (r *registry) resync(ctx context.Context) error {
	j, err := r.store.readJournal(ctx)
	if err != nil {
		return err
	}
	recs, bad, err := r.store.list(ctx)
	if err != nil {
		return err
	}
	for _, err := range bad {
		r.log().Error("skipping a registry record", zap.Error(err))
	}
	seen := make(map[string]bool, len(recs))
	for _, rec := range recs {
		seen[rec.Name] = true
		r.apply(rec.Name, rec, j.Seq)
	}
	r.mu.RLock()
	var gone []string
	for name := range r.servers {
		if !seen[name] && bad[name] == nil { // an unreadable record is kept as it was
			gone = append(gone, name)
		}
	}
	r.mu.RUnlock()
	for _, name := range gone {
		r.apply(name, nil, j.Seq)
	}
	r.mu.Lock()
	r.seq = j.Seq
	r.mu.Unlock()
	return nil
}

// catchUp applies the changes of other instances that the journal lists
// after the last one applied here, or everything if it does not reach back.
func (r *registry) catchUp(ctx context.Context, j *journal) error {
	r.mu.RLock()
	seq := r.seq
	r.mu.RUnlock()
	names, ok := j.since(seq)
	if !ok {
		return r.resync(ctx)
	}
	for _, name := range names {
		rec, err := r.store.get(ctx, name)
		switch {
		case errors.Is(err, errNotFound):
			r.apply(name, nil, j.Seq)
		case err != nil:
			return err
		default:
			r.apply(name, rec, j.Seq)
		}
	}
	r.mu.Lock()
	r.seq = max(r.seq, j.Seq)
	r.mu.Unlock()
	return nil
}

// fullReadEvery is how often a follower reads every record, whatever the
// journal says: an instance killed between writing a record and journaling
// it leaves a change that only a full read finds.
const fullReadEvery = 5 * time.Minute

// follow polls the journal for other instances' changes.
func (r *registry) follow(ctx context.Context) {
	lastFull := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.Load().poll):
		}
		var err error
		if time.Since(lastFull) >= fullReadEvery {
			lastFull = time.Now()
			unlock := r.store.quiet()
			err = r.resync(ctx)
			unlock()
		} else {
			err = r.followOnce(ctx)
		}
		if err != nil && ctx.Err() == nil {
			r.log().Warn("following the registry's storage", zap.Error(err))
		}
	}
}

func (r *registry) followOnce(ctx context.Context) error {
	j, err := r.store.readJournal(ctx)
	if err != nil {
		return err
	}
	r.mu.RLock()
	same := j.Seq == r.seq
	r.mu.RUnlock()
	if same {
		return nil
	}
	// Local writers take turns while they apply, and their journal is
	// written by the time no flush runs: taking the turn then keeps their
	// changes and these in the store's order.
	defer r.store.quiet()()
	if j, err = r.store.readJournal(ctx); err != nil {
		return err
	}
	return r.catchUp(ctx, j)
}

// ToolsChanged records a server's tools as listed (caddymcp.LiveObserver).
func (r *registry) ToolsChanged(server string, tools []*mcp.Tool) {
	ts := make([]Tool, len(tools))
	for i, t := range tools {
		ts[i] = Tool{Name: t.Name, Title: t.Title, Description: t.Description, InputSchema: t.InputSchema}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.servers[server]
	if e == nil {
		return
	}
	e.tools = ts
	e.status.ToolCount = len(ts)
	r.index.setServer(server, e.rec.Tags, indexed(ts))
}

// Unavailable counts a failure seen on live traffic (caddymcp.LiveObserver),
// unless a probe of the server runs: its failure is the probe's to record.
func (r *registry) Unavailable(server string, err error) {
	r.mu.RLock()
	probing := r.probing[server]
	r.mu.RUnlock()
	if !probing {
		r.observe(server, 0, err)
	}
}

// indexed turns tools into what the search index takes.
func indexed(tools []Tool) []indexedTool {
	out := make([]indexedTool, len(tools))
	for i, t := range tools {
		out[i] = indexedTool{Name: t.Name, Title: t.Title, Description: t.Description, Args: argNames(t.InputSchema)}
	}
	return out
}

// argNames lists the property names of an input schema.
func argNames(schema any) []string {
	var props map[string]any
	switch s := schema.(type) {
	case map[string]any:
		props, _ = s["properties"].(map[string]any)
	default:
		var m map[string]any
		if b, err := json.Marshal(schema); err == nil && json.Unmarshal(b, &m) == nil {
			props, _ = m["properties"].(map[string]any)
		}
	}
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Interface guards
var (
	_ caddymcp.LiveObserver = (*registry)(nil)
	_ caddy.Destructor      = (*registry)(nil)
)
