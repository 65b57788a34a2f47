package apihttp

import (
	"net/http"
	"testing"
)

// TestDrainingProbes: once the server drains, the probes answer 503 (so
// proxies and isisctl stop choosing it) while the API itself still serves.
func TestDrainingProbes(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.Drain()
	for _, u := range []string{"/api/health/", "/api/ready/"} {
		w := ts.do(t, req{URL: u})
		if w.Code != http.StatusServiceUnavailable || decode(t, w)["status"] != "draining" {
			t.Errorf("%s while draining = %d %s, want 503 draining", u, w.Code, w.Body.String())
		}
	}
	if w := ts.do(t, req{URL: "/api/departments/"}); w.Code != http.StatusOK {
		t.Errorf("departments while draining = %d, want 200", w.Code)
	}
}
