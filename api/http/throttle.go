package apihttp

import (
	"context"
	"hash/maphash"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/config"
	"github.com/labstack/echo/v4"
)

// throttle is DRF's SimpleRateThrottle: at most Rate.N requests per key (a
// client address, or a user) in any window of Rate.Period, the sliding
// window of request times DRF keeps per key.
type throttle struct {
	scope string
	rate  config.Rate
	now   func() time.Time
	store throttleStore
}

// throttleStore keeps the recent request times of each key. memoryStore
// keeps them in this process, bounded; a store shared by several replicas
// (PostgreSQL) can take its place.
type throttleStore interface {
	// allow records a request by key at now unless key already made rate.N
	// requests in the rate.Period before now. It returns 0 when the request
	// was recorded, else how long until one would be.
	allow(ctx context.Context, key string, now time.Time) (time.Duration, error)
}

func newThrottle(scope string, rate config.Rate, maxKeys int, now func() time.Time) *throttle {
	return &throttle{scope: scope, rate: rate, now: now, store: newMemoryStore(rate, maxKeys)}
}

// allow records a request from key and returns 0, or how long to wait.
func (t *throttle) allow(ctx context.Context, key string) (time.Duration, error) {
	if t.rate.N == 0 {
		return 0, nil
	}
	return t.store.allow(ctx, key, t.now())
}

// throttled wraps a handler with a throttle keyed by the real client IP
// (IPv6 clients by their /64: one host usually holds a whole /64).
func (s *Server) throttled(t *throttle, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.checkThrottle(c, t, clientKey(client(c).IP)); err != nil {
			return err
		}
		return next(c)
	}
}

// userThrottled wraps a handler with a throttle keyed by the authenticated
// user (DRF's UserRateThrottle); anonymous requests pass to the handler,
// which refuses them (DRF authenticates and checks permissions first).
func (s *Server) userThrottled(t *throttle, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if u := currentUser(c); u != nil {
			if err := s.checkThrottle(c, t, "user:"+strconv.FormatInt(u.ID, 10)); err != nil {
				return err
			}
		}
		return next(c)
	}
}

func (s *Server) checkThrottle(c echo.Context, t *throttle, key string) error {
	wait, err := t.allow(c.Request().Context(), key)
	if err != nil {
		return err
	}
	if wait > 0 {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return api.Errorf(api.ETHROTTLED, "Request was throttled. Expected available in %d second%s.", secs, plural(secs))
	}
	return nil
}

// clientKey is the throttle key of a client address: IPv4 as it is, IPv6 by
// its /64.
func clientKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// memoryStore is a throttleStore of fixed size: at most maxKeys keys, each
// with at most rate.N times, in shards that each evict their least recently
// used key when full (as DRF's default cache, LocMemCache, culls). A flood
// of distinct addresses costs a bounded amount of memory; the price is that
// a client can be forgotten early once maxKeys others came after it.
type memoryStore struct {
	rate   config.Rate
	seed   maphash.Seed
	shards []throttleShard
}

const throttleShards = 16

type throttleShard struct {
	mu         sync.Mutex
	max        int
	keys       map[string]*throttleEntry
	head, tail *throttleEntry // most recently used first
}

type throttleEntry struct {
	key        string
	prev, next *throttleEntry
	times      []int64 // Unix nanoseconds, oldest first, at most rate.N
}

func newMemoryStore(rate config.Rate, maxKeys int) *memoryStore {
	m := &memoryStore{rate: rate, seed: maphash.MakeSeed(), shards: make([]throttleShard, throttleShards)}
	per := max(1, maxKeys/throttleShards)
	for i := range m.shards {
		m.shards[i] = throttleShard{max: per, keys: map[string]*throttleEntry{}}
	}
	return m
}

func (m *memoryStore) allow(_ context.Context, key string, now time.Time) (time.Duration, error) {
	sh := &m.shards[maphash.String(m.seed, key)%throttleShards]
	t, cutoff := now.UnixNano(), now.UnixNano()-int64(m.rate.Period)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.keys[key]
	if e == nil {
		if len(sh.keys) >= sh.max { // reuse the least recently used entry
			e = sh.tail
			sh.unlink(e)
			delete(sh.keys, e.key)
			e.key, e.times = key, e.times[:0]
		} else {
			e = &throttleEntry{key: key, times: make([]int64, 0, min(m.rate.N, 4))}
		}
		sh.keys[key] = e
	} else {
		sh.unlink(e)
	}
	sh.pushFront(e)
	i := 0
	for i < len(e.times) && e.times[i] <= cutoff {
		i++
	}
	if i > 0 {
		e.times = e.times[:copy(e.times, e.times[i:])]
	}
	if len(e.times) >= m.rate.N {
		return time.Duration(e.times[0] - cutoff), nil
	}
	e.times = append(e.times, t)
	return 0, nil
}

// len is how many keys the store holds.
func (m *memoryStore) len() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].keys)
		m.shards[i].mu.Unlock()
	}
	return n
}

func (sh *throttleShard) unlink(e *throttleEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		sh.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (sh *throttleShard) pushFront(e *throttleEntry) {
	e.next = sh.head
	if sh.head != nil {
		sh.head.prev = e
	}
	sh.head = e
	if sh.tail == nil {
		sh.tail = e
	}
}

// passwordChangeSlots lets password changes use at most half of the
// password hasher's slots (one per CPU): however many of them arrive at
// once, from however many users, logins keep the other half.
var passwordChangeSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// passwordChangeSlot waits for a slot; release gives it back.
func passwordChangeSlot(ctx context.Context) (release func(), err error) {
	select {
	case passwordChangeSlots <- struct{}{}:
		return func() { <-passwordChangeSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
