package registryapp

import (
	"errors"
	"testing"
)

// TestNeedsAuth: the statuses the go-sdk reports for 401 and 403 mean
// needs-auth; a failure whose text merely holds 401 or 403 (a port, a
// path) does not.
func TestNeedsAuth(t *testing.T) {
	for msg, want := range map[string]bool{
		`calling "initialize": sending "initialize": rejected by transport: Unauthorized`: true,
		`calling "initialize": sending "initialize": Forbidden`:                           true,
		`failed to write: 401 Unauthorized`:                                               true,
		`sending "initialize": rejected by transport: Post "http://127.0.0.1:40111/mcp": dial tcp 127.0.0.1:40111: connect: connection refused`: false,
		`Post "https://example.com/tenants/4031/mcp": context deadline exceeded`:                                                                false,
	} {
		if got := needsAuth(errors.New(msg)); got != want {
			t.Errorf("needsAuth(%q) = %v, want %v", msg, got, want)
		}
	}
}
