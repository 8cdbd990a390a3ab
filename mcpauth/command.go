package mcpauth

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// APIKeyCommand is `caddy mcp api-key`: it makes API keys and their hashes
// for the config, which holds the hash only.
func APIKeyCommand() *cobra.Command {
	var hashOf string
	cmd := &cobra.Command{
		Use:   "api-key [--hash <key> | --hash -]",
		Short: "Makes an API key and the hash that the config holds",
		Long: `
Prints a new random API key and its hash. Give the key to the client, and
put the hash in the config, which never holds keys in clear:

    auth {
        api_key <principal> sha256:<hex>
    }

With --hash, prints the hash of an existing key instead; --hash - reads
the key from the standard input, which keeps it out of the shell history.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("hash") {
				key := hashOf
				if key == "-" {
					line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
					if err != nil && line == "" {
						return fmt.Errorf("reading the key from the standard input: %v", err)
					}
					key = strings.TrimRight(line, "\r\n")
				}
				if key == "" {
					return errors.New("--hash: the key is empty")
				}
				fmt.Fprintln(cmd.OutOrStdout(), HashKey(key))
				return nil
			}
			key, err := NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key:  %s\nhash: %s\n", key, HashKey(key))
			return nil
		},
	}
	cmd.Flags().StringVar(&hashOf, "hash", "", "print the hash of this key (- reads it from the standard input)")
	return cmd
}
