package apihttp

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCachedReadsByteForByte pins what the cached reads send: the answer
// from the cache is the one the database gave (body and the headers that
// matter), and each host the client used keeps its own answer (the links in
// a page hold it), whatever order the hosts come in.
func TestCachedReadsByteForByte(t *testing.T) {
	ts := newTestServer(t, nil)
	hdrs := []string{"Content-Type", "Content-Length", "Etag", "Cache-Control", "Vary", "Allow"}
	urls := []string{"/api/departments/", "/api/departments/05/", "/api/municipalities/?department=05",
		"/api/municipalities/?search=san", "/api/municipalities/?department=05&page=2", "/api/departments/?page_size=3&page=2"}
	hosts := []string{"api.example.com", "localhost", "127.0.0.1", "api.example.com:8443", "www.example.org"}
	first := map[string]*httptest.ResponseRecorder{}
	for round := 0; round < 3; round++ { // a miss, then hits, hosts interleaved
		for _, u := range urls {
			for _, h := range hosts {
				w := ts.do(t, req{URL: u, Header: map[string]string{"Host": h}})
				if w.Code != 200 {
					t.Fatalf("%s %s = %d: %s", h, u, w.Code, w.Body)
				}
				if strings.Contains(w.Body.String(), "://") && !strings.Contains(w.Body.String(), "://"+h+"/") {
					t.Errorf("%s %s: links not to the host used: %s", h, u, w.Body)
				}
				k := h + " " + u
				f := first[k]
				if f == nil {
					first[k] = w
					continue
				}
				if w.Body.String() != f.Body.String() {
					t.Errorf("%s round %d: body\n%s\nwant\n%s", k, round, w.Body, f.Body)
				}
				for _, name := range hdrs {
					if g, want := w.Header().Values(name), f.Header().Values(name); strings.Join(g, ",") != strings.Join(want, ",") {
						t.Errorf("%s round %d: %s = %q, want %q", k, round, name, g, want)
					}
				}
			}
		}
	}
	if ts.geo.hits.Load() == 0 {
		t.Fatal("no answer came from the cache")
	}
}
