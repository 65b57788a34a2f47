package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/pgtest"
)

// processesOf lists the pids running the executable bin.
func processesOf(bin string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestDevScriptStopsWithItsServer runs scripts/dev.sh (set-up skipped),
// waits until it serves, checks what it tells a front-end developer and that
// a Vite dev server's origin is allowed, then sends SIGTERM to the script
// alone: the server and the database must stop with it.
func TestDevScriptStopsWithItsServer(t *testing.T) {
	if _, err := os.Stat(filepath.Join(pgtest.BinDir(), "initdb")); err != nil {
		t.Fatalf("PostgreSQL's server binaries are missing (%v): scripts/setup.sh installs them", err)
	}
	state, err := os.MkdirTemp("", "isis-dev-")
	if err != nil {
		t.Fatal(err)
	}
	port, pgPort := freePort(t), freePort(t)
	cmd := exec.Command("../../scripts/dev.sh")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + state, "DEV_SKIP_SETUP=1", "ISIS_BIN=" + isisBin,
		"DEV_STATE_DIR=" + state, fmt.Sprintf("PORT=%d", port), fmt.Sprintf("DEV_PG_PORT=%d", pgPort)}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		for _, pid := range processesOf(isisBin) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		exec.Command("runuser", "-u", "postgres", "--", filepath.Join(pgtest.BinDir(), "pg_ctl"), "-D", filepath.Join(state, "pgdata"), "-m", "immediate", "stop").Run()
		exec.Command(filepath.Join(pgtest.BinDir(), "pg_ctl"), "-D", filepath.Join(state, "pgdata"), "-m", "immediate", "stop").Run()
		os.RemoveAll(state)
	})
	var out strings.Builder
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		closed := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if !closed && strings.HasPrefix(sc.Text(), "Ctrl-C stops") {
				close(banner)
				closed = true
			}
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := http.Get(base + "/api/ready/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("dev.sh exited before serving: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev.sh did not serve within 90 s\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-banner:
	case <-time.After(5 * time.Second):
		t.Errorf("no banner after the server answered:\n%s", out.String())
	}
	for _, want := range []string{fmt.Sprintf("http://localhost:%d/api/", port), "/static/docs/", "localhost,127.0.0.1",
		"http://localhost:5173", "http://localhost:3000", "CORS_ALLOWED_ORIGINS=", "ALLOWED_HOSTS=", "1000/hour"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dev.sh does not print %q:\n%s", want, out.String())
		}
	}
	// A Vite or CRA dev server may call the API.
	for _, origin := range []string{"http://localhost:5173", "http://localhost:3000"} {
		req, _ := http.NewRequest("GET", base+"/api/departments/", nil)
		req.Host = fmt.Sprintf("localhost:%d", port)
		req.Header.Set("Origin", origin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("origin %s: %d, Access-Control-Allow-Origin %q", origin, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	servers := processesOf(isisBin)
	if len(servers) == 0 {
		t.Fatal("no isis process found while dev.sh serves")
	}

	// SIGTERM to the script only, as a process manager or an IDE sends it.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("dev.sh still runs 30 s after SIGTERM\n%s", out.String())
	}
	for i := 0; len(processesOf(isisBin)) > 0 && i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if left := processesOf(isisBin); len(left) > 0 {
		t.Errorf("isis still runs after dev.sh stopped: pids %v", left)
	}
	if _, err := os.Stat(filepath.Join(state, "pgdata", "postmaster.pid")); err == nil {
		t.Error("the database still runs after dev.sh stopped")
	}
}

// TestSetupComparesGoVersion: scripts/setup.sh refuses a Go older than 1.26
// (naming the version found) and accepts 1.26 and newer, compared as
// versions, not as strings.
func TestSetupComparesGoVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"go1.25.9", false}, {"go1.3", false}, {"go1.9.2", false},
		{"go1.26.0", true}, {"go1.26.8", true}, {"go1.27rc1", true}, {"go1.100.1", true}, {"devel +abc", true},
	} {
		dir := t.TempDir()
		// A stand-in go: reports the version; every other command succeeds.
		fake := "#!/bin/sh\nif [ \"$1 $2\" = \"env GOVERSION\" ]; then echo '" + tc.version + "'; fi\nexit 0\n"
		if err := os.WriteFile(filepath.Join(dir, "go"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("../../scripts/setup.sh", "dev")
		cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "HOME=" + dir}
		out, err := cmd.CombinedOutput()
		if tc.ok != (err == nil) {
			t.Errorf("%s: err %v, want ok=%v\n%s", tc.version, err, tc.ok, out)
		}
		if !tc.ok && !(strings.Contains(string(out), "1.26 or newer") && strings.Contains(string(out), tc.version)) {
			t.Errorf("%s: the refusal does not name both versions: %s", tc.version, out)
		}
	}
}
