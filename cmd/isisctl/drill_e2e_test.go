package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/host"
)

// TestDrill runs `isisctl drill` on a real deployment behind the rendered
// nginx configuration: over ssh:// on a fresh deployment (only probes so
// far, so no --yes needed) it kills slot A and PostgreSQL, each comes back
// under Podman's restart policy, the acknowledged writes read back, the
// test user is gone and the audit trail has the figures. Then the same
// deployment, having served the drill's requests, is refused without
// --yes, and a drill with a bound nothing can meet exits 3 with one line
// saying so.
func TestDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	t.Parallel()
	takeTurn(t) // its own networks, but the shared container names
	e := newE2E(t, 3073, "")
	needTool(t, "nginx")
	// Networks of its own: Podman services share aardvark-dns's files under
	// /run, by network name, so another service's swe2e would answer for
	// this one's names.
	conf, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	conf = bytes.Replace(conf, []byte("network: swe2e\negress_network: swe2e-egress\n"), []byte("network: swe2drill\negress_network: swe2drill-egress\n"), 1)
	if err := os.WriteFile(e.config, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	cleanup := func() {
		e.cleanup()
		exec.Command("podman", "--url", e.url, "network", "rm", "-f", "swe2drill", "swe2drill-egress").Run()
	}
	cleanup()
	t.Cleanup(cleanup)
	if out, code := e.isisctl("deploy"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	proxy := fmt.Sprintf("http://127.0.0.1:%d", startNginx(t, e.renderProxy()["nginx-isis.conf"]))
	restarts := func(name string) int {
		t.Helper()
		out, err := exec.Command("podman", "--url", e.url, "inspect", "-f", "{{.RestartCount}}", name).Output()
		if err != nil {
			t.Fatalf("inspect %s: %v", name, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n
	}
	lastAudit := func() audit.Entry {
		t.Helper()
		conn, err := host.Connect(context.Background(), e.url)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := audit.Read(conn, 1)
		if err != nil || len(entries) != 1 {
			t.Fatalf("audit trail: %v %v", entries, err)
		}
		return entries[0]
	}
	drillUsers := func() string {
		return e.psqlE2E("isis", "SELECT count(*) FROM users WHERE email LIKE 'isisctl-drill-%'")
	}

	// 1. Over ssh://, as an operator reaches a VPS; no --yes: only probes
	// have reached this deployment.
	sshURL, sshEnv := sshTunnel(t)
	beBefore, pgBefore := restarts("isis-e2e"), restarts("pg-e2e")
	cmd := exec.Command(filepath.Join(e.bin, "isisctl"), "--config", e.config, "--url", sshURL, "drill", "--public-url", proxy)
	cmd.Env = append(os.Environ(), sshEnv...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		t.Fatalf("drill over %s: %v\n%s", sshURL, err, buf.String())
	}
	out := buf.String()
	t.Logf("drill:\n%s", out)
	for _, want := range []string{
		"setup: " + proxy + " ready; test user isisctl-drill-",
		"backend: killed isis-e2e (pid ", "restarted by Podman's restart policy (always) in ",
		"postgres: killed pg-e2e (pid ",
		"cleanup: test user isisctl-drill-", "deleted (1 row)",
		"drill passed: every crash recovered within 30s (backend ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("drill output lacks %q", want)
		}
	}
	if n := strings.Count(out, "; the acknowledged write is there"); n != 2 {
		t.Errorf("%d phases read their write back, want 2", n)
	}
	if be, pg := restarts("isis-e2e"), restarts("pg-e2e"); be != beBefore+1 || pg != pgBefore+1 {
		t.Errorf("restart counts: backend %d -> %d, postgres %d -> %d; want one restart each by the restart policy", beBefore, be, pgBefore, pg)
	}
	if n := drillUsers(); n != "0" {
		t.Errorf("%s drill user(s) left in the database", n)
	}
	if a := lastAudit(); a.Action != "drill" || a.Result != "ok" || !strings.Contains(a.Detail, "backend isis-e2e: restarted ") ||
		!strings.Contains(a.Detail, "postgres pg-e2e: restarted ") || !strings.Contains(a.Detail, "write kept") {
		t.Errorf("audit entry: %+v", a)
	}

	// 2. It has served requests now (the drill's own): refused without
	// --yes, exit 2, nothing killed.
	beBefore, pgBefore = restarts("isis-e2e"), restarts("pg-e2e")
	out, code := e.isisctl("drill", "--public-url", proxy)
	if code != 2 || !strings.Contains(out, "request(s) besides health checks") || !strings.Contains(out, "run again with --yes") {
		t.Errorf("drill on a deployment that served requests: exit %d\n%s", code, out)
	}
	if restarts("isis-e2e") != beBefore || restarts("pg-e2e") != pgBefore {
		t.Error("a refused drill killed something")
	}

	// 3. A bound nothing meets: exit 3, one line naming it, audited.
	out, code = e.isisctl("drill", "--public-url", proxy, "--bound", "1ms", "--yes")
	if code != 3 || !strings.Contains(out, "isisctl: drill failed: backend recovered in ") || !strings.Contains(out, "past the bound of 1ms") {
		t.Errorf("drill with --bound 1ms: exit %d\n%s", code, out)
	}
	if a := lastAudit(); a.Action != "drill" || a.Result != "failed" || !strings.Contains(a.Detail, "past the bound of 1ms") {
		t.Errorf("audit entry of the failed drill: %+v", a)
	}
	if n := drillUsers(); n != "0" {
		t.Errorf("%s drill user(s) left after the failed drill", n)
	}
	if out, code := e.isisctl("drill", "--bound", "soon"); code != 2 || !strings.Contains(out, `--bound "soon" is not a positive duration`) {
		t.Errorf("--bound soon: exit %d\n%s", code, out)
	}
}
