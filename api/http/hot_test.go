package apihttp

import (
	"io"
	"net/http"
	"testing"
)

type discardRW struct{ h http.Header }

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardRW) WriteHeader(int)             {}

// BenchmarkHealthHandler is the server's own cost for one /api/health/,
// without net/http or a recorder around it.
func BenchmarkHealthHandler(b *testing.B) {
	ts := newTestServer(b, nil)
	ts.accessLog = io.Discard
	r, _ := http.NewRequest(http.MethodGet, "http://api.example.com/api/health/", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	w := &discardRW{}
	b.ReportAllocs()
	for b.Loop() {
		w.h = http.Header{}
		r.URL.Path = "/api/health/"
		ts.ServeHTTP(w, r)
	}
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
