package kube

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/render"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Decode decodes one manifest strictly into its official API type
// (k8s.io/api): an unknown or misspelt field is an error, as with
// kubectl's --validate=strict.
func Decode(content []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(content, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "batch/v1 Job":
		obj = &batchv1.Job{}
	case "networking.k8s.io/v1 NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		obj = &Kustomization{}
	case "v1 Secret":
		return nil, errors.New("a Secret: the manifests must only name Secrets, never hold them")
	default:
		return nil, fmt.Errorf("unexpected kind %q of apiVersion %q", tm.Kind, tm.APIVersion)
	}
	if err := yaml.UnmarshalStrict(content, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// Check decodes every manifest strictly and checks what an API server
// would refuse or a cluster would silently get wrong: names, labels,
// selectors that match their pod templates, ports that probes and Services
// name, volumes that mounts name, ConfigMaps and claims that exist, the
// security context, and a kustomization that lists every file.
func Check(files []render.File) error {
	k := &kubeSet{configMaps: map[string]bool{}, claims: map[string]bool{}, services: map[string]*corev1.Service{}}
	var errs []string
	fail := func(file, format string, args ...any) {
		errs = append(errs, file+": "+fmt.Sprintf(format, args...))
	}
	for _, f := range files {
		obj, err := Decode([]byte(f.Content))
		if err != nil {
			fail(f.Name, "%v", err)
			continue
		}
		k.objs = append(k.objs, named{f.Name, obj})
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			k.configMaps[o.Name] = true
		case *corev1.PersistentVolumeClaim:
			k.claims[o.Name] = true
		case *corev1.Service:
			k.services[o.Name] = o
		case *Kustomization:
			k.kustomization = o
		}
	}
	for _, n := range k.objs {
		for _, e := range k.check(n.file, n.obj) {
			fail(n.file, "%s", e)
		}
	}
	if k.kustomization == nil {
		errs = append(errs, "kustomization.yaml: missing")
	} else {
		listed := map[string]bool{}
		for _, r := range k.kustomization.Resources {
			listed[r] = true
		}
		for _, f := range files {
			if f.Name != "kustomization.yaml" && !listed[f.Name] {
				fail("kustomization.yaml", "does not list %s", f.Name)
			}
			delete(listed, f.Name)
		}
		for r := range listed {
			fail("kustomization.yaml", "lists %s, which is not rendered", r)
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

type named struct {
	file string
	obj  any
}

type kubeSet struct {
	objs          []named
	configMaps    map[string]bool
	claims        map[string]bool
	services      map[string]*corev1.Service
	kustomization *Kustomization
}

func fieldErrs(l field.ErrorList) []string {
	var out []string
	for _, e := range l {
		out = append(out, e.Error())
	}
	return out
}

func (k *kubeSet) meta(m *metav1.ObjectMeta, nameFn apivalidation.ValidateNameFunc) []string {
	out := fieldErrs(apivalidation.ValidateObjectMeta(m, false, nameFn, field.NewPath("metadata")))
	return out
}

// selects checks a workload's selector against its pod template's labels.
func selects(sel *metav1.LabelSelector, tpl map[string]string, p *field.Path) []string {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return []string{p.String() + ": required"}
	}
	out := fieldErrs(metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, p))
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(out, p.String()+": "+err.Error())
	}
	if !s.Matches(labels.Set(tpl)) {
		out = append(out, fmt.Sprintf("%s: %s does not select the pod template's labels", p, s))
	}
	return out
}

func (k *kubeSet) check(file string, obj any) []string {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return k.checkConfigMap(o)
	case *corev1.PersistentVolumeClaim:
		return append(k.meta(&o.ObjectMeta, apivalidation.NameIsDNSSubdomain), claimErrs(&o.Spec, field.NewPath("spec"))...)
	case *corev1.Service:
		return k.checkService(o)
	case *appsv1.Deployment:
		out := k.meta(&o.ObjectMeta, apivalidation.NameIsDNSSubdomain)
		out = append(out, selects(o.Spec.Selector, o.Spec.Template.Labels, field.NewPath("spec", "selector"))...)
		if o.Spec.Replicas == nil || *o.Spec.Replicas < 1 {
			out = append(out, "spec.replicas: at least 1")
		}
		if o.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
			out = append(out, "spec.template.spec.restartPolicy: must be Always")
		}
		return append(out, k.pod(&o.Spec.Template, nil, true)...)
	case *appsv1.StatefulSet:
		out := k.meta(&o.ObjectMeta, apivalidation.NameIsDNSSubdomain)
		out = append(out, selects(o.Spec.Selector, o.Spec.Template.Labels, field.NewPath("spec", "selector"))...)
		if svc := k.services[o.Spec.ServiceName]; svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			out = append(out, fmt.Sprintf("spec.serviceName %q names no headless Service", o.Spec.ServiceName))
		}
		claims := map[string]bool{}
		for i, c := range o.Spec.VolumeClaimTemplates {
			claims[c.Name] = true
			out = append(out, claimErrs(&c.Spec, field.NewPath("spec", "volumeClaimTemplates").Index(i))...)
		}
		return append(out, k.pod(&o.Spec.Template, claims, false)...)
	case *batchv1.Job:
		out := k.meta(&o.ObjectMeta, apivalidation.NameIsDNSSubdomain)
		if rp := o.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
			out = append(out, "spec.template.spec.restartPolicy: must be Never or OnFailure")
		}
		return append(out, k.pod(&o.Spec.Template, nil, true)...)
	case *networkingv1.NetworkPolicy:
		return k.checkNetworkPolicy(o)
	case *Kustomization:
		if len(o.Resources) == 0 {
			return []string{"resources: empty"}
		}
		return nil
	}
	return []string{fmt.Sprintf("%T: not checked", obj)}
}

// checkConfigMap: valid keys, a valid DATABASE_URL, no secret.
func (k *kubeSet) checkConfigMap(o *corev1.ConfigMap) []string {
	out := k.meta(&o.ObjectMeta, apivalidation.NameIsDNSSubdomain)
	for key, v := range o.Data {
		for _, e := range validation.IsConfigMapKey(key) {
			out = append(out, "data."+key+": "+e)
		}
		switch {
		case key == "DATABASE_URL":
			if msg := config.CheckDatabaseURL(v); msg != "" {
				out = append(out, "data.DATABASE_URL: "+msg)
			}
		case looksSecret(key):
			out = append(out, "data."+key+": a secret in a ConfigMap")
		}
	}
	return out
}

// checkService: a selector and ports, every selected pod serving the target port.
func (k *kubeSet) checkService(o *corev1.Service) []string {
	out := k.meta(&o.ObjectMeta, apivalidation.NameIsDNS1035Label)
	if len(o.Spec.Selector) == 0 {
		out = append(out, "spec.selector: required")
	}
	if len(o.Spec.Ports) == 0 {
		out = append(out, "spec.ports: required")
	}
	for i, p := range o.Spec.Ports {
		out = append(out, portErrs(p.Name, p.Port, field.NewPath("spec", "ports").Index(i))...)
		// Every pod the Service selects must serve the target port.
		pods := k.podsSelectedBy(labels.SelectorFromSet(o.Spec.Selector))
		if len(pods) == 0 {
			out = append(out, fmt.Sprintf("spec.selector %v selects no pod template", o.Spec.Selector))
		}
		for _, pod := range pods {
			if !servesPort(&pod.Spec, p.TargetPort) {
				out = append(out, fmt.Sprintf("spec.ports[%d].targetPort %s is no port of the selected pods", i, p.TargetPort.String()))
			}
		}
	}
	return out
}

// checkNetworkPolicy: it selects pods, each peer names pods (in a named
// namespace, or rendered here), and the selected pods serve its ports.
func (k *kubeSet) checkNetworkPolicy(o *networkingv1.NetworkPolicy) []string {
	out := k.meta(&o.ObjectMeta, apivalidation.NameIsDNSSubdomain)
	target := k.podsSelectedBy(mustSelector(&o.Spec.PodSelector))
	if len(target) == 0 {
		out = append(out, "spec.podSelector selects no pod template")
	}
	for i, r := range o.Spec.Ingress {
		for j, from := range r.From {
			if from.NamespaceSelector != nil {
				// Pods of another namespace (the ingress controller's): a
				// namespace named, and pods picked in it.
				if _, ok := from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]; !ok || from.PodSelector == nil {
					out = append(out, fmt.Sprintf("spec.ingress[%d].from[%d] names no namespace and pods", i, j))
				}
				continue
			}
			if from.PodSelector == nil || len(k.podsSelectedBy(mustSelector(from.PodSelector))) == 0 {
				out = append(out, fmt.Sprintf("spec.ingress[%d].from[%d] selects no pod template", i, j))
			}
		}
		for j, p := range r.Ports {
			for _, pod := range target {
				if p.Port == nil || !servesPort(&pod.Spec, *p.Port) {
					out = append(out, fmt.Sprintf("spec.ingress[%d].ports[%d] is no port of the selected pods", i, j))
				}
			}
		}
	}
	return out
}

func mustSelector(sel *metav1.LabelSelector) labels.Selector {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return labels.Nothing()
	}
	return s
}

func (k *kubeSet) podsSelectedBy(s labels.Selector) []*corev1.PodTemplateSpec {
	var out []*corev1.PodTemplateSpec
	for _, n := range k.objs {
		var tpl *corev1.PodTemplateSpec
		switch o := n.obj.(type) {
		case *appsv1.Deployment:
			tpl = &o.Spec.Template
		case *appsv1.StatefulSet:
			tpl = &o.Spec.Template
		case *batchv1.Job:
			tpl = &o.Spec.Template
		}
		if tpl != nil && s.Matches(labels.Set(tpl.Labels)) {
			out = append(out, tpl)
		}
	}
	return out
}

func servesPort(pod *corev1.PodSpec, p intstr.IntOrString) bool {
	for _, c := range pod.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return true
			}
		}
	}
	return false
}

func portErrs(name string, port int32, p *field.Path) []string {
	var out []string
	for _, e := range validation.IsValidPortNum(int(port)) {
		out = append(out, p.Child("port").String()+": "+e)
	}
	if name != "" {
		for _, e := range validation.IsValidPortName(name) {
			out = append(out, p.Child("name").String()+": "+e)
		}
	}
	return out
}

func claimErrs(s *corev1.PersistentVolumeClaimSpec, p *field.Path) []string {
	var out []string
	if len(s.AccessModes) == 0 {
		out = append(out, p.Child("accessModes").String()+": required")
	}
	if q, ok := s.Resources.Requests[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
		out = append(out, p.Child("resources", "requests", "storage").String()+": required")
	}
	return out
}

// pod checks a pod template; claims are a StatefulSet's volume claim
// templates; hardened pods must run as the backend does on Podman.
func (k *kubeSet) pod(t *corev1.PodTemplateSpec, claims map[string]bool, hardened bool) []string {
	p := field.NewPath("spec", "template")
	out := fieldErrs(metavalidation.ValidateLabels(t.Labels, p.Child("metadata", "labels")))
	vols, verrs := k.podVolumes(t, p)
	out = append(out, verrs...)
	if len(t.Spec.Containers) == 0 {
		out = append(out, p.Child("spec", "containers").String()+": required")
	}
	psc := t.Spec.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		out = append(out, p.Child("spec", "securityContext", "seccompProfile").String()+": must be RuntimeDefault")
	}
	for i := range t.Spec.Containers {
		out = append(out, k.container(&t.Spec.Containers[i], p.Child("spec", "containers").Index(i), vols, claims, hardened)...)
	}
	return out
}

// podVolumes checks a pod template's volumes and returns their names.
func (k *kubeSet) podVolumes(t *corev1.PodTemplateSpec, p *field.Path) (map[string]bool, []string) {
	var out []string
	vols := map[string]bool{}
	for i, v := range t.Spec.Volumes {
		vp := p.Child("spec", "volumes").Index(i)
		for _, e := range validation.IsDNS1123Label(v.Name) {
			out = append(out, vp.Child("name").String()+": "+e)
		}
		if vols[v.Name] {
			out = append(out, vp.Child("name").String()+": duplicate "+v.Name)
		}
		vols[v.Name] = true
		switch {
		case v.Secret != nil:
			if v.Secret.SecretName == "" {
				out = append(out, vp.Child("secret", "secretName").String()+": required")
			}
		case v.PersistentVolumeClaim != nil:
			if !k.claims[v.PersistentVolumeClaim.ClaimName] {
				out = append(out, fmt.Sprintf("%s: claim %q is not rendered", vp, v.PersistentVolumeClaim.ClaimName))
			}
		case v.EmptyDir != nil, v.ConfigMap != nil:
		default:
			out = append(out, vp.String()+": unexpected volume type")
		}
	}
	return vols, out
}

// container checks one container of a pod template (at cp); vols and
// claims are the volumes it may mount.
func (k *kubeSet) container(c *corev1.Container, cp *field.Path, vols, claims map[string]bool, hardened bool) []string {
	var out []string
	for _, e := range validation.IsDNS1123Label(c.Name) {
		out = append(out, cp.Child("name").String()+": "+e)
	}
	if c.Image == "" {
		out = append(out, cp.Child("image").String()+": required")
	}
	ports := map[string]bool{}
	for j, port := range c.Ports {
		out = append(out, portErrs(port.Name, port.ContainerPort, cp.Child("ports").Index(j))...)
		ports[port.Name] = true
	}
	for _, pr := range []struct {
		name string
		p    *corev1.Probe
	}{{"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}} {
		if pr.p == nil {
			if hardened && len(c.Ports) > 0 {
				out = append(out, cp.Child(pr.name).String()+": required for a server")
			}
			continue
		}
		if g := pr.p.HTTPGet; g != nil && g.Port.Type == intstr.String && !ports[g.Port.StrVal] {
			out = append(out, fmt.Sprintf("%s: port %q is not a port of the container", cp.Child(pr.name, "httpGet", "port"), g.Port.StrVal))
		}
	}
	for j, m := range c.VolumeMounts {
		if !vols[m.Name] && !claims[m.Name] {
			out = append(out, fmt.Sprintf("%s: volume %q is not defined", cp.Child("volumeMounts").Index(j), m.Name))
		}
		if !path.IsAbs(m.MountPath) {
			out = append(out, cp.Child("volumeMounts").Index(j).Child("mountPath").String()+": not absolute")
		}
	}
	for j, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			out = append(out, cp.Child("env").Index(j).String()+": "+msg)
		}
		if e.ValueFrom == nil && looksSecret(e.Name) {
			out = append(out, fmt.Sprintf("%s: %s is a secret as a plain value", cp.Child("env").Index(j), e.Name))
		}
	}
	for j, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && !k.configMaps[ef.ConfigMapRef.Name] {
			out = append(out, fmt.Sprintf("%s: ConfigMap %q is not rendered", cp.Child("envFrom").Index(j), ef.ConfigMapRef.Name))
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		out = append(out, cp.Child("resources", "limits", "memory").String()+": required")
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		out = append(out, cp.Child("securityContext", "allowPrivilegeEscalation").String()+": must be false")
	}
	if !hardened {
		return out
	}
	switch {
	case sc == nil:
		out = append(out, cp.Child("securityContext").String()+": required")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0:
		out = append(out, cp.Child("securityContext", "runAsNonRoot").String()+": must be true, with a non-zero runAsUser")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		out = append(out, cp.Child("securityContext", "readOnlyRootFilesystem").String()+": must be true")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0:
		out = append(out, cp.Child("securityContext", "capabilities").String()+": must drop ALL and add none")
	}
	return out
}

// looksSecret names settings that must come from a Secret, never a value.
func looksSecret(name string) bool {
	_, ok := config.SecretEnv[name]
	return ok || name == "POSTGRES_PASSWORD" || name == "PGPASSWORD"
}
