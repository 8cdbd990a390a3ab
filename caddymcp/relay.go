package caddymcp

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// This file carries what an upstream sends on its own initiative back to the
// right client: requests (sampling, elicitation, roots), progress, logs,
// resource updates and list changes.
//
// An upstream session is shared by every client session of a server, and the
// MCP SDK does not say which of our calls an upstream request belongs to. A
// server sends such requests while it handles a call, so they go to the
// client whose calls are in flight on that upstream: exact whenever a server
// has one caller at a time, which is how sampling and elicitation are used.
// With calls of several clients in flight the gateway does not guess: it
// refuses the request (and a log message goes to every client instead), so
// that no client is ever shown what the server asked of another.

// clientOptions are the upstream client's capabilities and notification
// handlers, all bound to u. Requests are relayed by serverRequests.
func (u *upstream) clientOptions() *mcp.ClientOptions {
	return &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{
			RootsV2:     &mcp.RootCapabilities{}, // roots changes are not relayed
			Sampling:    &mcp.SamplingCapabilities{},
			Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{}},
		},
		ToolListChangedHandler: func(ctx context.Context, req *mcp.ToolListChangedRequest) {
			go u.relist(req.Session, "tools")
		},
		PromptListChangedHandler: func(ctx context.Context, req *mcp.PromptListChangedRequest) {
			go u.relist(req.Session, "prompts")
		},
		ResourceListChangedHandler: func(ctx context.Context, req *mcp.ResourceListChangedRequest) {
			go u.relist(req.Session, "resources")
		},
		ResourceUpdatedHandler: func(ctx context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			u.forEachWatcher(func(e *endpoint) { e.resourceUpdated(req.Params) })
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			params := *req.Params
			if params.Logger == "" {
				params.Logger = u.cfg.Name
			}
			// A message sent while calls are in flight belongs to a call: it
			// goes to that caller alone, like the server's requests do.
			// The SDK hands us a call's result before the notifications that
			// preceded it: when the call's stream has closed meanwhile, the
			// message goes on the session's own stream instead.
			if caller, err := u.calls.only("notifications/message"); err == nil {
				if err := caller.ss.Log(caller.ctx, &params); err != nil {
					_ = caller.ss.Log(context.Background(), &params)
				}
				return
			}
			u.forEachWatcher(func(e *endpoint) { e.log(&params) })
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			target, ok := u.tokens.lookup(req.Params.ProgressToken)
			if !ok {
				return // late progress for a call that has returned
			}
			params := *req.Params
			params.ProgressToken = target.token
			if err := target.ss.NotifyProgress(target.ctx, &params); err != nil {
				u.log().Debug("relaying progress", zap.Error(err))
			}
		},
	}
}

// serverRequests forwards what an upstream asks of its client (sampling,
// elicitation, roots) to the calling client session. It runs before the
// SDK's own client handlers, which check elicitation schemas more strictly
// than clients do: the gateway passes requests through and leaves judging
// them to the two ends.
func (u *upstream) serverRequests(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch req.(type) {
		case *mcp.CreateMessageRequest, *mcp.CreateMessageWithToolsRequest, *mcp.ElicitRequest, *mcp.ListRootsRequest:
		default:
			return next(ctx, method, req)
		}
		caller, err := u.calls.only(method)
		if err != nil {
			return nil, err
		}
		if caller.pending != nil {
			return caller.pending.ask(ctx, inputRequest(req))
		}
		switch r := req.(type) {
		case *mcp.CreateMessageRequest:
			return caller.ss.CreateMessage(caller.ctx, r.Params)
		case *mcp.CreateMessageWithToolsRequest:
			return caller.ss.CreateMessageWithTools(caller.ctx, r.Params)
		case *mcp.ElicitRequest:
			return elicitUnchecked(caller.ctx, caller.ss, r.Params)
		default:
			return caller.ss.ListRoots(caller.ctx, req.(*mcp.ListRootsRequest).Params)
		}
	}
}

// inputRequest is a server request as a multi round-trip input request.
func inputRequest(req mcp.Request) mcp.InputRequest {
	switch r := req.(type) {
	case *mcp.CreateMessageRequest:
		return r.Params
	case *mcp.CreateMessageWithToolsRequest:
		return r.Params
	case *mcp.ElicitRequest:
		return r.Params
	}
	if p := req.(*mcp.ListRootsRequest).Params; p != nil {
		return p
	}
	return &mcp.ListRootsParams{}
}

// elicitResultKey carries, in the context of an elicitation the gateway
// relays, where keepElicitResult puts the client's answer as it came.
type elicitResultKey struct{}

// elicitUnchecked relays an elicitation and returns the client's answer
// unchanged: ServerSession.Elicit would refuse an answer to a schema that
// the SDK does not support, even when both ends do.
func elicitUnchecked(ctx context.Context, ss *mcp.ServerSession, params *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	var answer *mcp.ElicitResult
	res, err := ss.Elicit(context.WithValue(ctx, elicitResultKey{}, &answer), params)
	if err != nil {
		return nil, err
	}
	if answer != nil {
		return answer, nil
	}
	return res, nil
}

// keepElicitResult is the endpoints' sending middleware behind
// elicitUnchecked: it keeps the answer aside and hands the SDK a copy
// without content, which the SDK then has nothing to check in.
func keepElicitResult(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		answer, relayed := ctx.Value(elicitResultKey{}).(**mcp.ElicitResult)
		res, err := next(ctx, method, req)
		if r, ok := res.(*mcp.ElicitResult); ok && relayed && err == nil {
			*answer = r
			bare := *r
			bare.Content = nil
			return &bare, nil
		}
		return res, err
	}
}

// caller is a client session with a call in flight upstream. For a client
// on multi round-trip, pending takes the server's requests instead.
type caller struct {
	ctx     context.Context
	ss      *mcp.ServerSession
	pending *pendingCall
}

// client identifies the client behind a call: its session, or for a client
// without one (stateless), its pending multi round-trip call.
func (c *caller) client() any {
	if c.pending != nil {
		return c.pending
	}
	return c.ss
}

// inflight lists the callers of an upstream, oldest first.
type inflight struct {
	n       atomic.Int64 // calls in flight, with or without a caller
	mu      sync.Mutex
	callers []*caller
}

func (f *inflight) begin(c *caller) (end func()) {
	f.n.Add(1)
	if c == nil {
		return func() { f.n.Add(-1) }
	}
	f.mu.Lock()
	f.callers = append(f.callers, c)
	f.mu.Unlock()
	return func() {
		f.n.Add(-1)
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, x := range f.callers {
			if x == c {
				f.callers = append(f.callers[:i], f.callers[i+1:]...)
				return
			}
		}
	}
}

// busy reports whether any call is in flight.
func (f *inflight) busy() bool { return f.n.Load() > 0 }

// only returns the caller to send a server's request to: the most recent
// call in flight, provided that every call in flight comes from one client.
func (f *inflight) only(method string) (*caller, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.callers) == 0 {
		return nil, errors.New(method + ": no client call is in flight to send this request to")
	}
	last := f.callers[len(f.callers)-1]
	for _, c := range f.callers {
		if c.client() != last.client() {
			return nil, errors.New(method + ": calls of several clients are in flight on this shared server, and the request could be any one's")
		}
	}
	return last, nil
}

// progressTokens maps the tokens we send upstream, unique per upstream, to
// the client's own token and session. Clients choose tokens that are unique
// only among their own requests.
type progressTokens struct {
	next    atomic.Uint64
	targets sync.Map // string → *progressTarget
}

type progressTarget struct {
	ctx   context.Context
	ss    *mcp.ServerSession
	token any
}

// remap registers the client's token and returns ours, with a func that
// forgets it once the call has returned.
func (p *progressTokens) remap(ctx context.Context, ss *mcp.ServerSession, token any) (string, func()) {
	ours := "caddy-mcp-" + strconv.FormatUint(p.next.Add(1), 36)
	p.targets.Store(ours, &progressTarget{ctx: ctx, ss: ss, token: token})
	return ours, func() { p.targets.Delete(ours) }
}

func (p *progressTokens) lookup(token any) (*progressTarget, bool) {
	s, ok := token.(string)
	if !ok {
		return nil, false
	}
	v, ok := p.targets.Load(s)
	if !ok {
		return nil, false
	}
	return v.(*progressTarget), true
}
