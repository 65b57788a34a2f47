package apihttp

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/clientip"
)

// TestAccessLine: every field, in slog's JSONHandler shape.
func TestAccessLine(t *testing.T) {
	at := time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.UTC)
	st := &reqState{id: "abc", path: "/api/x/\xff", client: clientip.Client{IP: netip.MustParseAddr("2001:db8::1")}, user: &api.User{ID: 7},
		logErr: errors.New("pq: \"boom\"\n"), stack: "goroutine 1 [running]:\n\tmain.go:1"}
	l := accessLine{time: at, level: slog.LevelError, method: "GET", route: "/api/x",
		status: 500, latency: 1234567 * time.Nanosecond, st: st, bytes: 42}
	b := l.append(nil)
	if b[len(b)-1] != '\n' {
		t.Fatalf("line does not end in a newline: %q", b)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	want := map[string]any{"time": "2026-11-26T01:02:03.456789Z", "level": "ERROR", "msg": "request", "request_id": "abc",
		"method": "GET", "path": "/api/x/\ufffd", "route": "/api/x", "status": 500.0, "latency_ms": 1.234,
		"client_ip": "2001:db8::1", "bytes": 42.0, "user_id": 7.0, "error": "pq: \"boom\"\n", "stack": st.stack}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("line = %v\nwant   %v", got, want)
	}

	// No client address, no user, no error: the optional fields are absent.
	b = (&accessLine{time: at, level: slog.LevelInfo, st: &reqState{}}).append(nil)
	got = nil
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	for _, k := range []string{"user_id", "error", "stack"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s present in %s", k, b)
		}
	}
	if got["client_ip"] != "" || got["level"] != "INFO" {
		t.Errorf("line = %s", b)
	}
}

func BenchmarkAccessLine(b *testing.B) {
	st := &reqState{id: newRequestID(new([32]byte)), path: "/api/health/", client: clientip.Client{IP: netip.MustParseAddr("127.0.0.1")}}
	l := accessLine{time: time.Now(), level: slog.LevelInfo, method: "GET",
		route: "/api/health", status: 200, latency: 150 * time.Microsecond, st: st, bytes: 33}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = l.append(buf[:0])
	}
}

// FuzzAppendStamp: the cached stamp is time.RFC3339Nano's text, byte for
// byte, whatever the instant, the zone and the order they come in (the
// cache is keyed by second and location).
func FuzzAppendStamp(f *testing.F) {
	f.Add(int64(1796000000), int64(456789000), int16(0))
	f.Add(int64(1796000000), int64(0), int16(60))
	f.Add(int64(1796000000), int64(100), int16(-330))
	f.Add(int64(1796000001), int64(999999999), int16(0))
	f.Add(int64(-62167219200), int64(1), int16(0))   // year 0
	f.Add(int64(253402300800), int64(5e8), int16(0)) // year 10000
	f.Fuzz(func(t *testing.T, sec, nsec int64, offMin int16) {
		loc := time.UTC
		if offMin != 0 {
			loc = time.FixedZone("", int(offMin)*60)
		}
		for _, tm := range []time.Time{time.Unix(sec, nsec).In(loc), time.Unix(sec, nsec).In(time.UTC), time.Unix(sec, 0).In(loc)} {
			want := tm.Format(time.RFC3339Nano)
			for range 2 { // a miss, then a hit
				if got := string(appendStamp([]byte("x"), tm)); got != "x"+want {
					t.Fatalf("appendStamp(%v) = %q, want %q", tm, got[1:], want)
				}
			}
		}
	})
}
