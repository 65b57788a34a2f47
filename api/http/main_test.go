package apihttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/isis-project/isis/api/config"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testSecret = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"

// testEnv builds settings from a base plus overrides ("" deletes a key).
func testEnv(t testing.TB, over map[string]string) *config.Config {
	t.Helper()
	env := map[string]string{
		"SECRET_KEY":           testSecret,
		"ALLOWED_HOSTS":        "api.example.com,.example.org,localhost,127.0.0.1",
		"CORS_ALLOWED_ORIGINS": "https://app.example.com",
		"DATABASE_URL":         "postgres://unused@127.0.0.1:1/unused?sslmode=disable",
	}
	for k, v := range over {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncBuffer collects log lines from concurrent requests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records.
func (s *syncBuffer) lines(t testing.TB) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

type testServer struct {
	*Server
	DB  *postgres.DB
	Log *syncBuffer
}

// newTestServer wires a Server to a fresh migrated database.
func newTestServer(t testing.TB, over map[string]string) *testServer {
	t.Helper()
	db := testdb.Open(t)
	return newTestServerDB(t, db, over)
}

func newTestServerDB(t testing.TB, db *postgres.DB, over map[string]string) *testServer {
	t.Helper()
	cfg := testEnv(t, over)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	s := NewServer(cfg, logger, Services{DB: db, Geo: postgres.NewGeoService(db), Users: postgres.NewUserService(db), RefreshTokens: postgres.NewRefreshTokenService(db), AccessLog: logs})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db.Listen(ctx, s) // as cmd/isis does: the geography cache is on in tests too
	return &testServer{Server: s, DB: db, Log: logs}
}

// req describes one request.
type req struct {
	Method string
	URL    string
	Body   string
	Header map[string]string
	Remote string // RemoteAddr, default 127.0.0.1:40000
	// DocLenient: the request uses, on purpose, a leniency of DRF's fields
	// the OpenAPI document does not advertise (a number for a string): the
	// check does not expect the server to refuse it (see checkOpenAPI).
	DocLenient bool
}

func (ts *testServer) do(t testing.TB, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	hr := httptest.NewRequest(r.Method, r.URL, body)
	hr.Host = "api.example.com"
	hr.RemoteAddr = "127.0.0.1:40000"
	if r.Remote != "" {
		hr.RemoteAddr = r.Remote
	}
	if r.Body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.Header {
		if k == "Host" {
			hr.Host = v
			continue
		}
		if v == "" {
			hr.Header.Del(k)
			continue
		}
		hr.Header.Set(k, v)
	}
	vr := hr.Clone(context.Background()) // for the OpenAPI check, with its own body
	vr.Body = io.NopCloser(strings.NewReader(r.Body))
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, hr)
	checkOpenAPI(t, vr, w, r.DocLenient)
	return w
}

// decode reads a JSON body into a map.
func decode(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, w.Body.String())
	}
	return m
}

// wantError checks the whole envelope of an error answer.
func wantError(t testing.TB, w *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want JSON", ct)
	}
	m := decode(t, w)
	if m["code"] != code {
		t.Fatalf("code = %v, want %s; body %s", m["code"], code, w.Body.String())
	}
	if d, _ := m["detail"].(string); d == "" {
		t.Fatalf("detail missing: %s", w.Body.String())
	}
	rid, _ := m["request_id"].(string)
	if rid == "" || rid != w.Header().Get("X-Request-ID") {
		t.Fatalf("request_id = %q, X-Request-ID = %q", rid, w.Header().Get("X-Request-ID"))
	}
	for k := range m {
		switch k {
		case "detail", "code", "request_id":
		case "errors":
			if code != "invalid" {
				t.Fatalf("errors present for code %s: %s", code, w.Body.String())
			}
		default:
			t.Fatalf("unexpected key %q in envelope: %s", k, w.Body.String())
		}
	}
	return m
}

type httptestRecorder = httptest.ResponseRecorder

// newHTTPServer serves ts over real loopback HTTP and returns its base URL.
func newHTTPServer(t testing.TB, ts *testServer) string {
	t.Helper()
	srv := httptest.NewServer(ts)
	t.Cleanup(srv.Close)
	return srv.URL
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey is an RSA key made once per test binary.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
	})
	return rsaKey
}
