package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/pgtest"
)

// TestMetricsListener: METRICS_ADDRESS serves /metrics on a listener of its
// own, with the API's requests in it; the API's port does not serve them.
func TestMetricsListener(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startServer(t, map[string]string{"METRICS_ADDRESS": addr, "DATABASE_URL": dsn})
	for range 3 {
		res, err := http.Get(srv.base + "/api/health/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`isis_http_requests_total{method="GET",route="/api/health",status="200"} `, // 3, and waitUp's
		`isis_http_request_duration_seconds_bucket{method="GET",route="/api/health",status="200",le="0.0001"} `,
		`go_sql_in_use_connections{db_name="isis"} `, `isis_cache_enabled{cache="geo"} `,
		`isis_throttle_keys{scope="token",store="postgres"} 0`, `isis_build_info{goversion="go`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(srv.log.String(), `"msg":"metrics on"`) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // the log is written in batches
	}
	if !strings.Contains(srv.log.String(), `"msg":"metrics on"`) {
		t.Errorf("no start-up line for the metrics listener:\n%s", srv.log.String())
	}
	req, _ := http.NewRequest("GET", srv.base+"/metrics", nil)
	req.Host = "localhost"
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("/metrics on the API's port = %d, want 404", res.StatusCode)
	}
	if _, e, code := isis(t, map[string]string{"METRICS_ADDRESS": "metrics:9100"}, "serve"); code != 2 || !strings.Contains(e, "METRICS_ADDRESS") {
		t.Errorf("a METRICS_ADDRESS that is not host:port: exit %d, %q", code, e)
	}
}

// TestCheckDeployMetrics: metrics on loopback pass check --deploy; on any
// other address they are named.
func TestCheckDeployMetrics(t *testing.T) {
	good := map[string]string{"STATIC_ROOT": "/srv/static", "MEDIA_ROOT": "/srv/media",
		"SECRET_KEY": "Kq8vZ2mN4xR7tB1yW5cE9uJ3hL6pD0sA-fG_iO2kT8wQ4zX7nV1bM5", "DATABASE_HOST": "postgres18",
		"CLIENT_IP_HEADER": "X-Forwarded-For"}
	for addr, warned := range map[string]bool{"127.0.0.1:9100": false, "localhost:9100": false, "[::1]:9100": false,
		"0.0.0.0:9100": true, ":9100": true, "10.89.0.7:9100": true} {
		env := map[string]string{"METRICS_ADDRESS": addr}
		for k, v := range good {
			env[k] = v
		}
		out, _, code := isis(t, env, "check", "--deploy")
		line := "METRICS_ADDRESS: " + addr + " is not loopback"
		if warned && (code != 1 || !strings.Contains(out, line)) {
			t.Errorf("METRICS_ADDRESS=%s: exit %d, want the line %q:\n%s", addr, code, line, out)
		}
		if !warned && (code != 0 || strings.Contains(out, "METRICS_ADDRESS")) {
			t.Errorf("METRICS_ADDRESS=%s: exit %d:\n%s", addr, code, out)
		}
	}
}
