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
// client session with the most recent call in flight on that upstream: exact
// whenever a server has one caller at a time, which is how sampling and
// elicitation are used in practice.

// clientOptions are the upstream client's handlers, all bound to u.
func (u *upstream) clientOptions() *mcp.ClientOptions {
	return &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{
			RootsV2:     &mcp.RootCapabilities{ListChanged: true},
			Sampling:    &mcp.SamplingCapabilities{},
			Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{}},
		},
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			caller, err := u.calls.latest("sampling/createMessage")
			if err != nil {
				return nil, err
			}
			return caller.ss.CreateMessage(caller.ctx, req.Params)
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			caller, err := u.calls.latest("elicitation/create")
			if err != nil {
				return nil, err
			}
			return caller.ss.Elicit(caller.ctx, req.Params)
		},
		ToolListChangedHandler: func(ctx context.Context, req *mcp.ToolListChangedRequest) {
			go u.relist(context.WithoutCancel(ctx), req.Session, "tools")
		},
		PromptListChangedHandler: func(ctx context.Context, req *mcp.PromptListChangedRequest) {
			go u.relist(context.WithoutCancel(ctx), req.Session, "prompts")
		},
		ResourceListChangedHandler: func(ctx context.Context, req *mcp.ResourceListChangedRequest) {
			go u.relist(context.WithoutCancel(ctx), req.Session, "resources")
		},
		ResourceUpdatedHandler: func(ctx context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			u.forEachWatcher(func(e *endpoint) { e.resourceUpdated(ctx, req.Params) })
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			params := *req.Params
			if params.Logger == "" {
				params.Logger = u.cfg.Name
			}
			u.forEachWatcher(func(e *endpoint) { e.log(ctx, &params) })
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			target, ok := u.tokens.lookup(req.Params.ProgressToken)
			if !ok {
				return // late progress for a call that has returned
			}
			params := *req.Params
			params.ProgressToken = target.token
			if err := target.ss.NotifyProgress(target.ctx, &params); err != nil {
				u.logger.Debug("relaying progress", zap.Error(err))
			}
		},
	}
}

// roots answers an upstream's roots/list with the roots of the calling client.
func (u *upstream) rootsMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != "roots/list" {
			return next(ctx, method, req)
		}
		caller, err := u.calls.latest(method)
		if err != nil {
			return nil, err
		}
		return caller.ss.ListRoots(caller.ctx, &mcp.ListRootsParams{})
	}
}

// caller is a client session with a call in flight upstream.
type caller struct {
	ctx context.Context
	ss  *mcp.ServerSession
}

// inflight lists the callers of an upstream, oldest first.
type inflight struct {
	mu      sync.Mutex
	callers []*caller
}

func (f *inflight) begin(ctx context.Context, ss *mcp.ServerSession) (end func()) {
	if ss == nil {
		return func() {}
	}
	c := &caller{ctx: ctx, ss: ss}
	f.mu.Lock()
	f.callers = append(f.callers, c)
	f.mu.Unlock()
	return func() {
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

func (f *inflight) latest(method string) (*caller, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.callers) == 0 {
		return nil, errors.New(method + ": no client call is in flight to send this request to")
	}
	return f.callers[len(f.callers)-1], nil
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
