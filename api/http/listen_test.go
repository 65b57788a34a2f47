package apihttp

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/isis-project/isis/internal/wait"
)

// TestStalledListener stops the LISTEN connection's PostgreSQL backend with
// SIGSTOP: the connection stays up and nothing answers on it, so no
// notification arrives and no error either. The caches must turn off within
// a bounded wait all the same (reads then go to the database through the
// pool, whose connections are not stopped): a user deactivated and a
// department renamed meanwhile are seen at once. After SIGCONT the caches
// come back on, fresh.
func TestStalledListener(t *testing.T) {
	_, db := testdb.OwnServer(t)
	ts := newTestServerDB(t, db, nil)
	wait.For(t, "the caches to come on", ts.geo.enabled.Load)
	u := mustUser(t, ts, "stall@example.com", false)
	tok, _ := login(t, ts, "stall@example.com", goodPassword)
	for range 2 { // the second answers from the caches
		if w := ts.do(t, req{URL: "/api/users/me/", Header: bearer(tok)}); w.Code != 200 {
			t.Fatalf("me = %d", w.Code)
		}
		if w := ts.do(t, req{URL: "/api/departments/05/"}); w.Code != 200 {
			t.Fatalf("department = %d", w.Code)
		}
	}
	if ts.geo.get([]byte(cacheKey2(ts, "/api/departments/05/"))) == nil {
		t.Fatal("the department was not cached: the test would prove nothing")
	}

	var pid int
	if err := db.Get(&pid, `SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()
		AND (application_name = $1 OR query LIKE 'LISTEN %')`, postgres.ListenerApplicationName); err != nil {
		t.Fatalf("the listener's backend: %v", err)
	}
	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT %d: %v", pid, err)
			}
		}
	}
	t.Cleanup(resume) // before the server stops

	if _, err := db.Exec(`UPDATE users SET is_active = false WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE departments SET name = 'Antioquia (stalled)' WHERE code = '05'`); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the deactivated user to be refused", func() bool {
		return ts.do(t, req{URL: "/api/users/me/", Header: bearer(tok)}).Code == 401
	})
	wait.For(t, "the renamed department", func() bool {
		return strings.Contains(ts.do(t, req{URL: "/api/departments/05/"}).Body.String(), "Antioquia (stalled)")
	})
	t.Logf("caches off %s after SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	if ts.geo.enabled.Load() {
		t.Error("geography cache on while the listener is stopped")
	}

	resume()
	wait.For(t, "the caches to come back on", ts.geo.enabled.Load)
	for range 2 {
		if w := ts.do(t, req{URL: "/api/departments/05/"}); !strings.Contains(w.Body.String(), "Antioquia (stalled)") {
			t.Fatalf("department after SIGCONT = %s", w.Body.String())
		}
		wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(tok)}), 401, "authentication_failed")
	}
}
