package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFor(t *testing.T) {
	for _, tc := range []struct {
		target      int64
		live, other uint64
		want        int64
	}{
		{26 << 20, 4 << 20, 2 << 20, 26 << 20},                  // small: the target
		{26 << 20, 12 << 20, 10 << 20, 26 << 20},                // 12+3+10 = 25 MiB: still the target
		{26 << 20, 16 << 20, 10 << 20, 30 << 20},                // 16+4+10: the live heap's quarter wins
		{26 << 20, 400 << 20, 20 << 20, (400 + 100 + 20) << 20}, // far past the target
	} {
		if got := limitFor(tc.target, tc.live, tc.other); got != tc.want {
			t.Errorf("limitFor(%d, %d, %d) = %d MiB, want %d MiB", tc.target>>20, tc.live>>20, tc.other>>20, got>>20, tc.want>>20)
		}
	}
}

// limitNow reads the runtime's memory limit without changing it.
func limitNow() int64 { return debug.SetMemoryLimit(-1) }

// waitLimit collects until cond holds for the limit (each collection runs
// the limiter's finalizer, on the finalizer goroutine).
func waitLimit(t *testing.T, what string, cond func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(limitNow()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the limit is %d MiB", what, limitNow()>>20)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMemLimiter: the real runtime, its real collections. The limit is the
// target while little is live; with more live than the target it rises
// above what is live (the collector does not run without end), and comes
// back down once that memory is garbage.
func TestMemLimiter(t *testing.T) {
	const target = 32 << 20
	stop := startMemLimiter(target)
	defer stop()
	waitLimit(t, "at rest", func(l int64) bool { return l == target })

	live := make([][]byte, 0, 96)
	for range 96 { // 96 MiB, three times the target
		b := make([]byte, 1<<20)
		b[0] = 1
		live = append(live, b)
	}
	waitLimit(t, "96 MiB live", func(l int64) bool { return l >= (96<<20)*5/4 })
	before := debug.SetGCPercent(-1) // only the limit triggers collections now
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := ms.NumGC
	var garbage [][]byte
	for i := range 64 << 10 { // 64 MiB of garbage, 1 KiB at a time
		garbage = append(garbage[:0], make([]byte, 1<<10))
		_ = i
	}
	runtime.ReadMemStats(&ms)
	debug.SetGCPercent(before)
	// 64 MiB of garbage over a headroom of at least 24 MiB: a few
	// collections, not one every few allocations.
	if gcs := ms.NumGC - n; gcs > 20 {
		t.Errorf("%d collections for 64 MiB of garbage with 96 MiB live", gcs)
	}
	runtime.KeepAlive(live)
	runtime.KeepAlive(garbage)

	live = nil
	waitLimit(t, "freed", func(l int64) bool { return l == target })

	stop()
	if l := limitNow(); l != 1<<63-1 {
		t.Errorf("after stop the limit is %d", l)
	}
}
