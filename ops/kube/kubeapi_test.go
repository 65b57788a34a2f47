package kube

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// TestKubeAPIServer applies the manifests of `isisctl render --kube` (the
// goldens, which TestRenderKubeGolden keeps equal to the renderer's output) to
// a real Kubernetes API server: kube-apiserver at the version of k8s.io/api in
// go.mod (scripts/kube-apiserver.sh builds it) on Debian's etcd, on loopback.
// The server validates every object with its own schemas, defaults and
// admission (strict field validation: an unknown field is an error), then
// stores them; what it stored is read back. Nothing runs the pods (there is
// no node): TestKubePlay runs them with Podman.
//
// ISIS_KUBE_APISERVER names the binary; scripts/test.sh sets it for the
// step that runs this test alone. Unset, the test skips.
func TestKubeAPIServer(t *testing.T) {
	apiserver := os.Getenv("ISIS_KUBE_APISERVER")
	if apiserver == "" {
		t.Skip("ISIS_KUBE_APISERVER is not set (scripts/kube-apiserver.sh builds kube-apiserver; scripts/test.sh runs this test in its kube step)")
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd missing: scripts/setup.sh test installs it (Debian etcd-server)")
	}
	kubectlBin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl missing: scripts/setup.sh test installs it (Debian kubernetes-client)")
	}
	dir := t.TempDir()
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	exited := map[string]chan struct{}{}
	start := func(name string, args ...string) {
		t.Helper()
		log, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = log, log
		// Killed with the test binary, even when it times out or panics.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		exited[name] = done
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
			log.Close()
			if t.Failed() {
				b, _ := os.ReadFile(log.Name())
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s's log (end):\n%s", name, b)
			}
		})
	}

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", free())
	start("etcd", etcd, "--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", etcdURL,
		"--advertise-client-urls", etcdURL, "--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", free()))

	// The service-account key the server signs with, and one static token
	// for a cluster administrator (kubectl's credentials).
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	saKey := filepath.Join(dir, "sa.key")
	os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	token := rand.Text()
	os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(token+",isis-test-admin,1,system:masters\n"), 0o600)
	port := free()
	start("kube-apiserver", apiserver, "--etcd-servers", etcdURL, "--bind-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(port), "--cert-dir", filepath.Join(dir, "certs"),
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-account-issuer", "https://kubernetes.default.svc", "--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "RBAC", "--service-cluster-ip-range", "10.96.0.0/16")
	server := fmt.Sprintf("https://127.0.0.1:%d", port)

	// Ready: /readyz answers ok once etcd, the storage and the built-in
	// controllers (default namespace, RBAC roles) are up.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	began := time.Now()
	for {
		req, _ := http.NewRequest("GET", server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		for name, done := range exited {
			select {
			case <-done:
				t.Fatalf("%s exited before kube-apiserver was ready (its log follows)", name)
			default:
			}
		}
		if time.Since(began) > 90*time.Second {
			t.Fatalf("kube-apiserver not ready after 90 s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("kube-apiserver ready in %s", time.Since(began).Round(time.Millisecond))

	kubeconfig := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %q}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, server, token)), 0o600)
	kubectl := func(args ...string) (string, error) {
		cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", kubeconfig, "--request-timeout", "30s"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// Both configurations, checked by the server without being stored.
	for _, name := range []string{"podman-like", "external-db"} {
		golden := filepath.Join("testdata", "kube", name)
		b, _ := os.ReadFile(filepath.Join(golden, "kustomization.yaml"))
		for _, l := range strings.Split(string(b), "\n") {
			if ns, ok := strings.CutPrefix(l, "namespace: "); ok {
				if out, err := kubectl("get", "namespace", ns); err != nil {
					if !strings.Contains(out, "NotFound") {
						t.Fatalf("kubectl get namespace %s: %v\n%s", ns, err, out)
					}
					must("create", "namespace", ns)
				}
			}
		}
		out := must("apply", "--dry-run=server", "--validate=strict", "-k", golden)
		t.Logf("%s, server dry run:\n%s", name, out)
	}

	// docs/kubernetes.md's sequence, for real (but the wait for the Jobs: no node
	// runs them): Secrets, the database and the Jobs, then the rollout.
	golden := filepath.Join("testdata", "kube", "podman-like")
	must("create", "secret", "generic", "isis-secret-key", "--from-literal=value=kube-test-secret-key-0123456789-abcdefghijklmnop")
	must("create", "secret", "generic", "isis-database-password", "--from-literal=value=kube-test-database-password")
	f := func(n string) string { return filepath.Join(golden, n) }
	must("apply", "--validate=strict", "-f", f("settings-configmap.yaml"), "-f", f("postgres-service.yaml"), "-f", f("postgres-statefulset.yaml"),
		"-f", f("postgres-networkpolicy.yaml"), "-f", f("static-pvc.yaml"))
	must("apply", "--validate=strict", "-f", f("migrate-job.yaml"), "-f", f("collectstatic-job.yaml"))
	must("apply", "--validate=strict", "-k", golden)
	// What the cluster holds is what was rendered: kubectl diff (a server
	// dry run of the apply, compared with what is stored) finds nothing,
	// and finds a changed replica count. (A second client-side apply would
	// still say "configured" for the StatefulSet: kubectl resends its
	// volumeClaimTemplates, an atomic list the server adds a status to;
	// the object and its generation stay as they were.)
	if out, err := kubectl("diff", "-k", golden); err != nil {
		t.Errorf("kubectl diff after the apply: %v\n%s", err, out)
	}
	moved := filepath.Join(dir, "moved")
	os.MkdirAll(moved, 0o755)
	b, _ := os.ReadFile(f("backend-deployment.yaml"))
	os.WriteFile(filepath.Join(moved, "backend-deployment.yaml"), bytes.Replace(b, []byte("  replicas: 2\n"), []byte("  replicas: 3\n"), 1), 0o644)
	if out, err := kubectl("diff", "-f", filepath.Join(moved, "backend-deployment.yaml")); err == nil || !strings.Contains(out, "replicas: 3") {
		t.Errorf("kubectl diff of a changed Deployment: %v\n%s", err, out)
	}

	// What the server stored keeps the hardening the renderer wrote.
	var d appsv1.Deployment
	if err := json.Unmarshal([]byte(must("get", "deployment", "isis-backend", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("stored Deployment has %d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot:
		t.Errorf("stored pod security context: %+v", pod.SecurityContext)
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
		t.Errorf("stored container security context: %+v", sc)
	case c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/api/ready/":
		t.Errorf("stored readiness probe: %+v", c.ReadinessProbe)
	case c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/api/health/":
		t.Errorf("stored liveness probe: %+v", c.LivenessProbe)
	case c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero():
		t.Errorf("stored resources: %+v", c.Resources)
	}
	out := must("get", "deployment,service,configmap,job,statefulset,networkpolicy,pvc", "-o", "name")
	for _, want := range []string{"deployment.apps/isis-backend", "service/isis-backend", "service/postgres18", "statefulset.apps/postgres18",
		"networkpolicy.networking.k8s.io/postgres18", "persistentvolumeclaim/isis-backend-static", "configmap/isis-backend-settings"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("the server holds no %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "job.batch/") != 2 {
		t.Errorf("want the migrate and collectstatic Jobs:\n%s", out)
	}

	// The server refuses what is wrong, so the checks above can fail: an
	// unknown field and a value out of range, each named.
	for _, tc := range []struct{ from, to, want string }{
		{"  replicas: 2\n", "  replicas: 2\n  replicaz: 3\n", "replicaz"},
		{"  replicas: 2\n", "  replicas: -1\n", "spec.replicas"},
	} {
		b, err := os.ReadFile(f("backend-deployment.yaml"))
		if err != nil || !bytes.Contains(b, []byte(tc.from)) {
			t.Fatalf("backend-deployment.yaml lacks %q (%v)", tc.from, err)
		}
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1), 0o644)
		out, err := kubectl("apply", "--dry-run=server", "--validate=strict", "-f", bad)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("a Deployment with %q: %v\n%s", strings.TrimSpace(tc.to), err, out)
		}
	}
}
