package interceptors

import (
	"context"
	"fmt"
	"math"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

func init() {
	caddy.RegisterModule(SizeLimit{})
}

// SizeLimit refuses calls whose arguments, and results that, are larger
// than a limit. A result is measured once it has arrived, so the limit
// spares clients (and the models behind them) oversized results; it does
// not bound the gateway's memory.
type SizeLimit struct {
	// Arguments is the most bytes the JSON arguments of a call may take.
	// 0 means no limit.
	Arguments int64 `json:"arguments,omitempty"`

	// Result is the most bytes the JSON result of a call may take. 0 means
	// no limit.
	Result int64 `json:"result,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (SizeLimit) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcp.interceptors.size_limit",
		New: func() caddy.Module { return new(SizeLimit) },
	}
}

// Provision checks the limits.
func (sl *SizeLimit) Provision(caddy.Context) error {
	if sl.Arguments < 0 {
		return fmt.Errorf("arguments %d: must not be negative", sl.Arguments)
	}
	if sl.Result < 0 {
		return fmt.Errorf("result %d: must not be negative", sl.Result)
	}
	if sl.Arguments == 0 && sl.Result == 0 {
		return fmt.Errorf("neither arguments nor result is limited")
	}
	return nil
}

// Before refuses arguments over the limit.
func (sl *SizeLimit) Before(_ context.Context, c *caddymcp.Call) error {
	if sl.Arguments > 0 && int64(len(c.Arguments)) > sl.Arguments {
		return fmt.Errorf("arguments of %d bytes exceed the limit of %s (%d bytes)", len(c.Arguments), humanize.IBytes(uint64(sl.Arguments)), sl.Arguments)
	}
	return nil
}

// After refuses a result over the limit.
func (sl *SizeLimit) After(_ context.Context, _ *caddymcp.Call, o *caddymcp.Outcome) error {
	if sl.Result > 0 && int64(len(o.Result)) > sl.Result {
		return fmt.Errorf("result of %d bytes exceeds the limit of %s (%d bytes)", len(o.Result), humanize.IBytes(uint64(sl.Result)), sl.Result)
	}
	return nil
}

// UnmarshalCaddyfile sets up the interceptor from Caddyfile tokens. Sizes
// are numbers of bytes with an optional unit: 512, 64KiB, 1MiB, 2MB.
// Syntax:
//
//	size_limit {
//	    arguments <size>   # largest arguments of a call
//	    result    <size>   # largest result of a call
//	}
func (sl *SizeLimit) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // interceptor name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var limit *int64
		switch opt {
		case "arguments":
			limit = &sl.Arguments
		case "result":
			limit = &sl.Result
		default:
			return d.Errf("unrecognized size_limit option %q", opt)
		}
		var v string
		if !d.AllArgs(&v) {
			return d.ArgErr()
		}
		size, err := humanize.ParseBytes(v)
		if err != nil {
			return d.Errf("%s %q: %v", opt, v, err)
		}
		if size > math.MaxInt64 {
			return d.Errf("%s %q: too large", opt, v)
		}
		*limit = int64(size)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*SizeLimit)(nil)
	_ caddymcp.Interceptor  = (*SizeLimit)(nil)
	_ caddyfile.Unmarshaler = (*SizeLimit)(nil)
)
