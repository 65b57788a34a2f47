package apihttp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// discardRW is a ResponseWriter that keeps only the status.
type discardRW struct {
	h    http.Header
	code int
}

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardRW) WriteHeader(code int)        { d.code = code }

// benchHandler measures the server's own cost for one GET of path, without
// net/http or a recorder around it (access log on, to io.Discard).
func benchHandler(b *testing.B, ts *testServer, path, authorization string) {
	ts.accessLog = io.Discard
	r, _ := http.NewRequest(http.MethodGet, "http://api.example.com"+path, nil)
	rawPath := r.URL.Path
	r.RemoteAddr = "127.0.0.1:40000"
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := &discardRW{}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		w.h, w.code = http.Header{}, 0
		r.URL.Path = rawPath // the trailing-slash rewrite changes it
		ts.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("GET %s = %d", path, w.code)
		}
	}
	// CPU time per request, the collector's included: on a shared machine
	// ns/op also counts the time other tenants had the CPU.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkHealthHandler(b *testing.B) { benchHandler(b, newTestServer(b, nil), "/api/health/", "") }

// BenchmarkHealthHandlerMetrics is BenchmarkHealthHandler with the request
// metrics counted (METRICS_ADDRESS set): the difference is their cost, and
// the allocations must be the same.
func BenchmarkHealthHandlerMetrics(b *testing.B) {
	benchHandler(b, newTestServer(b, map[string]string{"METRICS_ADDRESS": "127.0.0.1:9100"}), "/api/health/", "")
}

// The cached reads (an answer from the geography cache): the server's own
// cost beside net/http's, which the bare handler of scripts/load.sh pays too
// (metrics and the access log on, as in production).
func benchCachedRead(b *testing.B, path string) {
	benchHandler(b, newTestServer(b, map[string]string{"METRICS_ADDRESS": "127.0.0.1:9100"}), path, "")
}

func BenchmarkDepartmentsHandler(b *testing.B) { benchCachedRead(b, "/api/departments/") }
func BenchmarkDepartmentHandler(b *testing.B)  { benchCachedRead(b, "/api/departments/05/") }
func BenchmarkMunicipalitiesHandler(b *testing.B) {
	benchCachedRead(b, "/api/municipalities/?department=05")
}
func BenchmarkSearchHandler(b *testing.B) { benchCachedRead(b, "/api/municipalities/?search=san") }

// BenchmarkMeHandler: token check, user row (cached), JSON.
func BenchmarkMeHandler(b *testing.B) {
	ts := newTestServer(b, nil)
	mustUser(b, ts, "bench@example.com", false)
	access, _ := login(b, ts, "bench@example.com", goodPassword)
	benchHandler(b, ts, "/api/users/me/", "Bearer "+access)
}

// TestHeaderKeysCanonical: header() reads the map directly, so every key it
// is given must be in the canonical form net/http stores.
func TestHeaderKeysCanonical(t *testing.T) {
	for _, k := range []string{"Authorization", "X-Real-Ip", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-For",
		"Forwarded", "If-None-Match", "X-Request-Id", "Origin", "Access-Control-Request-Method"} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
	h := http.Header{}
	h.Set("x-real-ip", "192.0.2.1")
	if header(h, "X-Real-Ip") != "192.0.2.1" || header(h, "Origin") != "" {
		t.Error("header() does not read what Header.Set stored")
	}
}

func TestAuthFields(t *testing.T) {
	for _, tc := range []struct {
		in            string
		first, second string
		n             int
	}{
		{"", "", "", 0},
		{"   \t", "", "", 0},
		{"Bearer", "Bearer", "", 1},
		{"Bearer abc.def.ghi", "Bearer", "abc.def.ghi", 2},
		{"  bearer \t abc  ", "bearer", "abc", 2},
		{"Bearer a b", "Bearer", "a", 3},
		{"Bearer a b c d", "Bearer", "a", 3},
		{"Basic\x0bYTpi", "Basic", "YTpi", 2},
	} {
		f, s, n := authFields(tc.in)
		if f != tc.first || s != tc.second || n != tc.n {
			t.Errorf("authFields(%q) = %q %q %d, want %q %q %d", tc.in, f, s, n, tc.first, tc.second, tc.n)
		}
	}
}

// FuzzAuthFields: the same answer as strings.Fields on ASCII input.
func FuzzAuthFields(f *testing.F) {
	f.Add("Bearer abc")
	f.Add(" a\tb\nc ")
	f.Fuzz(func(t *testing.T, h string) {
		for i := 0; i < len(h); i++ {
			if h[i] >= 0x80 || h[i] == 0x1c || h[i] == 0x1d || h[i] == 0x1e || h[i] == 0x1f {
				return // strings.Fields also splits on Unicode spaces; headers are bytes
			}
		}
		want := strings.Fields(h)
		first, second, n := authFields(h)
		if min(len(want), 3) != n || (n > 0 && first != want[0]) || (n > 1 && second != want[1]) {
			t.Fatalf("authFields(%q) = %q %q %d; strings.Fields = %q", h, first, second, n, want)
		}
	})
}
