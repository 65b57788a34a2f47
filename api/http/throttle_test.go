package apihttp

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/isis-project/isis/api/config"
)

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestThrottleMemoryBounded: a million requests from distinct (forged)
// addresses leave the throttle at its bound, in keys and in memory, and a
// client that keeps coming meanwhile is still remembered.
func TestThrottleMemoryBounded(t *testing.T) {
	const maxKeys = 20000
	rate := config.Rate{N: 20, Period: time.Minute}
	now := time.Now()
	th := newThrottle("token", rate, maxKeys, func() time.Time { return now })
	before := heapInuse()
	ctx := context.Background()
	regular := clientKey(netip.MustParseAddr("198.51.100.1"))
	for i := range 1_000_000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := th.allow(ctx, clientKey(addr)); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			th.allow(ctx, regular)
		}
	}
	store := th.store.(*memoryStore)
	if n := store.len(); n > maxKeys || n < maxKeys*9/10 {
		t.Errorf("%d keys after a million clients, want about %d and never more", n, maxKeys)
	}
	grew := int64(heapInuse()) - int64(before)
	// Each key costs some 200 bytes; a million kept would be 150 MB.
	if limit := int64(maxKeys) * 512; grew > limit {
		t.Errorf("heap grew by %d MB for %d keys, want under %d MB", grew>>20, maxKeys, limit>>20)
	}
	t.Logf("heap grew by %.1f MB for %d keys (%d bytes a key)", float64(grew)/(1<<20), store.len(), grew/int64(store.len()))
	if wait, _ := th.allow(ctx, regular); wait <= 0 {
		t.Error("the client that kept coming was forgotten in the flood")
	}
	runtime.KeepAlive(th)
}

// TestThrottleSlidingWindow: DRF's semantics per key, kept by the bounded
// store: N requests in any window of the period; a refused request is not
// counted; the wait is until the oldest leaves the window.
func TestThrottleSlidingWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := newThrottle("t", config.Rate{N: 3, Period: time.Minute}, 16, func() time.Time { return now })
	checkSlidingWindow(t, th, func(at time.Time) { now = at }, time.Unix(1_000_000, 0))
}

// checkSlidingWindow asks th (3 a minute, its clock set by setNow) for one
// key at DRF's telling moments from start, and wants DRF's waits: three
// allowed, the fourth told to wait for the oldest to leave, a refusal not
// counted.
func checkSlidingWindow(t *testing.T, th *throttle, setNow func(time.Time), start time.Time) {
	t.Helper()
	var got []time.Duration
	at := []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second, 59 * time.Second, 60 * time.Second, 69 * time.Second, 70 * time.Second}
	for _, d := range at {
		setNow(start.Add(d))
		w, err := th.allow(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, w)
	}
	want := []time.Duration{0, 0, 0, 30 * time.Second, time.Second, 0, time.Second, 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

// TestThrottleConcurrent: the store is safe for concurrent use and counts
// every request exactly once.
func TestThrottleConcurrent(t *testing.T) {
	now := time.Now()
	th := newThrottle("t", config.Rate{N: 100, Period: time.Hour}, 1000, func() time.Time { return now })
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Sprint("k", (i+g)%10)
				if w, _ := th.allow(context.Background(), key); w == 0 {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for k, n := range allowed {
		if n != 100 {
			t.Errorf("%s: %d allowed, want 100", k, n)
		}
	}
}

func TestClientKey(t *testing.T) {
	for _, c := range []struct{ ip, key string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	} {
		if got := clientKey(netip.MustParseAddr(c.ip)); got != c.key {
			t.Errorf("clientKey(%s) = %s, want %s", c.ip, got, c.key)
		}
	}
}

// TestThrottleIPv6Per64: addresses of one /64 count as one client.
func TestThrottleIPv6Per64(t *testing.T) {
	ts := newTestServer(t, map[string]string{"THROTTLE_TOKEN": "2/min"})
	post := func(remote string) *httptestRecorder {
		return ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"x@example.com","password":"wrong-password"}`, Remote: remote})
	}
	for _, remote := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::2]:1"} {
		if w := post(remote); w.Code != 401 {
			t.Fatalf("%s = %d", remote, w.Code)
		}
	}
	wantError(t, post("[2001:db8:1:2:abcd:ef01:2345:6789]:1"), 429, "throttled")
	if w := post("[2001:db8:1:3::1]:1"); w.Code != 401 {
		t.Errorf("another /64 = %d", w.Code)
	}
}

// TestThrottlePassword: password changes are throttled per user, so one
// user hammering wrong old passwords (64 connections at once) gets 429s
// without a password check each, and others are not affected.
func TestThrottlePassword(t *testing.T) {
	ts := newTestServer(t, map[string]string{"THROTTLE_PASSWORD": "3/min"})
	mustUser(t, ts, "ana@example.com", false)
	mustUser(t, ts, "bea@example.com", false)
	ana, _ := login(t, ts, "ana@example.com", goodPassword)
	bea, _ := login(t, ts, "bea@example.com", goodPassword)
	change := func(tok string) *httptestRecorder {
		return ts.do(t, req{Method: "POST", URL: "/api/users/me/password/", Header: bearer(tok),
			Body: `{"old_password":"not-my-password","new_password":"another-good-pass-7"}`})
	}
	codes := make([]int, 64)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = change(ana).Code })
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[400] != 3 || count[429] != 61 {
		t.Errorf("64 wrong old passwords at once: %v, want 3 checked (400) and 61 throttled (429)", count)
	}
	if w := change(ana); wantError(t, w, 429, "throttled") != nil && w.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if w := change(bea); w.Code != 400 {
		t.Errorf("another user = %d, want 400", w.Code)
	}
	// Anonymous requests are refused as such, not throttled.
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/users/me/password/", Body: `{}`}), 401, "not_authenticated")
	// A minute later the user may try again.
	base := time.Now()
	ts.Now = func() time.Time { return base.Add(61 * time.Second) }
	if w := change(ana); w.Code != 400 {
		t.Errorf("after the window = %d", w.Code)
	}
}
