package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/pgtest"
)

// TestServeLameDuck: with SHUTDOWN_DELAY, SIGTERM first makes the probes
// answer 503 and turns away the idempotent requests of a failover proxy
// while everything else is still served; then the server exits.
func TestServeLameDuck(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, stderr, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	for k, v := range map[string]string{"SHUTDOWN_DELAY": "forever", "SHUTDOWN_TIMEOUT": "0s"} {
		if _, stderr, code := isis(t, map[string]string{"DATABASE_URL": dsn, k: v}, "serve"); code != 2 || !strings.Contains(stderr, k) {
			t.Errorf("bad %s: exit %d %s", k, code, stderr)
		}
	}
	port := freePort(t)
	cmd := exec.Command(isisBin, "serve")
	cmd.Env = baseEnv(map[string]string{"DATABASE_URL": dsn, "PORT": fmt.Sprint(port), "LISTEN_ADDRESS": "127.0.0.1", "SHUTDOWN_DELAY": "1500ms"})
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUp(t, base+"/api/ready/")
	get := func(method, path string, failover bool) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"token":"x"}`))
		req.Host = "localhost"
		req.Header.Set("Content-Type", "application/json")
		if failover {
			req.Header.Set(FailoverHeader, "1")
		}
		res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		res.Body.Close()
		return res
	}
	if res := get("GET", "/api/departments/", true); res.StatusCode != 200 {
		t.Fatalf("before SIGTERM, a failover proxy's GET = %d", res.StatusCode)
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	for _, tc := range []struct {
		method, path string
		failover     bool
		want         int
	}{
		{"GET", "/api/departments/", false, 200},  // a direct client is still served
		{"GET", "/api/departments/", true, 503},   // the proxy resends it elsewhere
		{"POST", "/api/token/verify/", true, 401}, // never turned away: not idempotent
		{"GET", "/api/ready/", false, 503},        // active health checks see it
		{"GET", "/api/health/", false, 503},
	} {
		res := get(tc.method, tc.path, tc.failover)
		if res.StatusCode != tc.want || !res.Close {
			t.Errorf("lame duck: %s %s (failover %v) = %d (Connection: close %v), want %d and close", tc.method, tc.path, tc.failover,
				res.StatusCode, res.Close, tc.want)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stdout.String())
	}
	// The requests above kept it in the lame duck; lameQuiet after the
	// last one it stopped, before SHUTDOWN_DELAY ran out.
	if d := time.Since(start); d > 1400*time.Millisecond {
		t.Errorf("exited %s after SIGTERM, want once no request came for %s", d, lameQuiet)
	}
}

// TestLameDuckLength: a server that served a request just before SIGTERM
// stays lame duck until no request came for lameQuiet; one that no request
// (probes aside) reached for lameIdle, the standby slot, has none.
func TestLameDuckLength(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lastAgo  time.Duration // -1: never
		lameDuck bool
	}{
		{"a request just now", 0, true},
		{"a request 0.9 s ago", 900 * time.Millisecond, true},
		{"the last request a second ago", lameIdle, false},
		{"never a request", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l lameDuckState
			if tc.lastAgo >= 0 {
				l.last.Store(time.Now().Add(-tc.lastAgo).UnixNano())
			}
			start := time.Now()
			l.wait(5 * time.Second)
			took := time.Since(start)
			if tc.lameDuck && (took < lameQuiet || took > 5*time.Second) {
				t.Errorf("lame duck of %s, want from %s until the 5 s limit", took, lameQuiet)
			}
			if !tc.lameDuck && took >= lameQuiet {
				t.Errorf("lame duck of %s, want none", took)
			}
		})
	}
}
