package caddymcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// Interceptor is a guest module of the namespace mcp.interceptors: it sees
// every tools/call the gateway relays, before it goes upstream and after.
// The gateway's interceptors form a chain: Before runs in the configured
// order, and After in reverse order for each interceptor whose Before let
// the call through, so that an interceptor sees the outcome of every call it
// saw begin, refusals by later interceptors included.
type Interceptor interface {
	// Before may refuse the call by returning an error; the client gets it
	// as a JSON-RPC error with the code CodeRefused, and the call does not
	// go upstream.
	Before(ctx context.Context, c *Call) error
	// After sees the outcome before the client does. An error replaces the
	// result with a JSON-RPC error with the code CodeRefused.
	After(ctx context.Context, c *Call, o *Outcome) error
}

// CodeRefused is the JSON-RPC error code of a request that an interceptor
// or the authorization policy refused. It is clear of the codes the MCP SDK
// gives meaning to: -32003, say, is its "client is closing", which clients
// take for a closed connection.
const CodeRefused = -32030

// Call is one tools/call as interceptors see it.
type Call struct {
	Server    string          // the server's name
	Tool      string          // the tool's name on that server (not the aggregate's name)
	Principal string          // who calls; "" when the gateway authenticates nobody
	Session   string          // the client's session id; "" for a stateless request
	Arguments json.RawMessage // the arguments as the client sent them; never nil
	Started   time.Time
}

// Outcome is how a call ended.
type Outcome struct {
	// Result is the tools/call result as JSON, nil when Err is set.
	Result json.RawMessage
	// IsError reports that the tool itself reported a failure
	// (result.isError).
	IsError bool
	// Err is why the call failed or was refused.
	Err      error
	Duration time.Duration
}

// Refused is the error of a call that an interceptor or the policy refused.
type Refused struct {
	By     string // the interceptor's module name, or "authorization"
	Reason error
}

func (r *Refused) Error() string { return fmt.Sprintf("refused by %s: %v", r.By, r.Reason) }

func (r *Refused) Unwrap() error { return r.Reason }

// rpcError is the JSON-RPC error the client gets for a refusal.
func (r *Refused) rpcError() *jsonrpc.Error {
	return &jsonrpc.Error{Code: CodeRefused, Message: r.Error()}
}

// chain is a gateway's interceptors, in order.
type chain []namedInterceptor

type namedInterceptor struct {
	name string
	Interceptor
}

// loadChain provisions the interceptors of the gateway's config.
func loadChain(ctx caddy.Context, g *Gateway) (chain, error) {
	if len(g.InterceptorsRaw) == 0 {
		return nil, nil
	}
	vals, err := ctx.LoadModule(g, "InterceptorsRaw")
	if err != nil {
		return nil, fmt.Errorf("loading interceptors: %v", err)
	}
	var c chain
	for i, v := range vals.([]any) {
		ic, ok := v.(Interceptor)
		if !ok {
			return nil, fmt.Errorf("interceptors[%d]: module %T is not an interceptor", i, v)
		}
		c = append(c, namedInterceptor{caddy.GetModuleName(v), ic})
	}
	return c, nil
}

// run passes a call through the chain: each Before in order, the call
// itself if none refused, then the After of each interceptor whose Before
// ran without refusing, in reverse order. The returned error is the call's,
// or a *Refused.
func (c chain) run(ctx context.Context, call *Call, do func(context.Context) (json.RawMessage, bool, error)) (json.RawMessage, error) {
	passed, refused := c.before(ctx, call)
	out := &Outcome{}
	if refused != nil {
		out.Err = refused
	} else {
		out.Result, out.IsError, out.Err = do(ctx)
	}
	_ = c.after(ctx, call, passed, out) // a refusal is in out.Err
	return out.Result, out.Err
}

// before runs each Before in order until one refuses. It returns how many
// let the call through, and the refusal, if any.
func (c chain) before(ctx context.Context, call *Call) (int, *Refused) {
	for i, ic := range c {
		if err := ic.Before(ctx, call); err != nil {
			return i, &Refused{By: ic.name, Reason: err}
		}
	}
	return len(c), nil
}

// after runs the After of the first passed interceptors, in reverse order,
// on the outcome. The first refusal replaces the outcome, unless it is a
// refusal already, and is returned.
func (c chain) after(ctx context.Context, call *Call, passed int, out *Outcome) *Refused {
	out.Duration = time.Since(call.Started)
	var refused *Refused
	for i := passed - 1; i >= 0; i-- {
		ic := c[i]
		if e := ic.After(ctx, call, out); e != nil && !isRefusal(out.Err) {
			refused = &Refused{By: ic.name, Reason: e}
			out.Result, out.IsError, out.Err = nil, false, refused
		}
	}
	return refused
}

func isRefusal(err error) bool {
	var r *Refused
	return errors.As(err, &r)
}
