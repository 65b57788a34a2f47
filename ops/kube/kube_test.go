package kube

import (
	"bytes"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/internal/testenv"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/render"
	"github.com/isis-project/isis/ops/spec"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// externalKubeConfig: an external database, a namespace, media and static
// files on S3, a registry image.
func externalKubeConfig() *config.Config {
	c := opstest.CustomConfig()
	c.Kube.Namespace = "isis-prod"
	c.Kube.Replicas = 3
	c.Kube.Image = "registry.example.com/isis/backend@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	c.Kube.DatabaseURL = "postgres://isis@db.example.com:5432/isis?sslmode=verify-full"
	c.Kube.StorageClass = "fast-ssd"
	c.Kube.TrustedProxies = "10.244.0.0/16, fd00:10:244::/56"
	c.Kube.IngressNamespace = "traefik"
	c.Kube.IngressPodSelector = "app.kubernetes.io/name=traefik,app.kubernetes.io/instance=traefik-traefik"
	return c
}

func renderKube(t *testing.T, c *config.Config, image string) []render.File {
	t.Helper()
	files, err := Render(c, Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func fileNames(files []render.File) string {
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// TestRenderKubeGolden keeps the manifests under testdata/kube (go test
// ./ops/kube -run Render -update rewrites them) and decodes each strictly.
func TestRenderKubeGolden(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		c     *config.Config
		image string
		names string
	}{
		{"testdata/kube/podman-like", opstest.ExampleConfig(), opstest.ExampleKubeImage,
			"backend-deployment.yaml backend-networkpolicy.yaml backend-service.yaml collectstatic-job.yaml kustomization.yaml migrate-job.yaml " +
				"postgres-networkpolicy.yaml postgres-service.yaml postgres-statefulset.yaml settings-configmap.yaml static-pvc.yaml"},
		{"testdata/kube/external-db", externalKubeConfig(), externalKubeConfig().KubeImage("ignored"),
			"backend-deployment.yaml backend-networkpolicy.yaml backend-service.yaml collectstatic-job.yaml kustomization.yaml migrate-job.yaml settings-configmap.yaml"},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			files := renderKube(t, tc.c, tc.image)
			opstest.CheckGolden(t, tc.dir, render.Contents(files))
			if got := fileNames(files); got != tc.names {
				t.Errorf("files = %s\nwant    %s", got, tc.names)
			}
			for _, f := range files {
				if _, err := Decode([]byte(f.Content)); err != nil {
					t.Errorf("%s: %v", f.Name, err)
				}
				// The manifests are safe to commit: no secret value, no Secret.
				for _, secret := range []string{"s3cr3t", "kind: Secret"} {
					if strings.Contains(f.Content, secret) {
						t.Errorf("%s holds %q", f.Name, secret)
					}
				}
				if !strings.HasSuffix(f.Name, ".yaml") || f.Mode != 0o644 {
					t.Errorf("%s: mode %o", f.Name, f.Mode)
				}
			}
		})
	}
}

// TestKubeOneSource: every setting of the Podman container is in the
// Kubernetes pods (ConfigMap or *_FILE), with the same image, user and
// hardening, so the three outputs cannot drift.
func TestKubeOneSource(t *testing.T) {
	c := opstest.CustomConfig()
	c.Backend.Env["THROTTLE_STORE"] = "postgres"
	cs := kubeBackendSpec(c, "localhost/isis-backend:abc")
	objs, err := Objects(c, Options{Image: "localhost/isis-backend:abc"})
	if err != nil {
		t.Fatal(err)
	}
	var cm *corev1.ConfigMap
	var pods []*corev1.PodTemplateSpec
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *corev1.ConfigMap:
			cm = x
		case *appsv1.Deployment:
			pods = append(pods, &x.Spec.Template)
			if *x.Spec.Replicas != 2 {
				t.Errorf("replicas = %d", *x.Spec.Replicas)
			}
		case *batchv1.Job:
			pods = append(pods, &x.Spec.Template)
		}
	}
	if cm == nil || len(pods) != 3 {
		t.Fatalf("configmap %v, %d pods", cm != nil, len(pods))
	}
	for _, p := range pods {
		ctr := p.Spec.Containers[0]
		fileEnv := map[string]string{}
		for _, e := range ctr.Env {
			fileEnv[e.Name] = e.Value
		}
		for k, v := range cs.Env {
			switch {
			case k == "LOG_DIR":
			case strings.HasSuffix(k, "_FILE"):
				if fileEnv[k] != v+"/"+KubeSecretKey {
					t.Errorf("%s = %q in the pod, %q on Podman", k, fileEnv[k], v)
				}
			case cm.Data[k] != v:
				t.Errorf("ConfigMap %s = %q, Podman %q", k, cm.Data[k], v)
			}
		}
		sc := ctr.SecurityContext
		if ctr.Image != cs.Image || *sc.RunAsUser != spec.BackendUID || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities.Drop[0] != "ALL" || p.Spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod %v: image %s, security %+v", p.Labels, ctr.Image, sc)
		}
		mounted := map[string]bool{}
		for _, m := range ctr.VolumeMounts {
			mounted[m.MountPath] = m.ReadOnly
		}
		for _, s := range cs.Secrets {
			if ro, ok := mounted[kubeSecretsDir+"/"+s.Target]; !ok || !ro {
				t.Errorf("secret %s not mounted read-only", s.Name)
			}
		}
	}
	if cm.Data["THROTTLE_STORE"] != "postgres" {
		t.Errorf("THROTTLE_STORE = %q", cm.Data["THROTTLE_STORE"])
	}
}

// TestCheckKubeRejects: each broken manifest is refused, naming the problem.
func TestCheckKubeRejects(t *testing.T) {
	files := renderKube(t, opstest.ExampleConfig(), opstest.ExampleKubeImage)
	edit := func(name, old, new string) func([]render.File) []render.File {
		return func(fs []render.File) []render.File {
			for i := range fs {
				if fs[i].Name == name {
					if !strings.Contains(fs[i].Content, old) {
						t.Fatalf("%s lacks %q", name, old)
					}
					fs[i].Content = strings.Replace(fs[i].Content, old, new, 1)
				}
			}
			return fs
		}
	}
	for _, tc := range []struct {
		name, want string
		mutate     func([]render.File) []render.File
	}{
		{"unknown field", `unknown field "readinesProbe"`,
			edit("backend-deployment.yaml", "readinessProbe:", "readinesProbe:")},
		{"wrong type", "cannot unmarshal", edit("backend-deployment.yaml", "replicas: 2", "replicas: two")},
		{"selector", "does not select the pod template's labels",
			edit("backend-deployment.yaml", "      app.kubernetes.io/component: backend\n      app.kubernetes.io/instance", "      app.kubernetes.io/component: frontend\n      app.kubernetes.io/instance")},
		{"service port", "targetPort https is no port", edit("backend-service.yaml", "targetPort: http", "targetPort: https")},
		{"probe port", `port "web" is not a port`, edit("backend-deployment.yaml", "path: /api/ready/\n            port: http", "path: /api/ready/\n            port: web")},
		{"secret inlined", "never hold them", func(fs []render.File) []render.File {
			return append(fs, render.File{Name: "secret.yaml", Content: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  value: hunter2\n"})
		}},
		{"secret in configmap", "SECRET_KEY: a secret in a ConfigMap", edit("settings-configmap.yaml", "  DEBUG:", "  SECRET_KEY: hunter2\n  DEBUG:")},
		{"password in url", "holds a password", edit("settings-configmap.yaml", "  DEBUG:", "  DATABASE_URL: postgres://u:hunter2@h/db?sslmode=verify-full\n  DEBUG:")},
		{"plain secret env", "is a secret as a plain value", edit("migrate-job.yaml", "        env:\n", "        env:\n        - name: DATABASE_PASSWORD\n          value: hunter2\n")},
		{"missing configmap", `ConfigMap "nope" is not rendered`, edit("backend-deployment.yaml", "name: isis-backend-settings", "name: nope")},
		{"undefined volume", `volume "isis-secret-key" is not defined`, edit("backend-deployment.yaml", "      - name: isis-secret-key\n        secret:", "      - name: other-key\n        secret:")},
		{"root", "runAsNonRoot: must be true", edit("migrate-job.yaml", "          runAsNonRoot: true", "          runAsNonRoot: false")},
		{"writable root", "readOnlyRootFilesystem: must be true", edit("backend-deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")},
		{"caps", "must drop ALL", edit("backend-deployment.yaml", "            - ALL\n", "            - NET_RAW\n")},
		{"escalation", "allowPrivilegeEscalation: must be false", edit("postgres-statefulset.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")},
		{"seccomp", "seccompProfile: must be RuntimeDefault", edit("collectstatic-job.yaml", "type: RuntimeDefault", "type: Unconfined")},
		{"policy", "from[0] selects no pod template", edit("postgres-networkpolicy.yaml", `io.isis/database-client: "true"`, `io.isis/database-client: "yes"`)},
		{"headless", "names no headless Service", edit("postgres-service.yaml", "clusterIP: None", "clusterIP: 10.0.0.5")},
		{"job restart", "must be Never or OnFailure", edit("migrate-job.yaml", "restartPolicy: Never", "restartPolicy: Always")},
		{"bad name", "metadata.name", edit("backend-service.yaml", "name: isis-backend\nspec", "name: Isis_Backend\nspec")},
		{"kustomization", "does not list static-pvc.yaml", edit("kustomization.yaml", "- static-pvc.yaml\n", "")},
		{"claim", `claim "isis-backend-static" is not rendered`, func(fs []render.File) []render.File {
			fs = edit("kustomization.yaml", "- static-pvc.yaml\n", "")(fs)
			for i := range fs {
				if fs[i].Name == "static-pvc.yaml" {
					return append(fs[:i], fs[i+1:]...)
				}
			}
			return fs
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := tc.mutate(append([]render.File(nil), files...))
			err := Check(broken)
			if err == nil {
				t.Fatal("CheckKube accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
	if err := Check(files); err != nil {
		t.Fatalf("the unbroken set: %v", err)
	}
}

// TestKubeConfigErrors: bad kube.* keys are configuration errors naming
// the key; a password pasted into the URL is never echoed.
func TestKubeConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, key, want string }{
		{"kube:\n  replicas: 0\n", "kube.replicas", "between 1 and 100"},
		{"kube:\n  namespace: Prod_1\n", "kube.namespace", "namespace name"},
		{"kube:\n  storage_size: lots\n", "kube.storage_size", "size like 10Gi"},
		{"kube:\n  database_url: postgres://isis@db.example.com/isis\n", "kube.database_url", "sslmode=verify-full"},
		{"kube:\n  database_url: postgres://isis@db.example.com/isis?sslmode=require\n", "kube.database_url", "sslmode=verify-full"},
		{"kube:\n  database_url: postgres://isis:hunter2@db.example.com/isis?sslmode=verify-full\n", "kube.database_url", "holds a password"},
		{"kube:\n  database_url: mysql://isis@db.example.com/isis?sslmode=verify-full\n", "kube.database_url", "postgres://"},
		{"kube:\n  database_url: postgres://db.example.com?sslmode=verify-full\n", "kube.database_url", "names no user or database"},
		{"kube:\n  replica: 2\n", "kube.replica", "unknown key"},
		{"kube:\n  trusted_proxies: 0.0.0.0/0\n", "kube.trusted_proxies", "trusts every peer"},
		{"kube:\n  trusted_proxies: 10.244.0.0/16, ::/0\n", "kube.trusted_proxies", "trusts every peer"},
		{"kube:\n  trusted_proxies: ingress-nginx\n", "kube.trusted_proxies", "not an IP address or CIDR"},
		{"kube:\n  ingress_namespace: Ingress_Nginx\n", "kube.ingress_namespace", "namespace name"},
		{"kube:\n  ingress_namespace: \"\"\n", "kube.ingress_namespace", "namespace name"},
		{"kube:\n  ingress_pod_selector: app=ingress nginx\n", "kube.ingress_pod_selector", "not a label"},
		{"kube:\n  ingress_pod_selector: app\n", "kube.ingress_pod_selector", "not a label"},
	} {
		p := filepath.Join(t.TempDir(), "isisctl.yaml")
		os.WriteFile(p, []byte("domain: api.example.com\n"+tc.yaml), 0o600)
		_, err := config.Load(p, true, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "key "+tc.key+":") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want key %s and %q", tc.yaml, err, tc.key, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

// TestKubeKustomize builds the kustomization with kubectl's own kustomize
// and decodes every object it emits strictly (scripts/setup.sh installs
// kubectl; under CI a missing kubectl fails).
func TestKubeKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		testenv.Missing(t, "kubectl", "scripts/setup.sh test installs it (Debian kubernetes-client)")
	}
	for _, c := range []*config.Config{opstest.ExampleConfig(), externalKubeConfig()} {
		files := renderKube(t, c, opstest.ExampleKubeImage)
		dir := t.TempDir()
		if _, err := render.WriteFiles(dir, files); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(kubectl, "kustomize", dir)
		cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
		}
		docs := strings.Split(string(out), "\n---\n")
		if len(docs) != len(files)-1 {
			t.Errorf("kustomize built %d objects from %d manifests", len(docs), len(files)-1)
		}
		kinds := map[string]int{}
		for _, d := range docs {
			obj, err := Decode([]byte(d))
			if err != nil {
				t.Errorf("kustomize output: %v\n%s", err, d)
				continue
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				kinds["Deployment"]++
				if o.Namespace != c.Kube.Namespace {
					t.Errorf("Deployment namespace %q, want %q", o.Namespace, c.Kube.Namespace)
				}
			case *networkingv1.NetworkPolicy:
				kinds["NetworkPolicy"]++
			case *batchv1.Job:
				kinds["Job"]++
			}
		}
		wantPolicies := 2 // the backend's and PostgreSQL's
		if c.ExternalDatabase() {
			wantPolicies = 1
		}
		if kinds["Deployment"] != 1 || kinds["Job"] != 2 || kinds["NetworkPolicy"] != wantPolicies {
			t.Errorf("kinds %v", kinds)
		}
	}
}

// TestKubeRefuses: settings that would break on several replicas, and
// placeholders that would reach the manifests.
func TestKubeRefuses(t *testing.T) {
	c := opstest.ExampleConfig()
	c.Backend.Env["THROTTLE_STORE"] = "memory"
	_, err := Render(c, Options{Image: "x:1"})
	if err == nil || !strings.Contains(err.Error(), "key backend.env.THROTTLE_STORE:") || !strings.Contains(err.Error(), "2 replicas") {
		t.Errorf("memory throttles on 2 replicas: %v", err)
	}
	c.Kube.Replicas = 1
	if _, err := Render(c, Options{Image: "x:1"}); err != nil {
		t.Errorf("memory throttles on 1 replica: %v", err)
	}

	c = opstest.ExampleConfig()
	c.Secrets.SecretKey = "changeme-secret-key" // not in the manifests
	if err := c.KubePlaceholderError(); err != nil {
		t.Errorf("a secrets placeholder: %v", err)
	}
	c.Backend.Env["CORS_ALLOWED_ORIGINS"] = "changeme-origin"
	if err := c.KubePlaceholderError(); err == nil || !strings.Contains(err.Error(), "backend.env.CORS_ALLOWED_ORIGINS") {
		t.Errorf("a settings placeholder: %v", err)
	}
}

// FuzzKubeDatabaseURL: kube.database_url is accepted only as a PostgreSQL
// URL with sslmode=verify-full and no password, and a refusal never
// echoes what was given.
func FuzzKubeDatabaseURL(f *testing.F) {
	for _, s := range []string{
		"postgres://isis@db.example.com:5432/isis?sslmode=verify-full",
		"postgresql://u:pw@h/db?sslmode=verify-full",
		"postgres://u@h/db?sslmode=require&sslmode=verify-full",
		"postgres://u@[::1]:5432/db?sslmode=verify-full",
		"host=h user=u sslmode=verify-full", "", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg := config.CheckDatabaseURL(s)
		u, err := url.Parse(s)
		if err == nil && u.User != nil {
			// A password must not reach the message: the message for the
			// same URL with the password masked tells what text is fixed.
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(msg, pw) {
				masked := strings.Replace(s, pw, strings.Repeat("\x00", len(pw)), 1)
				if !strings.Contains(config.CheckDatabaseURL(masked), pw) {
					t.Fatalf("message %q echoes the password of %q", msg, s)
				}
			}
		}
		if msg != "" {
			return
		}
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Query().Get("sslmode") != "verify-full" {
			t.Fatalf("accepted %q", s)
		}
		if _, ok := u.User.Password(); ok {
			t.Fatalf("accepted a password in %q", s)
		}
	})
}

// TestKubeBackendOnlyFromIngress: render --kube names TRUSTED_PROXIES (the
// ingress controller's pod network, never loopback) and lets only the
// ingress controller's pods reach the backend's port, so no other pod can
// open it and forge X-Forwarded-For.
func TestKubeBackendOnlyFromIngress(t *testing.T) {
	for _, tc := range []struct {
		c       *config.Config
		proxies string
		ns      string
		labels  map[string]string
	}{
		{opstest.ExampleConfig(), "10.244.0.0/16", "ingress-nginx",
			map[string]string{"app.kubernetes.io/name": "ingress-nginx"}},
		{externalKubeConfig(), "10.244.0.0/16,fd00:10:244::/56", "traefik",
			map[string]string{"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-traefik"}},
	} {
		objs, err := Objects(tc.c, Options{Image: "x:1"})
		if err != nil {
			t.Fatal(err)
		}
		var policy *networkingv1.NetworkPolicy
		var backendLabels map[string]string
		for _, o := range objs {
			switch v := o.obj.(type) {
			case *corev1.ConfigMap:
				if got := v.Data["TRUSTED_PROXIES"]; got != tc.proxies {
					t.Errorf("ConfigMap TRUSTED_PROXIES = %q, want %q", got, tc.proxies)
				}
			case *appsv1.Deployment:
				backendLabels = v.Spec.Template.Labels
			case *networkingv1.NetworkPolicy:
				if o.file == "backend-networkpolicy.yaml" {
					policy = v
				}
			}
		}
		if policy == nil {
			t.Fatal("no backend-networkpolicy.yaml")
		}
		sel, _ := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector)
		if !sel.Matches(labels.Set(backendLabels)) || !slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("the policy does not hold the backend's pods: %+v", policy.Spec)
		}
		if len(policy.Spec.Ingress) != 1 || len(policy.Spec.Ingress[0].From) != 1 {
			t.Fatalf("ingress rules: %+v", policy.Spec.Ingress)
		}
		from := policy.Spec.Ingress[0].From[0]
		if from.NamespaceSelector == nil || from.PodSelector == nil || from.IPBlock != nil ||
			!maps.Equal(from.NamespaceSelector.MatchLabels, map[string]string{"kubernetes.io/metadata.name": tc.ns}) ||
			!maps.Equal(from.PodSelector.MatchLabels, tc.labels) {
			t.Errorf("peer %+v, want the pods %v of namespace %s", from, tc.labels, tc.ns)
		}
		if p := policy.Spec.Ingress[0].Ports; len(p) != 1 || p[0].Port == nil || p[0].Port.StrVal != "http" {
			t.Errorf("ports %+v, want the backend's http port only", p)
		}
	}
	// Without kube.trusted_proxies, render --kube refuses, naming the key
	// (isis's own default would believe any client on a private address).
	c := opstest.ExampleConfig()
	for _, unset := range []string{"", " , "} {
		c.Kube.TrustedProxies = unset
		_, err := Render(c, Options{Image: "x:1"})
		if err == nil || !strings.Contains(err.Error(), "key kube.trusted_proxies: required by render --kube") {
			t.Errorf("kube.trusted_proxies %q: %v", unset, err)
		}
	}
	// An operator's own TRUSTED_PROXIES in backend.env stays, and does.
	c.Backend.Env["TRUSTED_PROXIES"] = "10.42.0.0/16"
	if _, err := Render(c, Options{Image: "x:1"}); err != nil {
		t.Errorf("backend.env.TRUSTED_PROXIES without kube.trusted_proxies: %v", err)
	}
	settings, _ := kubeSettings(c, spec.Backend(c, "x:1"))
	if settings["TRUSTED_PROXIES"] != "10.42.0.0/16" {
		t.Errorf("backend.env.TRUSTED_PROXIES replaced: %q", settings["TRUSTED_PROXIES"])
	}
	// Check refuses a peer of another namespace that names none.
	files := renderKube(t, opstest.ExampleConfig(), "x:1")
	for i, f := range files {
		if f.Name == "backend-networkpolicy.yaml" {
			files[i].Content = strings.Replace(f.Content, "kubernetes.io/metadata.name: ingress-nginx", "team: edge", 1)
		}
	}
	if err := Check(files); err == nil || !strings.Contains(err.Error(), "names no namespace and pods") {
		t.Errorf("a peer in any namespace labelled team=edge: %v", err)
	}
}
