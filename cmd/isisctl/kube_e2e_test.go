package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/ops/config"

	"github.com/isis-project/isis/ops/kube"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestKubePlay renders the Kubernetes manifests with the real isisctl and
// runs them with `podman kube play` on the real Podman service: PostgreSQL
// from the StatefulSet's pod template, the migrate and collectstatic Jobs'
// pods, then the backend Deployment; the backend must answer
// /api/ready/ with its database and the migrations the Job applied.
//
// Podman 4.3 plays Pods, Deployments, PVCs, ConfigMaps and Secrets, not
// Jobs, StatefulSets, Services or NetworkPolicies, so what is played is
// derived from the rendered objects, changing only this:
//   - each Job's pod template runs as a Pod named after the Job;
//   - the StatefulSet's pod template runs as a Pod named after its headless
//     Service (the name DATABASE_HOST resolves to in a cluster), its volume
//     claim template as the PVC data-<name>-0 that Kubernetes would make;
//   - the Secrets the manifests name are created here (test values), under a
//     prefix so that no Podman secret of another deployment is touched;
//   - Podman 4.3 publishes every containerPort on the host, which a cluster
//     never does: PostgreSQL's port is dropped, and the backend's gets a
//     loopback hostPort for the test's requests;
//   - the Service and NetworkPolicy are not played (no kube-proxy, no
//     policy engine): one Podman network stands for the cluster network.
func TestKubePlay(t *testing.T) {
	t.Parallel()
	url := podmanURL(t)
	bin := binaries(t)
	dir := t.TempDir()
	const (
		port   = 3029
		domain = "api.kube.test"
		prefix = "kube-e2e-"
		netw   = "isis-kube-e2e"
		tag    = "kube-e2e"
	)
	cfgPath := filepath.Join(dir, "isisctl.yaml")
	os.WriteFile(cfgPath, []byte(`domain: `+domain+`
backend:
  name: isis-kube
postgres:
  name: pg-kube
  image: localhost/isis-postgres-test:15
kube:
  replicas: 1
  trusted_proxies: 10.88.0.0/16
`), 0o600)
	isisctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "isisctl"), append([]string{"--config", cfgPath, "--url", url}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("isisctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	podman := func(args ...string) (string, error) {
		out, err := exec.Command("podman", append([]string{"--url", url}, args...)...).CombinedOutput()
		return string(out), err
	}
	var played []string
	cleanup := func() {
		for i := len(played) - 1; i >= 0; i-- {
			podman("kube", "down", played[i])
		}
		pods, _ := podman("pod", "ps", "--format", "{{.Name}}")
		for _, p := range strings.Fields(pods) {
			if strings.HasPrefix(p, "pg-kube") || strings.HasPrefix(p, "isis-kube-") {
				podman("pod", "rm", "-f", p)
			}
		}
		podman("volume", "rm", "-f", "data-pg-kube-0", "isis-kube-static")
		podman("secret", "rm", prefix+config.SecretKeyName, prefix+config.DatabasePasswordName)
		podman("network", "rm", "-f", netw)
	}
	cleanup()
	t.Cleanup(cleanup)
	start := time.Now()

	isisctl("build", "--tag", tag)
	kdir := filepath.Join(dir, "kube")
	isisctl("render", "--kube", "--tag", tag, "--out", kdir)

	// The rendered objects, decoded strictly.
	objs := map[string]any{}
	entries, _ := os.ReadDir(kdir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(kdir, e.Name()))
		o, err := kube.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		objs[e.Name()] = o
	}
	cm := objs["settings-configmap.yaml"].(*corev1.ConfigMap)
	sts := objs["postgres-statefulset.yaml"].(*appsv1.StatefulSet)
	deploy := objs["backend-deployment.yaml"].(*appsv1.Deployment)
	migrate := objs["migrate-job.yaml"].(*batchv1.Job)
	static := objs["collectstatic-job.yaml"].(*batchv1.Job)
	staticPVC := objs["static-pvc.yaml"].(*corev1.PersistentVolumeClaim)

	prefixSecrets := func(spec *corev1.PodSpec) {
		for i := range spec.Volumes {
			if s := spec.Volumes[i].Secret; s != nil {
				s.SecretName = prefix + s.SecretName
			}
		}
	}
	asPod := func(name string, tpl corev1.PodTemplateSpec) *corev1.Pod {
		prefixSecrets(&tpl.Spec)
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: tpl.Labels}, Spec: tpl.Spec}
	}
	play := func(name string, docs ...any) {
		t.Helper()
		var b bytes.Buffer
		for _, d := range docs {
			y, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("---\n")
			b.Write(y)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b.Bytes(), 0o600)
		if out, err := podman("kube", "play", "--network", netw, p); err != nil {
			t.Fatalf("podman kube play %s: %v\n%s\n%s", name, err, out, b.String())
		}
		played = append(played, p)
	}
	// exited waits for a played Job's container and returns its exit code and logs.
	exited := func(ctr string) (string, string) {
		t.Helper()
		code, err := podman("wait", ctr)
		if err != nil {
			t.Fatalf("podman wait %s: %v %s", ctr, err, code)
		}
		logs, _ := podman("logs", ctr)
		return strings.TrimSpace(code), logs
	}

	if out, err := podman("network", "create", netw); err != nil {
		t.Fatalf("network: %v %s", err, out)
	}
	var secrets []any
	for name, value := range map[string]string{
		config.SecretKeyName:        "kube-e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
		config.DatabasePasswordName: "kube-e2e-database-password",
	} {
		secrets = append(secrets, &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: prefix + name}, Data: map[string][]byte{kube.KubeSecretKey: []byte(value)}})
	}
	play("secrets.yaml", secrets...)

	// PostgreSQL: the StatefulSet's pod with its claim.
	claim := sts.Spec.VolumeClaimTemplates[0]
	pvc := &corev1.PersistentVolumeClaim{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: claim.Name + "-" + sts.Name + "-0"}, Spec: claim.Spec}
	pg := asPod(sts.Spec.ServiceName, sts.Spec.Template)
	pg.Spec.Volumes = append(pg.Spec.Volumes, corev1.Volume{Name: claim.Name,
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}})
	pg.Spec.Containers[0].Ports = nil
	play("postgres.yaml", pvc, pg)
	// Podman 4.3 runs no probes without systemd: run the readiness probe's
	// own command until it passes.
	probe := append([]string{"exec", pg.Name + "-" + pg.Spec.Containers[0].Name}, pg.Spec.Containers[0].ReadinessProbe.Exec.Command...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := podman(probe...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := podman("logs", pg.Name+"-postgres")
			t.Fatalf("PostgreSQL never ready: %v %s\n%s", err, out, logs)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The migrate Job, before the rollout.
	play("migrate.yaml", cm, asPod(migrate.Name, migrate.Spec.Template))
	if code, logs := exited(migrate.Name + "-isis"); code != "0" || !strings.Contains(logs, "Applied") {
		t.Fatalf("migrate Job: exit %s\n%s", code, logs)
	}

	// The collectstatic Job, on its claim, also before the rollout.
	play("collectstatic.yaml", cm, staticPVC, asPod(static.Name, static.Spec.Template))
	if code, logs := exited(static.Name + "-isis"); code != "0" || !strings.Contains(logs, "static file(s) copied to /var/lib/isis/static") {
		t.Fatalf("collectstatic Job: exit %s\n%s", code, logs)
	}
	// The backend Deployment.
	d := deploy.DeepCopy()
	prefixSecrets(&d.Spec.Template.Spec)
	d.Spec.Template.Spec.Containers[0].Ports[0].HostIP = "127.0.0.1"
	d.Spec.Template.Spec.Containers[0].Ports[0].HostPort = port
	play("backend.yaml", cm, d)
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Host = domain
		res, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		status, body := get("/api/ready/")
		if status == 200 {
			if !strings.Contains(body, `"database":"ok"`) || !strings.Contains(body, `"migrations":"ok"`) {
				t.Errorf("/api/ready/: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			out, _ := podman("ps", "-a", "--format", "{{.Names}} {{.Status}}")
			t.Fatalf("/api/ready/ never answered 200: %d %s\n%s", status, body, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if status, body := get("/api/health/"); status != 200 {
		t.Errorf("/api/health/: %d %s", status, body)
	}
	if status, body := get("/api/municipalities/?search=medellin"); status != 200 || !strings.Contains(body, "Medell") {
		t.Errorf("data the migrations loaded: %d %.200s", status, body)
	}
	// Podman applied the pod's security context as the cluster would.
	out, _ := podman("ps", "--format", "{{.Names}}")
	var backend string
	for _, n := range strings.Fields(out) {
		if strings.HasPrefix(n, deploy.Name) && strings.HasSuffix(n, "-isis") {
			backend = n
		}
	}
	sec, err := podman("inspect", backend, "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.EffectiveCaps}} {{.HostConfig.SecurityOpt}}")
	if err != nil || !strings.HasPrefix(sec, "65532:65532 true [] ") || !strings.Contains(sec, "no-new-privileges") {
		t.Errorf("backend %q: user, read-only root, capabilities, options = %s (%v)", backend, sec, err)
	}

	t.Logf("build, render, kube play of PostgreSQL, migrate, collectstatic, backend: %s", time.Since(start).Round(time.Millisecond))
}
