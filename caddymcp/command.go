package caddymcp

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-mcp/caddy-mcp/caddymcp/demo"
	"github.com/caddy-mcp/caddy-mcp/mcpauth"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mcp",
		Usage: "<command> [<args...>]",
		Short: "Commands for the MCP gateway",
		Long: `
Commands that support the MCP gateway. Run 'caddy mcp <command> --help'
for the details of each.`,
		CobraFunc: func(cmd *cobra.Command) {
			for _, newCommand := range mcpCommands {
				cmd.AddCommand(newCommand())
			}
		},
	})
}

// mcpCommands are the constructors of the subcommands of 'caddy mcp'. To add
// a subcommand, write a function that returns its *cobra.Command and list
// it here, or, from another package, pass it to RegisterCommand.
var mcpCommands = []func() *cobra.Command{
	demoServerCommand,
	mcpauth.APIKeyCommand,
}

// RegisterCommand adds a subcommand to 'caddy mcp'; call it from an init.
func RegisterCommand(newCommand func() *cobra.Command) {
	mcpCommands = append(mcpCommands, newCommand)
}

func demoServerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo-server",
		Short: "Serves the built-in demo MCP server over stdin and stdout",
		Long: `
Serves a small demo MCP server over stdin and stdout, so that examples of the
gateway need nothing installed. It has the tools echo, add, time, slow and
ask, the prompt greeting and the resource demo://readme.

It is meant to be started by an MCP client or by the gateway, as a stdio
server with the command {mcp.executable} and the arguments mcp demo-server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Stopping on a signal is a normal way to end a stdio server, not
			// a failure.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := demo.Run(ctx)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
}
