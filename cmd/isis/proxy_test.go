package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
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

	"github.com/isis-project/isis/internal/testenv"

	"github.com/isis-project/isis/internal/pgtest"
)

// The reverse-proxy tests run Debian's nginx-light and caddy with the
// configurations `isisctl render` writes, on loopback ports, in front of a
// real isis: whatever forwarding headers a client sends, isis sees the
// proxy's own.

const proxyDomain = "api.proxy.test"

var (
	isisctlOnce sync.Once
	isisctlBin  string
	isisctlErr  error
)

// isisctlBinary builds isisctl as the Makefile does (the Podman bindings
// need its tags), once per test binary.
func isisctlBinary(t *testing.T) string {
	isisctlOnce.Do(func() {
		isisctlBin = filepath.Join(filepath.Dir(isisBin), "isisctl")
		cmd := exec.Command("go", "build", "-tags", "remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp",
			"-ldflags", "-s -w", "-o", isisctlBin, "../isisctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			isisctlErr = fmt.Errorf("build isisctl: %v\n%s", err, out)
		}
	})
	if isisctlErr != nil {
		t.Fatal(isisctlErr)
	}
	return isisctlBin
}

// needTool fails under CI (scripts/setup.sh test installs the tool) and
// skips elsewhere.
func needTool(t *testing.T, path, pkg string) {
	if _, err := os.Stat(path); err != nil {
		testenv.Missing(t, path, "scripts/setup.sh test installs "+pkg)
	}
}

// testCert writes a CA-signed certificate for proxyDomain and returns the
// files and a pool that trusts it.
func testCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "isis proxy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: proxyDomain}, DNSNames: []string{proxyDomain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return certFile, keyFile, pool
}

// renderProxy runs `isisctl render` with the backend published on
// upstream and the proxy's HTTPS listener on httpsAddr, and returns the
// directory it wrote.
func renderProxy(t *testing.T, dir, upstream, httpAddr, httpsAddr, cert, key string) string {
	cfg := filepath.Join(dir, "isisctl.yaml")
	body := fmt.Sprintf(`domain: %s
backend:
  publish: %s
proxy:
  http: %s
  https: %s
  certificate: %s
  certificate_key: %s
secrets:
  secret_key: proxy-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz
  database_password: proxy-test-database-password
`, proxyDomain, upstream, httpAddr, httpsAddr, cert, key)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "rendered")
	cmd := exec.Command(isisctlBinary(t), "--config", cfg, "render", "--tag", "proxy-test", "--out", out)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("isisctl render: %v\n%s", err, b)
	}
	return out
}

// startProxy runs nginx or caddy on the rendered configuration, in the
// foreground, with every file of its own under dir.
func startProxy(t *testing.T, name, dir, rendered string) {
	if name == "nginx" {
		// The operator's nginx.conf includes the rendered server blocks.
		startNginx(t, dir, "include "+rendered+"/proxy/nginx-isis.conf;")
		return
	}
	// The operator's Caddyfile imports the rendered site; its global
	// options keep Caddy off the admin port, the ACME CAs and port 80.
	conf := fmt.Sprintf(`{
	admin off
	auto_https disable_redirects
	storage file_system %[1]s/data
}
import %[2]s/proxy/Caddyfile
`, dir, rendered)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/caddy", "run", "--adapter", "caddyfile", "--config", filepath.Join(dir, "Caddyfile"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	runProxy(t, name, dir, cmd)
}

// startNginx runs nginx in the foreground with a main configuration that
// keeps every path it writes inside dir and whose http block holds body.
func startNginx(t *testing.T, dir, body string) {
	t.Helper()
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
%[2]s
events { worker_connections 128; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	%[3]s
}
`, dir, map[bool]string{true: "user root;", false: ""}[os.Geteuid() == 0], body)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runProxy(t, "nginx", dir, exec.Command("/usr/sbin/nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")))
}

// runProxy starts a proxy's command in the foreground and stops it, with
// its workers, when the test ends (logging its output if the test failed).
func runProxy(t *testing.T, name, dir string, cmd *exec.Cmd) {
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	// nginx's workers share its output pipes: stop the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("%s output:\n%s%s", name, tail(out.String(), 3000), tail(string(b), 3000))
		}
	})
}

// proxyClient speaks HTTPS to proxyDomain at addr, trusting pool.
func proxyClient(addr string, pool *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: proxyDomain},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
	}}
}

// spoofs are the forwarding headers a client makes up; i varies them so
// that each request claims another address.
func spoofs(i int) map[string]string {
	return map[string]string{
		"Forwarded":         fmt.Sprintf("for=198.51.100.%d;proto=http;host=%s:8443", i, proxyDomain),
		"X-Forwarded-For":   fmt.Sprintf("203.0.113.%d", i),
		"X-Real-IP":         fmt.Sprintf("192.0.2.%d", i),
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  proxyDomain + ":8443",
	}
}

func TestThroughRealProxies(t *testing.T) {
	for _, name := range []string{"nginx", "caddy"} {
		t.Run(name, func(t *testing.T) {
			needTool(t, map[string]string{"nginx": "/usr/sbin/nginx", "caddy": "/usr/bin/caddy"}[name],
				map[string]string{"nginx": "nginx-light", "caddy": "caddy"}[name])
			testThroughProxy(t, name)
		})
	}
}

func testThroughProxy(t *testing.T, name string) {
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	// CLIENT_IP_HEADER unset: isis believes Forwarded, X-Forwarded-For and
	// X-Real-IP from the proxy, so the proxy's replacing and dropping of
	// every one a client sent is all that stands between a spoof and isis.
	srv := startServer(t, map[string]string{"DATABASE_URL": dsn, "THROTTLE_TOKEN": "5/min", "THROTTLE_REGISTER": "3/hour",
		"ALLOWED_HOSTS": proxyDomain + ",localhost,127.0.0.1"})
	upstream := strings.TrimPrefix(srv.base, "http://")

	dir := t.TempDir()
	cert, key, pool := testCert(t, dir)
	httpAddr, httpsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	rendered := renderProxy(t, dir, upstream, httpAddr, httpsAddr, cert, key)
	startProxy(t, name, dir, rendered)
	client := proxyClient(httpsAddr, pool)
	base := "https://" + proxyDomain

	do := func(method, path, body string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s through %s: %v", method, path, name, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", base+"/api/health/", nil)
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never proxied /api/health/: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if name == "nginx" { // Caddy's redirect listener is its own global option
		req, _ := http.NewRequest("GET", "http://"+httpAddr+"/api/?x=1", nil)
		req.Host = proxyDomain
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		_, port, _ := net.SplitHostPort(httpsAddr)
		if loc := res.Header.Get("Location"); res.StatusCode != 301 || loc != base+":"+port+"/api/?x=1" {
			t.Errorf("plain HTTP: %d to %q, want a 301 to the HTTPS listener", res.StatusCode, loc)
		}
	}

	// The absolute links of a cacheable answer: a spoofed request first (it
	// would fill the cache), then a plain one; both see the proxy's scheme
	// and host.
	want := base + "/api/departments/?page=2&page_size=1"
	for i, hdr := range []map[string]string{spoofs(1), nil} {
		res, b := do("GET", "/api/departments/?page_size=1", "", hdr)
		var page struct{ Next string }
		if err := json.Unmarshal(b, &page); err != nil || res.StatusCode != 200 || page.Next != want {
			t.Errorf("request %d: %d next %q, want %q (%s)", i, res.StatusCode, page.Next, want, b)
		}
	}

	// The logged client_ip is the address the proxy saw.
	res, _ := do("GET", "/api/", "", spoofs(2))
	id := res.Header.Get("X-Request-ID")
	if got := loggedClientIP(t, srv, id); got != "127.0.0.1" {
		t.Errorf("request %q through %s logged client_ip %s, want 127.0.0.1", id, name, got)
	}

	// THROTTLE_TOKEN=5/min and THROTTLE_REGISTER=3/hour: the next attempt is
	// throttled, however each request dresses up its address.
	for i := 1; i <= 6; i++ {
		res, b := do("POST", "/api/token/", `{"email":"nobody@example.com","password":"wrong-password"}`, spoofs(10+i))
		want := 401
		if i == 6 {
			want = 429
		}
		if res.StatusCode != want {
			t.Fatalf("login %d through %s with spoofed headers: %d, want %d: %s", i, name, res.StatusCode, want, b)
		}
	}
	for i := 1; i <= 4; i++ {
		body := fmt.Sprintf(`{"email":"proxy%d@example.com","password":"a-long-enough-password-%d"}`, i, i)
		res, b := do("POST", "/api/auth/register/", body, spoofs(20+i))
		want := 201
		if i == 4 {
			want = 429
		}
		if res.StatusCode != want {
			t.Fatalf("registration %d through %s with spoofed headers: %d, want %d: %s", i, name, res.StatusCode, want, b)
		}
	}
}

// loggedClientIP waits for the access log line of request id and returns
// its client_ip (the access log is flushed in batches).
func loggedClientIP(t *testing.T, srv *server, id string) string {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(srv.log.String(), "\n") {
			var rec struct {
				RequestID string `json:"request_id"`
				ClientIP  string `json:"client_ip"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.RequestID == id {
				return rec.ClientIP
			}
		}
	}
	t.Fatalf("no access log line for request %s", id)
	return ""
}

// TestClientIPDirectToPort: the trust rules over a real socket to isis's
// own port (what any local process or container can open), per setting.
func TestClientIPDirectToPort(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	for _, tc := range []struct {
		env  map[string]string
		hdr  map[string]string
		want string
		next string // the next link's prefix
	}{
		// Loopback is trusted by default, and CLIENT_IP_HEADER unset is the
		// contract's Forwarded, X-Forwarded-For, X-Real-IP: the first present counts.
		{nil, map[string]string{"Forwarded": "for=198.51.100.1;proto=https;host=localhost:8443", "X-Real-IP": "198.51.100.2"},
			"198.51.100.1", "http://localhost/"},
		{nil, map[string]string{"X-Real-IP": "198.51.100.2"}, "198.51.100.2", "http://localhost/"},
		// As isisctl's units set it: X-Forwarded-For alone.
		{map[string]string{"CLIENT_IP_HEADER": "X-Forwarded-For"}, map[string]string{"Forwarded": "for=198.51.100.1;proto=https;host=localhost:8443",
			"X-Real-IP": "198.51.100.2"}, "127.0.0.1", "http://localhost/"},
		{map[string]string{"CLIENT_IP_HEADER": "X-Forwarded-For"}, map[string]string{"X-Forwarded-For": "198.51.100.3", "X-Forwarded-Proto": "https"},
			"198.51.100.3", "https://localhost/"},
		{nil, map[string]string{"X-Forwarded-For": "198.51.100.3", "X-Forwarded-Proto": "https"}, "198.51.100.3", "https://localhost/"},
		// TRUSTED_PROXIES narrowed to the proxy's address: a local process is a client like any other.
		{map[string]string{"TRUSTED_PROXIES": "10.89.0.1"}, map[string]string{"X-Forwarded-For": "198.51.100.3", "X-Forwarded-Proto": "https",
			"X-Forwarded-Host": "localhost:8443"}, "127.0.0.1", "http://localhost/"},
		{map[string]string{"CLIENT_IP_HEADER": "none"}, map[string]string{"X-Forwarded-For": "198.51.100.3", "X-Forwarded-Proto": "https"},
			"127.0.0.1", "http://localhost/"},
		{map[string]string{"CLIENT_IP_HEADER": "X-Real-IP"}, map[string]string{"X-Real-IP": "198.51.100.2", "X-Forwarded-For": "198.51.100.3"},
			"198.51.100.2", "http://localhost/"},
	} {
		env := map[string]string{"DATABASE_URL": dsn}
		for k, v := range tc.env {
			env[k] = v
		}
		srv := startServer(t, env)
		req, _ := http.NewRequest("GET", srv.base+"/api/departments/?page_size=1", nil)
		req.Host = "localhost"
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Next string }
		json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if got := loggedClientIP(t, srv, res.Header.Get("X-Request-ID")); got != tc.want || !strings.HasPrefix(page.Next, tc.next) {
			t.Errorf("%v %v: client_ip %s, next %q; want %s and %s…", tc.env, tc.hdr, got, page.Next, tc.want, tc.next)
		}
	}
}
