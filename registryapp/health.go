package registryapp

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Probe defaults.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 10 * time.Second
	maxProbesAtOnce      = 16
)

// prober probes each enabled server at its interval: it pings the session,
// or connects (initialize and list) if there is none, through the same
// upstream the gateway uses. A timer per server, a bounded number at once.
type prober struct {
	r *registry

	mu     sync.Mutex
	ctx    context.Context // nil until started
	timers map[string]*time.Timer
	sem    chan struct{}
}

// start probes every enabled server soon, spread over a second or its
// interval, whichever is shorter.
func (p *prober) start(ctx context.Context) {
	p.mu.Lock()
	p.ctx, p.timers, p.sem = ctx, map[string]*time.Timer{}, make(chan struct{}, maxProbesAtOnce)
	p.mu.Unlock()
	p.r.mu.RLock()
	defer p.r.mu.RUnlock()
	for name := range p.r.servers {
		p.schedule(name, true)
	}
}

// schedule (re)arms a server's probe: soon after a change of how it is
// reached, else after its interval. r.mu is held.
func (p *prober) schedule(name string, soon bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil {
		return
	}
	if t := p.timers[name]; t != nil {
		t.Stop()
		delete(p.timers, name)
	}
	e := p.r.servers[name]
	if e == nil || !e.rec.Enabled {
		return
	}
	interval, _, off := p.r.probeSettings(e.rec)
	if off {
		return
	}
	delay := interval
	if soon {
		delay = rand.N(min(interval, time.Second)) + time.Millisecond
	}
	p.timers[name] = time.AfterFunc(delay, func() { p.run(name) })
}

// now probes a server at once, unless probing is off for it.
func (p *prober) now(name string) {
	p.r.mu.RLock()
	e := p.r.servers[name]
	off := e == nil || !p.r.probed(e.rec)
	p.r.mu.RUnlock()
	p.mu.Lock()
	started := p.ctx != nil
	p.mu.Unlock()
	if !off && started {
		go p.run(name)
	}
}

// rescheduleAll re-arms every probe after a settings change. r.mu is held.
func (p *prober) rescheduleAll() {
	for name := range p.r.servers {
		p.schedule(name, false)
	}
}

func (p *prober) cancel(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.timers[name]; t != nil {
		t.Stop()
		delete(p.timers, name)
	}
}

func (p *prober) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.timers {
		t.Stop()
	}
	p.timers = map[string]*time.Timer{}
}

// run probes one server and arms its next probe.
func (p *prober) run(name string) {
	p.mu.Lock()
	ctx, sem := p.ctx, p.sem
	p.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-sem }()
	if err := p.r.probe(ctx, name); err == errNotFound {
		return
	}
	p.r.mu.RLock()
	defer p.r.mu.RUnlock()
	p.schedule(name, false)
}

// probeSettings are a record's probe interval and timeout, its own or the
// app's, and whether probing is off.
func (r *registry) probeSettings(s *Server) (interval, timeout time.Duration, off bool) {
	def := r.cfg.Load().probe
	interval, timeout, off = time.Duration(def.Interval), time.Duration(def.Timeout), def.Disabled
	if p := s.Probe; p != nil {
		off = off || p.Disabled
		if p.Interval > 0 {
			interval = time.Duration(p.Interval)
		}
		if p.Timeout > 0 {
			timeout = time.Duration(p.Timeout)
		}
	}
	return interval, timeout, off
}

// probed reports whether a server's health is probed.
func (r *registry) probed(s *Server) bool {
	_, _, off := r.probeSettings(s)
	return !off
}

// probe checks a server now and records the outcome.
func (r *registry) probe(ctx context.Context, name string) error {
	r.mu.Lock()
	e := r.servers[name]
	var rec *Server
	if e != nil {
		rec = e.rec
	}
	if rec == nil || !rec.Enabled || r.probing[name] {
		r.mu.Unlock()
		switch {
		case rec == nil:
			return errNotFound
		case !rec.Enabled:
			return fieldErr("enabled", "server %q is disabled: enable it to probe it", name)
		}
		return apiErr(http.StatusConflict, "conflict", "server %q is being probed already: try again in a moment", name)
	}
	r.probing[name] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.probing, name)
		r.mu.Unlock()
	}()
	_, timeout, _ := r.probeSettings(rec)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	latency, err := r.live.Probe(ctx, name)
	r.observe(name, latency, err)
	return nil
}

// observe records the outcome of a probe, or a failure seen on live traffic
// (latency 0). A server that becomes unhealthy, or healthy again, leaves or
// rejoins the aggregate if the config keeps unhealthy servers out.
func (r *registry) observe(name string, latency time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.servers[name]
	if e == nil {
		return
	}
	now := time.Now().UTC()
	st := e.status
	st.LastCheck = &now
	wasUp := st.Health != HealthUnhealthy && st.Health != HealthNeedsAuth
	if err == nil {
		st.Health, st.Reason, st.Failures = HealthHealthy, "", 0
		st.LatencyMS = float64(latency.Microseconds()) / 1000
	} else {
		st.Failures++
		st.LastError = err.Error()
		st.Health, st.Reason = HealthUnhealthy, err.Error()
		if needsAuth(err) {
			st.Health, st.Reason = HealthNeedsAuth, "the server asks for credentials: "+err.Error()
		}
	}
	e.status = st
	if isUp := st.Health == HealthHealthy; isUp != wasUp && r.cfg.Load().excludeUnhealthy {
		r.route(e)
	}
	if err != nil && wasUp {
		r.log().Warn("registry server unhealthy", zap.String("server", name), zap.String("health", st.Health), zap.Error(err))
	}
}

// needsAuth reports whether a failure is the server refusing us for want
// of (valid) credentials: the go-sdk names the HTTP status by its text
// ("Unauthorized", "401 Unauthorized"). Not the bare numbers: they are in
// ports and URLs too (a refused connect to 127.0.0.1:40111).
func needsAuth(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Unauthorized") || strings.Contains(msg, "Forbidden")
}
