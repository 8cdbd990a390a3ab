package benchkit

import (
	"bufio"
	"bytes"
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

// RepoRoot finds the caddy-mcp module's root from the working directory:
// Caddy is built from there.
func RepoRoot() (string, error) {
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

// BuildCaddy builds ./cmd/caddy of the module at root into dir, without the
// race detector, which would weigh on every figure.
func BuildCaddy(root, dir string, logw io.Writer) (string, error) {
	fmt.Fprintln(logw, "building ./cmd/caddy (without -race)...")
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
}

// SiteName is the HTTP server's name in every config.
const SiteName = "bench"

// SiteConfig is what every Caddy of the benchmarks shares: its admin
// address, logs at WARN (logging must not weigh on the measurements), the
// storage, and one plain-HTTP site with the given routes.
func SiteConfig(admin, listen, storage string, routes []map[string]any) map[string]any {
	return map[string]any{
		"admin":   map[string]any{"listen": admin},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"storage": map[string]any{"module": "file_system", "root": storage},
		"apps": map[string]any{"http": map[string]any{
			"grace_period": "2s",
			"servers": map[string]any{SiteName: map[string]any{
				"listen":          []string{listen},
				"protocols":       []string{"h1", "h2c"},
				"automatic_https": map[string]any{"disable": true},
				"routes":          routes,
			}},
		}},
	}
}

// Caddy is a Caddy under test.
type Caddy struct {
	*Proc
	Admin string // http://127.0.0.1:port
	Base  string // http://127.0.0.1:port of the site
}

// StartCaddy writes the config that config makes for the admin and site
// addresses into dir, runs bin with it there (dir is its home too), and
// waits up to within until both addresses answer. env (NAME=value) is added
// to Caddy's environment alone.
func StartCaddy(name, bin, dir string, within time.Duration, config func(admin, listen string) map[string]any, env ...string) (*Caddy, error) {
	admin, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	listen, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg, err := json.MarshalIndent(config(admin, listen), "", "  ")
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
	cmd.Env = append(cmd.Env, env...)
	p, err := StartProc(name, cmd, nil)
	if err != nil {
		return nil, err
	}
	c := &Caddy{Proc: p, Admin: "http://" + admin, Base: "http://" + listen}
	if err := WaitHTTP(p, c.Admin+"/config/", within); err != nil {
		p.Stop()
		return nil, err
	}
	if err := WaitHTTP(p, c.Base+"/", within); err != nil {
		p.Stop()
		return nil, err
	}
	return c, nil
}

// adminClient talks to admin endpoints; its own pool, so that a reload of
// the site does not disturb it.
var adminClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

// AdminDo sends a request to Caddy's admin endpoint and returns the answer;
// a status other than 200 is an error.
func (c *Caddy) AdminDo(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Admin+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b, nil
}

// AdminGet fetches a path of Caddy's admin endpoint.
func (c *Caddy) AdminGet(ctx context.Context, path string) ([]byte, error) {
	return c.AdminDo(ctx, http.MethodGet, path, nil)
}

// SaveAdmin writes what a path of the admin endpoint answers to a file.
func (c *Caddy) SaveAdmin(ctx context.Context, path, file string) error {
	b, err := c.AdminGet(ctx, path)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// CPUProfile takes a CPU profile of Caddy over d and writes it to file.
func (c *Caddy) CPUProfile(ctx context.Context, d time.Duration, file string) error {
	return c.SaveAdmin(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", ProfileSeconds(d)), file)
}

// ProfileSeconds is d in the whole seconds, at least one, that a CPU
// profile runs: pprof's unit.
func ProfileSeconds(d time.Duration) int {
	return max(1, int(d.Round(time.Second)/time.Second))
}

// GoMem is what Caddy's Go runtime reports about its memory.
type GoMem struct {
	HeapInuse  int64 // go_memstats_heap_inuse_bytes
	StackInuse int64 // go_memstats_stack_inuse_bytes
	Goroutines int64 // go_goroutines
	RSS        int64 // VmRSS of the process
}

// MemAfterGC makes Caddy collect garbage (the admin endpoint's heap
// profile with gc=1 runs runtime.GC first), then reads its Go memory
// metrics from the admin endpoint's /metrics, and its RSS from /proc.
func (c *Caddy) MemAfterGC(ctx context.Context) (GoMem, error) {
	var m GoMem
	for range 2 { // the second cycle frees what the first one's finalizers let go
		if _, err := c.AdminGet(ctx, "/debug/pprof/heap?gc=1"); err != nil {
			return m, err
		}
	}
	vals, err := c.metrics(ctx, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
	if err != nil {
		return m, err
	}
	m.HeapInuse, m.StackInuse, m.Goroutines = int64(vals[0]), int64(vals[1]), int64(vals[2])
	m.RSS, err = RSS(c.Pid())
	return m, err
}

// Goroutines reads go_goroutines alone, without a GC.
func (c *Caddy) Goroutines(ctx context.Context) (int64, error) {
	vals, err := c.metrics(ctx, "go_goroutines")
	if err != nil {
		return 0, err
	}
	return int64(vals[0]), nil
}

// AllocBytes reads go_memstats_alloc_bytes_total: all bytes Caddy has
// allocated since it started.
func (c *Caddy) AllocBytes(ctx context.Context) (int64, error) {
	vals, err := c.metrics(ctx, "go_memstats_alloc_bytes_total")
	if err != nil {
		return 0, err
	}
	return int64(vals[0]), nil
}

// metrics reads unlabelled samples from the admin endpoint's /metrics.
func (c *Caddy) metrics(ctx context.Context, names ...string) ([]float64, error) {
	b, err := c.AdminGet(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(string(b), names...)
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
