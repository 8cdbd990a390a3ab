package caddymcp

import (
	"slices"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logRelay lets a pooled upstream or endpoint log through the newest config's
// logger. Those objects outlive the config that created them, and a reload
// that changes logging closes the old config's writers: without the relay
// their log lines would go nowhere.
type logRelay struct {
	core atomic.Pointer[zapcore.Core]
}

// newLogRelay returns a relay to l's core and a logger that writes through it.
func newLogRelay(l *zap.Logger) (*logRelay, *zap.Logger) {
	r := relayTo(l)
	return r, r.logger(l.Name())
}

// relayTo returns a relay to l's core.
func relayTo(l *zap.Logger) *logRelay {
	r := new(logRelay)
	r.set(l)
	return r
}

// logger is a logger named name that writes through the relay.
func (r *logRelay) logger(name string) *zap.Logger {
	return zap.New(relayCore{relay: r}).Named(name)
}

// set points the relay at l's core.
func (r *logRelay) set(l *zap.Logger) {
	core := l.Core()
	r.core.Store(&core)
}

// relayCore is a zapcore.Core that writes to the relay's current core.
type relayCore struct {
	relay  *logRelay
	fields []zapcore.Field
}

func (c relayCore) current() zapcore.Core { return *c.relay.core.Load() }

func (c relayCore) Enabled(level zapcore.Level) bool { return c.current().Enabled(level) }

func (c relayCore) With(fields []zapcore.Field) zapcore.Core {
	return relayCore{relay: c.relay, fields: append(slices.Clip(c.fields), fields...)}
}

func (c relayCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	core := c.current()
	if !core.Enabled(e.Level) {
		return ce
	}
	return core.With(c.fields).Check(e, ce)
}

func (c relayCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.current().With(c.fields).Write(e, fields)
}

func (c relayCore) Sync() error { return c.current().Sync() }
