package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/host"
	"golang.org/x/sys/unix"
)

// manage runs `isisctl manage -- ARGS` with stdin, over url (the
// service's own socket when ""), and returns its standard output, standard
// error and exit code.
func (e *e2e) manage(url, stdin string, env []string, args ...string) (string, string, int) {
	e.t.Helper()
	if url == "" {
		url = e.url
	}
	cmd := exec.Command(filepath.Join(e.bin, "isisctl"), append([]string{"--config", e.config, "--url", url, "manage", "--"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errs.String(), code
}

// lockedBuffer is a buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// manageContainers lists the one-off containers of isisctl manage left on the host.
func (e *e2e) manageContainers() string {
	e.t.Helper()
	out, err := exec.Command("podman", "--url", e.url, "ps", "-a", "--filter", "label=io.isis.role=manage", "--format", "{{.Names}}").CombinedOutput()
	if err != nil {
		e.t.Fatalf("podman ps: %v %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// manageAudit is the audit trail's manage entries since the test began
// (the trail outlives a test's deployment).
func (e *e2e) manageAudit(since time.Time) []audit.Entry {
	e.t.Helper()
	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	all, err := audit.Read(conn, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Entry
	for _, a := range all {
		if a.Action == "manage" && !a.Time.Before(since) {
			out = append(out, a)
		}
	}
	return out
}

// login signs in through the API and returns the caller as /api/users/me/ sees it.
func (e *e2e) login(email, password string) (int, map[string]any) {
	e.t.Helper()
	status, body := e.post("/api/token/", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if status != 200 {
		return status, nil
	}
	var tok struct{ Access string }
	json.Unmarshal([]byte(body), &tok)
	status, body = e.doAuth("GET", "/api/users/me/", "", tok.Access)
	var me map[string]any
	json.Unmarshal([]byte(body), &me)
	return status, me
}

// TestManageEndToEnd deploys, then makes the first staff user with isisctl
// manage from a pipe (over the local socket and over ssh://), checks the
// user signs in through the API, that isis's exit codes come back as
// isisctl's, that refused command lines run nothing, that no container is
// left, an interrupted run included, and that each run is in the audit
// trail without its password.
func TestManageEndToEnd(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	e := newE2E(t, 3073, "")
	began := time.Now()
	e.cleanup()
	t.Cleanup(e.cleanup)
	t.Cleanup(func() {
		if left := e.manageContainers(); left != "" {
			exec.Command("podman", append([]string{"--url", e.url, "rm", "-f"}, strings.Fields(left)...)...).Run()
		}
	})
	if out, code := e.isisctl("deploy"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	const pw = "first-staff-pass-8841"

	start := time.Now()
	out, errs, code := e.manage("", pw+"\n", nil, "createsuperuser", "--email", "admin@example.com", "--no-input")
	t.Logf("manage -- createsuperuser: %s", time.Since(start).Round(time.Millisecond))
	if code != 0 || !strings.Contains(out, "Superuser admin@example.com created") {
		t.Fatalf("createsuperuser: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(errs, "warning") {
		t.Errorf("the slot runs isisctl.yaml's settings, yet: %s", errs)
	}
	status, me := e.login("admin@example.com", pw)
	if status != 200 || me["is_staff"] != true || me["email"] != "admin@example.com" {
		t.Fatalf("the new superuser's sign-in: %d %v", status, me)
	}

	// isis's exit codes are isisctl's: 1 for a taken email, 2 for a weak password.
	out, errs, code = e.manage("", pw+"\n", nil, "createsuperuser", "--email", "admin@example.com", "--no-input")
	if code != 1 || !strings.Contains(errs, "already taken") {
		t.Errorf("a second createsuperuser with the same email: exit %d, want 1\n%s%s", code, out, errs)
	}
	out, errs, code = e.manage("", "short\n", nil, "createsuperuser", "--email", "weak@example.com", "--no-input")
	if code != 2 || !strings.Contains(errs, "password refused") {
		t.Errorf("a weak password: exit %d, want 2\n%s%s", code, out, errs)
	}

	// changepassword through ssh://: the password from standard input, the
	// old one stops working.
	sshURL, sshEnv := sshTunnel(t)
	const pw2 = "second-staff-pass-5512"
	out, errs, code = e.manage(sshURL, pw2+"\n", sshEnv, "changepassword", "admin@example.com")
	if code != 0 || !strings.Contains(out, "Password changed successfully") {
		t.Fatalf("changepassword over ssh://: exit %d\n%s%s", code, out, errs)
	}
	if status, _ := e.login("admin@example.com", pw); status != 401 {
		t.Errorf("the old password still signs in: %d", status)
	}
	if status, me := e.login("admin@example.com", pw2); status != 200 || me["is_staff"] != true {
		t.Errorf("the new password does not sign in: %d %v", status, me)
	}

	// The read-only commands as the application role.
	out, errs, code = e.manage("", "", nil, "migrate", "status")
	if code != 0 || !strings.Contains(out, "[X]") || strings.Contains(out, "[ ]") {
		t.Errorf("migrate status: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = e.manage("", "", nil, "flushexpiredtokens")
	if code != 0 || !strings.Contains(out, "expired token(s)") {
		t.Errorf("flushexpiredtokens: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = e.manage("", "", nil, "check", "--deploy")
	if (code == 0) != strings.Contains(out, "no issues") || (code != 0 && code != 1) {
		t.Errorf("check --deploy: exit %d\n%s%s", code, out, errs)
	}

	// Refused before anything runs: one line, exit 2, nothing in the audit trail.
	before := len(e.manageAudit(began))
	for _, args := range [][]string{{"serve"}, {"migrate"}, {"dropdatabase"}, {"createsuperuser", "--password", "x"}, {"changepassword", "a@example.com", "pw"}} {
		out, errs, code = e.manage("", "", nil, args...)
		if code != 2 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || out != "" {
			t.Errorf("manage -- %s: exit %d, want 2 and one line\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	if n := len(e.manageAudit(began)); n != before {
		t.Errorf("refused command lines made %d audit entries", n-before)
	}

	// Interrupted (SIGTERM to isisctl) while isis waits for its password:
	// the container is stopped and removed, the run audited as interrupted.
	cmd := exec.Command(filepath.Join(e.bin, "isisctl"), "--config", e.config, "--url", e.url, "manage", "--", "changepassword", "admin@example.com")
	stdin, _ := cmd.StdinPipe()
	var iout lockedBuffer
	cmd.Stdout, cmd.Stderr = &iout, &iout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(iout.String(), "Changing password") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if e.manageContainers() == "" {
		t.Errorf("no one-off container while the command runs: %s", iout.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	stdin.Close()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(iout.String(), "interrupted") {
		t.Errorf("interrupted manage: %v\n%s", err, iout.String())
	}

	if left := e.manageContainers(); left != "" {
		t.Errorf("one-off containers left: %s", left)
	}
	runs := e.manageAudit(began)
	want := []struct{ result, detail string }{
		{"ok", "createsuperuser --email admin@example.com --no-input"},
		{"exit 1", "createsuperuser --email admin@example.com --no-input"},
		{"exit 2", "createsuperuser --email weak@example.com --no-input"},
		{"ok", "changepassword admin@example.com"},
		{"ok", "migrate status"},
		{"ok", "flushexpiredtokens"},
		{"", "check --deploy"},
		{"interrupted", "changepassword admin@example.com"},
	}
	if len(runs) != len(want) {
		t.Fatalf("%d manage entries in the audit trail, want %d: %+v", len(runs), len(want), runs)
	}
	for i, w := range want {
		a := runs[i]
		if (w.result != "" && a.Result != w.result) || !strings.HasPrefix(a.Detail, w.detail+" (") || a.User == "" || a.ImageID == "" {
			t.Errorf("audit entry %d: %+v, want result %q detail %q", i, a, w.result, w.detail)
		}
		if strings.Contains(a.Detail, pw) || strings.Contains(a.Detail, pw2) {
			t.Errorf("a password is in the audit trail: %+v", a)
		}
	}
	// isisctl status shows them.
	if out, code := e.isisctl("status"); code != 0 || !strings.Contains(out, "manage") || !strings.Contains(out, "createsuperuser --email admin@example.com") {
		t.Errorf("isisctl status does not show the manage runs: exit %d\n%s", code, out)
	}

	t.Run("tty", func(t *testing.T) { testManageTTY(t, e, began) })
}

// openPTY opens a pseudo-terminal pair (no library: /dev/ptmx, unlocked).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// testManageTTY runs isisctl manage on a terminal, as an operator does:
// createsuperuser asks for the email and, without echo, twice for the
// password; the container's TTY follows the terminal's size.
func testManageTTY(t *testing.T, e *e2e, began time.Time) {
	master, slave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(e.bin, "isisctl"), "--config", e.config, "--url", e.url, "manage", "--", "createsuperuser")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var screen lockedBuffer
	got := make(chan struct{}, 100)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			screen.Write(b[:n])
			got <- struct{}{}
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for !strings.Contains(screen.String(), s) {
			select {
			case <-got:
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("no %q on the terminal:\n%q", s, screen.String())
			}
		}
	}
	const pw = "tty-staff-pass-7730"
	waitFor("Email: ")
	io.WriteString(master, "tty@example.com\r")
	waitFor("Password: ")
	// The terminal changes its size (isisctl follows it on SIGWINCH), and
	// the API's resize works on the one-off container.
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	if name := e.manageContainers(); name == "" {
		t.Error("no one-off container while isis prompts")
	} else if err := conn.Resize(name, 120, 40); err != nil {
		t.Errorf("resize the one-off container's TTY: %v", err)
	}
	io.WriteString(master, pw+"\r")
	waitFor("Password (again): ")
	io.WriteString(master, pw+"\r")
	waitFor("Superuser tty@example.com created")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("isisctl manage on a terminal: %v\n%s", err, screen.String())
	}
	if strings.Contains(screen.String(), pw) {
		t.Errorf("the password was echoed:\n%s", screen.String())
	}
	if status, me := e.login("tty@example.com", pw); status != 200 || me["is_staff"] != true {
		t.Errorf("the superuser made on a terminal does not sign in: %d %v", status, me)
	}
	runs := e.manageAudit(began)
	if a := runs[len(runs)-1]; a.Result != "ok" || !strings.Contains(a.Detail, "on a TTY") {
		t.Errorf("the terminal run's audit entry: %+v", a)
	}
	if left := e.manageContainers(); left != "" {
		t.Errorf("one-off containers left: %s", left)
	}
}
