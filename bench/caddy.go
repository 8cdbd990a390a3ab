package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// repoRoot finds the caddy-mcp module's root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/caddy-mcp/caddy-mcp\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench inside the caddy-mcp module (no go.mod of github.com/caddy-mcp/caddy-mcp above the working directory)")
		}
		dir = parent
	}
}

// buildCaddy builds ./cmd/caddy without the race detector into dir.
func buildCaddy(root, dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
}

// caddyProc is the Caddy under test.
type caddyProc struct {
	*proc
	admin string // http://127.0.0.1:port
	base  string // http://127.0.0.1:port of the site
}

// Paths on the site. The gateway's one server is named "up".
const (
	rpPath        = "/rp/mcp"
	oneServerPath = "/servers/up/mcp"
	aggregatePath = "/mcp"
	serverName    = "up"
)

// caddyConfig is one config holding both paths under test: a plain
// reverse_proxy to the upstream under /rp/, and the gateway, with the same
// upstream as its one remote server, for everything else. Logs are at WARN so
// that logging does not weigh on the measurements.
//
// The reverse proxy's idle pool per host is raised from Caddy's default (32)
// to rpIdle, the size of the gateway's own upstream pool (256), so that at 64
// sessions the baseline does not churn connections the gateway keeps.
func caddyConfig(dir, admin, listen, upstreamURL string, rpIdle int) ([]byte, error) {
	upstreamHost := strings.TrimPrefix(strings.TrimSuffix(upstreamURL, "/mcp"), "http://")
	keepAlive := map[string]any{}
	if rpIdle > 0 {
		keepAlive["max_idle_conns_per_host"] = rpIdle
	}
	cfg := map[string]any{
		"admin":   map[string]any{"listen": admin},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"storage": map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")},
		"apps": map[string]any{"http": map[string]any{
			"grace_period": "2s",
			"servers": map[string]any{"bench": map[string]any{
				"listen":          []string{listen},
				"protocols":       []string{"h1", "h2c"},
				"automatic_https": map[string]any{"disable": true},
				"routes": []map[string]any{
					{
						"match": []map[string]any{{"path": []string{"/rp/*"}}},
						"handle": []map[string]any{{
							"handler":   "reverse_proxy",
							"upstreams": []map[string]any{{"dial": upstreamHost}},
							"transport": map[string]any{"protocol": "http", "keep_alive": keepAlive},
						}},
					},
					{
						"handle": []map[string]any{{
							"handler": "mcp_gateway",
							"servers": []map[string]any{{
								"name":   serverName,
								"remote": map[string]any{"url": upstreamURL},
							}},
						}},
					},
				},
			}},
		}},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// startCaddy runs bin with the config and waits until the site answers.
func startCaddy(bin, dir, upstreamURL string, rpIdle int) (*caddyProc, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg, err := caddyConfig(dir, admin, listen, upstreamURL, rpIdle)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	p, err := startProc("caddy", cmd, nil)
	if err != nil {
		return nil, err
	}
	c := &caddyProc{proc: p, admin: "http://" + admin, base: "http://" + listen}
	if err := waitHTTP(p, c.admin+"/config/"); err != nil {
		p.stop()
		return nil, err
	}
	if err := waitHTTP(p, c.base+"/"); err != nil {
		p.stop()
		return nil, err
	}
	return c, nil
}

// adminGet fetches a path of Caddy's admin endpoint.
func (c *caddyProc) adminGet(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.admin+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return b, nil
}

// goMem is what Caddy's Go runtime reports about its memory.
type goMem struct {
	HeapInuse  int64 // go_memstats_heap_inuse_bytes
	StackInuse int64 // go_memstats_stack_inuse_bytes
	Goroutines int64 // go_goroutines
	RSS        int64 // VmRSS of the process
}

// memAfterGC makes Caddy collect garbage (the admin endpoint's heap profile
// with gc=1 runs runtime.GC first), then reads its Go memory metrics from
// the admin endpoint's /metrics, and its RSS from /proc.
func (c *caddyProc) memAfterGC(ctx context.Context) (goMem, error) {
	var m goMem
	for range 2 { // the second cycle frees what the first one's finalizers let go
		if _, err := c.adminGet(ctx, "/debug/pprof/heap?gc=1"); err != nil {
			return m, err
		}
	}
	b, err := c.adminGet(ctx, "/metrics")
	if err != nil {
		return m, err
	}
	vals, err := parseMetrics(string(b), "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
	if err != nil {
		return m, err
	}
	m.HeapInuse, m.StackInuse, m.Goroutines = int64(vals[0]), int64(vals[1]), int64(vals[2])
	m.RSS, err = rssBytes(c.pid())
	return m, err
}

// goroutines reads go_goroutines alone, without a GC.
func (c *caddyProc) goroutines(ctx context.Context) (int64, error) {
	b, err := c.adminGet(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	vals, err := parseMetrics(string(b), "go_goroutines")
	if err != nil {
		return 0, err
	}
	return int64(vals[0]), nil
}

// allocBytes reads go_memstats_alloc_bytes_total: all bytes Caddy has
// allocated since it started.
func (c *caddyProc) allocBytes(ctx context.Context) (int64, error) {
	b, err := c.adminGet(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	vals, err := parseMetrics(string(b), "go_memstats_alloc_bytes_total")
	if err != nil {
		return 0, err
	}
	return int64(vals[0]), nil
}

// parseMetrics finds unlabelled samples in Prometheus text format.
func parseMetrics(text string, names ...string) ([]float64, error) {
	vals := make([]float64, len(names))
	found := make([]bool, len(names))
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for i, n := range names {
			if name == n {
				v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				if err != nil {
					return nil, fmt.Errorf("metric %s: %v", n, err)
				}
				vals[i], found[i] = v, true
			}
		}
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("metric %s not found", names[i])
		}
	}
	return vals, sc.Err()
}

// cpuProfile takes a CPU profile of Caddy for the given time and writes it
// to path.
func (c *caddyProc) cpuProfile(ctx context.Context, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	return c.saveAdmin(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), path)
}

// saveAdmin writes what a path of the admin endpoint answers to a file.
func (c *caddyProc) saveAdmin(ctx context.Context, path, file string) error {
	b, err := c.adminGet(ctx, path)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
