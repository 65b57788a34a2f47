package apihttp

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The request metrics are counted here, on the hot path, in plain atomics;
// api/metrics turns them into Prometheus series when scraped. A request
// costs a map lookup by its route template (a fixed map, made once), a scan
// of the few series its route has had, and three atomic adds: no lock, no
// allocation, no label hashing.

// LatencyBuckets are the upper bounds of the request latency histogram.
var LatencyBuckets = []time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

const nLatencyBuckets = 16 // len(LatencyBuckets)

// RouteUnmatched is the route label of requests that matched no route (a
// 404, a refused Host, a CORS preflight): every such path shares it, so
// the series stay bounded whatever clients ask for.
const RouteUnmatched = "unmatched"

// requestStats counts requests per route template, method and status.
type requestStats struct {
	routes    map[string]*routeStats // read-only once built
	unmatched *routeStats
}

// routeStats holds the series of one route. Series are only ever added (a
// new method and status pair), under mu, as a new slice: readers load the
// slice and scan it.
type routeStats struct {
	route  string
	mu     sync.Mutex
	series atomic.Pointer[[]*requestSeries]
}

type requestSeries struct {
	method string
	status int
	// count goes up before the bucket does, and a scrape reads the buckets
	// before count, so a scraped histogram never has a bucket above count.
	count   atomic.Uint64
	sumNs   atomic.Uint64
	buckets [nLatencyBuckets]atomic.Uint64 // per bucket, not cumulative
}

func newRequestStats(routes []string) *requestStats {
	rs := &requestStats{routes: map[string]*routeStats{}, unmatched: &routeStats{route: RouteUnmatched}}
	for _, r := range routes {
		if rs.routes[r] == nil {
			rs.routes[r] = &routeStats{route: r}
		}
	}
	return rs
}

// methodLabel bounds the method label: the methods the API knows, and
// OTHER for anything a client invents.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// observe counts one request.
func (rs *requestStats) observe(route, method string, status int, d time.Duration) {
	r := rs.routes[route]
	if r == nil {
		r = rs.unmatched
	}
	method = methodLabel(method)
	s := r.find(method, status)
	if s == nil {
		s = r.add(method, status)
	}
	ns := max(0, int64(d))
	s.count.Add(1)
	s.sumNs.Add(uint64(ns))
	for i, b := range LatencyBuckets {
		if ns <= int64(b) {
			s.buckets[i].Add(1)
			break
		}
	}
}

func (r *routeStats) find(method string, status int) *requestSeries {
	if p := r.series.Load(); p != nil {
		for _, s := range *p {
			if s.status == status && s.method == method {
				return s
			}
		}
	}
	return nil
}

func (r *routeStats) add(method string, status int) *requestSeries {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.find(method, status); s != nil {
		return s
	}
	var next []*requestSeries
	if p := r.series.Load(); p != nil {
		next = append(next, *p...)
	}
	s := &requestSeries{method: method, status: status}
	next = append(next, s)
	r.series.Store(&next)
	return s
}

// RequestSeries is one route, method and status's requests so far.
type RequestSeries struct {
	Route  string
	Method string
	Status int
	Count  uint64
	Sum    time.Duration
	// Buckets are cumulative: Buckets[i] requests took LatencyBuckets[i]
	// or less.
	Buckets [nLatencyBuckets]uint64
}

// RequestSeries lists every series counted so far, by route, method and
// status; nil when metrics are off (no METRICS_ADDRESS).
func (s *Server) RequestSeries() []RequestSeries {
	rs := s.requests
	if rs == nil {
		return nil
	}
	var out []RequestSeries
	add := func(r *routeStats) {
		p := r.series.Load()
		if p == nil {
			return
		}
		for _, x := range *p {
			v := RequestSeries{Route: r.route, Method: x.method, Status: x.status}
			var cum uint64
			for i := range x.buckets {
				cum += x.buckets[i].Load()
				v.Buckets[i] = cum
			}
			v.Sum = time.Duration(x.sumNs.Load())
			v.Count = x.count.Load()
			out = append(out, v)
		}
	}
	for _, r := range rs.routes {
		add(r)
	}
	add(rs.unmatched)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Status < b.Status
	})
	return out
}

// CacheStats are one cache's numbers since start.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
	// Enabled: the cache serves (change notifications flow).
	Enabled bool
}

// GeoCacheStats are the geography answer cache's numbers.
func (s *Server) GeoCacheStats() CacheStats {
	g := s.geo
	g.mu.RLock()
	n := len(g.entries)
	g.mu.RUnlock()
	return CacheStats{Hits: g.hits.Load(), Misses: g.misses.Load(), Entries: n, Enabled: g.enabled.Load()}
}

// MemoryThrottleKeys is how many keys each in-process throttle table holds,
// by scope (empty when the throttles count in a shared store).
func (s *Server) MemoryThrottleKeys() map[string]int {
	out := map[string]int{}
	for _, t := range s.throttles() {
		if m, ok := t.store.(*memoryStore); ok {
			out[t.scope] = m.len()
		}
	}
	return out
}

// routePaths are the registered route templates: the only route labels
// besides RouteUnmatched.
func (s *Server) routePaths() []string {
	var out []string
	for _, r := range s.echo.Routes() {
		out = append(out, r.Path)
	}
	return out
}

// ThrottleScopes names the server's throttles (token, register, …).
func (s *Server) ThrottleScopes() []string {
	var out []string
	for _, t := range s.throttles() {
		out = append(out, t.scope)
	}
	return out
}

// SharedThrottles is the store the throttles share (nil: in memory).
func (s *Server) SharedThrottles() SharedThrottles { return s.sharedThrottles }
