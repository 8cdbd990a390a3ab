package interceptors

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2"
)

// policyRequest is the JSON document the exec and http interceptors hand
// to an operator's policy: the call, with its arguments, and after the
// call its outcome.
type policyRequest struct {
	Phase     string          `json:"phase"` // "before" or "after"
	Server    string          `json:"server"`
	Tool      string          `json:"tool"`
	Principal string          `json:"principal"`
	Session   string          `json:"session"`
	Arguments json.RawMessage `json:"arguments"`
	*policyOutcome
}

// policyOutcome is the part of a policyRequest that only the after phase
// has.
type policyOutcome struct {
	Result  json.RawMessage `json:"result"` // null when the call failed
	IsError bool            `json:"is_error"`
	Error   string          `json:"error"` // "" unless the call failed
}

// policyDocument is the policyRequest of a call before it (o nil) or
// after it.
func policyDocument(c *caddymcp.Call, o *caddymcp.Outcome) ([]byte, error) {
	req := policyRequest{
		Phase:     "before",
		Server:    c.Server,
		Tool:      c.Tool,
		Principal: c.Principal,
		Session:   c.Session,
		Arguments: c.Arguments,
	}
	if o != nil {
		req.Phase = "after"
		req.policyOutcome = &policyOutcome{Result: o.Result, IsError: o.IsError}
		if o.Err != nil {
			req.Error = o.Err.Error()
		}
	}
	return json.Marshal(req)
}

// defaultAskTimeout bounds one question to a policy program or service.
const defaultAskTimeout = 5 * time.Second

// askTimeout is the exec and http interceptors' timeout option resolved.
func askTimeout(d caddy.Duration) (time.Duration, error) {
	if d < 0 {
		return 0, fmt.Errorf("timeout %v: must not be negative", time.Duration(d))
	}
	return cmp.Or(time.Duration(d), defaultAskTimeout), nil
}
