package apihttp

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/config"
	"github.com/labstack/echo/v4"
)

// throttle is DRF's SimpleRateThrottle: at most Rate.N requests per client
// IP in any window of Rate.Period, kept in memory (one process serves the API).
type throttle struct {
	scope string
	rate  config.Rate
	now   func() time.Time

	mu      sync.Mutex
	history map[string][]time.Time // oldest first
	sweep   time.Time
}

func newThrottle(scope string, rate config.Rate, now func() time.Time) *throttle {
	return &throttle{scope: scope, rate: rate, now: now, history: map[string][]time.Time{}}
}

// allow records a request from key and returns 0, or how long to wait.
func (t *throttle) allow(key string) time.Duration {
	if t.rate.N == 0 {
		return 0
	}
	now := t.now()
	cutoff := now.Add(-t.rate.Period)
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.After(t.sweep) { // drop idle clients now and then, so memory stays bounded
		for k, h := range t.history {
			if len(h) == 0 || !h[len(h)-1].After(cutoff) {
				delete(t.history, k)
			}
		}
		t.sweep = now.Add(t.rate.Period)
	}
	h := t.history[key]
	i := 0
	for i < len(h) && !h[i].After(cutoff) {
		i++
	}
	h = h[i:]
	if len(h) >= t.rate.N {
		t.history[key] = h
		return h[0].Sub(cutoff)
	}
	t.history[key] = append(h, now)
	return 0
}

// throttled wraps a handler with a throttle keyed by the real client IP.
func (s *Server) throttled(t *throttle, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if wait := t.allow(client(c).IP.String()); wait > 0 {
			secs := int(math.Ceil(wait.Seconds()))
			c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
			return api.Errorf(api.ETHROTTLED, "Request was throttled. Expected available in %d second%s.", secs, plural(secs))
		}
		return next(c)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
