package apihttp

import (
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestRootAndHealth(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct{ method, url string }{
		{"GET", "/api/"}, {"GET", "/api"}, {"HEAD", "/api/"}, {"HEAD", "/api"},
		{"GET", "/api/health/"}, {"GET", "/api/health"}, {"HEAD", "/api/health/"},
		{"GET", "/api/ready/"}, {"GET", "/api/ready"},
	} {
		w := ts.do(t, req{Method: tc.method, URL: tc.url})
		if w.Code != http.StatusOK {
			t.Errorf("%s %s = %d, want 200: %s", tc.method, tc.url, w.Code, w.Body.String())
		}
	}
	m := decode(t, ts.do(t, req{URL: "/api/health/"}))
	if m["status"] != "ok" || m["version"] == "" {
		t.Errorf("health = %v", m)
	}
	m = decode(t, ts.do(t, req{URL: "/api/ready/"}))
	if m["status"] != "ok" || m["database"] != "ok" || m["migrations"] != "ok" {
		t.Errorf("ready = %v", m)
	}
}

func TestReadyPendingMigrations(t *testing.T) {
	ts := newTestServer(t, nil)
	if _, err := ts.DB.Exec(`DELETE FROM schema_migrations WHERE version = '0002_geography'`); err != nil {
		t.Fatal(err)
	}
	w := ts.do(t, req{URL: "/api/ready/"})
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", w.Code)
	}
	m := decode(t, w)
	if m["status"] != "unavailable" || m["database"] != "ok" || m["migrations"] != "pending" {
		t.Fatalf("ready = %v", m)
	}
}

func TestErrorEnvelope(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.echo.GET("/api/_panic", func(c echo.Context) error { panic("secret internal state") })

	wantError(t, ts.do(t, req{URL: "/api/nope/"}), 404, "not_found")
	wantError(t, ts.do(t, req{URL: "/nope"}), 404, "not_found")
	m := wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/health/"}), 405, "method_not_allowed")
	if !strings.Contains(m["detail"].(string), "DELETE") {
		t.Errorf("405 detail = %v", m["detail"])
	}
	w := ts.do(t, req{URL: "/api/_panic"})
	m = wantError(t, w, 500, "server_error")
	if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "goroutine") {
		t.Errorf("500 body leaks the panic: %s", w.Body.String())
	}
	// The log line with the same request id holds the cause.
	found := false
	for _, l := range ts.Log.lines(t) {
		if l["request_id"] == m["request_id"] {
			found = true
			if !strings.Contains(l["error"].(string), "secret internal state") || l["stack"] == nil {
				t.Errorf("log line lacks the panic: %v", l)
			}
			if l["status"] != float64(500) || l["level"] != "ERROR" {
				t.Errorf("log line = %v", l)
			}
		}
	}
	if !found {
		t.Error("no log line for the panic's request id")
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(t, req{URL: "/api/health/", Header: map[string]string{"X-Request-ID": "abc-123.XYZ_9"}})
	if got := w.Header().Get("X-Request-ID"); got != "abc-123.XYZ_9" {
		t.Errorf("sane id not kept: %q", got)
	}
	for _, bad := range []string{"has space", strings.Repeat("a", 200), "<script>", "a\"b"} {
		w := ts.do(t, req{URL: "/api/nope", Header: map[string]string{"X-Request-ID": bad}})
		got := w.Header().Get("X-Request-ID")
		if got == bad || len(got) != 32 {
			t.Errorf("X-Request-ID %q kept as %q, want a generated one", bad, got)
		}
		if decode(t, w)["request_id"] != got {
			t.Errorf("envelope request_id differs from header")
		}
	}
	if w := ts.do(t, req{URL: "/api/health/"}); len(w.Header().Get("X-Request-ID")) != 32 {
		t.Errorf("no generated X-Request-ID")
	}
	// A generated id is written into its request's own state: the ids of
	// earlier requests stay as they were, each in its own log line.
	var ids []string
	for range 3 {
		ids = append(ids, ts.do(t, req{URL: "/api/health/"}).Header().Get("X-Request-ID"))
	}
	logged := map[any]bool{}
	for _, l := range ts.Log.lines(t) {
		logged[l["request_id"]] = true
	}
	for i, id := range ids {
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || !logged[id] || i > 0 && id == ids[i-1] {
			t.Errorf("generated ids %q: %q is not 32 hex digits of its own, logged", ids, id)
		}
	}
}

func TestAllowedHosts(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		host   string
		url    string
		status int
	}{
		{"api.example.com", "/api/", 200},
		{"API.EXAMPLE.COM:443", "/api/", 200},
		{"example.org", "/api/", 200},
		{"sub.example.org", "/api/departments/", 200},
		{"evil.com", "/api/", 400},
		{"evil.com", "/api/departments/", 400},
		{"example.org.evil.com", "/api/", 400},
		{"api.example.com@evil.com", "/api/", 400},
		{"evil.com", "/api/health/", 200},
		{"evil.com", "/api/ready", 200},
	} {
		w := ts.do(t, req{URL: tc.url, Header: map[string]string{"Host": tc.host}})
		if w.Code != tc.status {
			t.Errorf("Host %q %s = %d, want %d", tc.host, tc.url, w.Code, tc.status)
		}
		if tc.status == 400 {
			wantError(t, w, 400, "bad_request")
		}
	}
	star := newTestServerDB(t, ts.DB, map[string]string{"ALLOWED_HOSTS": "*"})
	if w := star.do(t, req{URL: "/api/", Header: map[string]string{"Host": "anything.test"}}); w.Code != 200 {
		t.Errorf("ALLOWED_HOSTS=* refused a host: %d", w.Code)
	}
}

func TestCORS(t *testing.T) {
	ts := newTestServer(t, nil)
	const app = "https://app.example.com"
	check := func(name string, w interface{ Header() http.Header }, allowed bool) {
		t.Helper()
		h := w.Header()
		if allowed {
			if h.Get("Access-Control-Allow-Origin") != app {
				t.Errorf("%s: Allow-Origin = %q", name, h.Get("Access-Control-Allow-Origin"))
			}
			if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Errorf("%s: Vary = %q", name, h.Values("Vary"))
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s: credentials must stay off", name)
			}
			return
		}
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: other origin got %s", name, k)
			}
		}
	}
	// Simple requests: success, 404, 304.
	w := ts.do(t, req{URL: "/api/departments/", Header: map[string]string{"Origin": app}})
	check("200", w, true)
	if got := w.Header().Get("Access-Control-Expose-Headers"); got != "X-Request-ID, Retry-After, ETag" {
		t.Errorf("Expose-Headers = %q", got)
	}
	check("404", ts.do(t, req{URL: "/api/nope/", Header: map[string]string{"Origin": app}}), true)
	check("400 host", ts.do(t, req{URL: "/api/", Header: map[string]string{"Origin": app, "Host": "evil.com"}}), true)
	etag := w.Header().Get("ETag")
	w = ts.do(t, req{URL: "/api/departments/", Header: map[string]string{"Origin": app, "If-None-Match": etag}})
	if w.Code != 304 {
		t.Fatalf("If-None-Match = %d, want 304", w.Code)
	}
	check("304", w, true)

	// Preflight.
	w = ts.do(t, req{Method: "OPTIONS", URL: "/api/users/me/", Header: map[string]string{
		"Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization",
	}})
	if w.Code != 200 && w.Code != 204 {
		t.Fatalf("preflight = %d", w.Code)
	}
	check("preflight", w, true)
	h := w.Header()
	if h.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, X-Request-ID" ||
		h.Get("Access-Control-Max-Age") != "86400" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "PATCH") {
		t.Errorf("preflight headers = %v", h)
	}

	// Another origin gets nothing.
	check("other", ts.do(t, req{URL: "/api/departments/", Header: map[string]string{"Origin": "https://evil.example"}}), false)
	check("other preflight", ts.do(t, req{Method: "OPTIONS", URL: "/api/departments/", Header: map[string]string{
		"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}}), false)
	check("no origin", ts.do(t, req{URL: "/api/departments/"}), false)
}

// clientIPOf returns the client_ip logged for the request with this id.
func clientIPOf(t *testing.T, ts *testServer, r req) string {
	t.Helper()
	if r.Header == nil {
		r.Header = map[string]string{}
	}
	id := newRequestID(new([32]byte))
	r.Header["X-Request-ID"] = id
	ts.do(t, r)
	for _, l := range ts.Log.lines(t) {
		if l["request_id"] == id {
			for _, k := range []string{"method", "route", "status", "latency_ms", "path"} {
				if _, ok := l[k]; !ok {
					t.Errorf("log line lacks %s: %v", k, l)
				}
			}
			return l["client_ip"].(string)
		}
	}
	t.Fatal("no log line")
	return ""
}

func TestClientIPInLogs(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		name   string
		remote string
		header map[string]string
		want   string
	}{
		{"direct", "203.0.113.7:5555", nil, "203.0.113.7"},
		{"spoofed XFF from untrusted peer", "203.0.113.7:5555", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "203.0.113.7"},
		{"spoofed Forwarded from untrusted peer", "203.0.113.7:5555", map[string]string{"Forwarded": "for=1.2.3.4"}, "203.0.113.7"},
		{"spoofed X-Real-IP from untrusted peer", "203.0.113.7:5555", map[string]string{"X-Real-IP": "1.2.3.4"}, "203.0.113.7"},
		{"XFF from trusted proxy", "127.0.0.1:1", map[string]string{"X-Forwarded-For": "198.51.100.9"}, "198.51.100.9"},
		{"XFF with spoofed left part", "127.0.0.1:1", map[string]string{"X-Forwarded-For": "6.6.6.6, 198.51.100.9, 10.0.0.2"}, "198.51.100.9"},
		// Unset, CLIENT_IP_HEADER is the contract's Forwarded, then
		// X-Forwarded-For, then X-Real-IP; TestClientIPTrust covers the rest.
		{"Forwarded several hops", "10.88.0.1:1", map[string]string{"Forwarded": `for=6.6.6.6, for="198.51.100.9:4711";proto=https, for=172.16.0.5`}, "198.51.100.9"},
		{"Forwarded IPv6", "[::1]:1", map[string]string{"Forwarded": `for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"Forwarded wins over XFF", "127.0.0.1:1", map[string]string{"Forwarded": "for=198.51.100.1", "X-Forwarded-For": "198.51.100.2"}, "198.51.100.1"},
		{"X-Real-IP from trusted proxy", "127.0.0.1:1", map[string]string{"X-Real-IP": "198.51.100.3"}, "198.51.100.3"},
		{"all hops trusted", "127.0.0.1:1", map[string]string{"X-Forwarded-For": "10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"garbage hop stops the walk", "127.0.0.1:1", map[string]string{"X-Forwarded-For": "6.6.6.6, garbage"}, "127.0.0.1"},
	} {
		if got := clientIPOf(t, ts, req{URL: "/api/health/", Remote: tc.remote, Header: tc.header}); got != tc.want {
			t.Errorf("%s: client_ip = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestLogDirAndSecretsNotLogged(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.do(t, req{URL: "/api/departments/", Header: map[string]string{"Authorization": "Bearer supersecret"}})
	for _, l := range ts.Log.lines(t) {
		for _, v := range l {
			if s, ok := v.(string); ok && strings.Contains(s, "supersecret") {
				t.Fatalf("log leaks a header: %v", l)
			}
		}
	}
}
