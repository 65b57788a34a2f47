package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/testenv"

	"github.com/isis-project/isis/internal/pgtest"
)

// browserReady says what is missing for the browser test, if anything.
func browserReady() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node"
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		return "Debian's chromium"
	}
	if _, err := os.Stat("../../test/browser/node_modules/playwright-core"); err != nil {
		return "playwright-core (npm ci in test/browser)"
	}
	return ""
}

// TestBrowserSPA serves the reference client from another origin and drives
// it in headless Chromium against the real server: register, log in, the
// user, departments and municipalities through next links, refresh, log out,
// readable 400/401/404/429 errors and headers, a foreign origin locked out,
// and the API docs page.
func TestBrowserSPA(t *testing.T) {
	if missing := browserReady(); missing != "" {
		testenv.Missing(t, missing, "scripts/setup.sh test installs it")
	}
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	client, _ := filepath.Abs("../../test/browser/client")
	serve := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.FileServer(http.Dir(client))}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return "http://" + l.Addr().String()
	}
	pageURL, evilURL := serve(), serve()

	port := freePort(t)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(isisBin, "serve")
	cmd.Env = baseEnv(map[string]string{"DATABASE_URL": dsn, "PORT": fmt.Sprint(port), "LISTEN_ADDRESS": "127.0.0.1",
		"CORS_ALLOWED_ORIGINS": pageURL, "THROTTLE_TOKEN": "8/min"})
	var serverLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &serverLog, &serverLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUp(t, apiURL+"/api/ready/")

	artifacts := os.Getenv("ISIS_ARTIFACTS")
	if artifacts == "" { // screenshots kept only when asked for (ISIS_ARTIFACTS=DIR)
		artifacts = t.TempDir()
	}
	node := exec.Command("node", "spa.mjs")
	node.Dir = "../../test/browser"
	node.Env = append(os.Environ(), "API_URL="+apiURL, "PAGE_URL="+pageURL, "EVIL_URL="+evilURL, "ARTIFACTS="+artifacts)
	start := time.Now()
	out, err := node.CombinedOutput()
	t.Logf("browser run (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("browser test failed: %v\nserver log tail: %s", err, tail(serverLog.String(), 2000))
	}
	if !strings.Contains(string(out), " 0 failed") {
		t.Fatal("the browser run did not report its steps")
	}
	// The preflight for the Authorization header reached the server and passed.
	preflight := false
	for _, line := range strings.Split(serverLog.String(), "\n") {
		if strings.Contains(line, `"method":"OPTIONS"`) && strings.Contains(line, `"path":"/api/users/me/"`) && strings.Contains(line, `"status":200`) {
			preflight = true
		}
	}
	if !preflight {
		t.Error("no successful preflight for GET /api/users/me/ in the server log")
	}
	for _, f := range []string{"spa.png", "docs.png"} {
		if st, err := os.Stat(filepath.Join(artifacts, f)); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s missing", f)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
