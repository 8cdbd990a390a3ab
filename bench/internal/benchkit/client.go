package benchkit

import (
	"net/http"
	"time"
)

// Transport is one client's own HTTP stack, as a separate client process
// would have: HTTP/1.1 with keep-alive, or h2c; idle is its pool per host.
func Transport(proto string, idle int) *http.Transport {
	t := &http.Transport{MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: 5 * time.Minute}
	if proto == "h2c" {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		t.Protocols = p
	}
	return t
}
