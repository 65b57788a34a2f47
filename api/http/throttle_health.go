package apihttp

import (
	"context"
	"errors"
	"sync/atomic"
)

// storeHealth counts the shared throttle store's failures: each refused a
// request with 503 (the throttles fail closed). isisctl verify and status
// read it from the metrics (docs/runbook.md#throttle-fail-closed).
type storeHealth struct {
	errors  atomic.Uint64
	failing atomic.Bool
}

func (h *storeHealth) record(err error) {
	switch {
	case err == nil:
		h.failing.Store(false)
	case errors.Is(err, context.Canceled): // the client went away: not the store's failure
	default:
		h.errors.Add(1)
		h.failing.Store(true)
	}
}

// ThrottleStoreHealth is how many requests the shared throttle store
// refused by failing since the start, and whether its last answer was a
// failure (both zero with the throttles in memory, which cannot fail).
func (s *Server) ThrottleStoreHealth() (failures uint64, failing bool) {
	return s.throttleHealth.errors.Load(), s.throttleHealth.failing.Load()
}
