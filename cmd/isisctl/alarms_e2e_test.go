package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAlarmsE2E: on a real deployment, the alarms of docs/runbook.md as an
// operator meets them: verify passes with the standing checks (backups,
// throttle store) on; the throttle store failing (its table renamed under
// the running backend) is throttle-fail-closed in status and verify, with
// the runbook entry, and clears when the table is back; a stopped standby
// is slot-down.
func TestAlarmsE2E(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	bdir := filepath.Join(t.TempDir(), "backups")
	e := newE2E(t, 3057, "backup:\n  dir: "+bdir+"\n")
	e.cleanup()
	t.Cleanup(e.cleanup)
	if out, code := e.isisctl("deploy", "--tag", "alarms-0"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	out, code := e.isisctl("verify")
	for _, want := range []string{"PASS  throttle store: answering", "PASS  backup age (daily)", "PASS  backup disk"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify lacks %q", want)
		}
	}
	if code != 0 {
		t.Fatalf("verify on a fresh deployment: exit %d\n%s", code, out)
	}
	if out, _ := e.isisctl("status"); !strings.Contains(out, "Alarms: none") {
		t.Errorf("status on a healthy deployment:\n%s", out)
	}

	psql := func(sql string) {
		t.Helper()
		if b, err := exec.Command("podman", "--url", e.url, "exec", "pg-e2e", "psql", "-v", "ON_ERROR_STOP=1", "-U", "isis", "-d", "isis", "-c", sql).CombinedOutput(); err != nil {
			t.Fatalf("psql %s: %v\n%s", sql, err, b)
		}
	}
	login := func() int {
		status, _ := e.post("/api/token/", `{"email":"nobody@example.com","password":"wrong-password-1"}`)
		return status
	}
	psql(`ALTER TABLE throttles RENAME TO throttles_gone`)
	restored := false
	t.Cleanup(func() {
		if !restored {
			psql(`ALTER TABLE throttles_gone RENAME TO throttles`)
		}
	})
	if status := login(); status < 500 {
		t.Fatalf("sign-in with the throttle store failing = %d, want it refused", status)
	}
	const entry = "runbook docs/runbook.md#throttle-fail-closed"
	out, _ = e.isisctl("status")
	if !strings.Contains(out, "throttle-fail-closed: the throttle store (PostgreSQL) is failing") || !strings.Contains(out, entry) {
		t.Errorf("status with the throttle store failing:\n%s", out)
	}
	out, code = e.isisctl("verify")
	if code != exitVerify || !strings.Contains(out, "FAIL  throttle store") || !strings.Contains(out, "throttle-fail-closed: "+entry) {
		t.Errorf("verify with the throttle store failing: exit %d\n%s", code, out)
	}
	out, _ = e.isisctl("verify", "-o", "json")
	if !strings.Contains(out, `"alarm": "throttle-fail-closed"`) || !strings.Contains(out, `"runbook": "docs/runbook.md#throttle-fail-closed"`) {
		t.Errorf("verify -o json lacks the alarm:\n%s", out)
	}

	psql(`ALTER TABLE throttles_gone RENAME TO throttles`)
	restored = true
	if status := login(); status != 401 {
		t.Fatalf("sign-in with the store back = %d, want 401", status)
	}
	if out, _ := e.isisctl("status"); !strings.Contains(out, "Alarms: none") {
		t.Errorf("status with the store back:\n%s", out)
	}

	if b, err := exec.Command("podman", "--url", e.url, "stop", "-t", "5", "isis-e2e-b").CombinedOutput(); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, b)
	}
	out, _ = e.isisctl("status")
	if !strings.Contains(out, "slot-down: isis-e2e-b is not running") || !strings.Contains(out, "runbook docs/runbook.md#slot-down") {
		t.Errorf("status with the standby stopped:\n%s", out)
	}
	out, code = e.isisctl("verify")
	if code != exitVerify || !strings.Contains(out, "slot-down: runbook docs/runbook.md#slot-down") {
		t.Errorf("verify with the standby stopped: exit %d\n%s", code, out)
	}
}
