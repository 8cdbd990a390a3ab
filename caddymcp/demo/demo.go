// Package demo is a small MCP server built into the caddy binary (as
// `caddy mcp demo-server`), so that the gateway's example configuration
// works with nothing installed but Go. It exercises the parts of MCP a
// gateway has to relay: plain and structured tool results, progress
// notifications, cancellation, elicitation, prompts and resources.
package demo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Version is reported in the server's implementation info.
const Version = "v0.1.0"

// ReadmeURI is the URI of the demo server's only resource.
const ReadmeURI = "demo://readme"

const (
	// maxSlow bounds the slow tool, so a careless call cannot pin a
	// session for long.
	maxSlow = 10 * time.Second

	// progressInterval is how often the slow tool reports progress.
	progressInterval = 100 * time.Millisecond

	// answerKey labels the elicitation the ask tool sends, and names the
	// field of the form the client fills in.
	answerKey = "answer"
)

const readme = `This is the caddy-mcp demo server.

It is built into the caddy binary and runs with ` + "`caddy mcp demo-server`" + `,
speaking MCP over stdin and stdout. Its tools (echo, add, time, slow and ask),
its prompt (greeting) and this resource exist to show what an MCP gateway
relays: results, progress, cancellation, elicitation, prompts and resources.
`

// NewServer returns the demo MCP server. Each call returns an independent
// server, ready to be connected to any transport.
func NewServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{
		Name:    "caddy-mcp-demo",
		Title:   "Caddy MCP demo server",
		Version: Version,
	}, &mcp.ServerOptions{
		Instructions: "A demonstration server: its tools are harmless and need no setup.",
	})

	mcp.AddTool(s, &mcp.Tool{
		Name:        "echo",
		Description: "Returns the given text unchanged.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, echo)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "add",
		Description: "Adds two numbers.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, add)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "time",
		Description: "Returns the current UTC time in RFC 3339 format.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, now)
	mcp.AddTool(s, &mcp.Tool{
		Name: "slow",
		Description: "Sleeps for the given number of milliseconds (at most 10000), " +
			"reporting progress every 100 ms when the request has a progress token.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, slow)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "ask",
		Description: "Asks the user a question through elicitation and returns the answer.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, ask)

	s.AddPrompt(&mcp.Prompt{
		Name:        "greeting",
		Description: "A prompt that asks the model to greet someone.",
		Arguments: []*mcp.PromptArgument{{
			Name:        "name",
			Description: "who to greet",
			Required:    true,
		}},
	}, greeting)

	s.AddResource(&mcp.Resource{
		URI:         ReadmeURI,
		Name:        "readme",
		Description: "What this demo server is for.",
		MIMEType:    "text/plain",
		Size:        int64(len(readme)),
	}, readResource)

	return s
}

// Run serves the demo server over stdin and stdout until the client
// disconnects or ctx is done.
func Run(ctx context.Context) error {
	return NewServer().Run(ctx, &mcp.StdioTransport{})
}

type echoInput struct {
	Text string `json:"text" jsonschema:"the text to return"`
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, any, error) {
	return textResult(in.Text), nil, nil
}

type addInput struct {
	A float64 `json:"a" jsonschema:"the first addend"`
	B float64 `json:"b" jsonschema:"the second addend"`
}

type addOutput struct {
	Sum float64 `json:"sum" jsonschema:"a + b"`
}

func add(_ context.Context, _ *mcp.CallToolRequest, in addInput) (*mcp.CallToolResult, addOutput, error) {
	sum := in.A + in.B
	// Besides the structured output, give models a plain number to read.
	return textResult(strconv.FormatFloat(sum, 'g', -1, 64)), addOutput{Sum: sum}, nil
}

func now(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
	return textResult(time.Now().UTC().Format(time.RFC3339)), nil, nil
}

type slowInput struct {
	Milliseconds int `json:"ms" jsonschema:"how long to sleep, in milliseconds, from 0 to 10000"`
}

func slow(ctx context.Context, req *mcp.CallToolRequest, in slowInput) (*mcp.CallToolResult, any, error) {
	d := time.Duration(in.Milliseconds) * time.Millisecond
	if d < 0 || d > maxSlow {
		return nil, nil, fmt.Errorf("ms must be between 0 and %d, got %d", maxSlow.Milliseconds(), in.Milliseconds)
	}

	start := time.Now()
	done := time.NewTimer(d)
	defer done.Stop()

	// A nil channel never fires: without a progress token there is no one
	// to report progress to.
	var tick <-chan time.Time
	token := req.Params.GetProgressToken()
	if token != nil {
		ticker := time.NewTicker(progressInterval)
		defer ticker.Stop()
		tick = ticker.C
	}

	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-done.C:
			return textResult(fmt.Sprintf("slept %d ms", in.Milliseconds)), nil, nil
		case <-tick:
			elapsed := min(time.Since(start), d)
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      float64(elapsed.Milliseconds()),
				Total:         float64(d.Milliseconds()),
				Message:       fmt.Sprintf("slept %d of %d ms", elapsed.Milliseconds(), d.Milliseconds()),
			})
			if err != nil {
				return nil, nil, fmt.Errorf("reporting progress: %w", err)
			}
		}
	}
}

type askInput struct {
	Question string `json:"question" jsonschema:"the question to put to the user"`
}

// ask returns its elicitation as an input request rather than calling
// ServerSession.Elicit: on protocol 2026-07-28 and later (the SDK's default)
// a server may not send requests while serving one, and Elicit fails; the
// client asks the user and retries the call with the answer. For older
// clients the SDK turns the input request into elicitation/create itself.
// Either way the handler runs twice: once to ask, once with the answer.
func ask(_ context.Context, req *mcp.CallToolRequest, in askInput) (*mcp.CallToolResult, any, error) {
	if resp, ok := req.Params.InputResponses[answerKey]; ok {
		res, ok := resp.(*mcp.ElicitResult)
		if !ok {
			return nil, nil, fmt.Errorf("client answered the elicitation with %T", resp)
		}
		answer, err := elicitedAnswer(res)
		if err != nil {
			return nil, nil, err
		}
		return textResult(answer), nil, nil
	}

	if caps := req.ClientCapabilities(); caps == nil || caps.Elicitation == nil {
		return nil, nil, errors.New("the client does not support elicitation, so the question cannot be asked")
	}
	question := in.Question
	if question == "" {
		question = "Please enter some text."
	}
	return &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{
			answerKey: &mcp.ElicitParams{
				Message: question,
				RequestedSchema: map[string]any{
					"type": "object",
					"properties": map[string]any{
						answerKey: map[string]any{"type": "string", "description": "your answer"},
					},
					"required": []string{answerKey},
				},
			},
		},
	}, nil, nil
}

// elicitedAnswer extracts the answer from the client's response to the
// ask tool's elicitation.
func elicitedAnswer(res *mcp.ElicitResult) (string, error) {
	switch res.Action {
	case "accept":
	case "decline":
		return "", errors.New("the user declined to answer")
	case "cancel":
		return "", errors.New("the user dismissed the question")
	default:
		return "", fmt.Errorf("unknown elicitation action %q", res.Action)
	}
	answer, ok := res.Content[answerKey].(string)
	if !ok {
		return "", fmt.Errorf("elicitation result has no string %q field", answerKey)
	}
	return answer, nil
}

func greeting(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	name := req.Params.Arguments["name"]
	if name == "" {
		return nil, errors.New(`missing required argument "name"`)
	}
	return &mcp.GetPromptResult{
		Description: "Greeting for " + name,
		Messages: []*mcp.PromptMessage{{
			Role:    "user",
			Content: &mcp.TextContent{Text: fmt.Sprintf("Please greet %s warmly, in one short sentence.", name)},
		}},
	}, nil
}

func readResource(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	if req.Params.URI != ReadmeURI {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	return &mcp.ReadResourceResult{
		Contents: []*mcp.ResourceContents{{
			URI:      ReadmeURI,
			MIMEType: "text/plain",
			Text:     readme,
		}},
	}, nil
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
