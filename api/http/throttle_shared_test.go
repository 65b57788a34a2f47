package apihttp

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/config"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/testdb"
)

// sharedThrottle is a throttle on the PostgreSQL store of db.
func sharedThrottle(db *postgres.DB, scope string, rate config.Rate, now func() time.Time) *throttle {
	th := newThrottle(scope, rate, 16, now)
	th.store = newSharedStore(postgres.NewThrottles(db), th, 16)
	return th
}

// TestSharedThrottleSlidingWindow: the PostgreSQL store keeps DRF's
// semantics exactly as the memory store does (TestThrottleSlidingWindow):
// N requests in any window, a refused request not counted, the wait until
// the oldest leaves the window; other keys and scopes count apart.
func TestSharedThrottleSlidingWindow(t *testing.T) {
	db := testdb.Open(t)
	start := time.Unix(1_000_000, 0)
	now := start
	clock := func() time.Time { return now }
	th := sharedThrottle(db, "t", config.Rate{N: 3, Period: time.Minute}, clock)
	other := sharedThrottle(db, "u", config.Rate{N: 3, Period: time.Minute}, clock)
	ctx := context.Background()
	checkSlidingWindow(t, th, func(at time.Time) { now = at }, start)
	for _, c := range []struct {
		th  *throttle
		key string
	}{{th, "k2"}, {other, "k"}} {
		if w, err := c.th.allow(ctx, c.key); w != 0 || err != nil {
			t.Errorf("%s/%s: wait %v, %v; want a fresh window", c.th.scope, c.key, w, err)
		}
	}
	var n int
	if err := db.Get(&n, `SELECT max(cardinality(times)) FROM throttles`); err != nil || n > 3 {
		t.Errorf("a row holds %d times (%v), want at most the rate's 3", n, err)
	}
}

// TestSharedThrottleConcurrent: two pools on one database (two replicas),
// many requests at once: every key is allowed exactly N times in all.
func TestSharedThrottleConcurrent(t *testing.T) {
	dsn := testdb.DSN(t)
	now := time.Now()
	rate := config.Rate{N: 40, Period: time.Hour}
	var replicas []*throttle
	for range 2 {
		db, err := postgres.Open(dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		replicas = append(replicas, sharedThrottle(db, "t", rate, func() time.Time { return now }))
	}
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 60 {
				key := fmt.Sprint("k", (i+g)%4)
				w, err := replicas[g%2].allow(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				if w == 0 {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for k, n := range allowed {
		if n != rate.N {
			t.Errorf("%s: %d allowed, want %d", k, n, rate.N)
		}
	}
}

// TestSharedThrottlePurge: the sweep forgets keys whose requests all left
// the window, every key of a throttle that is off, and beyond
// THROTTLE_MAX_KEYS the least recently seen; the rest stay.
func TestSharedThrottlePurge(t *testing.T) {
	db := testdb.Open(t)
	ts := newTestServerDB(t, db, map[string]string{"THROTTLE_TOKEN": "5/min", "THROTTLE_REGISTER": "off", "THROTTLE_MAX_KEYS": "16"})
	start := time.Unix(2_000_000, 0)
	now := start
	ts.Now = func() time.Time { return now }
	ts.shareThrottles(postgres.NewThrottles(db))
	ctx := context.Background()
	store := postgres.NewThrottles(db)
	for i := range 20 { // 20 keys, one a second
		now = start.Add(time.Duration(i) * time.Second)
		ts.throttleToken.allow(ctx, fmt.Sprint("k", i))
		store.Allow(ctx, "register", fmt.Sprint("k", i), 10, time.Hour, now) // rows a server with the throttle on left
	}
	count := func(scope string) (n int) {
		if err := db.Get(&n, `SELECT count(*) FROM throttles WHERE scope = $1`, scope); err != nil {
			t.Fatal(err)
		}
		return n
	}
	now = start.Add(65 * time.Second) // k0..k5 left the window at 60..65 s
	ts.purgeThrottles(ctx)
	if n := count("token"); n != 14 {
		t.Errorf("%d token keys after the purge, want the 14 seen in the last minute", n)
	}
	if n := count("register"); n != 0 {
		t.Errorf("%d keys of a throttle that is off, want 0", n)
	}
	for i := range 30 { // 30 more keys at once: only the 16 most recent stay
		ts.throttleToken.allow(ctx, fmt.Sprint("new", i))
	}
	ts.purgeThrottles(ctx)
	var oldest string
	db.Get(&oldest, `SELECT key FROM throttles WHERE scope = 'token' ORDER BY times[1] LIMIT 1`)
	if n := count("token"); n != 16 || oldest == "k6" {
		t.Errorf("%d token keys, oldest %s; want THROTTLE_MAX_KEYS (16) and the oldest gone", n, oldest)
	}
}

// TestRefusalsBounded: the memory of refusals keeps at most its bound,
// drops the expired first, and answers the wait left.
func TestRefusalsBounded(t *testing.T) {
	r := &refusals{max: 16, until: map[string]int64{}}
	for i := range 16 {
		r.put(fmt.Sprint("k", i), int64(100+i), 0)
	}
	r.put("late", 200, 109) // k0..k9 expired at 109: they make room
	if len(r.until) != 7 || r.get("k12", 109) != 3 || r.get("late", 109) != 91 || r.get("k1", 109) != 0 {
		t.Errorf("after expiring: %v", r.until)
	}
	for i := range 100 {
		r.put(fmt.Sprint("n", i), 1000, 120)
		if len(r.until) > 16 {
			t.Fatalf("%d refusals kept, bound 16", len(r.until))
		}
	}
}

// TestSharedThrottleDatabaseDown: an unreachable store refuses the request
// with 503 (fail closed) rather than letting it through uncounted.
func TestSharedThrottleDatabaseDown(t *testing.T) {
	db, err := postgres.Open("postgres://isis@127.0.0.1:1/isis?sslmode=disable", postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	th := sharedThrottle(db, "t", config.Rate{N: 3, Period: time.Minute}, time.Now)
	w, err := th.allow(context.Background(), "k")
	if api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Errorf("allow with the database down = %v, %v; want %s", w, err, api.EUNAVAILABLE)
	}
}

// BenchmarkThrottle is the cost of a throttle check by store: a request
// allowed in the steady state of a busy key (a full window of 20 times,
// one dropped and one added each time), one refused (PostgreSQL: remembered
// from an earlier refusal) and, for PostgreSQL, the query a first refusal
// makes and a bare round trip for scale.
func BenchmarkThrottle(b *testing.B) {
	rate := config.Rate{N: 20, Period: time.Minute}
	db := testdb.Open(b)
	for _, store := range []string{"memory", "postgres"} {
		mk := func(now func() time.Time) *throttle {
			if store == "memory" {
				return newThrottle("bench", rate, 50000, now)
			}
			return sharedThrottle(db, "bench", rate, now)
		}
		ctx := context.Background()
		b.Run(store+"/allowed", func(b *testing.B) {
			// 1000 keys visited in turn, 3 ms apart: each key every 3 s, 20
			// times a minute, always at the limit and always allowed.
			now := time.Now()
			th := mk(func() time.Time { return now })
			i := 0
			for b.Loop() {
				now = now.Add(3 * time.Millisecond)
				if w, err := th.allow(ctx, fmt.Sprint("a", i%1000)); w != 0 || err != nil {
					b.Fatalf("refused: %v %v", w, err)
				}
				i++
			}
		})
		b.Run(store+"/refused", func(b *testing.B) {
			now := time.Now()
			th := mk(func() time.Time { return now })
			for range rate.N {
				th.allow(ctx, "r")
			}
			for b.Loop() {
				if w, err := th.allow(ctx, "r"); w == 0 || err != nil {
					b.Fatalf("allowed: %v %v", w, err)
				}
			}
		})
	}
	b.Run("postgres/refused-query", func(b *testing.B) { // the first refusal: before it is remembered
		now := time.Now()
		store := postgres.NewThrottles(db)
		for range rate.N {
			store.Allow(context.Background(), "bench", "q", rate.N, rate.Period, now)
		}
		for b.Loop() {
			if w, err := store.Allow(context.Background(), "bench", "q", rate.N, rate.Period, now); w == 0 || err != nil {
				b.Fatalf("allowed: %v %v", w, err)
			}
		}
	})
	b.Run("postgres/select-1", func(b *testing.B) { // the round trip alone, for scale
		for b.Loop() {
			var one int
			if err := db.QueryRowContext(context.Background(), `SELECT $1::int`, 1).Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
}
