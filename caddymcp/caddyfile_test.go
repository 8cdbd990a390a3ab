package caddymcp

// Adapt tests for the mcp_gateway Caddyfile directive.
//
// The cases that adapt are files, because whole Caddyfiles and the JSON
// they become read and diff best as files of their own: for every NAME,
// testdata/caddyfile/NAME.caddyfile is a Caddyfile (its leading comment
// says what it covers) and NAME.json is the mcp_gateway handler it must
// adapt to, exactly (compared as JSON, so key order and spacing do not
// matter). Every adapted handler must also provision: the Caddyfile never
// produces a config that the gateway would refuse at load.
//
// The cases that must fail are short, so they are a table here: a snippet of
// a site block and the error it must give, with its line.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// adapt runs the Caddyfile adapter on src, as `caddy adapt` does, and
// returns the JSON config. Warnings fail the test: a test Caddyfile must be
// formatted (tabs, as `caddy fmt` writes) and draw no complaint.
func adapt(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("no caddyfile adapter registered")
	}
	out, warnings, err := adapter.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err == nil && len(warnings) > 0 {
		t.Errorf("adapting gave warnings: %+v", warnings)
	}
	return out, err
}

// gatewayHandlers returns every mcp_gateway handler object in an adapted
// config, in document order.
func gatewayHandlers(t *testing.T, config []byte) []json.RawMessage {
	t.Helper()
	var found []json.RawMessage
	var walk func(raw json.RawMessage)
	walk = func(raw json.RawMessage) {
		switch bytes.TrimSpace(raw)[0] {
		case '{':
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil {
				t.Fatal(err)
			}
			if string(obj["handler"]) == `"mcp_gateway"` {
				found = append(found, raw)
				return
			}
			// Walk the routes in order, so that several handlers come out as
			// written; the other keys hold no handlers that matter here.
			for _, k := range []string{"apps", "http", "servers", "srv0", "routes", "handle"} {
				if v, ok := obj[k]; ok {
					walk(v)
				}
			}
		case '[':
			var arr []json.RawMessage
			if err := json.Unmarshal(raw, &arr); err != nil {
				t.Fatal(err)
			}
			for _, v := range arr {
				walk(v)
			}
		}
	}
	walk(config)
	return found
}

// canonicalJSON re-encodes JSON with sorted keys, fixed indentation and
// numbers exactly as written, so that two equal documents give equal
// strings and a failure shows a readable diff.
func canonicalJSON(t *testing.T, raw []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, raw)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile", "*.caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d Caddyfile cases in testdata/caddyfile, want at least 6", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".caddyfile")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(file, ".caddyfile") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			config, err := adapt(t, string(src))
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			handlers := gatewayHandlers(t, config)
			if len(handlers) != 1 {
				t.Fatalf("adapted config has %d mcp_gateway handlers, want 1:\n%s", len(handlers), config)
			}
			got, exp := canonicalJSON(t, handlers[0]), canonicalJSON(t, want)
			if got != exp {
				t.Fatalf("handler JSON differs\n--- got:\n%s\n--- want:\n%s", got, exp)
			}
			provisionHandler(t, handlers[0])
		})
	}
}

// decodeHandler decodes handler JSON the way Caddy loads a module: without
// its "handler" key, unknown fields refused.
func decodeHandler(t *testing.T, raw json.RawMessage) *Gateway {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	delete(fields, "handler")
	stripped, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	g := new(Gateway)
	if err := caddy.StrictUnmarshalJSON(stripped, g); err != nil {
		t.Fatalf("adapted handler does not decode: %v", err)
	}
	return g
}

// provisionHandler loads handler JSON as Caddy does and provisions it, which
// checks every option; it gives back what provisioning took from the pools.
func provisionHandler(t *testing.T, raw json.RawMessage) {
	t.Helper()
	g := decodeHandler(t, raw)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := g.Provision(ctx)
	if cerr := g.Cleanup(); cerr != nil {
		t.Errorf("cleanup: %v", cerr)
	}
	if err != nil {
		t.Fatalf("adapted handler does not provision: %v", err)
	}
}

// siteBlock wraps a snippet of directives in a site block: the site's
// address is line 1 and the snippet starts on line 2.
func siteBlock(snippet string) string {
	return ":8080 {\n" + snippet + "\n}\n"
}

func TestCaddyfileAdaptSizesAndDurations(t *testing.T) {
	tests := []struct {
		maxBody, timeout string
		wantBody         int64
		wantTimeout      caddy.Duration
	}{
		{"1024", "90s", 1024, caddy.Duration(90e9)},
		{"4MiB", "1h30m", 4 << 20, caddy.Duration(5400e9)},
		{"2MB", "2d", 2_000_000, caddy.Duration(48 * 3600e9)},
		{"1.5KiB", "250ms", 1536, caddy.Duration(250e6)},
		{"512k", "1m", 512_000, caddy.Duration(60e9)},
	}
	for _, tt := range tests {
		t.Run(tt.maxBody+"_"+tt.timeout, func(t *testing.T) {
			config, err := adapt(t, siteBlock(fmt.Sprintf("\tmcp_gateway {\n\t\tmax_request_body %s\n\t\tsession_timeout %s\n\t}", tt.maxBody, tt.timeout)))
			if err != nil {
				t.Fatal(err)
			}
			handlers := gatewayHandlers(t, config)
			if len(handlers) != 1 {
				t.Fatalf("%d handlers in %s", len(handlers), config)
			}
			g := decodeHandler(t, handlers[0])
			if g.MaxRequestBody != tt.wantBody {
				t.Errorf("max_request_body %s = %d, want %d", tt.maxBody, g.MaxRequestBody, tt.wantBody)
			}
			if g.SessionTimeout != tt.wantTimeout {
				t.Errorf("session_timeout %s = %d, want %d", tt.timeout, g.SessionTimeout, tt.wantTimeout)
			}
		})
	}
}

// TestCaddyfileMatcherAndOrder checks what the directive registration does:
// a matcher becomes the route's, and mcp_gateway runs before reverse_proxy
// whatever the order in the file, so that a site can proxy everything else.
func TestCaddyfileMatcherAndOrder(t *testing.T) {
	config, err := adapt(t, siteBlock("\treverse_proxy 127.0.0.1:9000\n\tmcp_gateway /ai/* {\n\t\taggregate_path /ai/mcp\n\t}"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match  []map[string]any `json:"match"`
						Handle []map[string]any `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		t.Fatal(err)
	}
	routes := cfg.Apps.HTTP.Servers["srv0"].Routes
	if len(routes) != 2 {
		t.Fatalf("got %d routes, want 2 (mcp_gateway, reverse_proxy):\n%s", len(routes), config)
	}
	first, second := routes[0], routes[1]
	if len(first.Handle) != 1 || first.Handle[0]["handler"] != "mcp_gateway" {
		t.Errorf("first route handles %v, want the mcp_gateway", first.Handle)
	}
	if got := fmt.Sprint(first.Match); got != "[map[path:[/ai/*]]]" {
		t.Errorf("mcp_gateway route matches %s, want path /ai/*", got)
	}
	if len(second.Handle) != 1 || second.Handle[0]["handler"] != "reverse_proxy" {
		t.Errorf("second route handles %v, want reverse_proxy", second.Handle)
	}
	if second.Match != nil {
		t.Errorf("reverse_proxy route matches %v, want everything", second.Match)
	}
}

func TestCaddyfileAdaptErrors(t *testing.T) {
	tests := []struct {
		name    string
		snippet string // lines of a site block
		want    string // in the error
		line    int    // the Caddyfile line the error points at; 0: not checked
	}{
		// Each snippet starts with a newline, which siteBlock's first line
		// stands in for: the snippet's lines are numbered as in the
		// Caddyfile.

		// Unknown options.
		{"unknown gateway option", `
	mcp_gateway {
		compression on
	}`, `unrecognized mcp_gateway option "compression"`, 3},
		{"unknown server option", `
	mcp_gateway {
		server a {
			stdio cat
			restart always
		}
	}`, `server a: unrecognized option "restart"`, 5},
		{"deny rule", `
	mcp_gateway {
		authorization {
			deny {
				principals bob
			}
		}
	}`, `authorization: unrecognized option "deny" (expected allow)`, 4},
		{"unknown rule option", `
	mcp_gateway {
		authorization {
			allow {
				users bob
			}
		}
	}`, `authorization: allow: unrecognized option "users"`, 5},
		{"rule option without values", `
	mcp_gateway {
		authorization {
			allow {
				tools
			}
		}
	}`, `wrong argument count`, 5},
		{"auth twice", `
	mcp_gateway {
		auth {
			caddy_identity
		}
		auth {
			caddy_identity
		}
	}`, `auth: given twice`, 6},
		{"audit with an argument", `
	mcp_gateway {
		audit all
	}`, `wrong argument count`, 3},
		{"unknown interceptor", `
	mcp_gateway {
		interceptors {
			antivirus
		}
	}`, `mcp.interceptors.antivirus`, 0},
		{"argument after the directive", `
	mcp_gateway everything {
	}`, `wrong argument count or unexpected line ending after 'everything'`, 2},

		// Options that do not apply to the server's kind.
		{"volume on a remote server", `
	mcp_gateway {
		server a {
			remote https://example.com/mcp
			volume /data:/data
		}
	}`, `server a: option "volume" does not apply to a remote server (only container)`, 0},
		{"env on a remote server", `
	mcp_gateway {
		server a {
			env TOKEN x
			remote https://example.com/mcp
		}
	}`, `server a: option "env" does not apply to a remote server (only stdio, container)`, 0},
		{"dir on a container server", `
	mcp_gateway {
		server a {
			container mcp/time
			dir /srv
		}
	}`, `server a: option "dir" does not apply to a container server (only stdio)`, 0},
		{"header on a stdio server", `
	mcp_gateway {
		server a {
			stdio cat
			header X-Key k
		}
	}`, `server a: option "header" does not apply to a stdio server (only remote)`, 0},
		{"transport on a container server", `
	mcp_gateway {
		server a {
			container mcp/time
			transport sse
		}
	}`, `server a: option "transport" does not apply to a container server (only remote)`, 0},
		{"read_only on a stdio server", `
	mcp_gateway {
		server a {
			stdio cat
			read_only
		}
	}`, `server a: option "read_only" does not apply to a stdio server (only container)`, 0},

		// Server names.
		{"server without a name", `
	mcp_gateway {
		server {
			stdio cat
		}
	}`, `server: expected exactly one name`, 3},
		{"server with two names", `
	mcp_gateway {
		server a b {
			stdio cat
		}
	}`, `server: expected exactly one name`, 3},

		// Kinds without their argument.
		{"stdio without a command", `
	mcp_gateway {
		server a {
			stdio
		}
	}`, `server a: stdio: command is required`, 4},
		{"container without an image", `
	mcp_gateway {
		server a {
			container
		}
	}`, `server a: container: image is required`, 4},
		{"remote without a url", `
	mcp_gateway {
		server a {
			remote
		}
	}`, `server a: remote: expected 1 argument(s), got 0`, 4},
		{"remote with two urls", `
	mcp_gateway {
		server a {
			remote https://a.example/mcp https://b.example/mcp
		}
	}`, `server a: remote: expected 1 argument(s), got 2`, 4},

		// Wrong argument counts of server options.
		{"env with one argument", `
	mcp_gateway {
		server a {
			stdio cat
			env ONLY_KEY
		}
	}`, `server a: env: expected 2 argument(s), got 1`, 5},
		{"env with three arguments", `
	mcp_gateway {
		server a {
			stdio cat
			env GREETING hello world
		}
	}`, `server a: env: expected 2 argument(s), got 3`, 5},
		{"dir without a path", `
	mcp_gateway {
		server a {
			stdio cat
			dir
		}
	}`, `server a: dir: expected 1 argument(s), got 0`, 5},
		{"read_only with an argument", `
	mcp_gateway {
		server a {
			container mcp/time
			read_only true
		}
	}`, `server a: read_only: expected 0 argument(s), got 1`, 5},
		{"volume with two arguments", `
	mcp_gateway {
		server a {
			container mcp/time
			volume /a /b
		}
	}`, `server a: volume: expected 1 argument(s), got 2`, 5},
		{"header with one argument", `
	mcp_gateway {
		server a {
			remote https://example.com/mcp
			header Authorization
		}
	}`, `server a: header: expected 2 argument(s), got 1`, 5},
		{"allow_tools without a pattern", `
	mcp_gateway {
		server a {
			stdio cat
			allow_tools
		}
	}`, `server a: allow_tools: at least one pattern is required`, 5},
		{"deny_tools without a pattern", `
	mcp_gateway {
		server a {
			stdio cat
			deny_tools
		}
	}`, `server a: deny_tools: at least one pattern is required`, 5},

		// Bad values.
		{"timeout that is not a duration", `
	mcp_gateway {
		server a {
			remote https://example.com/mcp
			timeout soon
		}
	}`, `server a: timeout "soon": `, 5},
		{"pids_limit that is not a number", `
	mcp_gateway {
		server a {
			container mcp/time
			pids_limit many
		}
	}`, `server a: pids_limit "many": not a whole number`, 5},

		// Wrong argument counts and bad values of handler options.
		{"aggregate_path without a path", `
	mcp_gateway {
		aggregate_path
	}`, `wrong argument count or unexpected line ending after 'aggregate_path'`, 3},
		{"server_path with two paths", `
	mcp_gateway {
		server_path /a/ /b/
	}`, `wrong argument count or unexpected line ending`, 3},
		{"allowed_origins without an origin", `
	mcp_gateway {
		allowed_origins
	}`, `wrong argument count or unexpected line ending after 'allowed_origins'`, 3},
		// Each allowed_origins line must name an origin, not only the first.
		{"second allowed_origins without an origin", `
	mcp_gateway {
		allowed_origins https://app.example.com
		allowed_origins
	}`, `wrong argument count or unexpected line ending after 'allowed_origins'`, 4},
		{"max_request_body without a size", `
	mcp_gateway {
		max_request_body
	}`, `wrong argument count or unexpected line ending after 'max_request_body'`, 3},
		{"max_request_body that is not a size", `
	mcp_gateway {
		max_request_body lots
	}`, `max_request_body "lots": `, 3},
		{"negative max_request_body", `
	mcp_gateway {
		max_request_body -1KB
	}`, `max_request_body "-1KB": `, 3},
		// 9 EiB fits humanize's uint64 but not the int64 of the JSON option.
		{"max_request_body too large", `
	mcp_gateway {
		max_request_body 9EiB
	}`, `max_request_body "9EiB": `, 3},
		{"session_timeout that is not a duration", `
	mcp_gateway {
		session_timeout forever
	}`, `session_timeout "forever": `, 3},
		{"session_timeout with two durations", `
	mcp_gateway {
		session_timeout 1h 2h
	}`, `wrong argument count or unexpected line ending`, 3},
		{"oci_ref without a reference", `
	mcp_gateway {
		oci_ref
	}`, `wrong argument count or unexpected line ending`, 3},
		{"oci_ref with two references", `
	mcp_gateway {
		oci_ref a/b:1 c/d:2
	}`, `wrong argument count or unexpected line ending`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := adapt(t, siteBlock(strings.TrimPrefix(tt.snippet, "\n")))
			if err == nil {
				t.Fatalf("adapted without error, want %q; got:\n%s", tt.want, out)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if tt.line > 0 {
				if at := fmt.Sprintf(", at Caddyfile:%d", tt.line); !strings.Contains(msg, at) {
					t.Errorf("error %q does not point at line %d (%q)", msg, tt.line, at)
				}
			}
		})
	}
}

// TestCaddyfileKindErrorIsDeterministic: a server block with several options
// of the wrong kind must always report the same one (the first in the
// file), not whichever a map iteration happens to give.
func TestCaddyfileKindErrorIsDeterministic(t *testing.T) {
	src := siteBlock(`	mcp_gateway {
		server a {
			remote https://example.com/mcp
			volume /data:/data
			network host
			cpus 2
			dir /srv
		}
	}`)
	const want = `server a: option "volume" does not apply to a remote server (only container)`
	for i := range 20 {
		_, err := adapt(t, src)
		if err == nil {
			t.Fatal("adapted without error")
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("attempt %d: error %q does not contain %q", i+1, err, want)
		}
	}
}
