package caddymcp

import (
	"context"
	"encoding/json"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// fastIntercept runs the interceptors around a call on the fast path, where
// the upstream's answer arrives as bytes: Before when the call begins, After
// exactly once, on the answer or on however else the call ends. Without
// interceptors it does nothing.
type fastIntercept struct {
	ctx    context.Context
	chain  chain
	call   *Call
	passed int  // interceptors whose Before let the call through
	done   bool // After has run
}

func (e *endpoint) interceptFast(ctx context.Context, a *access, m *member, tool, session string, args json.RawMessage) *fastIntercept {
	if a == nil || len(a.chain) == 0 {
		return &fastIntercept{}
	}
	if args == nil {
		args = json.RawMessage("{}")
	}
	return &fastIntercept{ctx: ctx, chain: a.chain,
		call: &Call{Server: m.cfg.Name, Tool: tool, Principal: a.userID(), Session: session, Arguments: args, Started: time.Now()}}
}

// begin runs each Before; a refusal has also been through After.
func (f *fastIntercept) begin() *Refused {
	if f.call == nil {
		return nil
	}
	var refused *Refused
	if f.passed, refused = f.chain.before(f.ctx, f.call); refused != nil {
		f.end(&Outcome{Err: refused})
	}
	return refused
}

// end runs After on the outcome, once; it returns the refusal that
// replaces the outcome, if any.
func (f *fastIntercept) end(out *Outcome) *Refused {
	if f.call == nil || f.done {
		return nil
	}
	f.done = true
	return f.chain.after(f.ctx, f.call, f.passed, out)
}

// answered runs After on the upstream's answer, and returns the refusal
// that replaces it, if any.
func (f *fastIntercept) answered(in *message) *Refused {
	if f.call == nil {
		return nil
	}
	out := &Outcome{}
	if in.Error != nil {
		rpcErr := &jsonrpc.Error{}
		if json.Unmarshal(in.Error, rpcErr) != nil {
			rpcErr.Message = string(in.Error)
		}
		out.Err = rpcErr
	} else {
		var result struct {
			IsError bool `json:"isError"`
		}
		_ = json.Unmarshal(in.Result, &result)
		out.Result, out.IsError = in.Result, result.IsError
	}
	return f.end(out)
}

// failed runs After on a call that failed, and returns the error answer
// for the client: the failure, or the refusal that replaced it.
func (f *fastIntercept) failed(id json.RawMessage, err error) []byte {
	if refused := f.end(&Outcome{Err: err}); refused != nil {
		return errorResponse(id, CodeRefused, refused.Error())
	}
	return errorResponse(id, jsonrpc.CodeInternalError, err.Error())
}
