package caddymcp

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// caddyfileSeeds are what follows "mcp_gateway": every option, every kind
// of server with its options, and broken shapes.
var caddyfileSeeds = []string{
	``,
	`{
}`,
	`{
	aggregate_path /ai/mcp
	server_path /s/
	allowed_origins https://app.example.com *
	max_request_body 1MiB
	session_timeout 90m
	registry
	oci_ref ghcr.io/example/catalog@sha256:0000000000000000000000000000000000000000000000000000000000000000
}`,
	`{
	server files {
		stdio npx -y @modelcontextprotocol/server-filesystem /srv
		env API_TOKEN {env.FILES_TOKEN}
		env NODE_ENV production
		dir /srv
		allow_tools read_* list_*
		deny_tools read_secret*
		max_message_size 32MiB
		call_timeout 10s
	}
}`,
	`{
	server sandbox {
		container ghcr.io/example/sandbox:1 --flag
		volume /data:/data:ro
		network bridge
		cpus 0.5
		memory 256m
		pids_limit 64
		read_only
		runtime podman
		max_concurrent_calls 2
		queue_timeout 3s
	}
}`,
	`{
	server search {
		remote "https://search.example.com/mcp?api_key={env.KEY}"
		transport sse
		header Authorization "Bearer {env.TOKEN}"
		timeout 2m30s
		max_concurrent_calls 8
	}
}`,
	`{
	server a {
		stdio cat
		remote https://h/mcp
	}
}`,
	`{
	server a {
		remote https://h/mcp
		volume /x:/y
	}
}`,
	`{
	server
}`,
	`{
	server a b {
	}
}`,
	`{
	server a {
		pids_limit lots
		max_concurrent_calls -1
		max_message_size 99999999999999999999999
	}
}`,
	`{
	server a {
		stdio <<EOF
		cat
		EOF
	}
}`,
	`{
	max_request_body 18446744073709551615
	session_timeout -1s
}`,
	`everything`,
	`{
	server a {
		stdio cat
		{
	}
}`,
	`{ compression on }`,
	"{\n\tserver \"\x00\" {\n\t\tstdio \"a b\"\n\t}\n}",
}

// FuzzGatewayCaddyfile: the mcp_gateway Caddyfile parser never panics on
// any tokens after the directive name, and whatever it accepts is a config
// that JSON carries whole: marshalled, unmarshalled into a Gateway and
// marshalled again, it comes out the same. Validating its servers never
// panics either.
func FuzzGatewayCaddyfile(f *testing.F) {
	for _, s := range caddyfileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		tokens, err := caddyfile.Tokenize([]byte("mcp_gateway "+rest), "Caddyfile")
		if err != nil {
			return // not Caddyfile syntax: the lexer's to refuse
		}
		g := new(Gateway)
		if err := g.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		first, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("marshalling the parsed config: %v", err)
		}
		again := new(Gateway)
		if err := json.Unmarshal(first, again); err != nil {
			t.Fatalf("the parsed config's JSON does not unmarshal: %v\n%s", err, first)
		}
		second, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("JSON changed in a round trip:\n%s\n%s", first, second)
		}
		for _, s := range g.Servers {
			_ = s.Validate() // may refuse, must not panic
		}
	})
}
