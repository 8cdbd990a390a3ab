package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() {
	caddymcp.RegisterCommand(importCommand)
	caddymcp.RegisterCommand(catalogCommand)
	caddymcp.RegisterCommand(gatewayCommand)
}

func importCommand() *cobra.Command {
	var push, subject bool
	var registry string
	var vars []string
	cmd := &cobra.Command{
		Use:   "import <server URL | name> <oci repository[:tag]>",
		Short: "Pins a server of the official MCP Registry as an OCI artifact",
		Long: `
Reads a server from the official MCP Registry (or any registry that speaks
its API), maps it to how the gateway runs it, builds a catalog artifact of it
(OCI 1.1), prints its digest reference (repository@sha256:…) and, with
--push, pushes it. The same server document always gives the same digest.

The server is a URL in any of the registry's forms
(…/v0.1/servers/{name}/versions/{version|latest}, the same under /v0, the
legacy …/v0/servers/{id}), or a name with --registry <base URL>. Credentials
for the OCI registry come from the Docker config, as for docker push.

    caddy mcp import --push io.github.owner/server ghcr.io/team/mcp --registry https://registry.modelcontextprotocol.io
    caddy mcp gateway --oci-ref $(caddy mcp import --push <server> <repository>)`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			values, err := parseVars(vars)
			if err != nil {
				return err
			}
			repo, tag, err := parseRepository(args[1])
			if err != nil {
				return err
			}
			u, err := serverURL(args[0], registry)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			doc, err := fetchServer(ctx, http.DefaultClient, u)
			if err != nil {
				return err
			}
			s, err := decodeServerJSON(doc)
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			entry, notes, err := mapServer(s, values)
			for _, n := range notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
			}
			if err != nil {
				return err
			}
			var subj *v1.Descriptor
			if entry.Image != "" && subject {
				if subj, err = imageDescriptor(ctx, entry.Image); err != nil {
					return err
				}
			}
			a, err := build(&Catalog{SchemaVersion: schemaVersion, Servers: []Entry{entry}}, subj)
			if err != nil {
				return err
			}
			if push {
				if _, err := pushWithProgress(ctx, cmd.ErrOrStderr(), a, repo, tag); err != nil {
					return err
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), repo.Digest(a.digest.String()).String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&push, "push", false, "push the artifact to the repository")
	cmd.Flags().BoolVar(&subject, "subject", true, "for an oci package, make the server's image the artifact's subject (resolves the image)")
	cmd.Flags().StringVar(&registry, "registry", "", "base URL of the registry, for a server given by name")
	cmd.Flags().StringArrayVar(&vars, "var", nil, "NAME=VALUE for a variable of the server's URL or arguments (not for secrets: they stay placeholders)")
	return cmd
}

func catalogCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog push|pull|inspect",
		Short: "Pushes, pulls and inspects catalogs of MCP servers (OCI artifacts)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "push <catalog.json> <oci repository[:tag]>",
		Short: "Pushes a catalog file as an artifact and prints its digest reference",
		Long: `
Pushes a catalog, a JSON file {"schema_version": 1, "servers": [...]} (what
'caddy mcp catalog pull' writes), as an OCI artifact, and prints its digest
reference. Each server is checked as the gateway would check it first.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readLimited(args[0])
			if err != nil {
				return err
			}
			c, err := decodeCatalog(b)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			repo, tag, err := parseRepository(args[1])
			if err != nil {
				return err
			}
			a, err := build(c, nil)
			if err != nil {
				return err
			}
			d, err := pushWithProgress(cmd.Context(), cmd.ErrOrStderr(), a, repo, tag)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), d.String())
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "pull <reference>",
		Short: "Pulls a catalog and prints it (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			steps(cmd.ErrOrStderr())("pulling " + args[0])
			c, _, err := Pull(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(c)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "inspect <reference>",
		Short: "Shows a catalog's servers, how each runs, and what each needs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			steps(cmd.ErrOrStderr())("pulling " + args[0])
			c, d, err := Pull(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, d.String())
			for _, e := range c.Servers {
				fmt.Fprintf(w, "\n%s  %s", e.Server.Name, describe(&e.Server))
				if e.Source != "" {
					fmt.Fprintf(w, "\n  from %s %s", e.Source, e.Version)
				}
				for _, v := range e.Variables {
					need := "optional"
					if v.Required {
						need = "required"
					}
					if v.Secret {
						need += ", secret"
					}
					fmt.Fprintf(w, "\n  env %s (%s) %s", v.Name, need, v.Description)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	})
	return cmd
}

func gatewayCommand() *cobra.Command {
	var refs []string
	var listen string
	cmd := &cobra.Command{
		Use:   "gateway --oci-ref <reference> [--listen <addr>]",
		Short: "Serves the servers of catalogs, quickly (no config file)",
		Long: `
A quick-start gateway, in the manner of 'caddy reverse-proxy': serves the
servers of one or more catalogs over plain HTTP at --listen, every server at
/servers/<name>/mcp and all at once at /mcp. For anything more, write a
Caddyfile with mcp_gateway { oci_ref <reference> }.

    caddy mcp gateway --oci-ref $(caddy mcp import --push <server> <repository>)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(refs) == 0 {
				return errors.New("--oci-ref is required")
			}
			handler, _ := json.Marshal(map[string]any{"handler": "mcp_gateway", "oci_refs": refs})
			httpApp, _ := json.Marshal(map[string]any{"servers": map[string]any{"mcp": map[string]any{
				"listen": []string{listen},
				"routes": []map[string]any{{"handle": []json.RawMessage{handler}}},
			}}})
			cfg := &caddy.Config{
				Admin:   &caddy.AdminConfig{Disabled: true},
				AppsRaw: caddy.ModuleMap{"http": httpApp},
			}
			if err := caddy.Run(cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "serving %s on http://%s/mcp\n", strings.Join(refs, ", "), listen)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			return caddy.Stop()
		},
	}
	cmd.Flags().StringArrayVar(&refs, "oci-ref", nil, "a catalog reference (repeatable)")
	cmd.Flags().StringVar(&listen, "listen", "localhost:8080", "the address to serve on")
	return cmd
}

// parseRepository reads "repository[:tag]" (no digest: the content decides it).
func parseRepository(s string) (name.Repository, string, error) {
	if strings.Contains(s, "@") {
		return name.Repository{}, "", fmt.Errorf("%q: give a repository, optionally with a tag, not a digest: the digest is the content's", s)
	}
	tag := ""
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s, tag = s[:i], s[i+1:]
	}
	repo, err := name.NewRepository(s)
	if err != nil {
		return name.Repository{}, "", fmt.Errorf("repository %q: %w", s, err)
	}
	if tag != "" {
		if _, err := name.NewTag(s + ":" + tag); err != nil {
			return name.Repository{}, "", fmt.Errorf("tag %q: %w", tag, err)
		}
	}
	return repo, tag, nil
}

// parseVars reads --var NAME=VALUE flags.
func parseVars(vars []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vars {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: want NAME=VALUE", v)
		}
		out[k] = val
	}
	return out, nil
}

// imageDescriptor resolves an image for an artifact's subject.
func imageDescriptor(ctx context.Context, image string) (*v1.Descriptor, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, fmt.Errorf("the server's image %q: %w", image, err)
	}
	d, err := remote.Head(ref, registryOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("resolving the server's image %s for the artifact's subject: %w (--subject=false leaves it out)", image, err)
	}
	return &v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}, nil
}

// pushWithProgress pushes, saying each step when w is a terminal.
func pushWithProgress(ctx context.Context, w io.Writer, a *artifact, repo name.Repository, tag string) (name.Digest, error) {
	return push(a, repo, tag, steps(w), registryOptions(ctx)...)
}

// steps returns what reports a push's steps: on w if it is a terminal,
// nowhere otherwise (the output stays clean for $(…)).
func steps(w io.Writer) func(string) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func(string) {}
	}
	return func(step string) { fmt.Fprintln(w, step) }
}

// describe says how the gateway runs a server.
func describe(s *caddymcp.ServerConfig) string {
	switch {
	case s.Remote != nil:
		return "remote " + s.Remote.URL
	case s.Container != nil:
		return "container " + s.Container.Image
	case s.Stdio != nil:
		return "stdio " + strings.Join(append([]string{s.Stdio.Command}, s.Stdio.Args...), " ")
	}
	return ""
}

// readLimited reads a file of at most maxCatalog bytes.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCatalog+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCatalog {
		return nil, fmt.Errorf("%s: over %d bytes", path, maxCatalog)
	}
	return b, nil
}
