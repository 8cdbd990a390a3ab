package interceptors

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// provisioned provisions m as Caddy would, failing the test on an error.
func provisioned[M caddy.Provisioner](t *testing.T, m M) M {
	t.Helper()
	if err := provision(t, m); err != nil {
		t.Fatalf("provisioning %T: %v", m, err)
	}
	return m
}

func provision(t *testing.T, m caddy.Provisioner) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return m.Provision(ctx)
}

// newCall is a call of server/tool by alice in session s1.
func newCall(server, tool, args string) *caddymcp.Call {
	return &caddymcp.Call{
		Server:    server,
		Tool:      tool,
		Principal: "alice",
		Session:   "s1",
		Arguments: json.RawMessage(args),
		Started:   time.Now(),
	}
}

// unmarshalModule reads a Caddyfile line the way the gateway's
// `interceptors { }` block does: by the module's ID, from its name token.
func unmarshalModule(t *testing.T, input string) (caddyfile.Unmarshaler, error) {
	t.Helper()
	d := caddyfile.NewTestDispenser(input)
	if !d.Next() {
		t.Fatalf("no tokens in %q", input)
	}
	return caddyfile.UnmarshalModule(d, "mcp.interceptors."+d.Val())
}

// TestCaddyfileToJSON adapts each module's Caddyfile, checks the JSON it
// makes, and that the JSON loads back to the same config, which
// provisions.
func TestCaddyfileToJSON(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ caddyfile, json string }{
		{`call_log`, `{}`},
		{`call_log {
			level warn
		}`, `{"level":"warn"}`},
		{`secret_scan {
			pattern internal_key "\bik-[0-9a-f]{16}\b"
			pattern other x+
			allow ^AKIA[0-9A-Z]*EXAMPLE$ "^\*+$"
			arguments off
			results on
		}`, `{"patterns":{"internal_key":"\\bik-[0-9a-f]{16}\\b","other":"x+"},"allow":["^AKIA[0-9A-Z]*EXAMPLE$","^\\*+$"],"arguments":false,"results":true}`},
		{`size_limit {
			arguments 64KiB
			result 1MiB
		}`, `{"arguments":65536,"result":1048576}`},
		{`rate_limit {
			rate 10/1m
			burst 3
			per principal server
			per session
		}`, `{"events":10,"window":60000000000,"burst":3,"per":["principal","server","session"]}`},
		{`tool_filter {
			allow github/* fs/read_*
			deny */delete_*
			allow fs/list
		}`, `{"allow":["github/*","fs/read_*","fs/list"],"deny":["*/delete_*"]}`},
		{fmt.Sprintf(`exec {
			command %q -exit 3 "two words"
			timeout 2s
			after
		}`, exe), fmt.Sprintf(`{"command":%q,"args":["-exit","3","two words"],"timeout":2000000000,"after":true}`, exe)},
		{`http http://127.0.0.1:9/policy {
			header Authorization "Bearer {env.POLICY_TOKEN}"
			header X-Gateway caddy
			timeout 1500ms
			fail_open
			after
		}`, `{"url":"http://127.0.0.1:9/policy","headers":{"Authorization":"Bearer {env.POLICY_TOKEN}","X-Gateway":"caddy"},"timeout":1500000000,"fail_open":true,"after":true}`},
		{`http {
			url https://policy.example/check
		}`, `{"url":"https://policy.example/check"}`},
	} {
		name := strings.Fields(tc.caddyfile)[0]
		t.Run(name, func(t *testing.T) {
			unm, err := unmarshalModule(t, tc.caddyfile)
			if err != nil {
				t.Fatalf("unmarshaling %q: %v", tc.caddyfile, err)
			}
			got, err := json.Marshal(unm)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.json {
				t.Fatalf("JSON of %q:\n got %s\nwant %s", tc.caddyfile, got, tc.json)
			}
			mod, err := caddy.GetModule("mcp.interceptors." + name)
			if err != nil {
				t.Fatal(err)
			}
			back := mod.New()
			if err := json.Unmarshal(got, back); err != nil {
				t.Fatalf("loading %s: %v", got, err)
			}
			if !reflect.DeepEqual(back, unm) {
				t.Fatalf("JSON round trip changed the config:\n got %#v\nwant %#v", back, unm)
			}
			if _, ok := back.(caddymcp.Interceptor); !ok {
				t.Fatalf("%T is not an interceptor", back)
			}
			provisioned(t, back.(caddy.Provisioner))
		})
	}
}

// TestCaddyfileLeadingArgs checks that the modules without a positional
// argument refuse one.
func TestCaddyfileLeadingArgs(t *testing.T) {
	for _, in := range []string{
		"call_log warn", "secret_scan on", "size_limit 1MiB", "rate_limit 10/1m",
		"tool_filter github/*", "exec /bin/true", "http http://a http://b",
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), "wrong argument count") {
			t.Errorf("%q: got error %v, want a wrong argument count", in, err)
		}
	}
}

func TestCapText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456…"},
		// "é" is 2 bytes: a cut inside it moves back before it.
		{"012345é789", 10, "012345…"},
	} {
		got := capText(tc.in, tc.n)
		if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("capText(%q, %d) = %q, want %q (at most %d bytes, valid UTF-8)", tc.in, tc.n, got, tc.want, tc.n)
		}
	}
}
