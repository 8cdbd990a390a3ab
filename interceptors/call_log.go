package interceptors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

func init() {
	caddy.RegisterModule(CallLog{})
}

// Limits on the shape of the arguments in a log line, so that a client
// cannot make one line arbitrarily large.
const (
	maxShapeDepth = 8
	maxShapeKeys  = 32
	maxShapeKey   = 64 // bytes of one key name
)

// CallLog logs one line per tools/call: who called which tool, how long it
// took and how it ended. Of the arguments it logs only their shape (key
// names and JSON types, never values), since arguments may hold personal
// data or secrets.
type CallLog struct {
	// Level is the level of the log lines: debug, info, warn or error.
	// Default: info.
	Level string `json:"level,omitempty"`

	logger *zap.Logger
	level  zapcore.Level
}

// CaddyModule returns the Caddy module information.
func (CallLog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp.interceptors.call_log",
		New: func() caddy.Module { return new(CallLog) },
	}
}

// Provision sets up the logger.
func (cl *CallLog) Provision(ctx caddy.Context) error {
	cl.logger = ctx.Logger()
	switch cl.Level {
	case "":
		cl.level = zapcore.InfoLevel
	case "debug", "info", "warn", "error":
		cl.level, _ = zapcore.ParseLevel(cl.Level)
	default:
		return fmt.Errorf("level %q: must be debug, info, warn or error", cl.Level)
	}
	return nil
}

// Before lets every call through: the line is written when the call ends.
func (*CallLog) Before(context.Context, *caddymcp.Call) error { return nil }

// After writes the call's line. The outcome is ok, tool_error (the tool
// reported a failure), error (the call failed) or refused (an interceptor
// or the authorization policy refused it); the error text is capped at 512
// bytes. The arguments are logged as their shape: each value is replaced
// by its JSON type, objects keep their keys (at most 32 per object, the
// others counted under "…"), an array becomes [<shape of its first
// element>, <length>], and nesting deeper than 8 levels shows as "object"
// or "array".
func (cl *CallLog) After(_ context.Context, c *caddymcp.Call, o *caddymcp.Outcome) error {
	ce := cl.logger.Check(cl.level, "tool call")
	if ce == nil {
		return nil
	}
	outcome := "ok"
	var refused *caddymcp.Refused
	switch {
	case errors.As(o.Err, &refused):
		outcome = "refused"
	case o.Err != nil:
		outcome = "error"
	case o.IsError:
		outcome = "tool_error"
	}
	fields := []zap.Field{
		zap.String("server", c.Server),
		zap.String("tool", c.Tool),
		zap.String("principal", c.Principal),
		zap.String("session", c.Session),
		zap.Duration("duration", o.Duration),
		zap.String("outcome", outcome),
		zap.Any("arguments", argumentShape(c.Arguments)),
	}
	if o.Err != nil {
		fields = append(fields, zap.String("error", capText(o.Err.Error(), maxReason)))
	}
	ce.Write(fields...)
	return nil
}

// argumentShape is the shape of a JSON document, or "invalid" when it is
// not one.
func argumentShape(raw json.RawMessage) any {
	v, err := decodeJSON(raw)
	if err != nil {
		return "invalid"
	}
	return shape(v, 0)
}

// shape replaces every value in v by its JSON type.
func shape(v any, depth int) any {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		if depth >= maxShapeDepth {
			return "array"
		}
		if len(v) == 0 {
			return []any{}
		}
		return []any{shape(v[0], depth+1), len(v)}
	}
	// What json.Decoder gives besides the above is an object.
	if depth >= maxShapeDepth {
		return "object"
	}
	obj := v.(map[string]any)
	keys := slices.Sorted(maps.Keys(obj))
	s := make(map[string]any, min(len(keys), maxShapeKeys+1))
	for _, k := range keys[:min(len(keys), maxShapeKeys)] {
		s[capText(k, maxShapeKey)] = shape(obj[k], depth+1)
	}
	if len(keys) > maxShapeKeys {
		s["…"] = fmt.Sprintf("%d more keys", len(keys)-maxShapeKeys)
	}
	return s
}

// UnmarshalCaddyfile sets up the interceptor from Caddyfile tokens. Syntax:
//
//	call_log {
//	    level debug|info|warn|error   # default info
//	}
func (cl *CallLog) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // interceptor name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "level":
			if !d.AllArgs(&cl.Level) {
				return d.ArgErr()
			}
		default:
			return d.Errf("unrecognized call_log option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*CallLog)(nil)
	_ caddymcp.Interceptor  = (*CallLog)(nil)
	_ caddyfile.Unmarshaler = (*CallLog)(nil)
)
