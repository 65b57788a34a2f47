package apihttp

import (
	"sync"
	"testing"
	"time"
)

// BenchmarkRequestObserve is what counting one request costs the hot path,
// from every CPU at once on one series (the worst case: they share its
// cache lines).
func BenchmarkRequestObserve(b *testing.B) {
	rs := newRequestStats([]string{"/api/health", "/api/departments"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rs.observe("/api/health", "GET", 200, 300*time.Microsecond)
		}
	})
}

// TestRequestObserveBounded: labels come from the route table and a fixed
// method list, whatever the request said.
func TestRequestObserveBounded(t *testing.T) {
	rs := newRequestStats([]string{"/api/health"})
	s := &Server{requests: rs}
	rs.observe("/api/health", "GET", 200, 0)
	rs.observe("/api/health", "GET", 200, 20*time.Second)
	rs.observe("/raw/path/1", "GET", 404, time.Millisecond)
	rs.observe("/raw/path/2", "GET", 404, time.Millisecond)
	rs.observe("", "PURGE", 405, time.Millisecond)
	rs.observe("", "purge", 405, time.Millisecond)
	got := s.RequestSeries()
	if len(got) != 3 {
		t.Fatalf("series = %+v, want 3", got)
	}
	h, nf, other := got[0], got[1], got[2]
	if h.Route != "/api/health" || h.Count != 2 || h.Buckets[0] != 1 || h.Buckets[nLatencyBuckets-1] != 1 || h.Sum != 20*time.Second {
		t.Errorf("health = %+v (the 20 s request belongs in +Inf only)", h)
	}
	if nf.Route != RouteUnmatched || nf.Method != "GET" || nf.Status != 404 || nf.Count != 2 || nf.Buckets[3] != 2 {
		t.Errorf("unmatched = %+v", nf)
	}
	if other.Route != RouteUnmatched || other.Method != "OTHER" || other.Count != 2 {
		t.Errorf("invented methods = %+v", other)
	}
}

// TestRequestStatsConcurrent: requests counted from many goroutines while
// scrapes read (run under -race by make race); nothing is lost, and no
// scrape sees a bucket above its count.
func TestRequestStatsConcurrent(t *testing.T) {
	rs := newRequestStats([]string{"/api/health"})
	s := &Server{requests: rs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			for _, x := range s.RequestSeries() {
				if x.Buckets[nLatencyBuckets-1] > x.Count {
					t.Errorf("scrape saw %d in buckets, %d counted", x.Buckets[nLatencyBuckets-1], x.Count)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				rs.observe("/api/health", "GET", 200+g%4, time.Duration(i)*time.Microsecond)
			}
		})
	}
	wg.Wait()
	<-done
	var total uint64
	for _, x := range s.RequestSeries() {
		total += x.Count
	}
	if total != 8000 {
		t.Errorf("counted %d, want 8000", total)
	}
}
