package verify

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"
)

// The scrapes in testdata/metrics are real: api/metrics' server after
// traffic (health, geography, 404s, a login, /me), once live and once after
// its pool was closed (503s, the throttle table unreadable).
func TestParseMetrics(t *testing.T) {
	for _, tc := range []struct {
		file string
		want MetricsSummary
	}{
		{"live", MetricsSummary{Version: "dev", Requests: 322, Errors5xx: 0, PoolOpen: 1, PoolMax: 32,
			Caches: map[string]CacheSummary{"geo": {Hits: 58, Misses: 2, Enabled: true}, "user": {Hits: 19, Misses: 1, Enabled: true}}}},
		{"db-closed", MetricsSummary{Version: "dev", Requests: 325, Errors5xx: 3, PoolMax: 32,
			Caches: map[string]CacheSummary{"geo": {Hits: 58, Misses: 2, Enabled: true}, "user": {Hits: 19, Misses: 1, Enabled: true}}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "metrics", tc.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			start := startTime(t, b)
			s, err := ParseMetrics(bytes.NewReader(b), start.Add(100*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			s.Address = "127.0.0.1:9100"
			w := tc.want
			if s.Version != w.Version || s.Requests != w.Requests || s.Errors5xx != w.Errors5xx || s.PoolOpen != w.PoolOpen ||
				s.PoolMax != w.PoolMax || s.PoolInUse != 0 || math.Abs(s.UptimeSeconds-100) > 0.01 || math.Abs(s.RequestRate-w.Requests/100) > 0.01 {
				t.Errorf("summary = %+v", s)
			}
			for name, c := range w.Caches {
				got := s.Caches[name]
				if got.Hits != c.Hits || got.Misses != c.Misses || got.Enabled != c.Enabled || math.Abs(got.HitRatio-c.Hits/(c.Hits+c.Misses)) > 1e-9 {
					t.Errorf("cache %s = %+v, want %+v", name, got, c)
				}
			}
			if s.P50Seconds <= 0 || s.P50Seconds > 0.0001 || s.P99Seconds < s.P50Seconds || s.P99Seconds > 0.1 {
				t.Errorf("p50 %v p99 %v", s.P50Seconds, s.P99Seconds)
			}
			var out bytes.Buffer
			WriteMetricsSummary(&out, s)
			golden := filepath.Join("testdata", "metrics", tc.file+".status")
			if *opstest.Update {
				os.WriteFile(golden, out.Bytes(), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if out.String() != string(want) {
				t.Errorf("status text differs from %s (run go test ./ops/verify -run ParseMetrics -update):\n--- got\n%s--- want\n%s", golden, out.String(), want)
			}
		})
	}
}

func startTime(t *testing.T, b []byte) time.Time {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "process_start_time_seconds "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatal(err)
			}
			return time.Unix(0, int64(f*1e9))
		}
	}
	t.Fatal("no process_start_time_seconds")
	return time.Time{}
}

func TestParseMetricsRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"HTML page":     "<html><body>Not Found</body></html>\n",
		"other program": "# TYPE up gauge\nup 1\n",
		"empty":         "",
	} {
		if _, err := ParseMetrics(strings.NewReader(in), time.Now()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		q              float64
		bounds, counts []float64
		want           float64
	}{
		{0.5, []float64{1, 2, inf}, []float64{0, 0, 0}, -1},
		{0.5, nil, nil, -1},
		{0.5, []float64{1, 2, inf}, []float64{10, 10, 10}, 0.5},        // all in the first: from 0
		{0.99, []float64{1, 2, inf}, []float64{0, 100, 100}, 1.99},     // linear in (1, 2]
		{0.99, []float64{1, 2, inf}, []float64{50, 90, 100}, 2},        // in +Inf: the highest finite bound
		{0.5, []float64{1, 2, 4, inf}, []float64{0, 40, 60, 60}, 1.75}, // rank 30 of 40 in (1, 2]
		{0.5, []float64{inf}, []float64{7}, -1},
	} {
		if got := quantile(tc.q, tc.bounds, tc.counts); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v, %v, %v) = %v, want %v", tc.q, tc.bounds, tc.counts, got, tc.want)
		}
	}
}

func TestMetricsAddressAndURL(t *testing.T) {
	if a := MetricsAddress([]string{"PORT=3003", "METRICS_ADDRESS=0.0.0.0:9100"}); a != "0.0.0.0:9100" {
		t.Errorf("MetricsAddress = %q", a)
	}
	if a := MetricsAddress([]string{"PORT=3003"}); a != "" {
		t.Errorf("MetricsAddress without it = %q", a)
	}
	for addr, want := range map[string]string{"127.0.0.1:9100": "http://127.0.0.1:9100/metrics", "0.0.0.0:9100": "http://127.0.0.1:9100/metrics",
		":9100": "http://127.0.0.1:9100/metrics", "[::]:9100": "http://127.0.0.1:9100/metrics", "[::1]:9100": "http://[::1]:9100/metrics",
		"10.89.0.7:9100": "http://10.89.0.7:9100/metrics"} {
		if got, err := metricsURL(addr); err != nil || got != want {
			t.Errorf("metricsURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := metricsURL("9100"); err == nil {
		t.Error("metricsURL(9100): no error")
	}
}

// FuzzParseMetrics: whatever the backend's port answers (a histogram whose
// buckets go down included), the summary is an error or numbers, never a
// panic.
func FuzzParseMetrics(f *testing.F) {
	live, _ := os.ReadFile(filepath.Join("testdata", "metrics", "live.txt"))
	f.Add(string(live))
	f.Add("# TYPE isis_http_request_duration_seconds histogram\nisis_http_request_duration_seconds_bucket{le=\"1\"} 3\nisis_http_request_duration_seconds_bucket{le=\"+Inf\"} 2\nisis_http_request_duration_seconds_count 2\nisis_build_info 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseMetrics(strings.NewReader(in), time.Unix(2e9, 0))
		if err != nil {
			return
		}
		var out bytes.Buffer
		WriteMetricsSummary(&out, s)
		if !strings.HasPrefix(out.String(), "Backend metrics") {
			t.Fatalf("summary text: %q", out.String())
		}
	})
}
