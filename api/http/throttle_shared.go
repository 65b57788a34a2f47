package apihttp

import (
	"context"
	"sync"
	"time"
)

// SharedThrottles is a throttle store every replica shares
// (postgres.Throttles): with it, N servers on one database allow a client
// the limit once, not N times.
type SharedThrottles interface {
	// Allow records a request by key in scope at now unless the key already
	// made n requests in the period before now; it returns 0, or how long
	// until a request would be recorded.
	Allow(ctx context.Context, scope, key string, n int, period time.Duration, now time.Time) (time.Duration, error)
	// Purge forgets the keys of scope seen last a period before now or
	// longer ago (period 0: all of them), then all but the maxKeys most
	// recently seen.
	Purge(ctx context.Context, scope string, period time.Duration, maxKeys int, now time.Time) (int64, error)
}

// sharedStore is a throttleStore on SharedThrottles. An error (the database
// unreachable) refuses the request with it, 503: every throttled endpoint
// needs the database anyway, and a throttle that fails open would let a
// brute force through whenever the store is slow.
//
// A refusal is remembered in this process until its wait ends: no server
// can make the key's oldest request leave the window sooner, so the answer
// is the store's own, and a client hammering past its limit costs no query.
type sharedStore struct {
	shared   SharedThrottles
	t        *throttle
	refusals *refusals
	health   *storeHealth
}

func newSharedStore(shared SharedThrottles, t *throttle, maxKeys int) sharedStore {
	return sharedStore{shared: shared, t: t, refusals: &refusals{max: maxKeys, until: map[string]int64{}}, health: &storeHealth{}}
}

func (s sharedStore) allow(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	if wait := s.refusals.get(key, now.UnixNano()); wait > 0 {
		return wait, nil
	}
	wait, err := s.shared.Allow(ctx, s.t.scope, key, s.t.rate.N, s.t.rate.Period, now)
	s.health.record(err)
	if err == nil && wait > 0 {
		s.refusals.put(key, now.Add(wait).UnixNano(), now.UnixNano())
	}
	return wait, err
}

// refusals are the keys refused until a time (Unix nanoseconds), at most
// max of them: when full, the expired go, and if that frees less than half,
// all (a forgotten refusal costs only a query; a sweep comes at most once
// every max/2 refusals).
type refusals struct {
	mu    sync.Mutex
	max   int
	until map[string]int64
}

func (r *refusals) get(key string, now int64) time.Duration {
	r.mu.Lock()
	until, ok := r.until[key]
	if ok && until <= now {
		delete(r.until, key)
	}
	r.mu.Unlock()
	return time.Duration(max(0, until-now))
}

func (r *refusals) put(key string, until, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.until) >= r.max {
		for k, u := range r.until {
			if u <= now {
				delete(r.until, k)
			}
		}
		if len(r.until) > r.max/2 {
			clear(r.until)
		}
	}
	r.until[key] = until
}

// throttles are the server's throttles.
func (s *Server) throttles() []*throttle {
	return []*throttle{s.throttleToken, s.throttleRegister, s.throttleGoogle, s.throttlePassword}
}

// shareThrottles puts the throttles in shared (nil: each keeps its own
// in-memory store).
func (s *Server) shareThrottles(shared SharedThrottles) {
	s.sharedThrottles = shared
	if shared == nil {
		return
	}
	for _, t := range s.throttles() {
		st := newSharedStore(shared, t, s.Config.ThrottleMaxKeys)
		st.health = &s.throttleHealth // one count for the server's throttles
		t.store = st
	}
}

// throttlePurgeEvery is how often PurgeThrottles sweeps the shared store.
const throttlePurgeEvery = time.Minute

// PurgeThrottles keeps the shared throttle store bounded until ctx ends:
// every minute it forgets the keys whose requests all left their window
// (all keys of a throttle that is off) and, beyond THROTTLE_MAX_KEYS per
// throttle, the least recently seen. Every replica sweeps; the deletes are
// idempotent. Without a shared store it returns at once.
func (s *Server) PurgeThrottles(ctx context.Context) {
	if s.sharedThrottles == nil {
		return
	}
	tick := time.NewTicker(throttlePurgeEvery)
	defer tick.Stop()
	for {
		s.purgeThrottles(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) purgeThrottles(ctx context.Context) {
	for _, t := range s.throttles() {
		period := t.rate.Period
		if t.rate.N == 0 {
			period = 0
		}
		if _, err := s.sharedThrottles.Purge(ctx, t.scope, period, s.Config.ThrottleMaxKeys, s.Now()); err != nil && ctx.Err() == nil {
			s.Logger.Warn("throttle purge failed", "scope", t.scope, "error", err.Error())
		}
	}
}
