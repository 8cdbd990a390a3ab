package benchkit

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// WaitHTTP polls url until it answers at all, or p exits.
func WaitHTTP(p *Proc, url string, within time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(within)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited early:\n%s", p.name, p.LogTail())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer at %s within %s: %v\n%s", p.name, url, within, err, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SleepCtx sleeps for d or until ctx ends, so that an interrupted run
// stops at once.
func SleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
