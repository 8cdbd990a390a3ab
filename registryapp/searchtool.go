package registryapp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// searchToolName is the registry's tool on aggregate endpoints, named like
// the tools of a server called "registry".
const searchToolName = "registry__search_tools"

// searchTool lets an agent on an aggregate endpoint find tools by what they
// do, without listing them all: the same ranked search as GET /api/search,
// answering with the names to call on that endpoint.
func (r *registry) searchTool() caddymcp.LiveTool {
	return caddymcp.LiveTool{
		Tool: &mcp.Tool{
			Name:        searchToolName,
			Title:       "Search tools",
			Description: "Find tools of the registry's MCP servers by what they do. Ranks tools by their names, descriptions and argument names, and answers with the tool names to call on this endpoint.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{` +
				`"query":{"type":"string","description":"words describing the task, e.g. \"weather forecast\""},` +
				`"server":{"type":"string","description":"only tools of this server"},` +
				`"tag":{"type":"string","description":"only tools of servers with this tag"},` +
				`"limit":{"type":"integer","minimum":1,"maximum":100,"description":"at most this many results (default 20)"}},` +
				`"required":["query"]}`),
		},
		Handler: func(_ context.Context, req *mcp.CallToolRequest, exposed func(server, tool string) string) (*mcp.CallToolResult, error) {
			var args struct {
				Query  string `json:"query"`
				Server string `json:"server"`
				Tag    string `json:"tag"`
				Limit  int    `json:"limit"`
			}
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return toolError("arguments: %v", err), nil
			}
			if strings.TrimSpace(args.Query) == "" {
				return toolError("query is required: the words to look for"), nil
			}
			if args.Limit < 0 || args.Limit > 100 {
				return toolError("limit %d: want 1 to 100", args.Limit), nil
			}
			type result struct {
				Name string `json:"name"` // to call on this endpoint
				searchHit
			}
			results := []result{}
			for _, h := range r.index.search(args.Query, searchFilter{Server: args.Server, Tag: args.Tag}, args.Limit) {
				if name := exposed(h.Server, h.Tool); name != "" {
					results = append(results, result{name, h})
				}
			}
			out := map[string]any{"query": args.Query, "results": results}
			b, _ := json.Marshal(out)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}, StructuredContent: out}, nil
		},
	}
}

func toolError(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
}
