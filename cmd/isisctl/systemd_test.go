package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/testenv"
)

// The systemd end-to-end test boots Debian's systemd as PID 1 in a privileged
// container of the outer Podman service (the image scripts/systemd-image.sh
// builds, named by ISIS_SYSTEMD_IMAGE), with Podman inside. There `isisctl
// install` writes the quadlet units, systemd's quadlet generator turns them
// into services, they start and `isisctl verify` passes — system-wide as root
// and rootless for a lingering user, as the seed's operators run it — and both
// come back, data and all, after the systemd container restarts.

const (
	sdContainer = "isis-systemd-e2e"
	sdUser      = "isis" // uid 1000 in the image, lingering
	sdTag       = "systemd-e2e"
)

// systemdImage is the image to boot, or a skip (a failure under CI).
func systemdImage(t *testing.T) string {
	img := os.Getenv("ISIS_SYSTEMD_IMAGE")
	if img == "" {
		testenv.Missing(t, "ISIS_SYSTEMD_IMAGE", "run the tests through scripts/test.sh, which builds it (scripts/systemd-image.sh)")
	}
	return img
}

// sdScope is one deployment inside the systemd container.
type sdScope struct {
	name   string // "system" or "user"
	user   bool
	port   int
	domain string
	config string // path inside the container
}

func TestSystemd(t *testing.T) {
	t.Parallel()
	url := podmanURL(t)
	image := systemdImage(t)
	bin := binaries(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // the user inside reads it too
		t.Fatal(err)
	}
	outer := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("podman", append([]string{"--url", url}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cleanup := func() {
		exec.Command("podman", "--url", url, "rm", "-f", "-v", "-t", "0", sdContainer).Run()
		// Only this name: the image is the one the other tests deploy under
		// their tags (same content, same image), and they run meanwhile.
		exec.Command("podman", "--url", url, "untag", "localhost/isis-backend:"+sdTag, "localhost/isis-backend:"+sdTag).Run()
	}
	cleanup()
	if os.Getenv("ISIS_SYSTEMD_KEEP") == "" { // kept to look inside after a failure
		t.Cleanup(cleanup)
	}

	// The images the units need, from the outer service: the backend built by
	// isisctl and the PostgreSQL test image.
	start := time.Now()
	e := newE2E(t, 3019, "")
	if out, code := e.isisctl("build", "--tag", sdTag); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	outer("save", "-q", "-m", "-o", filepath.Join(dir, "images.tar"), "localhost/isis-backend:"+sdTag, "localhost/isis-postgres-test:15")
	sdCopyFile(t, filepath.Join(bin, "isisctl"), filepath.Join(dir, "isisctl"), 0o755)
	t.Logf("images saved: %s", time.Since(start).Round(time.Millisecond))

	scopes := []*sdScope{
		{name: "system", port: 3003, domain: "api.system.test"},
		{name: "user", user: true, port: 3013, domain: "api.user.test"},
	}
	for _, s := range scopes {
		dirs := "/var/log/isis-e2e\n  static_dir: /var/lib/isis-e2e/static"
		if s.user {
			dirs = "/home/isis/isis/log\n  static_dir: /home/isis/isis/static"
		}
		cfg := fmt.Sprintf(`domain: %s
backend:
  image: localhost/isis-backend
  tag: %s
  publish: 127.0.0.1:%d
  log_dir: %s
postgres:
  image: localhost/isis-postgres-test:15
secrets:
  secret_key: systemd-e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
  database_password: systemd-e2e-database-password
`, s.domain, sdTag, s.port, dirs)
		if err := os.WriteFile(filepath.Join(dir, s.name+".yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		s.config = "/isis/" + s.name + ".yaml"
	}

	start = time.Now()
	outer("run", "-d", "--name", sdContainer, "--privileged", "--systemd=always",
		"-v", dir+":/isis:ro", "-v", "/var/lib/containers", "-v", "/home/isis/.local/share/containers",
		image, "/sbin/init")
	// in runs a command inside the systemd container, as root or as the user
	// with the environment a login would give (XDG_RUNTIME_DIR for systemctl
	// --user and the user's Podman socket).
	in := func(user bool, args ...string) (string, error) {
		a := []string{"--url", url, "exec"}
		if user {
			a = append(a, "--user", sdUser, "--workdir", "/home/isis", "--env", "HOME=/home/isis", "--env", "XDG_RUNTIME_DIR=/run/user/1000")
		}
		a = append(a, "--env", "PODMAN_IGNORE_CGROUPSV1_WARNING=1", sdContainer)
		out, err := exec.Command("podman", append(a, args...)...).CombinedOutput()
		return string(out), err
	}
	must := func(user bool, args ...string) string {
		t.Helper()
		out, err := in(user, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	booted := func(when string) {
		t.Helper()
		// Until PID 1 listens, systemctl cannot ask it anything: it says so, or
		// (asked before PID 1 made its socket) answers "offline".
		var out string
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			out, _ = in(false, "systemctl", "is-system-running", "--wait")
			if !strings.Contains(out, "Failed to connect") && strings.TrimSpace(out) != "offline" {
				break
			}
		}
		// Podman runs each health check as a transient unit; one that ran
		// while its container was still starting (or being stopped) fails
		// and leaves systemd "degraded". Those are forgiven; any other
		// failed unit is not.
		if strings.TrimSpace(out) == "degraded" {
			failed, _ := in(false, "systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager")
			onlyChecks := strings.TrimSpace(failed) != ""
			for _, l := range strings.Split(strings.TrimSpace(failed), "\n") {
				onlyChecks = onlyChecks && strings.Contains(l, "podman healthcheck run")
			}
			if onlyChecks {
				t.Logf("systemd %s: degraded by failed health-check runs only (reset):\n%s", when, failed)
				in(false, "systemctl", "reset-failed")
				out, _ = in(false, "systemctl", "is-system-running")
			}
		}
		if strings.TrimSpace(out) != "running" {
			failed, _ := in(false, "systemctl", "--failed", "--no-pager")
			t.Fatalf("systemd %s: %q\n%s", when, strings.TrimSpace(out), failed)
		}
		// The lingering user's manager and its Podman socket.
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := in(false, "test", "-S", "/run/user/1000/podman/podman.sock"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				st, _ := in(false, "systemctl", "status", "user@1000.service", "--no-pager")
				t.Fatalf("the user's podman.socket did not come up %s\n%s", when, st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	booted("after boot")
	t.Logf("systemd booted: %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	must(false, "podman", "load", "-q", "-i", "/isis/images.tar")
	must(true, "podman", "load", "-q", "-i", "/isis/images.tar")
	t.Logf("images loaded (root and user): %s", time.Since(start).Round(time.Millisecond))

	// Rootless Podman cannot create cgroups on a cgroup v1 host (no
	// delegation), so quadlet's default --cgroups=split fails there; a
	// drop-in, as an operator on such a host would write, turns cgroups off
	// for the user's containers. cgroup v2 hosts need none.
	if fs := strings.TrimSpace(must(false, "stat", "-fc", "%T", "/sys/fs/cgroup")); fs != "cgroup2fs" {
		t.Logf("cgroup v1 (%s): a drop-in PodmanArgs=--cgroups=disabled for every rootless container unit", fs)
		d := "/home/isis/.config/containers/systemd/container.d"
		must(true, "sh", "-c", "mkdir -p "+d+" && printf '[Container]\\nPodmanArgs=--cgroups=disabled\\n' >"+d+"/cgroups-v1.conf")
	}

	isisctl := func(s *sdScope, args ...string) (string, error) {
		return in(s.user, append([]string{"/isis/isisctl", "--config", s.config}, args...)...)
	}
	curl := func(s *sdScope, path, body string) string {
		out, _ := in(s.user, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: "+s.domain,
			"-H", "Content-Type: application/json", "-d", body, fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path))
		return strings.TrimSpace(out)
	}
	const account = `{"email":"systemd@example.com","password":"survive-the-reboot-1"}`
	for _, s := range scopes {
		start = time.Now()
		scope := []string{"systemctl"}
		if s.user {
			scope = append(scope, "--user")
		}
		var pgID string
		for _, step := range [][]string{{"secrets"}, {"install"}, {"migrate"}} {
			if step[0] == "migrate" {
				pgID = must(s.user, "podman", "inspect", "--format", "{{.Id}}", "postgres18")
			}
			t0 := time.Now()
			out, err := isisctl(s, step...)
			t.Logf("%s: isisctl %s: %s", s.name, step[0], time.Since(t0).Round(time.Millisecond))
			if err != nil {
				journal, _ := in(false, "journalctl", "--no-pager", "-n", "60")
				t.Fatalf("%s: isisctl %s: %v\n%s\njournal:\n%s", s.name, step[0], err, out, journal)
			}
			if step[0] == "install" && !strings.Contains(out, "Services started") {
				t.Fatalf("%s: install did not start the services under systemd:\n%s", s.name, out)
			}
		}
		// migrate leaves systemd's database container alone: replacing it
		// would have systemd start its own again, and the two take turns.
		if now := must(s.user, "podman", "inspect", "--format", "{{.Id}}", "postgres18"); now != pgID {
			t.Errorf("%s: migrate replaced systemd's postgres18 (%s -> %s)", s.name, strings.TrimSpace(pgID), strings.TrimSpace(now))
		}
		if out := must(s.user, append(scope, "show", "-p", "NRestarts", "swe2-postgres.service", "isis-backend.service")...); strings.Count(out, "NRestarts=0") != 2 {
			t.Errorf("%s: services restarted after install:\n%s", s.name, out)
		}
		// The services are quadlet's, generated from the units isisctl wrote.
		out := must(s.user, append(scope, "show", "-p", "SourcePath", "-p", "ActiveState", "isis-backend.service")...)
		if !strings.Contains(out, "ActiveState=active") || !strings.Contains(out, "isis-backend.container") {
			t.Fatalf("%s: isis-backend.service is not quadlet's or not active:\n%s", s.name, out)
		}
		sdVerify(t, s, isisctl, 60*time.Second)
		if code := curl(s, "/api/auth/register/", account); code != "201" {
			t.Fatalf("%s: register: %s", s.name, code)
		}
		t.Logf("%s: install, migrate, verify: %s", s.name, time.Since(start).Round(time.Millisecond))
	}

	// The systemd container restarts: both deployments come back by their
	// [Install] sections alone (the user's through lingering), with their data.
	ids := func(s *sdScope) string {
		return strings.TrimSpace(must(s.user, "podman", "inspect", "--format", "{{.Id}}", "postgres18", "isis-backend"))
	}
	before := map[string]string{}
	for _, s := range scopes {
		before[s.name] = ids(s)
	}
	start = time.Now()
	outer("restart", "-t", "30", sdContainer)
	booted("after the restart")
	for _, s := range scopes {
		sdVerify(t, s, isisctl, 120*time.Second)
		if now := ids(s); now == before[s.name] {
			t.Errorf("%s: the same containers after the restart: %s", s.name, now)
		}
		if code := curl(s, "/api/token/", account); code != "200" {
			t.Errorf("%s: login after the restart: %s", s.name, code)
		}
	}
	t.Logf("restart, both back and verified: %s", time.Since(start).Round(time.Millisecond))

	// The same user runs a second deployment without systemd, by isisctl up
	// through its rootless Podman: the log and static directories must be
	// given to the backend's user inside the user's namespace (container uid
	// 65532 is a subordinate id), or the backend cannot open its log file.
	start = time.Now()
	up := &sdScope{name: "rootless up", user: true, port: 3023, domain: "api.userup.test", config: "/home/isis/up.yaml"}
	must(true, "sh", "-c", "cat >"+up.config+` <<'EOF'
domain: api.userup.test
network: swe3
egress_network: isis-egress-up
backend:
  name: isis-up
  image: localhost/isis-backend
  tag: `+sdTag+`
  publish: 127.0.0.1:3023
  log_dir: /home/isis/isis-up/log
  static_dir: /home/isis/isis-up/static
postgres:
  name: pg-up
  data: isis-up-pgdata
  image: localhost/isis-postgres-test:15
secrets:
  secret_key: systemd-e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
  database_password: systemd-e2e-database-password
EOF`)
	for _, step := range [][]string{{"secrets"}, {"migrate"}, {"up"}} {
		if out, err := isisctl(up, step...); err != nil {
			t.Fatalf("%s: isisctl %s: %v\n%s", up.name, step[0], err, out)
		}
	}
	sdVerify(t, up, isisctl, 60*time.Second)
	if code := curl(up, "/api/auth/register/", account); code != "201" {
		t.Errorf("%s: register: %s", up.name, code)
	}
	for _, d := range []string{"/home/isis/isis-up/log", "/home/isis/isis-up/static"} {
		if owner := strings.TrimSpace(must(true, "podman", "unshare", "stat", "-c", "%u", d)); owner != "65532" {
			t.Errorf("%s: %s belongs to uid %s in the user's namespace, want the backend's 65532", up.name, d, owner)
		}
	}
	// The access log reaches the file in batches: wait for the request.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		logs, _ := in(true, "podman", "unshare", "cat", "/home/isis/isis-up/log/isis.log")
		if strings.Contains(logs, "/api/auth/register/") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: the backend's log file lacks the request:\n%s", up.name, logs)
			break
		}
	}
	t.Logf("%s: secrets, migrate, up, verify: %s", up.name, time.Since(start).Round(time.Millisecond))
}

// sdVerify runs isisctl verify until it passes or the time is up.
func sdVerify(t *testing.T, s *sdScope, isisctl func(*sdScope, ...string) (string, error), within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, err := isisctl(s, "verify")
		if err == nil && !strings.Contains(out, "FAIL") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: verify: %v\n%s", s.name, err, out)
		}
		time.Sleep(time.Second)
	}
}

func sdCopyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
