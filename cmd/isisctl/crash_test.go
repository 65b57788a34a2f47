package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestCrashRecovery kills the backend and then PostgreSQL with SIGKILL
// under load: Podman's restart policy brings each back within seconds, the
// backend's pool and caches recover without a restart of their own, no
// acknowledged row is lost, and verify reports a restart loop.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	t.Parallel()
	takeTurn(t)
	e := newE2E(t, 3053, "")
	e.cleanup()
	t.Cleanup(e.cleanup)
	if out, code := e.isisctl("deploy"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	podman := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("podman", append([]string{"--url", e.url}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	podman("exec", "-e", "ISIS_SUPERUSER_PASSWORD=crash-test-staff-password-1", "isis-e2e", "/isis", "createsuperuser",
		"--email", "staff@example.com", "--no-input")
	status, body := e.post("/api/token/", `{"email":"staff@example.com","password":"crash-test-staff-password-1"}`)
	if status != 200 {
		t.Fatalf("token: %d %s", status, body)
	}
	var tok struct{ Access string }
	json.Unmarshal([]byte(body), &tok)
	authed := func(method, path, payload string) (int, string) {
		t.Helper()
		return e.doAuth(method, path, payload, tok.Access)
	}
	// Free department codes for the rows written under load.
	status, body = authed("GET", "/api/departments/", "")
	if status != 200 {
		t.Fatalf("departments: %d %s", status, body)
	}
	var free []string
	for i := 10; i < 100; i++ {
		if !strings.Contains(body, fmt.Sprintf(`"code":"%02d"`, i)) {
			free = append(free, fmt.Sprintf("%02d", i))
		}
	}

	// The writer: one department every 150 ms; what got 201 must survive.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, code := range free {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			for try := 0; try < 100; try++ { // retried until acknowledged (or stopped)
				s, b := e.doAuth("POST", "/api/departments/", `{"code":"`+code+`","name":"Crash test `+code+`"}`, tok.Access)
				if s == 201 || (s == 400 && strings.Contains(b, "exists")) {
					if s == 201 {
						mu.Lock()
						acked = append(acked, code)
						mu.Unlock()
					}
					break
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()

	inspect := func(name string) (pid, restarts int, started string) {
		t.Helper()
		out := podman("inspect", "-f", "{{.State.Pid}} {{.RestartCount}} {{.State.StartedAt}}", name)
		f := strings.SplitN(out, " ", 3)
		pid, _ = strconv.Atoi(f[0])
		restarts, _ = strconv.Atoi(f[1])
		return pid, restarts, f[2]
	}
	waitOK := func(what, path string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < within {
			if s, _ := e.get(path); s == 200 {
				return time.Since(start)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: %s not 200 within %s", what, path, within)
		return 0
	}
	kill := func(name string) int {
		t.Helper()
		pid, restarts, _ := inspect(name)
		if pid <= 0 {
			t.Fatalf("%s has no process", name)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s (pid %d): %v", name, pid, err)
		}
		return restarts
	}

	time.Sleep(time.Second)
	// 1. The backend, killed: its restart policy brings it back.
	before := kill("isis-e2e")
	back := waitOK("backend after SIGKILL", "/api/departments/", 30*time.Second)
	t.Logf("backend serving again %s after SIGKILL", back.Round(10*time.Millisecond))
	_, restarts, beStarted := inspect("isis-e2e")
	if restarts != before+1 {
		t.Errorf("backend restart count %d -> %d, want one restart", before, restarts)
	}
	if back > 10*time.Second {
		t.Errorf("backend took %s to come back", back)
	}
	time.Sleep(time.Second)

	// 2. PostgreSQL, killed: back by itself; the backend's pool reconnects.
	// (Its server processes outlive the postmaster for a moment: wait for
	// Podman's restart before asking the backend.)
	killedAt := time.Now()
	before = kill("pg-e2e")
	for r := before; r == before; _, r, _ = inspect("pg-e2e") {
		if time.Since(killedAt) > 30*time.Second {
			t.Fatalf("postgres not restarted 30s after SIGKILL (restart count %d)", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitOK("database after SIGKILL", "/api/ready/", 60*time.Second)
	t.Logf("database ready again %s after SIGKILL", time.Since(killedAt).Round(10*time.Millisecond))
	if _, r, _ := inspect("pg-e2e"); r != before+1 {
		t.Errorf("postgres restart count %d -> %d, want one restart", before, r)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if _, r, started := inspect("isis-e2e"); started != beStarted || r != restarts {
		t.Errorf("the backend was restarted to recover from the database crash (%s -> %s)", beStarted, started)
	}
	// No acknowledged row lost; the cache shows what was written, old and new.
	s, b := authed("POST", "/api/departments/", `{"code":"`+free[len(free)-1]+`","name":"After both crashes"}`)
	if s != 201 && !strings.Contains(b, "exists") {
		t.Errorf("write after the crashes: %d %s", s, b)
	}
	mu.Lock()
	t.Logf("%d rows acknowledged under the two crashes", len(acked))
	if len(acked) < 10 {
		t.Errorf("only %d rows written: the load did not run", len(acked))
	}
	for _, code := range acked {
		if s, b := authed("GET", "/api/departments/"+code+"/", ""); s != 200 || !strings.Contains(b, "Crash test "+code) {
			t.Errorf("department %s was acknowledged (201) and is gone: %d %s", code, s, b)
		}
	}
	mu.Unlock()
	// Slot B had no traffic: each connection of its pool that PostgreSQL's
	// restart broke fails one query before it is replaced, so its
	// /api/ready/ may say unavailable once or twice.
	verified := time.Now()
	for {
		out, code := e.isisctl("verify")
		if code == 0 {
			t.Logf("verify passes %s after the database came back", time.Since(verified).Round(100*time.Millisecond))
			break
		}
		if time.Since(verified) > 15*time.Second {
			t.Errorf("verify after the crashes: exit %d\n%s", code, out)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	// 3. A restart loop: three crashes in a row, and verify says so.
	for i := 0; i < 2; i++ {
		kill("isis-e2e")
		waitOK("backend after another SIGKILL", "/api/health/", 30*time.Second)
	}
	out, code := e.isisctl("verify")
	if code != 3 || !strings.Contains(out, "restart loop") {
		t.Errorf("verify during a restart loop: exit %d\n%s", code, out)
	}
}
