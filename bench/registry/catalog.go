package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// parallel runs fn(i) for i in [0, n) on `workers` goroutines, reports
// progress every `every` items, and returns the first error.
func parallel(ctx context.Context, n, workers, every int, what string, logw io.Writer, fn func(i int) error) error {
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n))
					return
				}
				if d := done.Add(1); every > 0 && d%int64(every) == 0 {
					fmt.Fprintf(logw, "  %s: %d/%d (%s)\n", what, d, n, time.Since(start).Round(time.Second))
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(firstErr, ctx.Err())
}

// registerAll registers servers srvName(0…n-1) through the API, server i
// reaching upstream tool server i with its probe off, and returns how long
// it took.
func registerAll(ctx context.Context, c *caddyProc, up *upstreamProc, n int, logw io.Writer) (time.Duration, error) {
	client := newHTTPClient("h1")
	defer client.CloseIdleConnections()
	start := time.Now()
	err := parallel(ctx, n, 4, max(n/10, 1), "POST /api/servers", logw, func(i int) error {
		_, err := expect(ctx, client, http.StatusCreated, http.MethodPost, c.Base+"/api/servers", map[string]any{"name": srvName(i), "url": up.toolURL(i), "probe": offProbe})
		return err
	})
	return time.Since(start), err
}

// refreshAll probes servers srvName(0…n-1) (POST …/refresh: the gateway
// connects, lists tools, and the registry indexes them) and checks that
// each is healthy with all its tools. It returns how long it took.
func refreshAll(ctx context.Context, c *caddyProc, n int, logw io.Writer) (time.Duration, error) {
	client := newHTTPClient("h1")
	defer client.CloseIdleConnections()
	start := time.Now()
	err := parallel(ctx, n, 8, max(n/10, 1), "POST /api/servers/{name}/refresh", logw, func(i int) error {
		b, err := expect(ctx, client, http.StatusOK, http.MethodPost, c.Base+"/api/servers/"+srvName(i)+"/refresh", nil)
		if err != nil {
			return err
		}
		var rec struct {
			Status struct {
				Health    string `json:"health"`
				ToolCount int    `json:"tool_count"`
				LastError string `json:"last_error"`
			} `json:"status"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("refresh of %s: %v: %s", srvName(i), err, clip(string(b), 300))
		}
		if rec.Status.Health != "healthy" || rec.Status.ToolCount != toolsPerServer {
			return fmt.Errorf("refresh of %s: health %q with %d tools, want healthy with %d (%s)", srvName(i), rec.Status.Health, rec.Status.ToolCount, toolsPerServer, rec.Status.LastError)
		}
		return nil
	})
	return time.Since(start), err
}

// registryHealth is GET /api/health.
type registryHealth struct {
	Servers int `json:"servers"`
	Enabled int `json:"enabled"`
	Tools   int `json:"tools"`
}

func (c *caddyProc) registryHealth(ctx context.Context) (registryHealth, error) {
	var h registryHealth
	b, err := expect(ctx, http.DefaultClient, http.StatusOK, http.MethodGet, c.Base+"/api/health", nil)
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(b, &h)
}

// getResult is the latency of one kind of GET.
type getResult struct {
	label  string
	lat    stats
	bytes  int // answer size, the last one
	note   string
	others float64
}

// timeGets GETs url n times in a row (after warm unmeasured ones) over one
// kept-alive connection; check inspects each answer.
func timeGets(ctx context.Context, c *caddyProc, label string, urls func(k int) string, n, warm int, check func(b []byte) error) (*getResult, error) {
	client := newHTTPClient("h1")
	defer client.CloseIdleConnections()
	r := &getResult{label: label}
	var meter *othersMeter
	for k := range warm + n {
		if k == warm {
			meter = startOthers(c.Pid(), os.Getpid())
		}
		u := urls(k)
		start := time.Now()
		status, _, b, err := call(ctx, client, http.MethodGet, u, nil, nil)
		d := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d: %s", u, status, clip(string(b), 300))
		}
		if err := check(b); err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
		if k >= warm {
			r.lat = append(r.lat, d)
		}
		r.bytes = len(b)
	}
	r.others = meter.cores()
	return r, nil
}

// listServers times GET /api/servers with the default page size and with
// limit=1000, and checks the page sizes and the total.
func listServers(ctx context.Context, c *caddyProc, total, n int) ([]*getResult, error) {
	var out []*getResult
	for _, limit := range []int{0, 1000} {
		u, label, want := c.Base+"/api/servers", "GET /api/servers (default page, 100)", min(100, total)
		if limit > 0 {
			u, label, want = u+fmt.Sprintf("?limit=%d", limit), fmt.Sprintf("GET /api/servers?limit=%d", limit), min(limit, total)
		}
		r, err := timeGets(ctx, c, label, func(int) string { return u }, n, n/10, func(b []byte) error {
			var page struct {
				Servers []json.RawMessage `json:"servers"`
				Total   int               `json:"total"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				return err
			}
			if len(page.Servers) != want || page.Total != total {
				return fmt.Errorf("%d servers of %d, want %d of %d", len(page.Servers), page.Total, want, total)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// searchTools times GET /api/search?q=… over a fixed set of queries, and
// checks that most find something.
func searchTools(ctx context.Context, c *caddyProc, n int) (*getResult, error) {
	queries := searchQueries(100)
	var hits, empty atomic.Int64
	r, err := timeGets(ctx, c, "GET /api/search?q=…", func(k int) string {
		return c.Base + "/api/search?q=" + url.QueryEscape(queries[k%len(queries)])
	}, n, n/10, func(b []byte) error {
		var ans struct {
			Results []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			return err
		}
		hits.Add(int64(len(ans.Results)))
		if len(ans.Results) == 0 {
			empty.Add(1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	total := int64(n + n/10)
	if empty.Load() > total/10 {
		return nil, fmt.Errorf("search: %d of %d queries found nothing: the index is not what the bench built", empty.Load(), total)
	}
	r.note = fmt.Sprintf("%d distinct queries of 1–3 words; %.1f results per query on average (limit 20), %d found nothing", len(queries), float64(hits.Load())/float64(total), empty.Load())
	return r, nil
}
