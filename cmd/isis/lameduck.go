package main

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// A graceful shutdown in two phases. On SIGTERM the server first goes lame
// duck for up to SHUTDOWN_DELAY (default 0; it ends once no request has come
// for 200 ms, and is skipped when none came in the second before): it keeps
// accepting and serving, but
// /api/health/ and /api/ready/ answer 503 (a proxy's active health check,
// such as Caddy's health_uri, stops choosing it), every response says
// Connection: close, and idempotent requests that came through a proxy
// which announced it resends them (header X-Isis-Failover, set by the nginx
// config isisctl renders) are answered 503 at once, so nginx sends them to
// the other slot and marks this one down. Then it stops accepting and
// finishes what it has. With both, no proxy opens a new connection to a
// backend that is about to close its listener.

// FailoverHeader is what a proxy that resends idempotent requests answered
// 503 to another upstream sends along.
const FailoverHeader = "X-Isis-Failover"

// lameQuiet ends the lame duck early: once no request (probes aside) has
// come for this long, the proxies have moved away, or there were none. It
// is two of the health-check intervals of the Caddyfile isisctl renders
// (100 ms), so Caddy has seen the 503 and left the slot's pooled
// connections before the server closes them.
const lameQuiet = 200 * time.Millisecond

// lameIdle: a server that no request (probes aside) reached for this long
// before SIGTERM has no lame duck. No proxy routes to it (the standby slot
// while the other serves: its lame duck cost every upgrade lameQuiet), so
// there is nobody to move away; a request that still comes finds the
// listener closed before anything was sent, which both proxies resend.
const lameIdle = time.Second

// lameDuckState remembers when the last request (probes aside) came.
type lameDuckState struct{ last atomic.Int64 }

func (l *lameDuckState) seen() { l.last.Store(time.Now().UnixNano()) }

// wait sleeps through the lame duck: max at most, or until no request has
// come for lameQuiet; not at all when none came for lameIdle before it.
func (l *lameDuckState) wait(max time.Duration) {
	start := time.Now()
	if start.Sub(time.Unix(0, l.last.Load())) >= lameIdle {
		return
	}
	l.last.Store(start.UnixNano())
	for time.Since(start) < max {
		if time.Since(time.Unix(0, l.last.Load())) >= lameQuiet {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lameDuck wraps the API handler for the shutdown's first phase.
func lameDuck(next http.Handler, draining func() bool, state *lameDuckState) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := strings.TrimSuffix(r.URL.Path, "/"); p != "/api/health" && p != "/api/ready" {
			state.seen()
		}
		if draining() {
			w.Header().Set("Connection", "close")
			switch r.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				if r.Header.Get(FailoverHeader) != "" {
					w.Header().Set("Retry-After", "1")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write([]byte(`{"detail":"This backend is shutting down; the proxy resends the request to the other one."}`))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
