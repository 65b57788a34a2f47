package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/config"
	apihttp "github.com/isis-project/isis/api/http"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const password = "metrics-test-password-1"

type fixture struct {
	srv *apihttp.Server
	db  *postgres.DB
	reg http.Handler
}

// newFixture is a server on a fresh database with metrics on, its caches
// live (LISTEN running) and, with store "postgres", the shared throttles.
func newFixture(t *testing.T, store string) *fixture {
	t.Helper()
	env := map[string]string{"SECRET_KEY": "metrics-test-secret-0123456789-abcdefghijklmnop", "ALLOWED_HOSTS": "api.example.com",
		"METRICS_ADDRESS": "127.0.0.1:9100", "THROTTLE_STORE": store}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	db := testdb.Open(t)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc := apihttp.Services{DB: db, Geo: postgres.NewGeoService(db), Users: postgres.NewUserService(db), RefreshTokens: postgres.NewRefreshTokenService(db)}
	var throttles *postgres.Throttles
	if store == "postgres" {
		throttles = postgres.NewThrottles(db)
		svc.Throttles = throttles
	}
	s := apihttp.NewServer(cfg, logger, svc)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db.Listen(ctx, s)
	// Both caches come on when the notification channel is shown alive,
	// each on its own path: wait for both.
	on := func() bool { _, _, _, user := db.UserCacheStats(); return user && s.GeoCacheStats().Enabled }
	for deadline := time.Now().Add(10 * time.Second); !on(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the caches did not come on")
		}
	}
	h, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Users.CreateUser(ctx, &api.User{Email: "ana@example.com", Password: h, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: s, db: db, reg: Handler(NewRegistry(Sources{Server: s, DB: db, Throttles: throttles, Logger: logger}), logger)}
}

func (f *fixture) do(t *testing.T, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, "http://api.example.com"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, "http://api.example.com"+path, nil)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "RemoteAddr" {
			r.RemoteAddr = header[i+1]
			continue
		}
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

// scrape fetches /metrics as Prometheus does and parses it.
func (f *fixture) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	f.reg.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("/metrics = %d: %s", w.Code, w.Body.String())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("/metrics is not the text format: %v", err)
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// find returns the metric of fam whose labels include want, or nil.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	for _, m := range fams[name].GetMetric() {
		ok := true
		l := labels(m)
		for k, v := range want {
			ok = ok && l[k] == v
		}
		if ok {
			return m
		}
	}
	return nil
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	m := find(fams, name, want)
	switch {
	case m == nil:
		t.Fatalf("no %s%v in the scrape", name, want)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v has no value", name, want)
	return 0
}

// TestMetricsAfterRequests: real requests through the whole server, then a
// scrape: every series is where it should be, and route labels stay bounded
// however many paths clients make up.
func TestMetricsAfterRequests(t *testing.T) {
	f := newFixture(t, "postgres")
	for range 5 {
		if w := f.do(t, "GET", "/api/health/", ""); w.Code != 200 {
			t.Fatalf("health = %d", w.Code)
		}
	}
	f.do(t, "HEAD", "/api/health", "")
	for range 3 {
		if w := f.do(t, "GET", "/api/departments/", ""); w.Code != 200 {
			t.Fatalf("departments = %d %s", w.Code, w.Body.String())
		}
	}
	for i := range 1000 {
		if w := f.do(t, "GET", fmt.Sprintf("/api/no-such-thing-%d/x%d/", i, i), ""); w.Code != 404 {
			t.Fatalf("made-up path = %d", w.Code)
		}
	}
	f.do(t, "BREW", "/api/health/", "")
	w := f.do(t, "POST", "/api/token/", `{"email":"ana@example.com","password":"`+password+`"}`)
	if w.Code != 200 {
		t.Fatalf("login = %d %s", w.Code, w.Body.String())
	}
	access := strings.Split(strings.Split(w.Body.String(), `"access":"`)[1], `"`)[0]
	// The login's last_login update reaches the user cache as a change
	// notification some time after the answer, and drops the row: ask for
	// /me until the cache has served it twice (a few calls, unless the
	// notification is slow), counting the calls for the series below.
	meCalls := 0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if w := f.do(t, "GET", "/api/users/me/", "", "Authorization", "Bearer "+access); w.Code != 200 {
			t.Fatalf("me = %d %s", w.Code, w.Body.String())
		}
		meCalls++
		if hits, _, _, _ := f.db.UserCacheStats(); meCalls >= 3 && hits >= 2 {
			break
		}
		if time.Now().After(deadline) {
			hits, misses, _, on := f.db.UserCacheStats()
			t.Fatalf("after %d calls to /me the user cache served %d (missed %d, on %v), want at least 2", meCalls, hits, misses, on)
		}
	}
	fams := f.scrape(t)

	// Requests by route template, method and status.
	if n := value(t, fams, RequestsTotal, map[string]string{"route": "/api/health", "method": "GET", "status": "200"}); n != 5 {
		t.Errorf("GET /api/health 200 = %v, want 5", n)
	}
	if n := value(t, fams, RequestsTotal, map[string]string{"route": "/api/health", "method": "HEAD", "status": "200"}); n != 1 {
		t.Errorf("HEAD /api/health 200 = %v, want 1", n)
	}
	if n := value(t, fams, RequestsTotal, map[string]string{"route": "/api/users/me", "method": "GET", "status": "200"}); n != float64(meCalls) {
		t.Errorf("GET /api/users/me 200 = %v, want %d", n, meCalls)
	}
	var notFound []map[string]string
	routes := map[string]bool{}
	for _, m := range fams[RequestsTotal].GetMetric() {
		l := labels(m)
		routes[l["route"]] = true
		if l["status"] == "404" {
			notFound = append(notFound, l)
			if m.Counter.GetValue() != 1000 {
				t.Errorf("404 series %v = %v, want 1000", l, m.Counter.GetValue())
			}
		}
		if strings.Contains(l["route"], "no-such-thing") {
			t.Errorf("a raw path became a route label: %v", l)
		}
	}
	if len(notFound) != 1 || notFound[0]["route"] != apihttp.RouteUnmatched || notFound[0]["method"] != "GET" {
		t.Errorf("1000 made-up paths gave the 404 series %v, want one with route=%s", notFound, apihttp.RouteUnmatched)
	}
	if n := value(t, fams, RequestsTotal, map[string]string{"method": "OTHER"}); n != 1 {
		t.Errorf("an invented method counted %v times under OTHER, want 1", n)
	}
	if len(routes) > 6 {
		t.Errorf("route labels: %v", routes)
	}

	// Latency: one histogram per series (its buckets, then +Inf), its count the requests'.
	h := find(fams, RequestDuration, map[string]string{"route": "/api/health", "method": "GET", "status": "200"})
	if h == nil || h.Histogram == nil {
		t.Fatalf("no histogram for GET /api/health")
	}
	if h.Histogram.GetSampleCount() != 5 || h.Histogram.GetSampleSum() <= 0 || len(h.Histogram.GetBucket()) != len(apihttp.LatencyBuckets)+1 {
		t.Errorf("health histogram: count %d sum %v, %d buckets", h.Histogram.GetSampleCount(), h.Histogram.GetSampleSum(), len(h.Histogram.GetBucket()))
	}
	prev := uint64(0)
	for _, b := range h.Histogram.GetBucket() {
		if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > 5 {
			t.Errorf("buckets not cumulative: %v", h.Histogram.GetBucket())
		}
		prev = b.GetCumulativeCount()
	}

	// The caches: the first department list missed, the next two hit; the
	// user row was served from memory (see the /me loop above).
	if hits, misses := value(t, fams, CacheHits, map[string]string{"cache": "geo"}), value(t, fams, CacheMisses, map[string]string{"cache": "geo"}); hits != 2 || misses != 1 {
		t.Errorf("geo cache hits %v misses %v, want 2 and 1", hits, misses)
	}
	if hits := value(t, fams, CacheHits, map[string]string{"cache": "user"}); hits < 2 {
		t.Errorf("user cache hits = %v, want at least 2", hits)
	}
	if value(t, fams, CacheEnabled, map[string]string{"cache": "geo"}) != 1 || value(t, fams, CacheEntries, map[string]string{"cache": "geo"}) != 1 {
		t.Error("geo cache not shown on with its one entry")
	}

	// The throttle table in PostgreSQL: the login's client.
	if n := value(t, fams, ThrottleKeys, map[string]string{"scope": "token", "store": "postgres"}); n != 1 {
		t.Errorf("token throttle keys = %v, want 1", n)
	}
	// The pool, the build, the runtime.
	for _, name := range []string{"go_sql_max_open_connections", "go_sql_open_connections", "go_sql_in_use_connections",
		"go_sql_idle_connections", "go_sql_wait_count_total", "go_sql_wait_duration_seconds_total"} {
		value(t, fams, name, map[string]string{"db_name": "isis"})
	}
	if v := value(t, fams, BuildInfo, map[string]string{"version": api.Version, "goversion": runtime.Version()}); v != 1 {
		t.Errorf("build info = %v", v)
	}
	value(t, fams, "process_start_time_seconds", nil)
	value(t, fams, "go_goroutines", nil)
}

// TestMetricsMemoryThrottles: with THROTTLE_STORE=memory the table sizes
// are the process's own.
func TestMetricsMemoryThrottles(t *testing.T) {
	f := newFixture(t, "memory")
	for i := range 3 {
		f.do(t, "POST", "/api/token/", `{"email":"ana@example.com","password":"wrong"}`, "RemoteAddr", fmt.Sprintf("198.51.100.%d:40000", i+1))
	}
	fams := f.scrape(t)
	if n := value(t, fams, ThrottleKeys, map[string]string{"scope": "token", "store": "memory"}); n != 3 {
		t.Errorf("token throttle keys = %v, want 3", n)
	}
	if n := value(t, fams, ThrottleKeys, map[string]string{"scope": "register", "store": "memory"}); n != 0 {
		t.Errorf("register throttle keys = %v, want 0", n)
	}
	if find(fams, ThrottleKeys, map[string]string{"store": "postgres"}) != nil {
		t.Error("a postgres throttle series with the memory store")
	}
}

// TestMetricsOffByDefault: without METRICS_ADDRESS the server counts no
// requests.
func TestMetricsOffByDefault(t *testing.T) {
	env := map[string]string{"SECRET_KEY": "metrics-test-secret-0123456789-abcdefghijklmnop", "ALLOWED_HOSTS": "api.example.com"}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	s := apihttp.NewServer(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), apihttp.Services{})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "http://api.example.com/api/health/", nil))
	if w.Code != 200 || s.RequestSeries() != nil {
		t.Errorf("health %d, series %v", w.Code, s.RequestSeries())
	}
}

// TestMetricsThrottleStoreFailing: with the shared throttle store broken
// (its table gone), a throttled request is refused, and the
// metrics say so until the store answers again.
func TestMetricsThrottleStoreFailing(t *testing.T) {
	f := newFixture(t, "postgres")
	login := func() int {
		return f.do(t, "POST", "/api/token/", `{"email":"ana@example.com","password":"wrong"}`, "RemoteAddr", "198.51.100.7:40000").Code
	}
	if code := login(); code != http.StatusUnauthorized {
		t.Fatalf("login with the store working = %d, want 401", code)
	}
	fams := f.scrape(t)
	if n, on := value(t, fams, ThrottleStoreFailures, nil), value(t, fams, ThrottleStoreFailing, nil); n != 0 || on != 0 {
		t.Fatalf("store working: failures %v, failing %v", n, on)
	}
	if _, err := f.db.Exec(`ALTER TABLE throttles RENAME TO throttles_gone`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if code := login(); code < 500 { // 503 with the database unreachable, 500 here
			t.Fatalf("login with the store failing = %d, want it refused (fail closed)", code)
		}
	}
	fams = f.scrape(t)
	if n, on := value(t, fams, ThrottleStoreFailures, nil), value(t, fams, ThrottleStoreFailing, nil); n != 2 || on != 1 {
		t.Errorf("store failing: failures %v, failing %v; want 2, 1", n, on)
	}
	if _, err := f.db.Exec(`ALTER TABLE throttles_gone RENAME TO throttles`); err != nil {
		t.Fatal(err)
	}
	if code := login(); code != http.StatusUnauthorized {
		t.Fatalf("login with the store back = %d, want 401", code)
	}
	fams = f.scrape(t)
	if n, on := value(t, fams, ThrottleStoreFailures, nil), value(t, fams, ThrottleStoreFailing, nil); n != 2 || on != 0 {
		t.Errorf("store back: failures %v, failing %v; want 2, 0", n, on)
	}
}
