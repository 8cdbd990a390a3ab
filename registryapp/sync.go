package registryapp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/caddy-mcp/caddy-mcp/catalog"
	"github.com/caddyserver/caddy/v2"
	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"go.uber.org/zap"
)

// SyncSettings make the registry follow an upstream registry that speaks
// the official API (the official MCP Registry, or another caddy-mcp): the
// latest version of every server whose name matches, mapped as `caddy mcp
// import` maps it, becomes a record, created or replaced (enabled flag,
// tags and probe settings kept), through the same checks as an API write.
type SyncSettings struct {
	// URL is the upstream registry's base URL, e.g.
	// https://registry.modelcontextprotocol.io.
	URL string `json:"url"`
	// Names are path.Match patterns on the official names
	// (io.github.owner/*); none: every server.
	Names []string `json:"names,omitempty"`
	// Interval between rounds; default 1h.
	Interval caddy.Duration `json:"interval,omitempty"`
}

// syncStateKey keeps where the last complete round left off (its newest
// updatedAt), so that a restart asks only for what changed since.
const syncStateKey = storePrefix + "/sync.json"

// validate checks the settings; errors name the option.
func (s *SyncSettings) validate() error {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("sync: url %q: want an http or https base URL", s.URL)
	}
	for _, p := range s.Names {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("sync: names: pattern %q: %v", p, err)
		}
	}
	if s.Interval < 0 {
		return errors.New("sync: interval must be positive")
	}
	return nil
}

// syncLoop runs a round at start and then every interval, as the config
// in force says (a reload that turns sync on takes effect within a minute).
func (r *registry) syncLoop(ctx context.Context) {
	for {
		interval := time.Minute
		if cfg := r.cfg.Load().sync; cfg != nil {
			if err := r.syncOnce(ctx, cfg); err != nil && ctx.Err() == nil {
				r.log().Warn("syncing from an upstream registry", zap.String("url", cfg.URL), zap.Error(err))
			}
			interval = time.Duration(cmp.Or(cfg.Interval, caddy.Duration(time.Hour)))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// syncOnce pages through the servers updated since the last round.
func (r *registry) syncOnce(ctx context.Context, cfg *SyncSettings) error {
	since, err := r.syncSince(ctx)
	if err != nil {
		return err
	}
	newest := since
	cursor := ""
	for {
		q := url.Values{"version": {"latest"}, "limit": {"100"}}
		if !since.IsZero() {
			q.Set("updated_since", since.Format(time.RFC3339Nano))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page, err := fetchPage(ctx, strings.TrimSuffix(cfg.URL, "/")+"/v0.1/servers?"+q.Encode())
		if err != nil {
			return err
		}
		for _, item := range page.Servers {
			if m := item.Meta.Official; m != nil && m.UpdatedAt.After(newest) {
				newest = m.UpdatedAt
			}
			if !matchesAny(cfg.Names, item.Server.Name) || (item.Meta.Official != nil && item.Meta.Official.Status != "active") {
				continue
			}
			e, _, err := catalog.Map(&item.Server)
			if err == nil {
				_, err = r.upsert(ctx, e)
			}
			if err != nil {
				r.log().Warn("sync: server left out", zap.String("server", item.Server.Name), zap.Error(err))
			}
		}
		if page.Metadata.NextCursor == "" || len(page.Servers) == 0 {
			break
		}
		cursor = page.Metadata.NextCursor
	}
	if newest.After(since) {
		b, _ := json.Marshal(map[string]time.Time{"updated_since": newest})
		return r.store.storage.Store(ctx, syncStateKey, b)
	}
	return nil
}

// syncSince reads where the last complete round left off.
func (r *registry) syncSince(ctx context.Context) (time.Time, error) {
	b, err := r.store.storage.Load(ctx, syncStateKey)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the sync state: %w", err)
	}
	var st struct {
		UpdatedSince time.Time `json:"updated_since"`
	}
	if json.Unmarshal(b, &st) != nil {
		return time.Time{}, nil // damaged: start over, which only rewrites
	}
	return st.UpdatedSince, nil
}

// fetchPage reads one page of the upstream's server list.
func fetchPage(ctx context.Context, u string) (*apiv0.ServerListResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	var page apiv0.ServerListResponse
	if err := json.Unmarshal(b, &page); err != nil {
		return nil, fmt.Errorf("%s: not a server list: %v", u, err)
	}
	return &page, nil
}

func matchesAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
