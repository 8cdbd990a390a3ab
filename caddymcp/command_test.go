package caddymcp

import (
	"bytes"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

// TestRegistered runs `caddy mcp api-key --hash <key>` as Caddy's command
// line builds it.
func TestAPIKeyCommandRegistered(t *testing.T) {
	mcp, ok := caddycmd.Commands()["mcp"]
	if !ok {
		t.Fatal("no `caddy mcp` command")
	}
	root := &cobra.Command{Use: "mcp"}
	mcp.CobraFunc(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"api-key", "--hash", "mcpk_x"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := mcpauth.HashKey("mcpk_x") + "\n"; out.String() != want {
		t.Errorf("caddy mcp api-key --hash printed %q, want %q", out.String(), want)
	}
}
