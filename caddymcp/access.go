package caddymcp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

// access is what a gateway decided about a request's caller, and the rules
// and interceptors its calls go through. It travels with the request into
// the MCP SDK's handlers.
type access struct {
	principal *mcpauth.Principal // nil: the gateway authenticates nobody
	policy    *Policy            // nil: the principal may use everything
	chain     chain
	audit     *zap.Logger // nil: decisions are not logged

	auth     *mcpauth.Config // for scope challenges; nil without auth
	resource string          // the canonical URI of the endpoint called
}

// accessExtra is the key of the access in the SDK's TokenInfo.Extra.
const accessExtra = "caddymcp.access"

// userID is who calls ("" for nobody known), and the id the SDK binds a
// session to: a request of another principal on the session gets 403.
func (a *access) userID() string {
	if a.principal == nil {
		return ""
	}
	return a.principal.ID
}

// decide reports whether the caller may use the method (on the server and
// tool, where given), and logs the decision for audit.
func (a *access) decide(method, server, tool string) *Refused {
	var err *Refused
	if a.policy != nil && governed[method] && !a.policy.allows(a.principal, method, server, tool) {
		err = &Refused{By: "authorization", Reason: a.refusal(method, server, tool)}
	}
	if a.audit != nil {
		fields := []zap.Field{zap.String("principal", a.userID()), zap.String("method", method),
			zap.String("server", server), zap.String("tool", tool)}
		if err != nil {
			a.audit.Info("denied", fields...)
		} else if governed[method] {
			a.audit.Debug("allowed", fields...)
		}
	}
	return err
}

func (a *access) refusal(method, server, tool string) error {
	switch {
	case tool != "":
		return fmt.Errorf("principal %q may not %s tool %q of server %q", a.userID(), method, tool, server)
	case server != "":
		return fmt.Errorf("principal %q may not %s on server %q", a.userID(), method, server)
	}
	return fmt.Errorf("principal %q may not %s", a.userID(), method)
}

// visible reports, without logging, whether a list may show an item.
func (a *access) visible(method, server, tool string) bool {
	return a.policy == nil || a.policy.allows(a.principal, method, server, tool)
}

// visibleOn reports whether a list may show an item of the server m; an
// item whose server is unknown is not shown.
func (a *access) visibleOn(method string, m *member) bool {
	return a.policy == nil || m != nil && a.policy.allows(a.principal, method, m.cfg.Name, "")
}

type accessKey struct{}

// accessOf returns the access of an HTTP request; nil when the gateway
// decides nothing about callers.
func accessOf(ctx context.Context) *access {
	a, _ := ctx.Value(accessKey{}).(*access)
	return a
}

// sessionAccess returns the access of an MCP request: the one of the HTTP
// request that carried it (Streamable HTTP), else the one of the request
// that opened the session (legacy SSE).
func sessionAccess(ctx context.Context, req mcp.Request) *access {
	var ti *auth.TokenInfo
	if x := req.GetExtra(); x != nil && x.TokenInfo != nil {
		ti = x.TokenInfo
	} else {
		ti = auth.TokenInfoFromContext(ctx)
	}
	if ti == nil {
		return nil
	}
	a, _ := ti.Extra[accessExtra].(*access)
	return a
}

// withAccess gives the request its access, for the gateway's own code and,
// as the SDK's TokenInfo, for the SDK: it binds each session to the
// principal that opened it and hands the access to every request's handler.
func withAccess(r *http.Request, a *access) *http.Request {
	ctx := context.WithValue(r.Context(), accessKey{}, a)
	return r.WithContext(withTokenInfo(ctx, &auth.TokenInfo{UserID: a.userID(), Extra: map[string]any{accessExtra: a}}))
}

// tokenInfoCarrier is the SDK's bearer-token middleware, the only way into
// the context key its transports read the TokenInfo from, with a verifier
// that hands back the TokenInfo the gateway has already decided on.
var tokenInfoCarrier = auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
	return ctx.Value(pendingTokenInfo{}).(*auth.TokenInfo), nil
}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
	*r.Context().Value(carriedContext{}).(*context.Context) = r.Context()
}))

type pendingTokenInfo struct{}
type carriedContext struct{}

// withTokenInfo returns ctx with the TokenInfo where the SDK looks for it.
func withTokenInfo(ctx context.Context, ti *auth.TokenInfo) context.Context {
	out := ctx
	carrier := &http.Request{Header: http.Header{"Authorization": {"Bearer gateway"}}}
	ctx = context.WithValue(context.WithValue(ctx, pendingTokenInfo{}, ti), carriedContext{}, &out)
	tokenInfoCarrier.ServeHTTP(nil, carrier.WithContext(ctx))
	return out
}

// serveSSE serves legacy SSE. A stream opened by a principal binds its
// session to it: the SDK binds only Streamable HTTP sessions, and its SSE
// handler gives a posted message the stream's context, so another principal
// posting to the session would act as its owner.
func (e *endpoint) serveSSE(w http.ResponseWriter, r *http.Request) {
	a := accessOf(r.Context())
	if r.Method == http.MethodPost {
		owner, bound := e.sseOwners.Load(r.URL.Query().Get("sessionid"))
		if bound && (a == nil || a.userID() != owner) {
			writeRPCError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, "session belongs to another principal")
			return
		}
		e.sse.ServeHTTP(w, asClientSent(r))
		return
	}
	if a == nil || a.userID() == "" {
		e.sse.ServeHTTP(w, asClientSent(r))
		return
	}
	b := &sseBinder{ResponseWriter: w, owners: &e.sseOwners, user: a.userID()}
	defer func() {
		if b.session != "" {
			e.sseOwners.Delete(b.session)
		}
	}()
	e.sse.ServeHTTP(b, asClientSent(r))
}

// sseBinder binds a legacy SSE session to its stream's principal as the
// stream tells the client where to post: before the client can post.
type sseBinder struct {
	http.ResponseWriter
	owners  *sync.Map
	user    string
	session string
}

func (b *sseBinder) Write(p []byte) (int, error) {
	if b.session == "" {
		if _, rest, ok := bytes.Cut(p, []byte("sessionid=")); ok {
			end := bytes.IndexAny(rest, "&\r\n")
			if end < 0 {
				end = len(rest)
			}
			if id, err := url.QueryUnescape(string(rest[:end])); err == nil && id != "" {
				b.session = id
				b.owners.Store(id, b.user)
			}
		}
	}
	return b.ResponseWriter.Write(p)
}

func (b *sseBinder) Unwrap() http.ResponseWriter { return b.ResponseWriter }
