package catalog

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxDocument bounds a server document read from a registry.
const maxDocumentFetch = 1 << 20

// serverURL is where a server's document is: the argument itself when it is
// a URL (any of the official registry's forms: /v0.1/servers/{name}/versions/
// {version|latest}, the same under /v0, the legacy /v0/servers/{id}), else
// a server name at the registry's base URL, its latest version.
func serverURL(arg, registryBase string) (string, error) {
	if strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") {
		u, err := url.Parse(arg)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("server URL %q: not a valid URL", arg)
		}
		if !strings.Contains(u.EscapedPath(), "/servers/") {
			return "", fmt.Errorf("server URL %q: want …/v0.1/servers/{name}/versions/{version|latest}, …/v0/servers/{name}/versions/…, or …/v0/servers/{id}", arg)
		}
		return arg, nil
	}
	if registryBase == "" {
		return "", fmt.Errorf("%q is a server name, not a URL: give the registry with --registry <base URL> (for example https://registry.modelcontextprotocol.io)", arg)
	}
	base, err := url.Parse(registryBase)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("--registry %q: want an http or https base URL", registryBase)
	}
	return strings.TrimSuffix(registryBase, "/") + "/v0.1/servers/" + url.PathEscape(arg) + "/versions/latest", nil
}

// fetchServer reads a server's document from a registry.
func fetchServer(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentFetch+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("unknown server: %s answered 404 Not Found", u)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetching %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b[:min(len(b), 200)])))
	case len(b) > maxDocumentFetch:
		return nil, fmt.Errorf("fetching %s: the document is over 1 MiB", u)
	}
	return b, nil
}
