package caddymcp

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// guarded serves a method the policy decides: it refuses what the caller may
// not use, hides from lists what it may not see, and passes tools/call
// through the interceptors.
func (e *endpoint) guarded(ctx context.Context, a *access, method string, req mcp.Request, next mcp.MethodHandler) (mcp.Result, error) {
	server, tool := e.target(method, req)
	if refused := a.decide(method, server, tool); refused != nil {
		return nil, refused.rpcError()
	}
	if method == "tools/call" && len(a.chain) > 0 {
		return e.intercepted(ctx, a, server, tool, req, next)
	}
	res, err := next(ctx, method, req)
	if err != nil || a.policy == nil {
		return res, err
	}
	switch r := res.(type) {
	case *mcp.ListToolsResult:
		r.Tools = slices.DeleteFunc(r.Tools, func(t *mcp.Tool) bool {
			server, tool := e.toolTarget(t.Name)
			return !a.visible("tools/call", server, tool)
		})
	case *mcp.ListPromptsResult:
		r.Prompts = slices.DeleteFunc(r.Prompts, func(p *mcp.Prompt) bool {
			return !a.visibleOn("prompts/get", e.promptOwner(p.Name))
		})
	case *mcp.ListResourcesResult:
		r.Resources = slices.DeleteFunc(r.Resources, func(x *mcp.Resource) bool {
			return !a.visibleOn("resources/read", e.ownerOf(x.URI))
		})
	case *mcp.ListResourceTemplatesResult:
		r.ResourceTemplates = slices.DeleteFunc(r.ResourceTemplates, func(x *mcp.ResourceTemplate) bool {
			return !a.visibleOn("resources/read", e.ownerOf(x.URITemplate))
		})
	}
	return res, nil
}

// target is the server and the tool (as the server names it) a request is
// about; "" where it names none, or none the endpoint knows.
func (e *endpoint) target(method string, req mcp.Request) (server, tool string) {
	switch p := req.GetParams().(type) {
	case *mcp.CallToolParamsRaw:
		return e.toolTarget(p.Name)
	case *mcp.GetPromptParams:
		if m := e.promptOwner(p.Name); m != nil {
			return m.cfg.Name, ""
		}
	case *mcp.ReadResourceParams:
		if m := e.ownerOf(p.URI); m != nil {
			return m.cfg.Name, ""
		}
	case *mcp.SubscribeParams:
		if m := e.ownerOf(p.URI); m != nil {
			return m.cfg.Name, ""
		}
	case *mcp.UnsubscribeParams:
		if m := e.ownerOf(p.URI); m != nil {
			return m.cfg.Name, ""
		}
	}
	if !e.aggregate {
		return e.own[0].cfg.Name, ""
	}
	return "", ""
}

// toolTarget is the server and the upstream name of a tool the endpoint
// exposes as name; for a tool of no member (the registry's search), no
// server and the name itself.
func (e *endpoint) toolTarget(name string) (server, tool string) {
	if x, ok := e.tool(name); ok {
		return x.m.cfg.Name, x.name
	}
	return "", name
}

// tool is the mirrored tool of an exposed name.
func (e *endpoint) tool(name string) (*mirrored[*mcp.Tool], bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.tools[name]
	return x, ok
}

func (e *endpoint) promptOwner(name string) *member {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.prompts[name]; ok {
		return x.m
	}
	return nil
}

// intercepted runs a tools/call through the interceptors.
func (e *endpoint) intercepted(ctx context.Context, a *access, server, tool string, req mcp.Request, next mcp.MethodHandler) (mcp.Result, error) {
	p := req.GetParams().(*mcp.CallToolParamsRaw)
	call := &Call{Server: server, Tool: tool, Principal: a.userID(), Arguments: p.Arguments, Started: time.Now()}
	if call.Arguments == nil {
		call.Arguments = json.RawMessage("{}")
	}
	if ss, ok := req.GetSession().(*mcp.ServerSession); ok {
		call.Session = ss.ID()
	}
	var res mcp.Result
	_, err := a.chain.run(ctx, call, func(ctx context.Context) (json.RawMessage, bool, error) {
		var err error
		if res, err = next(ctx, "tools/call", req); err != nil {
			return nil, false, err
		}
		b, err := json.Marshal(res)
		r, _ := res.(*mcp.CallToolResult)
		return b, r != nil && r.IsError, err
	})
	if refused := (*Refused)(nil); errors.As(err, &refused) {
		return nil, refused.rpcError()
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}
