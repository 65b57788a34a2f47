package main

import (
	"bytes"
	"fmt"
	"io"
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

// tsclientDir holds the SPA team's check: package.json and its lock, the
// program, its tsconfig. gen/ is made by the test and removed after it.
const tsclientDir = "../../test/tsclient"

// tsclientReady says what is missing for the TypeScript client check.
func tsclientReady() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node"
	}
	for _, bin := range []string{"openapi-typescript", "tsc", "redocly"} {
		if _, err := os.Stat(filepath.Join(tsclientDir, "node_modules/.bin", bin)); err != nil {
			return bin + " (npm ci in test/tsclient)"
		}
	}
	return ""
}

// TestTypeScriptClient does what the SPA team does with the live document:
// generate the types from /api/schema/ with openapi-typescript, type-check a
// program calling every operation through openapi-fetch with tsc --strict
// (it holds compile-time checks that the types say what the server sends:
// nullable places, integer ids, declared headers…), run it against the
// server, and lint the document with redocly's spec rules.
func TestTypeScriptClient(t *testing.T) {
	if missing := tsclientReady(); missing != "" {
		testenv.Missing(t, missing, "scripts/setup.sh test installs it")
	}
	dsn := pgtest.NewDatabase(t, "", nil)
	env := map[string]string{"DATABASE_URL": dsn}
	if _, e, code := isis(t, env, "migrate"); code != 0 {
		t.Fatal(e)
	}
	const staffPassword = "staff-pass-for-ts-check-1"
	env["ISIS_SUPERUSER_PASSWORD"] = staffPassword
	if out, e, code := isis(t, env, "createsuperuser", "--email", "staff@example.com", "--no-input"); code != 0 {
		t.Fatalf("createsuperuser: %s %s", out, e)
	}

	port := freePort(t)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(isisBin, "serve")
	cmd.Env = baseEnv(map[string]string{"DATABASE_URL": dsn, "PORT": fmt.Sprint(port), "LISTEN_ADDRESS": "127.0.0.1",
		"MEDIA_ROOT": t.TempDir()})
	var serverLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &serverLog, &serverLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUp(t, apiURL+"/api/ready/")

	gen := filepath.Join(tsclientDir, "gen")
	os.RemoveAll(gen)
	if err := os.MkdirAll(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(gen) })
	res, err := http.Get(apiURL + "/api/schema/")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /api/schema/ = %d %v", res.StatusCode, err)
	}
	if err := os.WriteFile(filepath.Join(gen, "schema.json"), doc, 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(name string, extra []string, args ...string) string {
		t.Helper()
		c := exec.Command(args[0], args[1:]...)
		c.Dir = tsclientDir
		c.Env = append(os.Environ(), extra...)
		start := time.Now()
		out, err := c.CombinedOutput()
		t.Logf("%s (%s)", name, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("%s failed: %v\n%s\nserver log tail: %s", name, err, out, tail(serverLog.String(), 2000))
		}
		return string(out)
	}
	quiet := []string{"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1"}
	run("openapi-typescript", nil, "node_modules/.bin/openapi-typescript", "gen/schema.json", "-o", "gen/api.ts")
	run("tsc --strict", nil, "node_modules/.bin/tsc", "-p", ".")
	out := run("the program against the server", []string{"API_URL=" + apiURL, "SCHEMA_FILE=gen/schema.json",
		"STAFF_EMAIL=staff@example.com", "STAFF_PASSWORD=" + staffPassword}, "node", "gen/out/check.js")
	t.Log(strings.TrimSpace(out))
	if !strings.Contains(out, " 0 failed") {
		t.Fatal("the program did not report its checks")
	}
	lint := run("redocly lint (spec rules)", quiet, "node_modules/.bin/redocly", "lint", "gen/schema.json", "--extends=spec", "--format=stylish")
	if !strings.Contains(lint, "valid") {
		t.Fatalf("redocly lint: %s", lint)
	}
}
