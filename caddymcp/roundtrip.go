package caddymcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A client on the stateless protocol (2026-07-28) cannot be sent requests
// while its call runs. It gets them instead as input requests in an "input
// required" result, and calls again with the answers and the request state
// it was given (multi round-trip, SEP-2322). Upstreams speak 2025-11-25 and
// ask in the middle of a call, so the gateway keeps the upstream call running
// across the client's rounds: a pendingCall, found again by its state.

// pendingTTL is how long a pending call waits for the client to come back;
// maxPending caps the calls an endpoint keeps waiting, each holding an
// upstream call open.
const (
	pendingTTL = 5 * time.Minute
	maxPending = 1024
)

// pendingCall is an upstream call whose client is answering a question.
type pendingCall struct {
	target    string         // the request it answers, which alone may resume it
	questions chan *question // asked by the upstream, to pass to the client
	done      chan struct{}  // closed when the upstream call has returned
	res       mcp.Result
	err       error
	ctx       context.Context // the upstream call's
	cancel    context.CancelFunc

	mu     sync.Mutex
	asked  *question // the question the client is answering
	expiry *time.Timer
}

// question is one request of the upstream, waiting for the client's answer.
type question struct {
	id     string
	req    mcp.InputRequest
	answer chan mcp.InputResponse
}

// ask passes an upstream request to the client and waits for its answer,
// until either the upstream withdraws the request or the call is given up.
func (p *pendingCall) ask(ctx context.Context, req mcp.InputRequest) (mcp.Result, error) {
	q := &question{id: randomID(), req: req, answer: make(chan mcp.InputResponse, 1)}
	select {
	case p.questions <- q:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	select {
	case a := <-q.answer:
		return a.(mcp.Result), nil // relay checked that it answers q
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
}

// answerOf reports whether a is an answer of the kind req asks for.
func answerOf(req mcp.InputRequest, a mcp.InputResponse) bool {
	switch req.(type) {
	case *mcp.ElicitParams:
		_, ok := a.(*mcp.ElicitResult)
		return ok
	case *mcp.ListRootsParams:
		_, ok := a.(*mcp.ListRootsResult)
		return ok
	default: // sampling
		switch a.(type) {
		case *mcp.CreateMessageResult, *mcp.CreateMessageWithToolsResult:
			return true
		}
		return false
	}
}

// roundTrips are the pending calls of an endpoint, by request state.
type roundTrips struct {
	calls sync.Map
	count atomic.Int64
}

// relay runs call upstream for a client that speaks multi round-trip. A
// first round (no state) starts the call; a later one hands the client's
// answer to the question it was asked. Either way it returns the call's
// result, or the next question as an input-required result made by ask.
func (rt *roundTrips) relay(ctx context.Context, target, state string, answers mcp.InputResponseMap,
	start func(ctx context.Context, p *pendingCall) (mcp.Result, error),
	inputRequired func(mcp.InputRequestMap, string) mcp.Result) (mcp.Result, error) {
	var p *pendingCall
	if state == "" {
		callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p = &pendingCall{target: target, questions: make(chan *question), done: make(chan struct{}), ctx: callCtx, cancel: cancel}
		go func() {
			defer close(p.done)
			defer cancel()
			p.res, p.err = start(callCtx, p)
		}()
	} else {
		v, ok := rt.calls.Load(state)
		if ok && v.(*pendingCall).target != target {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf(
				"requestState belongs to another request (%s), not %s", v.(*pendingCall).target, target)}
		}
		if v, ok = rt.take(state); !ok {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "unknown or expired requestState"}
		}
		p = v.(*pendingCall)
		p.mu.Lock()
		p.expiry.Stop()
		q := p.asked
		p.asked = nil
		p.mu.Unlock()
		a, ok := answers[q.id]
		if !ok || !answerOf(q.req, a) {
			p.cancel()
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("inputResponses lacks an answer of the right kind to %q", q.id)}
		}
		q.answer <- a
	}
	select {
	case q := <-p.questions:
		if rt.count.Add(1) > maxPending {
			rt.count.Add(-1)
			p.cancel()
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf(
				"too many calls (%d) are waiting for their clients' answers: try again later", maxPending)}
		}
		next := randomID()
		p.mu.Lock()
		p.asked = q
		p.expiry = time.AfterFunc(pendingTTL, func() {
			if _, ok := rt.take(next); ok {
				p.cancel()
			}
		})
		p.mu.Unlock()
		rt.calls.Store(next, p)
		return inputRequired(mcp.InputRequestMap{q.id: q.req}, next), nil
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		p.cancel()
		return nil, ctx.Err()
	}
}

// take removes the pending call of a state.
func (rt *roundTrips) take(state string) (any, bool) {
	v, ok := rt.calls.LoadAndDelete(state)
	if ok {
		rt.count.Add(-1)
	}
	return v, ok
}

// closeAll cancels every pending call.
func (rt *roundTrips) closeAll() {
	rt.calls.Range(func(k, v any) bool {
		if _, ok := rt.take(k.(string)); ok {
			v.(*pendingCall).cancel()
		}
		return true
	})
}

// multiRoundTrip reports whether a client session takes server requests as
// input-required results: clients of protocol 2026-07-28 and newer, whose
// requests carry no session (the SDK's own rule).
func multiRoundTrip(ss *mcp.ServerSession) bool {
	p := ss.InitializeParams()
	return p == nil || p.ProtocolVersion >= statelessProtocol
}

// randomID returns 128 random bits in hex: request states must not be
// guessable, since they are all a client shows to resume a call.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
