package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/s3test"
	"github.com/minio/minio-go/v7"
)

var isisBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "isis-bin-")
	if err != nil {
		panic(err)
	}
	isisBin = filepath.Join(dir, "isis")
	out, err := exec.Command("go", "build", "-o", isisBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build isis: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir) // the binary: nothing of the tests stays in /tmp
	os.Exit(code)
}

const testKey = "cmd-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

// isis runs the binary with env (on top of a minimal base) and returns its
// output and exit code.
func isis(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(isisBin, args...)
	cmd.Env = baseEnv(env)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func baseEnv(env map[string]string) []string {
	m := map[string]string{"PATH": os.Getenv("PATH"), "SECRET_KEY": testKey, "ALLOWED_HOSTS": "localhost,127.0.0.1"}
	for k, v := range env {
		m[k] = v
	}
	var out []string
	for k, v := range m {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func TestBadSettingsOneLine(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SECRET_KEY": ""}, "setting SECRET_KEY:"},
		{map[string]string{"SECRET_KEY": "changeme-0123456789-abcdefghijklmnopqrstuvwxyz"}, "setting SECRET_KEY:"},
		{map[string]string{"ALLOWED_HOSTS": ""}, "setting ALLOWED_HOSTS:"},
		{map[string]string{"PORT": "http"}, "setting PORT:"},
		{map[string]string{"DATABASE_URL": "postgres://u:hunter2@[bad/x"}, "setting DATABASE_URL:"},
	} {
		_, stderr, code := isis(t, tc.env, "serve")
		if code != 2 || !strings.HasPrefix(stderr, "isis: "+tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.env, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("stderr leaks the password: %q", stderr)
		}
	}
}

// TestMigrateConcurrentProcesses: three `isis migrate` started at once on a
// fresh database (replicas starting together) all exit 0 and apply each
// migration exactly once between them (the advisory lock was already there).
func TestMigrateConcurrentProcesses(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	env := map[string]string{"DATABASE_URL": dsn}
	const n = 3
	var wg sync.WaitGroup
	outs := make([]string, n)
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var errOut string
			outs[i], errOut, codes[i] = isis(t, env, "migrate")
			outs[i] += errOut
		}()
	}
	wg.Wait()
	applied := map[string]int{}
	for i := range n {
		if codes[i] != 0 {
			t.Fatalf("migrate %d: exit %d: %s", i, codes[i], outs[i])
		}
		for _, line := range strings.Split(outs[i], "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Applying "); ok {
				applied[strings.TrimSuffix(strings.Fields(v)[0], "...")]++
			}
		}
	}
	for _, m := range postgres.Migrations() {
		if applied[m.Version] != 1 {
			t.Errorf("%s applied %d times across the %d runs, want once", m.Version, applied[m.Version], n)
		}
	}
	_, _, code := isis(t, env, "migrate", "status")
	if code != 0 {
		t.Errorf("status after migrate: exit %d", code)
	}
	out, _, _ := isis(t, env, "migrate")
	if !strings.Contains(out, "No migrations to apply.") {
		t.Errorf("another migrate = %q", out)
	}
	st, _, _ := isis(t, env, "migrate", "status", "--json")
	var status struct {
		Migrations []struct{ Version string } `json:"migrations"`
		Pending    int                        `json:"pending"`
	}
	if err := json.Unmarshal([]byte(st), &status); err != nil || status.Pending != 0 || len(applied) != len(status.Migrations) {
		t.Errorf("applied %v across the runs, status %s (%v)", applied, st, err)
	}
}

func TestMigrateStatusPending(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	out, _, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate", "status")
	if code != 1 || !strings.Contains(out, "0001_init") || !strings.Contains(out, "pending") {
		t.Errorf("status on empty db: exit %d, %q", code, out)
	}
}

func TestMigrateDatabaseDown(t *testing.T) {
	_, stderr, code := isis(t, map[string]string{"DATABASE_URL": "postgres://isis:hunter2@127.0.0.1:1/isis?sslmode=disable"}, "migrate")
	if code == 0 || !strings.Contains(stderr, "database is unavailable") || strings.Contains(stderr, "hunter2") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("migrate with no database: exit %d, %q", code, stderr)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestServeGracefulShutdown: a request in flight when SIGTERM arrives still
// gets its answer, then the process exits 0; LOG_DIR gets the JSON log.
func TestServeGracefulShutdown(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, stderr, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	port := freePort(t)
	logDir := t.TempDir()
	cmd := exec.Command(isisBin, "serve")
	cmd.Env = baseEnv(map[string]string{"DATABASE_URL": dsn, "PORT": fmt.Sprint(port), "LISTEN_ADDRESS": "127.0.0.1", "LOG_DIR": logDir})
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUp(t, base+"/api/ready/")

	// A request in flight: headers sent, the handler reading a body that is
	// only half there when SIGTERM arrives.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"email":"nobody@example.com","password":"wrong-password"}`
	fmt.Fprintf(conn, "POST /api/token/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body[:10])
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	io.WriteString(conn, body[10:])
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v\n%s", err, stdout.String())
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("in-flight request: %d, want 401", res.StatusCode)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stdout.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	// New connections are refused once it is down.
	if _, err := http.Get(base + "/api/health/"); err == nil {
		t.Error("server still answering after shutdown")
	}
	logged, err := os.ReadFile(filepath.Join(logDir, "isis.log"))
	if err != nil {
		t.Fatal(err)
	}
	var sawRequest bool
	for _, line := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line not JSON: %q", line)
		}
		if m["msg"] == "request" && m["route"] == "/api/token" {
			sawRequest = true
		}
	}
	if !sawRequest || strings.Contains(string(logged), testKey) {
		t.Errorf("LOG_DIR log: request logged %v; key leaked %v", sawRequest, strings.Contains(string(logged), testKey))
	}
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second} // a server that accepts but never answers fails too
	for ctx.Err() == nil {
		res, err := client.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

func TestHealthcheckCommand(t *testing.T) {
	port := freePort(t)
	_, stderr, code := isis(t, map[string]string{"PORT": fmt.Sprint(port)}, "healthcheck")
	if code == 0 || !strings.Contains(stderr, "healthcheck") {
		t.Errorf("healthcheck with nothing listening: exit %d %q", code, stderr)
	}
}

func isisStdin(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(isisBin, args...)
	cmd.Env = baseEnv(env)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestAccountCommands(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	env := map[string]string{"DATABASE_URL": dsn}
	if _, e, code := isis(t, env, "migrate"); code != 0 {
		t.Fatal(e)
	}
	db, err := postgres.Open(dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	users := postgres.NewUserService(db)
	ctx := context.Background()

	env["ISIS_SUPERUSER_PASSWORD"] = "admin-pass-for-tests-1"
	out, e, code := isis(t, env, "createsuperuser", "--email", "admin@example.com", "--no-input")
	if code != 0 || !strings.Contains(out, "Superuser admin@example.com created") {
		t.Fatalf("createsuperuser: %d %s %s", code, out, e)
	}
	u, err := users.FindUserByEmail(ctx, "admin@example.com")
	if err != nil || !u.IsStaff || !u.IsSuperuser || !u.IsActive {
		t.Fatalf("superuser = %+v, %v", u, err)
	}
	if ok, _ := auth.CheckPassword("admin-pass-for-tests-1", u.Password); !ok {
		t.Error("superuser password not set")
	}
	if _, e, code := isis(t, env, "createsuperuser", "--email", "ADMIN@example.com", "--no-input"); code == 0 || !strings.Contains(e, "already taken") {
		t.Errorf("duplicate superuser: %d %s", code, e)
	}
	env["ISIS_SUPERUSER_PASSWORD"] = "12345678"
	if _, e, code := isis(t, env, "createsuperuser", "--email", "weak@example.com", "--no-input"); code != 2 || !strings.Contains(e, "entirely numeric") || strings.Contains(e, "12345678") {
		t.Errorf("weak password: %d %q", code, e)
	}
	delete(env, "ISIS_SUPERUSER_PASSWORD")
	if _, _, code := isisStdin(t, env, "stdin-pass-for-tests-2\n", "createsuperuser", "--email", "two@example.com", "--no-input"); code != 0 {
		t.Error("password from stdin refused")
	}

	out, e, code = isisStdin(t, env, "brand-new-secret-77\n", "changepassword", "admin@example.com")
	if code != 0 || !strings.Contains(out, "Password changed successfully") {
		t.Fatalf("changepassword: %d %s %s", code, out, e)
	}
	u, _ = users.FindUserByEmail(ctx, "admin@example.com")
	if ok, _ := auth.CheckPassword("brand-new-secret-77", u.Password); !ok {
		t.Error("changepassword did not change it")
	}
	if _, e, code := isisStdin(t, env, "x\n", "changepassword", "nobody@example.com"); code == 0 || !strings.Contains(e, "does not exist") {
		t.Errorf("changepassword unknown user: %d %s", code, e)
	}
	if _, _, code := isisStdin(t, env, "", "changepassword", "admin@example.com"); code != 2 {
		t.Errorf("changepassword with no input: %d", code)
	}

	tokens := postgres.NewRefreshTokenService(db)
	past := time.Now().Add(-time.Hour)
	tokens.AddOutstanding(ctx, api.OutstandingToken{JTI: "old", UserID: u.ID, CreatedAt: past.Add(-time.Hour), ExpiresAt: past})
	tokens.AddOutstanding(ctx, api.OutstandingToken{JTI: "new", UserID: u.ID, CreatedAt: past, ExpiresAt: time.Now().Add(time.Hour)})
	out, _, code = isis(t, env, "flushexpiredtokens")
	if code != 0 || !strings.Contains(out, "Deleted 1 expired token") {
		t.Errorf("flushexpiredtokens: %d %s", code, out)
	}
}

func TestCollectStatic(t *testing.T) {
	dest := t.TempDir()
	out, e, code := isis(t, nil, "collectstatic", "--dest", dest)
	if code != 0 || !strings.Contains(out, "Copied docs/index.html") || !strings.Contains(out, "0 unmodified") {
		t.Fatalf("first collectstatic: %d %s %s", code, out, e)
	}
	if _, err := os.Stat(filepath.Join(dest, "docs", "swagger-ui", "swagger-ui-bundle.js")); err != nil {
		t.Fatal(err)
	}
	out, _, _ = isis(t, nil, "collectstatic", "--dest", dest)
	if strings.Contains(out, "Copied") || !strings.Contains(out, "0 static file(s) copied") {
		t.Errorf("second collectstatic copied again: %s", out)
	}
	// A file an earlier run wrote that the binary no longer has is removed;
	// a file nobody wrote is left alone; a changed file is copied again.
	os.WriteFile(filepath.Join(dest, "docs", "old.js"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dest, "mine.txt"), []byte("keep"), 0o644)
	os.WriteFile(filepath.Join(dest, "docs", "init.js"), []byte("tampered"), 0o644)
	man := filepath.Join(dest, ".isis-static.json")
	b, _ := os.ReadFile(man)
	os.WriteFile(man, []byte(strings.Replace(string(b), "{", `{"docs/old.js": "x",`, 1)), 0o644)
	out, _, _ = isis(t, nil, "collectstatic", "--dest", dest)
	if !strings.Contains(out, "Removed docs/old.js") || !strings.Contains(out, "Copied docs/init.js") {
		t.Errorf("third collectstatic: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dest, "mine.txt")); err != nil {
		t.Error("collectstatic removed a file it did not write")
	}
	// STATIC_ROOT from the settings; nothing set is a clear error.
	if out, _, code := isis(t, map[string]string{"STATIC_ROOT": t.TempDir()}, "collectstatic"); code != 0 || !strings.Contains(out, "Copied") {
		t.Errorf("STATIC_ROOT: %d %s", code, out)
	}
	if _, e, code := isis(t, nil, "collectstatic"); code != 2 || !strings.Contains(e, "STATIC_ROOT") {
		t.Errorf("no destination: %d %s", code, e)
	}
}

func TestCollectStaticS3(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, "static-bucket")
	env := map[string]string{"AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": srv.Endpoint,
		"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": s3test.SecretKey}
	out, e, code := isis(t, env, "collectstatic")
	if code != 0 || !strings.Contains(out, "s3://static-bucket/static/") || !strings.Contains(out, "Copied docs/index.html") {
		t.Fatalf("collectstatic to S3: %d %s %s", code, out, e)
	}
	st, body := s3test.Get(t, srv.Endpoint+"/static-bucket/static/docs/index.html")
	_ = st
	ctx := context.Background()
	obj, err := srv.Client.StatObject(ctx, bucket, "static/docs/index.html", minio.StatObjectOptions{})
	if err != nil || obj.ContentType != "text/html; charset=utf-8" {
		t.Errorf("stored object: %+v %v (%d bytes fetched anonymously)", obj.ContentType, err, len(body))
	}
	out, _, _ = isis(t, env, "collectstatic")
	if strings.Contains(out, "Copied") {
		t.Errorf("unchanged files copied again: %s", out)
	}
	srv.Client.PutObject(ctx, bucket, "static/stale.css", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	out, _, _ = isis(t, env, "collectstatic")
	if !strings.Contains(out, "Removed stale.css") {
		t.Errorf("stale object not removed: %s", out)
	}
}

func TestCheckDeploy(t *testing.T) {
	out, _, code := isis(t, map[string]string{"STATIC_ROOT": "/srv/static", "MEDIA_ROOT": "/srv/media",
		"SECRET_KEY": "Kq8vZ2mN4xR7tB1yW5cE9uJ3hL6pD0sA-fG_iO2kT8wQ4zX7nV1bM5", "DATABASE_HOST": "postgres18",
		"CLIENT_IP_HEADER": "X-Forwarded-For"}, "check", "--deploy")
	if code != 0 || !strings.Contains(out, "no issues") {
		t.Errorf("a good production config: %d %s", code, out)
	}
	out, _, code = isis(t, map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "*", "TRUSTED_PROXIES": "0.0.0.0/0",
		"CORS_ALLOWED_ORIGINS": "http://app.example.com", "DATABASE_HOST": "db.example.com", "THROTTLE_TOKEN": "off",
		"PPROF_ADDRESS": "127.0.0.1:6060"}, "check", "--deploy")
	for _, want := range []string{"DEBUG:", "ALLOWED_HOSTS:", "TRUSTED_PROXIES:", "CORS_ALLOWED_ORIGINS:", "DATABASE_SSLMODE:", "THROTTLE_TOKEN:", "MEDIA_ROOT:", "STATIC_ROOT:", "PPROF_ADDRESS:"} {
		if !strings.Contains(out, want) {
			t.Errorf("check --deploy does not report %s:\n%s", want, out)
		}
	}
	if code == 0 {
		t.Error("check --deploy exited 0 with problems")
	}
	if strings.Contains(out, testKey) {
		t.Error("check printed the secret key")
	}
	out, _, _ = isis(t, map[string]string{"TRUSTED_PROXIES": "::/0", "CLIENT_IP_HEADER": "x-real-ip"}, "check", "--deploy")
	if !strings.Contains(out, "TRUSTED_PROXIES: ::/0 trusts every peer, so any client can forge its IP in X-Real-IP") {
		t.Errorf("check --deploy does not name the header believed:\n%s", out)
	}
	out, _, _ = isis(t, map[string]string{"TRUSTED_PROXIES": "0.0.0.0/0", "CLIENT_IP_HEADER": "none"}, "check", "--deploy")
	if strings.Contains(out, "TRUSTED_PROXIES") {
		t.Errorf("CLIENT_IP_HEADER=none believes no header, yet:\n%s", out)
	}
	out, _, code = isis(t, map[string]string{"CLIENT_IP_HEADER": "True-Client-IP"}, "check")
	if code == 0 || !strings.HasPrefix(out, "CLIENT_IP_HEADER:") {
		t.Errorf("a header isis cannot read: %d %s", code, out)
	}
	out, _, code = isis(t, map[string]string{"SECRET_KEY": ""}, "check", "--deploy")
	if code == 0 || !strings.HasPrefix(out, "SECRET_KEY:") {
		t.Errorf("missing key: %d %s", code, out)
	}
}

// TestPprofAddress: PPROF_ADDRESS serves the profiles on its own loopback
// listener, never on the API's.
func TestPprofAddress(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startServer(t, map[string]string{"PPROF_ADDRESS": addr})
	res, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("pprof on %s = %d", addr, res.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.base+"/debug/pprof/cmdline", nil)
	req.Host = "localhost"
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("pprof on the API's port = %d, want 404", res.StatusCode)
	}
	if _, e, code := isis(t, map[string]string{"PPROF_ADDRESS": "0.0.0.0:6060"}, "serve"); code != 2 || !strings.Contains(e, "PPROF_ADDRESS") {
		t.Errorf("a public PPROF_ADDRESS: exit %d, %q", code, e)
	}
}
