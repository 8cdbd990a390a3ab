package registryapp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/spf13/cobra"
)

func init() {
	caddymcp.RegisterCommand(registryCommand)
}

func registryCommand() *cobra.Command {
	var admin string
	cmd := &cobra.Command{
		Use:   "registry import <oci reference>",
		Short: "Imports a catalog into the running mcp_registry app",
	}
	imp := &cobra.Command{
		Use:   "import <oci reference>",
		Short: "Imports every server of a catalog into the running registry",
		Long: `
Asks the running Caddy, through its admin API, to import a catalog (an OCI
artifact of 'caddy mcp import' or 'caddy mcp catalog push') into its
mcp_registry app: each server becomes a record, created or replaced, checked
like any write. Prints each server's result; exits non-zero if one was
refused.

    caddy mcp registry import $(caddy mcp import --push <server> <repository>)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]string{"ref": args[0]})
			u := "http://" + strings.TrimPrefix(admin, "http://") + "/mcp-registry/import"
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, u, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("the admin API at %s: %w (is Caddy running?)", admin, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
			var out struct {
				Ref     string         `json:"ref"`
				Servers []importResult `json:"servers"`
				Error   *apiError      `json:"error"`
			}
			if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != http.StatusOK {
				if out.Error != nil {
					return fmt.Errorf("%s: %s", resp.Status, out.Error.Msg)
				}
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			refused := 0
			for _, s := range out.Servers {
				line := s.Name + ": " + s.Result
				if s.Error != nil {
					line += ": " + s.Error.Msg
					refused++
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			if refused > 0 {
				return fmt.Errorf("%d of %d servers of %s refused", refused, len(out.Servers), out.Ref)
			}
			return nil
		},
	}
	imp.Flags().StringVar(&admin, "admin", "localhost:2019", "the address of Caddy's admin API")
	cmd.AddCommand(imp)
	return cmd
}
