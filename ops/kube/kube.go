package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/render"
	"github.com/isis-project/isis/ops/spec"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Kubernetes names and numbers of the rendered deployment.
const (
	// KubeSecretKey is the key each isis Secret keeps its value under:
	// kubectl create secret generic isis-secret-key --from-file=value=FILE.
	KubeSecretKey = "value"

	kubeSecretsDir   = "/run/secrets"
	kubeDBClientKey  = "io.isis/database-client"
	kubeStaticClaim  = "static"
	kubePostgresPort = 5432
)

// Backend resources, sized from the measurements in docs/performance.md: 51 MB peak
// RSS at 64 connections; an avatar upload decodes up to MAX_IMAGE_PIXELS
// (16 Mpx, 64 MiB) on top, so the limit leaves room for two at once and
// GOMEMLIMIT makes the collector work harder before the limit is reached.
const (
	kubeMemoryRequest = "96Mi"
	kubeMemoryLimit   = "256Mi"
	kubeGoMemLimit    = "200MiB"
	kubeCPURequest    = "100m"
	kubeCPULimit      = "1"
)

// Options say how the manifests are rendered.
type Options struct {
	Image string // backend image reference as the cluster pulls it
}

func kubeLabels(c *config.Config, component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "isis",
		"app.kubernetes.io/instance":   c.Backend.Name,
		"app.kubernetes.io/component":  component,
		"app.kubernetes.io/part-of":    "isis",
		"app.kubernetes.io/managed-by": "isisctl",
	}
}

func kubeSelector(c *config.Config, component string) map[string]string {
	l := kubeLabels(c, component)
	return map[string]string{
		"app.kubernetes.io/name":      l["app.kubernetes.io/name"],
		"app.kubernetes.io/instance":  l["app.kubernetes.io/instance"],
		"app.kubernetes.io/component": component,
	}
}

func kubeMeta(c *config.Config, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: kubeLabels(c, component)}
}

func settingsName(c *config.Config) string { return c.Backend.Name + "-settings" }

func staticClaim(c *config.Config) string { return c.Backend.Name + "-static" }

// kubeSettings splits the backend's environment: the plain settings go to
// the ConfigMap; the *_FILE paths, which follow the pod's secret mounts, stay
// in the pod spec. LOG_DIR goes (the cluster collects stdout).
func kubeSettings(c *config.Config, spec *podman.ContainerSpec) (settings map[string]string, files []corev1.EnvVar) {
	settings = map[string]string{}
	for k, v := range spec.Env {
		switch {
		case k == "LOG_DIR":
		case strings.HasSuffix(k, "_FILE"):
			for _, s := range spec.Secrets {
				if v == kubeSecretsDir+"/"+s.Target {
					v = kubeSecretsDir + "/" + s.Target + "/" + KubeSecretKey
				}
			}
			files = append(files, corev1.EnvVar{Name: k, Value: v})
		default:
			settings[k] = v
		}
	}
	if c.ExternalDatabase() {
		for _, k := range []string{"DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_SSLMODE"} {
			delete(settings, k)
		}
		settings["DATABASE_URL"] = c.Kube.DatabaseURL
	}
	// The ingress controller's pods, the only peers the NetworkPolicy lets
	// in, may say the client's address (unless backend.env says otherwise).
	if _, ok := c.Backend.Env["TRUSTED_PROXIES"]; !ok {
		proxies, _ := c.Kube.TrustedProxyList()
		settings["TRUSTED_PROXIES"] = strings.Join(proxies, ",")
	}
	settings["GOMEMLIMIT"] = kubeGoMemLimit
	if _, ok := settings["THROTTLE_STORE"]; !ok {
		settings["THROTTLE_STORE"] = "postgres" // the default, said: every replica counts in the database
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return settings, files
}

func secs(d interface{ Seconds() float64 }) int32 { return int32(d.Seconds()) }

func parseUser(u string) (uid, gid *int64) {
	a, b, _ := strings.Cut(u, ":")
	if n, err := strconv.ParseInt(a, 10, 64); err == nil {
		uid = &n
	}
	if n, err := strconv.ParseInt(b, 10, 64); err == nil {
		gid = &n
	}
	return uid, gid
}

func caps(list []string) []corev1.Capability {
	var out []corev1.Capability
	for _, c := range list {
		out = append(out, corev1.Capability(c))
	}
	return out
}

// kubeBackendPod is the pod of the backend and of its Jobs, made from the
// same ContainerSpec as the Podman container and the quadlet unit.
func kubeBackendPod(c *config.Config, cs *podman.ContainerSpec, settingsHash string, job bool) corev1.PodTemplateSpec {
	_, fileEnv := kubeSettings(c, cs)
	uid, gid := parseUser(cs.User)
	ctr := corev1.Container{
		Name:            "isis",
		Image:           cs.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            cs.Command,
		EnvFrom:         []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: settingsName(c)}}}},
		Env:             fileEnv,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(kubeMemoryRequest), corev1.ResourceCPU: resource.MustParse(kubeCPURequest)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(kubeMemoryLimit), corev1.ResourceCPU: resource.MustParse(kubeCPULimit)},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			RunAsUser:                uid,
			RunAsGroup:               gid,
			ReadOnlyRootFilesystem:   ptr(cs.ReadOnly),
			AllowPrivilegeEscalation: ptr(!cs.NoNewPrivileges),
			Capabilities:             &corev1.Capabilities{Drop: caps(cs.DropCaps), Add: caps(cs.AddCaps)},
		},
	}
	vols := append(secretVolumes(cs, &ctr, 0o440), tmpfsVolumes(cs, &ctr)...)
	component := "backend"
	restart := corev1.RestartPolicyAlways
	if job {
		component = cs.Command[0]
		restart = corev1.RestartPolicyNever
		if component == "collectstatic" && kubeStaticVolume(c) {
			vols = append(vols, corev1.Volume{Name: kubeStaticClaim, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: staticClaim(c)}}})
			ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: kubeStaticClaim, MountPath: cs.Env["STATIC_ROOT"]})
		}
	} else {
		ctr.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: spec.BackendPort, Protocol: corev1.ProtocolTCP}}
		if h := cs.Health; h != nil {
			ctr.ReadinessProbe = kubeProbe(h, "/api/ready/", 0)
			ctr.LivenessProbe = kubeProbe(h, "/api/health/", secs(h.StartPeriod))
		}
	}
	labels := kubeLabels(c, component)
	if !c.ExternalDatabase() {
		labels[kubeDBClientKey] = "true"
	}
	tpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{ctr},
			Volumes:                       vols,
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: ptr(int64(cs.StopTimeout)),
			AutomountServiceAccountToken:  ptr(false),
			EnableServiceLinks:            ptr(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr(true), RunAsUser: uid, RunAsGroup: gid, FSGroup: gid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		},
	}
	if !job {
		// A changed setting rolls the pods, as a changed unit restarts the container.
		tpl.Annotations = map[string]string{"io.isis/settings-hash": settingsHash}
	}
	return tpl
}

// tmpfsVolumes: a tmpfs other than the secrets directory (a Podman-with-runc
// detail) becomes a memory-backed emptyDir, mounted in ctr.
func tmpfsVolumes(cs *podman.ContainerSpec, ctr *corev1.Container) []corev1.Volume {
	var vols []corev1.Volume
	for i, t := range cs.Tmpfs {
		if t == kubeSecretsDir {
			continue
		}
		name := fmt.Sprintf("tmpfs-%d", i)
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: t})
	}
	return vols
}

// kubeProbe is the HTTP probe of path with the Podman health check's timing.
func kubeProbe(h *podman.Health, path string, delay int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
		InitialDelaySeconds: delay, PeriodSeconds: secs(h.Interval), TimeoutSeconds: secs(h.Timeout),
		FailureThreshold: int32(h.Retries), SuccessThreshold: 1,
	}
}

// kubeStaticVolume: collectstatic writes to a volume claim unless the assets
// go to the S3/R2 bucket (AWS_STORAGE_BUCKET_NAME set).
func kubeStaticVolume(c *config.Config) bool {
	return c.Backend.StaticDir != "" && c.Backend.Env["AWS_STORAGE_BUCKET_NAME"] == ""
}

// kubePostgresPod is the StatefulSet's pod, from the Podman PostgreSQL spec.
func kubePostgresPod(c *config.Config, cs *podman.ContainerSpec) corev1.PodTemplateSpec {
	env := []corev1.EnvVar{}
	for _, kv := range spec.SortedEnv(cs.Env) {
		k, v, _ := strings.Cut(kv, "=")
		for _, s := range cs.Secrets {
			if v == kubeSecretsDir+"/"+s.Target {
				v = kubeSecretsDir + "/" + s.Target + "/" + KubeSecretKey
			}
		}
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	ctr := corev1.Container{
		Name:            "postgres",
		Image:           cs.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Env:             env,
		Ports:           []corev1.ContainerPort{{Name: "postgres", ContainerPort: kubePostgresPort, Protocol: corev1.ProtocolTCP}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("100m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		// The image's entrypoint starts as root, owns the data directory and
		// drops to the postgres user: only the capabilities for that remain.
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(!cs.NoNewPrivileges),
			Capabilities:             &corev1.Capabilities{Drop: caps(cs.DropCaps), Add: caps(cs.AddCaps)},
		},
	}
	for _, m := range cs.Mounts {
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: m.Dest})
	}
	vols := secretVolumes(cs, &ctr, 0o400)
	if h := cs.Health; h != nil {
		probe := &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: h.Cmd}},
			PeriodSeconds: secs(h.Interval), TimeoutSeconds: secs(h.Timeout), FailureThreshold: int32(h.Retries), SuccessThreshold: 1,
		}
		live := *probe
		live.InitialDelaySeconds = secs(h.StartPeriod)
		ctr.ReadinessProbe, ctr.LivenessProbe = probe, &live
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: kubeLabels(c, "postgres")},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{ctr},
			Volumes:                       vols,
			TerminationGracePeriodSeconds: ptr(int64(cs.StopTimeout)),
			AutomountServiceAccountToken:  ptr(false),
			EnableServiceLinks:            ptr(false),
			SecurityContext: &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		},
	}
}

// kubeObject is one manifest file.
type kubeObject struct {
	file string
	obj  runtime.Object
}

// Objects builds the typed objects of the deployment, one a file.
func Objects(c *config.Config, o Options) ([]kubeObject, error) {
	be, err := kubeBackendChecked(c, o)
	if err != nil {
		return nil, err
	}
	settings, _ := kubeSettings(c, be)
	b, _ := json.Marshal(settings)
	sum := sha256.Sum256(b)
	settingsHash := hex.EncodeToString(sum[:8])
	imgSum := sha256.Sum256([]byte(o.Image))
	imgHash := hex.EncodeToString(imgSum[:4])

	objs := kubeBackendObjects(c, be, settings, settingsHash)
	objs = append(objs, kubeJobObjects(c, o.Image, settingsHash, imgHash)...)
	if kubeStaticVolume(c) {
		objs = append(objs, kubeStaticObject(c))
	}
	if !c.ExternalDatabase() {
		objs = append(objs, kubePostgresObjects(c)...)
	}
	return objs, nil
}

// kubeBackendChecked is the backend's specification, once the configuration
// has what the manifests need.
func kubeBackendChecked(c *config.Config, o Options) (*podman.ContainerSpec, error) {
	if err := c.NeedDomain(); err != nil {
		return nil, err
	}
	if key, msg := c.Kube.Validate(); key != "" {
		return nil, &config.Error{File: c.File, Key: key, Msg: msg}
	}
	if _, msg := c.Kube.TrustedProxyList(); msg != "" {
		if _, own := c.Backend.Env["TRUSTED_PROXIES"]; !own {
			return nil, c.KeyError("kube.trusted_proxies", msg)
		}
	}
	be := kubeBackendSpec(c, o.Image)
	if v := strings.ToLower(be.Env["THROTTLE_STORE"]); v != "" && v != "postgres" && c.Kube.Replicas > 1 {
		return nil, &config.Error{File: c.File, Key: "backend.env.THROTTLE_STORE",
			Msg: fmt.Sprintf("%q counts per process: %d replicas would allow %d times each limit; use postgres (the default)", v, c.Kube.Replicas, c.Kube.Replicas)}
	}
	return be, nil
}

// kubeBackendObjects are the settings, the backend's Deployment, its Service
// and its NetworkPolicy.
func kubeBackendObjects(c *config.Config, be *podman.ContainerSpec, settings map[string]string, settingsHash string) []kubeObject {
	var objs []kubeObject
	add := func(file string, obj runtime.Object) { objs = append(objs, kubeObject{file, obj}) }
	add("settings-configmap.yaml", &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: kubeMeta(c, settingsName(c), "backend"),
		Data:       settings,
	})
	add("backend-deployment.yaml", &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: kubeMeta(c, c.Backend.Name, "backend"),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(c.Kube.Replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: kubeSelector(c, "backend")},
			// A new pod must be ready (database reachable, migrations applied)
			// before an old one goes: the rollout never drops capacity.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromInt32(1))}},
			Template: kubeBackendPod(c, be, settingsHash, false),
		},
	})
	add("backend-service.yaml", &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: kubeMeta(c, c.Backend.Name, "backend"),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: kubeSelector(c, "backend"),
			Ports:    []corev1.ServicePort{{Name: "http", Port: spec.BackendPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	})
	// Only the ingress controller reaches the backend's port: no other pod
	// can open it and write its own X-Forwarded-For.
	ingressLabels, _ := c.Kube.IngressPodLabels()
	httpTCP := corev1.ProtocolTCP
	add("backend-networkpolicy.yaml", &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: kubeMeta(c, c.Backend.Name, "backend"),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: kubeSelector(c, "backend")},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": c.Kube.IngressNamespace}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: ingressLabels},
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &httpTCP, Port: ptr(intstr.FromString("http"))}},
			}},
		},
	})
	return objs
}

// kubeJobObjects are the migrate and collectstatic Jobs of the image.
func kubeJobObjects(c *config.Config, image, settingsHash, imgHash string) []kubeObject {
	var objs []kubeObject
	add := func(file string, obj runtime.Object) { objs = append(objs, kubeObject{file, obj}) }
	for _, job := range []string{"migrate", "collectstatic"} {
		cs := kubeBackendSpec(c, image)
		cs.Command = []string{job}
		cs.Health = nil
		add(job+"-job.yaml", &batchv1.Job{
			TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			// The image in the name: a Job's pod template cannot change, so a
			// new image is a new Job, and re-applying the same one is a no-op.
			ObjectMeta: kubeMeta(c, c.Backend.Name+"-"+job+"-"+imgHash, job),
			Spec: batchv1.JobSpec{
				BackoffLimit:            ptr(int32(2)),
				ActiveDeadlineSeconds:   ptr(int64(600)),
				TTLSecondsAfterFinished: ptr(int32(7 * 24 * 3600)),
				Template:                kubeBackendPod(c, cs, settingsHash, true),
			},
		})
	}
	return objs
}

// kubeStaticObject is the static files' volume claim.
func kubeStaticObject(c *config.Config) kubeObject {
	return kubeObject{"static-pvc.yaml", &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: kubeMeta(c, staticClaim(c), "collectstatic"),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: storageClass(c),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("256Mi")}},
		},
	}}
}

// kubePostgresObjects are PostgreSQL's StatefulSet, its headless Service and
// its NetworkPolicy (none with an external database).
func kubePostgresObjects(c *config.Config) []kubeObject {
	var objs []kubeObject
	add := func(file string, obj runtime.Object) { objs = append(objs, kubeObject{file, obj}) }
	pg := spec.Postgres(c)
	add("postgres-statefulset.yaml", &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: kubeMeta(c, c.Postgres.Name, "postgres"),
		Spec: appsv1.StatefulSetSpec{
			Replicas:       ptr(int32(1)),
			ServiceName:    c.Postgres.Name,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Selector:       &metav1.LabelSelector{MatchLabels: kubeSelector(c, "postgres")},
			Template:       kubePostgresPod(c, pg),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: kubeLabels(c, "postgres")},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: storageClass(c),
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(c.Kube.StorageSize)}},
				},
			}},
		},
	})
	// Headless: DATABASE_HOST is the Service's name, as it is the
	// container's name on the Podman network.
	add("postgres-service.yaml", &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: kubeMeta(c, c.Postgres.Name, "postgres"),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  kubeSelector(c, "postgres"),
			Ports:     []corev1.ServicePort{{Name: "postgres", Port: kubePostgresPort, TargetPort: intstr.FromString("postgres"), Protocol: corev1.ProtocolTCP}},
		},
	})
	// The internal network of the Podman host: only the backend and its
	// Jobs reach PostgreSQL, and PostgreSQL reaches nothing.
	tcp := corev1.ProtocolTCP
	add("postgres-networkpolicy.yaml", &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: kubeMeta(c, c.Postgres.Name, "postgres"),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: kubeSelector(c, "postgres")},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
					"app.kubernetes.io/instance": c.Backend.Name, kubeDBClientKey: "true"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr(intstr.FromString("postgres"))}},
			}},
		},
	})
	return objs
}

func storageClass(c *config.Config) *string {
	if c.Kube.StorageClass == "" {
		return nil
	}
	return ptr(c.Kube.StorageClass)
}

func ptr[T any](v T) *T { return &v }

const kubeHeader = "# Rendered by `isisctl render --kube` from isisctl.yaml. Holds no secret values:\n" +
	"# the Secrets it names are created apart (see docs/kubernetes.md).\n"

// Render renders the deployment as Kubernetes manifests and a
// kustomization.yaml, from the same specification as the quadlet units, and
// checks them (Check) before returning them.
func Render(c *config.Config, o Options) ([]render.File, error) {
	if !config.IsPinnedRef(o.Image) {
		return nil, &config.UnpinnedImageError{Image: o.Image, Kube: true}
	}
	objs, err := Objects(c, o)
	if err != nil {
		return nil, err
	}
	var files []render.File
	var names []string
	for _, ko := range objs {
		b, err := marshalKube(ko.obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ko.file, err)
		}
		files = append(files, render.File{Name: ko.file, Content: kubeHeader + string(b), Mode: 0o644})
		names = append(names, ko.file)
	}
	k := Kustomization{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Namespace: c.Kube.Namespace, Resources: names}
	b, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	files = append(files, render.File{Name: "kustomization.yaml", Content: kubeHeader + string(b), Mode: 0o644})
	if err := Check(files); err != nil {
		return nil, fmt.Errorf("rendered manifests fail their own check (a bug): %w", err)
	}
	return files, nil
}

// Kustomization is the part of kustomize's file isisctl writes.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
}

// marshalKube writes an object as YAML without the empty fields the API
// types always carry (creationTimestamp: null, status: {}).
func marshalKube(obj runtime.Object) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status") // the cluster's to write
	prune(m)
	return yaml.Marshal(m)
}

func prune(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			prune(e)
			if k == "creationTimestamp" && e == nil {
				delete(x, k)
			}
			if m, ok := e.(map[string]any); ok && len(m) == 0 && (k == "status" || k == "resources" || k == "metadata") {
				delete(x, k)
			}
		}
	case []any:
		for _, e := range x {
			prune(e)
		}
	}
}

// secretVolumes are spec's secrets as Secret volumes (files of mode) and
// their read-only mounts on ctr under the secrets directory. optional:
// false is the default, said explicitly: Podman 4.3's kube play
// dereferences it.
func secretVolumes(spec *podman.ContainerSpec, ctr *corev1.Container, mode int32) []corev1.Volume {
	var vols []corev1.Volume
	for _, s := range spec.Secrets {
		vols = append(vols, corev1.Volume{Name: s.Name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s.Name, Optional: ptr(false), DefaultMode: ptr(mode),
			Items: []corev1.KeyToPath{{Key: KubeSecretKey, Path: KubeSecretKey}},
		}}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: s.Name, MountPath: kubeSecretsDir + "/" + s.Target, ReadOnly: true})
	}
	return vols
}

// kubeBackendSpec is the backend spec on Kubernetes: one database role
// (postgres.user with secrets.database_password) for now; the owner and
// application roles are the Podman path's (see docs/operations.md).
func kubeBackendSpec(c *config.Config, image string) *podman.ContainerSpec {
	s := spec.Backend(c, image)
	spec.WithDatabaseRole(s, c.Postgres.User, config.DatabasePasswordName)
	return s
}
