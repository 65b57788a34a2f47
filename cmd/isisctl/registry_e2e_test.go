package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/ops/config"

	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/internal/testenv"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/bindings/kube"
	"golang.org/x/crypto/bcrypt"
)

// testRegistry is Debian's docker-registry (distribution v2) on a loopback
// port, with TLS from a test CA and htpasswd basic auth.
type testRegistry struct {
	server, caFile, user, password string
	client                         *http.Client
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		testenv.Missing(t, "docker-registry", "scripts/setup.sh test installs it")
	}
	dir := t.TempDir()
	// A CA and a server certificate for 127.0.0.1.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "isis registry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := &testRegistry{user: "isis-ci", password: "Reg-Secret-7f3a9c"}
	r.caFile = write("ca.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	os.Chmod(r.caFile, 0o644)
	crt := write("server.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}))
	key := write("server.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	hash, _ := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.MinCost)
	htpasswd := write("htpasswd", []byte(r.user+":"+string(hash)+"\n"))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.server = l.Addr().String()
	l.Close()
	cfg := write("config.yml", []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: isis-test
    path: %s
`, filepath.Join(dir, "data"), r.server, crt, key, htpasswd)))
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	r.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for deadline := time.Now().Add(15 * time.Second); ; {
		res, err := r.client.Get("https://" + r.server + "/v2/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", r.server, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The Podman service on this machine must not keep trusting the test CA.
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/etc/containers/certs.d", r.server)) })
	return r
}

// manifestDigest asks the registry itself for the digest of repo:tag.
func (r *testRegistry) manifestDigest(t *testing.T, repo, tag string) string {
	req, _ := http.NewRequest("HEAD", fmt.Sprintf("https://%s/v2/%s/manifests/%s", r.server, repo, tag), nil)
	req.SetBasicAuth(r.user, r.password)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	res, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("registry: HEAD manifest %s:%s: %s", repo, tag, res.Status)
	}
	return res.Header.Get("Docker-Content-Digest")
}

// TestRegistryPush pushes a (tiny) backend image with isisctl build --push
// to a real TLS + basic-auth registry, pulls it back by digest through the
// API and with podman kube play, and checks the failures are one clear
// line without the password.
func TestRegistryPush(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	url := podmanURL(t)
	reg := startRegistry(t)
	bin := binaries(t)
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny", "isis")
	build := exec.Command("go", "build", "-o", tiny, "-ldflags", "-s -w -X main.tag=registry-e2e", "./testdata/tinyisis")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build tinyisis: %v\n%s", err, out)
	}
	const localImage = "localhost/isis-registry-e2e"
	writeConfig := func(name, registry string) string {
		p := filepath.Join(dir, name)
		body := fmt.Sprintf("backend:\n  image: %s\nbuild:\n  isis_binary: %s\nregistry:\n  server: %s\n  repository: isis/backend\n  username: %s\n%s",
			localImage, tiny, reg.server, reg.user, registry)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trusted := writeConfig("trusted.yaml", "  ca_file: "+reg.caFile+"\n")
	untrusted := writeConfig("untrusted.yaml", "")
	noVerify := writeConfig("noverify.yaml", "  tls_verify: false\n")
	isisctl := func(cfg, password string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "isisctl"), append([]string{"--config", cfg, "--url", url}, args...)...)
		cmd.Env = append(os.Environ(), "ISISCTL_REGISTRY_PASSWORD="+password)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	conn, err := host.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	removeLocal := func() {
		list, _ := images.List(conn.Context(), new(images.ListOptions).WithFilters(map[string][]string{"reference": {localImage}}))
		for _, img := range list {
			images.Remove(conn.Context(), []string{img.ID}, new(images.RemoveOptions).WithForce(true))
		}
	}
	removeLocal()
	t.Cleanup(removeLocal)
	certDir := filepath.Join("/etc/containers/certs.d", reg.server)
	oneLine := func(what, stderr string, want ...string) {
		t.Helper()
		t.Logf("%s: %s", what, strings.TrimSpace(stderr))
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
			t.Errorf("%s: want one error line, got %d:\n%s", what, len(lines), stderr)
		}
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: error lacks %q: %s", what, w, stderr)
			}
		}
		if strings.Contains(stderr, reg.password) || strings.Contains(stderr, "wrong-Pa55") {
			t.Errorf("%s: the error shows a password: %s", what, stderr)
		}
	}

	t.Run("untrusted certificate", func(t *testing.T) {
		os.RemoveAll(certDir)
		stdout, stderr, code := isisctl(untrusted, reg.password, "build", "--push")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
		}
		oneLine("untrusted", stderr, reg.server, "does not trust the registry's TLS certificate", "registry.ca_file")
	})

	t.Run("wrong password", func(t *testing.T) {
		stdout, stderr, code := isisctl(trusted, "wrong-Pa55", "build", "--push")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
		}
		oneLine("wrong password", stderr, "registry "+reg.server, "authentication failed")
		if strings.Contains(stdout, "wrong-Pa55") {
			t.Errorf("stdout shows the password:\n%s", stdout)
		}
		if _, err := os.Stat(filepath.Join(certDir, "ca.crt")); err != nil {
			t.Errorf("registry.ca_file was not installed for the local Podman service: %v", err)
		}
	})

	var pushed struct {
		Image string `json:"image"`
		Push  struct {
			Destination, Digest, Reference string
		} `json:"push"`
	}
	digestFile := filepath.Join(dir, "digest")
	t.Run("push", func(t *testing.T) {
		start := time.Now()
		stdout, stderr, code := isisctl(trusted, reg.password, "build", "--push", "-o", "json", "--digest-file", digestFile)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		t.Logf("build --push: %s", time.Since(start).Round(time.Millisecond))
		if err := json.Unmarshal([]byte(stdout), &pushed); err != nil {
			t.Fatalf("json: %v\n%s", err, stdout)
		}
		tag := strings.TrimPrefix(pushed.Image, localImage+":")
		if pushed.Push.Destination != reg.server+"/isis/backend:"+tag {
			t.Errorf("destination %q", pushed.Push.Destination)
		}
		if want := reg.manifestDigest(t, "isis/backend", tag); pushed.Push.Digest != want || !strings.HasPrefix(want, "sha256:") {
			t.Errorf("reported digest %q, the registry has %q", pushed.Push.Digest, want)
		}
		if pushed.Push.Reference != reg.server+"/isis/backend@"+pushed.Push.Digest {
			t.Errorf("reference %q", pushed.Push.Reference)
		}
		if b, _ := os.ReadFile(digestFile); strings.TrimSpace(string(b)) != pushed.Push.Reference {
			t.Errorf("--digest-file holds %q", b)
		}
		if strings.Contains(stdout+stderr, reg.password) {
			t.Error("the output shows the password")
		}
		c, err := config.Load(trusted, true, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if got, err := image.Pushed(conn, c); err != nil || got != pushed.Push.Reference {
			t.Errorf("PushedImage = %q, %v; want %q", got, err, pushed.Push.Reference)
		}
		// Text output: the digest reference printed for the operator.
		stdout, stderr, code = isisctl(trusted, reg.password, "build", "--push")
		if code != 0 || !strings.Contains(stdout, "Digest: "+reg.server+"/isis/backend@sha256:") {
			t.Errorf("text build --push: exit %d\n%s%s", code, stdout, stderr)
		}
	})
	if pushed.Push.Reference == "" {
		t.FailNow()
	}
	ref := pushed.Push.Reference
	t.Cleanup(func() { images.Remove(conn.Context(), []string{ref}, new(images.RemoveOptions).WithForce(true)) })

	// render --kube without kube.image: the manifests run the digest just
	// pushed, read from this host's audit trail; with --tag, that tag in the
	// registry (never a localhost/ image a cluster cannot pull).
	t.Run("render --kube takes the pushed digest", func(t *testing.T) {
		kdir := filepath.Join(dir, "kube")
		b, _ := os.ReadFile(trusted)
		kubeCfg := filepath.Join(dir, "kube.yaml")
		if err := os.WriteFile(kubeCfg, append([]byte("domain: api.kube.test\nkube:\n  trusted_proxies: 10.244.0.0/16\n"), b...), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := isisctl(kubeCfg, reg.password, "render", "--kube", "--out", kdir, "--allow-placeholders")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "Image: "+ref+" (the last build --push)") {
			t.Errorf("render --kube does not say the image it chose:\n%s", stdout)
		}
		b, _ = os.ReadFile(filepath.Join(kdir, "backend-deployment.yaml"))
		if !strings.Contains(string(b), "image: "+ref+"\n") {
			t.Errorf("backend-deployment.yaml does not run %s:\n%s", ref, b)
		}
		stdout, stderr, code = isisctl(kubeCfg, reg.password, "render", "--kube", "--out", kdir, "--allow-placeholders", "--tag", "v9")
		if b, _ := os.ReadFile(filepath.Join(kdir, "backend-deployment.yaml")); code != 0 || !strings.Contains(string(b), "image: "+reg.server+"/isis/backend:v9\n") {
			t.Errorf("--tag v9: exit %d, %s%s\n%s", code, stdout, stderr, b)
		}
		// No Podman to ask: one line that says what to do.
		cmd := exec.Command(filepath.Join(bin, "isisctl"), "--config", kubeCfg, "--url", "unix://"+filepath.Join(dir, "no-such.sock"), "render", "--kube", "--out", kdir, "--allow-placeholders")
		var e bytes.Buffer
		cmd.Stderr = &e
		if err := cmd.Run(); err == nil {
			t.Error("render --kube with no Podman to read the last push from succeeded")
		}
		oneLine("render --kube without Podman", e.String(), "kube.image", "--tag")
	})

	t.Run("pull by digest", func(t *testing.T) {
		removeLocal()
		if ok, _ := image.Exists(conn, ref); ok {
			t.Fatalf("%s is still on the host", ref)
		}
		c, err := config.Load(trusted, true, func(k string) string {
			return map[string]string{"ISISCTL_REGISTRY_PASSWORD": "wrong-Pa55"}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = image.Ensure(conn, c, ref, nil)
		if err == nil || !strings.Contains(err.Error(), "authentication failed") || strings.Contains(err.Error(), "wrong-Pa55") {
			t.Errorf("pull with a wrong password: %v", err)
		}
		c.Registry.Password = reg.password
		pulled, err := image.Ensure(conn, c, ref, nil)
		if err != nil || !pulled {
			t.Fatalf("pull %s: pulled %v, %v", ref, pulled, err)
		}
		if ok, _ := image.Exists(conn, ref); !ok {
			t.Errorf("%s missing after the pull", ref)
		}
		if pulled, err := image.Ensure(conn, c, ref, nil); err != nil || pulled {
			t.Errorf("second EnsureImage: pulled %v, %v (want nothing to do)", pulled, err)
		}
		// A missing name of no registry is a build that did not happen, not a Docker Hub pull.
		if _, err := image.Ensure(conn, c, "isis-registry-e2e-never-built", nil); err == nil || !strings.Contains(err.Error(), "run isisctl build") {
			t.Errorf("missing unqualified image: %v", err)
		}
	})

	t.Run("kube play", func(t *testing.T) {
		images.Remove(conn.Context(), []string{ref}, new(images.RemoveOptions).WithForce(true))
		if ok, _ := image.Exists(conn, ref); ok {
			t.Fatalf("%s is still on the host", ref)
		}
		pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: isis-registry-e2e
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: %s
    args: ["version"]
`, ref)
		down := func() { kube.DownWithBody(conn.Context(), strings.NewReader(pod), kube.DownOptions{}) }
		down()
		defer down()
		// A network named, even none: without one, kube play creates
		// podman-default-kube-network in the host's network configuration,
		// which outlives the test's Podman storage.
		rep, err := kube.PlayWithBody(conn.Context(), strings.NewReader(pod), new(kube.PlayOptions).WithUsername(reg.user).WithPassword(reg.password).
			WithNetwork([]string{"none"}).WithStart(true))
		if err != nil {
			t.Fatalf("kube play: %v", err)
		}
		if len(rep.Pods) != 1 || len(rep.Pods[0].Containers) != 1 {
			t.Fatalf("kube play report: %+v", rep)
		}
		ctr := rep.Pods[0].Containers[0]
		code, err := containers.Wait(conn.Context(), ctr, new(containers.WaitOptions).WithCondition([]define.ContainerStatus{define.ContainerStateExited}))
		if err != nil || code != 0 {
			t.Fatalf("pod container: exit %d, %v", code, err)
		}
		lines := make(chan string, 10)
		go func() {
			containers.Logs(conn.Context(), ctr, new(containers.LogOptions).WithStdout(true), lines, lines)
			close(lines)
		}()
		var logs string
		for l := range lines {
			logs += l
		}
		if !strings.Contains(logs, "registry-e2e [version]") {
			t.Errorf("pod logs: %q", logs)
		}
	})

	// Another host runs the real image by digest: deploy pulls it (no isis
	// binary there, no build), migrates, swaps and verifies with it.
	t.Run("deploy by digest", func(t *testing.T) {
		// The real isis plus a few bytes of its own (ignored by the loader):
		// an image of this run only, so it can be removed and must be pulled.
		isis, err := os.ReadFile(filepath.Join(bin, "isis"))
		if err != nil {
			t.Fatal(err)
		}
		realBin := filepath.Join(dir, "real", "isis")
		os.MkdirAll(filepath.Dir(realBin), 0o755)
		if err := os.WriteFile(realBin, append(isis, []byte(time.Now().String())...), 0o755); err != nil {
			t.Fatal(err)
		}
		builder := filepath.Join(dir, "builder.yaml")
		os.WriteFile(builder, []byte(fmt.Sprintf("backend:\n  image: %s-real\nbuild:\n  isis_binary: %s\nregistry:\n  server: %s\n  repository: isis/real\n  username: %s\n  ca_file: %s\n",
			localImage, realBin, reg.server, reg.user, reg.caFile)), 0o600)
		removeReal := func() {
			list, _ := images.List(conn.Context(), new(images.ListOptions).WithFilters(map[string][]string{"reference": {localImage + "-real"}}))
			for _, img := range list {
				images.Remove(conn.Context(), []string{img.ID}, new(images.RemoveOptions).WithForce(true))
			}
		}
		stdout, stderr, code := isisctl(builder, reg.password, "build", "--push", "--digest-file", digestFile)
		if code != 0 {
			t.Fatalf("push the real image: exit %d\n%s%s", code, stdout, stderr)
		}
		b, _ := os.ReadFile(digestFile)
		real := strings.TrimSpace(string(b))
		removeReal()
		if ok, _ := image.Exists(conn, real); ok {
			t.Fatalf("%s is still on the host", real)
		}
		e := newE2E(t, 3019, fmt.Sprintf("build:\n  isis_binary: /nonexistent/isis\nregistry:\n  server: %s\n  repository: isis/real\n  username: %s\n  ca_file: %s\n",
			reg.server, reg.user, reg.caFile))
		e.cleanup()
		t.Cleanup(func() {
			e.cleanup()
			images.Remove(conn.Context(), []string{real}, new(images.RemoveOptions).WithForce(true))
		})
		e.env = []string{"ISISCTL_REGISTRY_PASSWORD=" + reg.password}
		start := time.Now()
		out, code := e.isisctl("deploy", "--image", real)
		if code != 0 {
			t.Fatalf("deploy --image %s: exit %d\n%s", real, code, out)
		}
		t.Logf("deploy by digest: %s", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(out, real+" (pulled, not built)") || strings.Contains(out, reg.password) {
			t.Errorf("deploy output:\n%s", out)
		}
		if st := e.backendState(); st.Image != real || !st.Running {
			t.Errorf("backend runs %q (running %v), want %s", st.Image, st.Running, real)
		}
		if code, body := e.get("/api/ready/"); code != 200 {
			t.Errorf("/api/ready/: %d %s", code, body)
		}
	})

	// Credentials from a containers auth.json (what podman login writes).
	t.Run("auth file", func(t *testing.T) {
		auth := filepath.Join(dir, "auth.json")
		os.WriteFile(auth, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.server,
			base64.StdEncoding.EncodeToString([]byte(reg.user+":"+reg.password)))), 0o600)
		cfg := filepath.Join(dir, "authfile.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("backend:\n  image: %s\nbuild:\n  isis_binary: %s\nregistry:\n  server: %s\n  repository: isis/backend\n  auth_file: %s\n  ca_file: %s\n",
			localImage, tiny, reg.server, auth, reg.caFile)), 0o600)
		stdout, stderr, code := isisctl(cfg, "", "build", "--push")
		if code != 0 || !strings.Contains(stdout, "Digest: ") || strings.Contains(stdout+stderr, reg.password) {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("tls_verify false", func(t *testing.T) {
		os.RemoveAll(certDir)
		stdout, stderr, code := isisctl(noVerify, reg.password, "build", "--push")
		if code != 0 || !strings.Contains(stdout, "Digest: ") {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
	})
}
