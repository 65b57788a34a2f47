package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/verify"

	"github.com/isis-project/isis/internal/testenv"

	"github.com/containers/podman/v5/pkg/bindings/system"
)

// podmanURL is the Podman service the end-to-end tests use; scripts/test.sh
// starts it (scripts/podman-setup.sh) and exports ISIS_PODMAN_URL.
func podmanURL(t *testing.T) string {
	u := os.Getenv("ISIS_PODMAN_URL")
	if u == "" {
		testenv.Missing(t, "ISIS_PODMAN_URL", "run the tests through scripts/test.sh, or scripts/podman-setup.sh starts the service and prints it")
	}
	return u
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binaries builds isis, isisctl and the broken stand-ins once, side by side
// (mostly linking, from a warm build cache).
func binaries(t *testing.T) string {
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "isisctl-e2e-bin-")
		if binErr != nil {
			return
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		build := func(i int, out, pkg string, ldflags string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command("go", "build", "-tags", opstest.BuildTags, "-ldflags", ldflags, "-o", filepath.Join(binDir, out), pkg)
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
				if b, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("build %s: %v\n%s", pkg, err, b)
				}
			}()
		}
		build(0, "isis", "github.com/isis-project/isis/cmd/isis", "-s -w -X github.com/isis-project/isis/api.Version=e2e")
		build(1, "isisctl", "github.com/isis-project/isis/cmd/isisctl", "-s -w")
		build(2, "broken-health/isis", "./testdata/brokenisis", "-X main.mode=health")
		build(3, "broken-migrate/isis", "./testdata/brokenisis", "-X main.mode=migrate")
		wg.Wait()
		binErr = errors.Join(errs...)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// The Podman tests run side by side (t.Parallel; scripts/test.sh gives this
// package a -parallel high enough for all of them to start), except that those
// deploying under the shared names below (isis-e2e, pg-e2e, swe2e, the
// service's one deploy lock and its global secrets) take turns: takeTurn.
// The others (the systemd, kube play and ssh:// tests) use names of their own
// and run beside whichever has the turn.
var turn struct {
	sync.Mutex
	holder atomic.Pointer[string] // the test with the turn
}

// takeTurn waits for the turn (t has called t.Parallel), which t keeps until
// its cleanups (those registered after this call) have run.
func takeTurn(t *testing.T) {
	t.Helper()
	waited := time.Now()
	turn.Lock()
	name := t.Name()
	turn.holder.Store(&name)
	got := time.Now()
	t.Cleanup(func() {
		// With -v: where the e2e lane's time goes (the turns run one after another).
		t.Logf("turn: waited %s, held %s", got.Sub(waited).Round(time.Second), time.Since(got).Round(time.Second))
		turn.holder.Store(nil)
		turn.Unlock()
	})
}

// hasTurn reports whether t or the test it runs under has the turn.
func hasTurn(t *testing.T) bool {
	h := turn.holder.Load()
	return h != nil && (t.Name() == *h || strings.HasPrefix(t.Name(), *h+"/"))
}

// e2e is one deployment under test, with names of its own.
type e2e struct {
	t      *testing.T
	dir    string
	bin    string
	url    string
	port   int
	config string
	env    []string // added to isisctl's environment (t.Setenv cannot be used: the tests run in parallel)
}

const e2eDomain = "api.e2e.test"

// e2eNetwork names the deployment's networks: swe2e, or ISIS_E2E_NETWORK.
// Rootful Podman services share aardvark-dns's configuration, one file per
// network name: two services running these tests at once need two names.
func e2eNetwork() string {
	if n := os.Getenv("ISIS_E2E_NETWORK"); n != "" {
		return n
	}
	return "swe2e"
}

func newE2E(t *testing.T, port int, extra string) *e2e {
	url := podmanURL(t) // first: without Podman the test skips before building anything
	e := &e2e{t: t, dir: t.TempDir(), bin: binaries(t), url: url, port: port}
	e.config = filepath.Join(e.dir, "isisctl.yaml")
	e.writeConfig(extra)
	return e
}

func (e *e2e) writeConfig(extra string) {
	cfg := fmt.Sprintf(`domain: %[1]s
network: %[6]s
egress_network: %[6]s-egress
backend:
  name: isis-e2e
  publish: 127.0.0.1:%[2]d
  log_dir: %[3]s/log
  static_dir: %[4]s/static
  env:
    METRICS_ADDRESS: 127.0.0.1:9100
postgres:
  name: pg-e2e
  image: localhost/isis-postgres-test:15
  data: isis-e2e-pgdata
secrets:
  secret_key: e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
  database_password: e2e-database-password
%[5]s`, e2eDomain, e.port, e.dir, e.dir, extra, e2eNetwork())
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// isisctl runs the real binary and returns its combined output and exit code.
// Anything but a build acts on the shared names: only with the turn.
func (e *e2e) isisctl(args ...string) (string, int) {
	e.t.Helper()
	if len(args) > 0 && args[0] != "build" && !hasTurn(e.t) {
		e.t.Fatalf("isisctl %s acts on the shared end-to-end names: the test must call takeTurn(t) first", args[0])
	}
	cmd := exec.Command(filepath.Join(e.bin, "isisctl"), append([]string{"--config", e.config, "--url", e.url}, args...)...)
	if len(e.env) > 0 {
		cmd.Env = append(os.Environ(), e.env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if d := time.Since(start); d > time.Second { // with -v: where a turn's time goes
		e.t.Logf("isisctl %s: %s", strings.Join(args, " "), d.Round(10*time.Millisecond))
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), code
}

func (e *e2e) get(path string) (int, string) { return e.do("GET", path, "") }

func (e *e2e) post(path, body string) (int, string) { return e.do("POST", path, body) }

// do sends one request to the published port under the deployed domain;
// status 0 and the error text when none came back.
func (e *e2e) do(method, path, body string) (int, string) { return e.doAuth(method, path, body, "") }

// doAuth is do with a bearer token ("" for none).
func (e *e2e) doAuth(method, path, body, token string) (int, string) {
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", e.port, path), strings.NewReader(body))
	req.Host = e2eDomain
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// cleanup removes what the e2e deployment created.
func (e *e2e) cleanup() {
	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		return
	}
	for _, n := range []string{"isis-e2e", "isis-e2e-previous", "isis-e2e-b", "isis-e2e-b-previous", "isis-e2e-migrate", "isis-e2e-collectstatic", "pg-e2e"} {
		conn.Remove(n, 0)
	}
	exec.Command("podman", "--url", e.url, "volume", "rm", "-f", "isis-e2e-pgdata").Run()
	exec.Command("podman", "--url", e.url, "network", "rm", "-f", e2eNetwork(), e2eNetwork()+"-egress").Run()
}

func (e *e2e) backendState() *podman.ContainerState {
	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := conn.Inspect("isis-e2e")
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// TestEndToEnd deploys the project's own image on the real Podman service,
// verifies, redeploys (no-op), survives a broken image and a rollback, and
// keeps the database's data throughout.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	e := newE2E(t, 3013, "")
	e.cleanup()
	t.Cleanup(e.cleanup)

	start := time.Now()
	out, code := e.isisctl("deploy")
	first := time.Since(start)
	if code != 0 {
		t.Fatalf("first deploy: exit %d\n%s", code, out)
	}
	t.Logf("first deploy: %s", first.Round(time.Millisecond))
	for _, want := range []string{"[1/10] preflight", "[10/10] verify", "deployed"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	start = time.Now()
	if out, code := e.isisctl("verify"); code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	t.Logf("verify: %s", time.Since(start).Round(time.Millisecond))
	// The same verify through ssh://, as from an operator's laptop: the HTTP
	// checks then run inside the backend.
	sshURL, sshEnv := sshTunnel(t)
	vc := exec.Command(filepath.Join(e.bin, "isisctl"), "--config", e.config, "--url", sshURL, "verify")
	vc.Env = append(os.Environ(), sshEnv...)
	if out, err := vc.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS  GET /api/ready/ (inside isis-e2e)") {
		t.Errorf("verify over ssh://: %v\n%s", err, out)
	}
	status, body := e.get("/api/municipalities/?search=medellin")
	if status != 200 || !strings.Contains(body, "Medellín") {
		t.Fatalf("geography through the published port: %d %s", status, body)
	}
	// Data written now must survive everything below.
	if status, body := e.post("/api/auth/register/", `{"email":"survivor@example.com","password":"survive-every-deploy-1"}`); status != 201 {
		t.Fatalf("register: %d %s", status, body)
	}
	login := func(when string) {
		t.Helper()
		if status, body := e.post("/api/token/", `{"email":"survivor@example.com","password":"survive-every-deploy-1"}`); status != 200 {
			t.Fatalf("login %s: %d %s", when, status, body)
		}
	}
	before := e.backendState()

	// A second deploy changes nothing and restarts nothing.
	start = time.Now()
	out, code = e.isisctl("deploy")
	if code != 0 || !strings.Contains(out, "nothing restarted") {
		t.Fatalf("no-op deploy: exit %d\n%s", code, out)
	}
	t.Logf("no-op deploy: %s", time.Since(start).Round(time.Millisecond))
	after := e.backendState()
	if after.StartedAt != before.StartedAt || after.ImageID != before.ImageID {
		t.Errorf("no-op deploy restarted the backend: %s -> %s", before.StartedAt, after.StartedAt)
	}

	// JSON output for CI.
	out, code = e.isisctl("status", "-o", "json")
	var st struct {
		Containers []podman.ContainerState `json:"containers"`
		Audit      []audit.Entry           `json:"audit"`
		Metrics    *verify.MetricsSummary  `json:"metrics"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Containers) != 2 || len(st.Audit) < 2 {
		t.Errorf("status -o json: exit %d\n%s", code, out)
	}
	// The backend's metrics (on the container's loopback), scraped from inside.
	if m := st.Metrics; m == nil || m.Address != "127.0.0.1:9100" || m.Requests < 1 || m.Version != "e2e" || m.PoolMax != 32 || len(m.Caches) != 2 {
		t.Errorf("status -o json metrics = %+v\n%s", st.Metrics, out)
	}
	if last := st.Audit[len(st.Audit)-1]; last.Action != "deploy" || last.Result != "ok" || last.Image != before.Image || last.User == "" {
		t.Errorf("last audit entry = %+v", last)
	}

	// A broken image: its health check fails; the deploy rolls back while
	// the old backend keeps serving every request.
	var served, failed atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if s, _ := e.get("/api/health/"); s == 200 {
				served.Add(1)
			} else {
				failed.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	e.writeConfig("build:\n  isis_binary: " + filepath.Join(e.bin, "broken-health", "isis") + "\n")
	out, code = e.isisctl("deploy")
	close(stop)
	wg.Wait()
	if code != 1 || !strings.Contains(out, "rolled back") {
		t.Fatalf("broken deploy: exit %d, want 1 with a rollback\n%s", code, out)
	}
	if failed.Load() != 0 || served.Load() == 0 {
		t.Errorf("during the broken deploy the old backend answered %d and failed %d requests", served.Load(), failed.Load())
	}
	if got := e.backendState(); got.ImageID != before.ImageID || !got.Running {
		t.Errorf("after rollback the backend runs %s (running %v), want %s", got.ImageID, got.Running, before.ImageID)
	}
	login("after the broken deploy")
	out, _ = e.isisctl("status")
	if !strings.Contains(out, "rolled back") {
		t.Errorf("the audit trail does not show the rollback:\n%s", out)
	}
	if !strings.Contains(out, "Backend metrics (METRICS_ADDRESS 127.0.0.1:9100, isis e2e") || !strings.Contains(out, "  latency   p50 ~") {
		t.Errorf("status does not show the backend's metrics:\n%s", out)
	}

	// A failing migration stops the deploy before anything is replaced.
	e.writeConfig("build:\n  isis_binary: " + filepath.Join(e.bin, "broken-migrate", "isis") + "\n")
	out, code = e.isisctl("deploy")
	if code != 1 || !strings.Contains(out, "migrate") || !strings.Contains(out, "broken on purpose") {
		t.Errorf("failing migration: exit %d\n%s", code, out)
	}
	if got := e.backendState(); got.ImageID != before.ImageID || got.StartedAt != before.StartedAt {
		t.Error("a failed migration touched the running backend")
	}

	// A real replacement (new tag) and a rollback to the previous image.
	e.writeConfig("")
	out, code = e.isisctl("deploy", "--tag", "e2e-v2")
	if code != 0 || !strings.Contains(out, "replaced") {
		t.Fatalf("deploy --tag e2e-v2: exit %d\n%s", code, out)
	}
	if got := e.backendState(); !strings.HasSuffix(got.Image, ":e2e-v2") {
		t.Errorf("backend image after replace = %s", got.Image)
	}
	login("after a replacing deploy")
	out, code = e.isisctl("rollback")
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	if got := e.backendState(); got.Image != before.Image {
		t.Errorf("rollback went to %s, want %s", got.Image, before.Image)
	}
	login("after rollback")
	if out, code := e.isisctl("verify"); code != 0 {
		t.Fatalf("verify after rollback: exit %d\n%s", code, out)
	}
	// Logs of both services.
	if out, code := e.isisctl("logs", "postgres", "--tail", "5"); code != 0 || out == "" {
		t.Errorf("logs postgres: exit %d %q", code, out)
	}
}

// TestFailureModes: one clear line and the right exit code for each.
func TestFailureModes(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	e := newE2E(t, 3023, "")
	bin := filepath.Join(e.bin, "isisctl")
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		return out.String(), 0
	}
	// Podman unreachable: exit 4, names the URL and how to start it.
	out, code := run(nil, "--config", e.config, "--url", "unix:///nonexistent/podman.sock", "verify")
	if code != 4 || !strings.Contains(out, "unix:///nonexistent/podman.sock") || !strings.Contains(out, "podman system service") {
		t.Errorf("unreachable: exit %d %q", code, out)
	}
	// CONTAINER_HOST is honoured.
	out, code = run([]string{"CONTAINER_HOST=unix:///nonexistent/other.sock"}, "--config", e.config, "status")
	if code != 4 || !strings.Contains(out, "other.sock") {
		t.Errorf("CONTAINER_HOST: exit %d %q", code, out)
	}
	// Unknown key: exit 2, names the key, the file and the line.
	bad := filepath.Join(e.dir, "bad.yaml")
	os.WriteFile(bad, []byte("domain: api.example.com\nbackend:\n  name: x\n  colour: blue\n"), 0o600)
	out, code = run(nil, "--config", bad, "render", "--out", e.dir)
	if code != 2 || !strings.Contains(out, "bad.yaml:4") || !strings.Contains(out, "backend.colour") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("unknown key: exit %d %q", code, out)
	}
	// changeme-* left in: exit 2.
	starter := filepath.Join(e.dir, "starter.yaml")
	if out, code := run(nil, "--config", starter, "init"); code != 0 {
		t.Fatalf("init: %d %s", code, out)
	}
	out, code = run(nil, "--config", starter, "render", "--out", e.dir)
	if code != 2 || !strings.Contains(out, "changeme") || !strings.Contains(out, "secrets.") {
		t.Errorf("placeholders: exit %d %q", code, out)
	}
	if out, code := run(nil, "--config", starter, "render", "--check", "--allow-placeholders", "--tag", "v1", "--out", filepath.Join(e.dir, "u")); code != 0 {
		t.Errorf("render --allow-placeholders: exit %d %q", code, out)
	}
	out, code = run(nil, "--config", starter, "--url", e.url, "deploy", "--dry-run")
	if code != 2 || !strings.Contains(out, "changeme") {
		t.Errorf("deploy with placeholders: exit %d %q", code, out)
	}
	// Bad flags: exit 2.
	if _, code := run(nil, "deploy", "--frobnicate"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if _, code := run(nil, "--output", "yaml", "status"); code != 2 {
		t.Errorf("bad --output: exit %d", code)
	}
	// Port taken by another program: exit 1 naming the port.
	l, err := net.Listen("tcp", "127.0.0.1:3023")
	if err != nil {
		t.Fatal(err)
	}
	out, code = e.isisctl("deploy")
	l.Close()
	if code != 1 || !strings.Contains(out, "127.0.0.1:3023") || !strings.Contains(out, "taken") {
		t.Errorf("port taken: exit %d %q", code, out)
	}
	// A deploy while another holds the lock stops at once and names the holder.
	exec.Command("podman", "--url", e.url, "volume", "create", "--label", "holder=ci@elsewhere pid 1",
		"--label", "since=2026-01-01T00:00:00Z", "isisctl-deploy-lock").Run()
	out, code = e.isisctl("deploy")
	exec.Command("podman", "--url", e.url, "volume", "rm", "-f", "isisctl-deploy-lock").Run()
	if code != 1 || !strings.Contains(out, "ci@elsewhere pid 1") {
		t.Errorf("locked deploy: exit %d %q", code, out)
	}
	// Verify with nothing deployed under these names: exit 3, each check in JSON.
	out, code = e.isisctl("verify", "-o", "json")
	var vr verify.Result
	if code != 3 || json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &vr) != nil || vr.OK || len(vr.Checks) < 5 {
		t.Errorf("verify without a deployment: exit %d\n%s", code, out)
	}
	// Image missing: exit 1.
	out, code = e.isisctl("up", "--tag", "does-not-exist")
	if code != 1 || !strings.Contains(out, "missing") {
		t.Errorf("image missing: exit %d %q", code, out)
	}
	// The dry run changes nothing and shows the plan and the unit diff.
	out, code = e.isisctl("deploy", "--dry-run", "--units-dir", filepath.Join(e.dir, "units"))
	if code != 0 || !strings.Contains(out, "Plan (dry run") || !strings.Contains(out, "+++ isis-e2e.container (new)") {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := conn.Inspect("isis-e2e"); st != nil && st.Exists && !strings.Contains(t.Name(), "EndToEnd") {
		// Only TestEndToEnd creates it, and it cleans up after itself.
		t.Log("isis-e2e exists from another test run")
	}
	// Secrets never printed, also not with --verbose.
	out, _ = e.isisctl("deploy", "--dry-run", "-v", "-o", "json")
	if strings.Contains(out, "e2e-secret-key") || strings.Contains(out, "e2e-database-password") {
		t.Error("a secret value was printed")
	}
}

// TestPodmanVersionFromPing: the version deploy and verify print comes from
// the connection's ping, without the slow /version call, and is the same.
func TestPodmanVersionFromPing(t *testing.T) {
	t.Parallel()
	conn, err := host.Connect(context.Background(), podmanURL(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := conn.Version()
	if err != nil {
		t.Fatal(err)
	}
	v, err := system.Version(conn.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Server == nil || got != v.Server.Version {
		t.Errorf("PodmanVersion = %q, /version says %+v", got, v.Server)
	}
}
