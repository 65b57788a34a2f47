package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// MEMORY_TARGET_MIB, a soft memory target. At a thousand keep-alive
// connections about 20 MiB is live (net/http's 4 KiB reader and writer per
// connection, 8 KiB goroutine stacks): with the collector's default headroom
// (GOGC=100, as much again as is live) the process passes 50 MiB. A fixed
// GOMEMLIMIT near the live size is worse: once what is live passes it, the
// collector runs all the time (throughput fell three- to four-fold in
// scripts/load.sh).
//
// So the target is the runtime's soft limit, and after every collection the
// limit is raised to what is live plus a quarter (lowered again, down to the
// target, as memory is freed): under the target nothing changes (GOGC's own
// goal is lower), near it the collector runs more often, and past it the
// server gets the memory it needs with at least a quarter of headroom (as
// GOGC=25) instead of collecting without end. It costs CPU where it bites
// (each collection scans a thousand goroutine stacks): at 1,000 connections
// a 26 MiB target cost 1.5-1.7 times the CPU per request; the default, 30
// MiB with the binary's start-up pages released (startpages_linux.go), 2-43%
// (two runs by hand and two of scripts/load.sh; docs/performance.md). MEMORY_TARGET_MIB=0 turns it off. The limit
// replaces GOMEMLIMIT's.
const memoryHeadroom = 4 // at least live/memoryHeadroom above what is live

// memLimiter adjusts the runtime's soft memory limit after every collection.
type memLimiter struct {
	target  int64
	current atomic.Int64 // the limit set last
	stopped atomic.Bool
	samples []metrics.Sample
}

var memMetrics = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
}

// startMemLimiter sets the limit to target and follows every collection
// from then on; stop restores no limit.
func startMemLimiter(target int64) (stop func()) {
	m := &memLimiter{target: target}
	for _, name := range memMetrics {
		m.samples = append(m.samples, metrics.Sample{Name: name})
	}
	m.adjust()
	m.arm()
	return func() {
		m.stopped.Store(true)
		debug.SetMemoryLimit(1<<63 - 1)
	}
}

// gcTick is garbage from birth: its finalizer runs after the next
// collection (16 bytes with a pointer: never one of the tiny allocator's
// blocks, whose finalizers may not run).
type gcTick struct {
	_ *byte
	_ [8]byte
}

func (m *memLimiter) arm() {
	runtime.SetFinalizer(&gcTick{}, func(*gcTick) {
		if m.stopped.Load() {
			return
		}
		m.adjust()
		m.arm()
	})
}

// limitFor is the limit for live heap bytes and the runtime's other memory
// (stacks, its own structures): the target, or live plus the headroom.
func limitFor(target int64, live, other uint64) int64 {
	return max(target, int64(other+live+live/memoryHeadroom))
}

func (m *memLimiter) adjust() {
	metrics.Read(m.samples)
	v := func(i int) uint64 {
		if m.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return m.samples[i].Value.Uint64()
	}
	live, total, released, objects, unused, free := v(0), v(1), v(2), v(3), v(4), v(5)
	other := total - released - objects - unused - free
	if objects+unused+free+released > total {
		other = 0
	}
	limit := limitFor(m.target, live, other)
	// Setting the limit stops the world for a moment: raised at once (that
	// is what keeps the collector from running without end), lowered only
	// by more than 1/16.
	if cur := m.current.Load(); limit == cur || (limit < cur && limit > cur-cur/16) {
		return
	}
	m.current.Store(limit)
	debug.SetMemoryLimit(limit)
}
