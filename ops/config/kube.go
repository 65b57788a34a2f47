package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// KubeConfig is the kube: section of isisctl.yaml, read by render --kube.
type KubeConfig struct {
	// Namespace goes into kustomization.yaml (empty: kubectl's current one).
	Namespace string `yaml:"namespace"`
	// Replicas of the backend Deployment.
	Replicas int `yaml:"replicas"`
	// Image is the backend image as the cluster pulls it (a registry
	// reference, ideally by digest); empty: backend.image:tag.
	Image string `yaml:"image"`
	// DatabaseURL selects an external PostgreSQL instead of the StatefulSet:
	// postgres://USER@HOST:PORT/DB?sslmode=verify-full, without a password
	// (that stays in the isis-database-password Secret).
	DatabaseURL string `yaml:"database_url"`
	// StorageSize and StorageClass are the PostgreSQL volume claim's.
	StorageSize  string `yaml:"storage_size"`
	StorageClass string `yaml:"storage_class"`
	// TrustedProxies is TRUSTED_PROXIES in the backend's ConfigMap: the
	// addresses the ingress controller's pods connect from (the cluster's
	// pod network), comma-separated CIDRs. Required by render --kube: isis's
	// own default (loopback and every private range) would also believe a
	// client on a private address about the address it forwards.
	TrustedProxies string `yaml:"trusted_proxies"`
	// IngressNamespace and IngressPodSelector pick the ingress controller's
	// pods, the only ones the backend's NetworkPolicy lets in: a namespace
	// name and key=value[,key=value] labels ("" for every pod of it).
	IngressNamespace   string `yaml:"ingress_namespace"`
	IngressPodSelector string `yaml:"ingress_pod_selector"`
}

// Defaults of the kube: section: ingress-nginx's own namespace and labels.
const (
	defaultKubeIngressNamespace = "ingress-nginx"
	defaultKubeIngressSelector  = "app.kubernetes.io/name=ingress-nginx"
)

func defaultKubeConfig() KubeConfig {
	return KubeConfig{Replicas: 2, StorageSize: "10Gi",
		IngressNamespace: defaultKubeIngressNamespace, IngressPodSelector: defaultKubeIngressSelector}
}

// trustedProxies reads kube.trusted_proxies: CIDRs or addresses, none
// trusting every peer.
func (k *KubeConfig) TrustedProxyList() ([]string, string) {
	var out []string
	for _, p := range strings.Split(k.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Sprintf("%q is not an IP address or CIDR", p)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		if pfx.Bits() == 0 {
			return nil, fmt.Sprintf("%s trusts every peer: any pod or client could forge its address in X-Forwarded-For; name the pod network (e.g. 10.244.0.0/16)", p)
		}
		out = append(out, pfx.Masked().String())
	}
	if len(out) == 0 {
		return nil, "required by render --kube: the addresses the ingress controller's pods connect from, " +
			"your cluster's pod network (kubectl get nodes -o jsonpath='{.items[*].spec.podCIDR}'), e.g. 10.244.0.0/16"
	}
	return out, ""
}

// ingressPodLabels reads kube.ingress_pod_selector.
func (k *KubeConfig) IngressPodLabels() (map[string]string, string) {
	out := map[string]string{}
	for _, kv := range strings.Split(k.IngressPodSelector, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		key, val, ok := strings.Cut(kv, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || len(validation.IsQualifiedName(key)) > 0 || len(validation.IsValidLabelValue(val)) > 0 {
			return nil, fmt.Sprintf("%q is not a label like app.kubernetes.io/name=ingress-nginx", kv)
		}
		out[key] = val
	}
	return out, ""
}

// validate names the first bad kube.* key.
func (k *KubeConfig) Validate() (key, msg string) {
	if k.Namespace != "" && !HostRE.MatchString(k.Namespace) || strings.Contains(k.Namespace, ".") || len(k.Namespace) > 63 {
		return "kube.namespace", fmt.Sprintf("%q is not a Kubernetes namespace name (lower-case letters, digits, -)", k.Namespace)
	}
	if k.Replicas < 1 || k.Replicas > 100 {
		return "kube.replicas", fmt.Sprintf("%d is not between 1 and 100", k.Replicas)
	}
	if k.Image != "" && strings.ContainsAny(k.Image, " \t\n") {
		return "kube.image", fmt.Sprintf("%q is not an image reference", k.Image)
	}
	if q, err := resource.ParseQuantity(k.StorageSize); err != nil || q.Sign() <= 0 {
		return "kube.storage_size", fmt.Sprintf("%q is not a size like 10Gi", k.StorageSize)
	}
	if k.StorageClass != "" && !HostRE.MatchString(k.StorageClass) {
		return "kube.storage_class", fmt.Sprintf("%q is not a storage class name", k.StorageClass)
	}
	if strings.Trim(k.TrustedProxies, " \t,") != "" { // required by render --kube only (kube.Objects)
		if _, msg := k.TrustedProxyList(); msg != "" {
			return "kube.trusted_proxies", msg
		}
	}
	if len(validation.IsDNS1123Label(k.IngressNamespace)) > 0 {
		return "kube.ingress_namespace", fmt.Sprintf("%q is not a Kubernetes namespace name (lower-case letters, digits, -)", k.IngressNamespace)
	}
	if _, msg := k.IngressPodLabels(); msg != "" {
		return "kube.ingress_pod_selector", msg
	}
	if k.DatabaseURL != "" {
		if msg := CheckDatabaseURL(k.DatabaseURL); msg != "" {
			return "kube.database_url", msg
		}
	}
	return "", ""
}

// checkDatabaseURL accepts a PostgreSQL URL that verifies the server's
// certificate and name and holds no password. It never echoes the URL: a
// password pasted into it by mistake must not reach an error.
func CheckDatabaseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || u.Hostname() == "" {
		return "not a postgres://USER@HOST:PORT/DB?sslmode=verify-full URL"
	}
	if _, ok := u.User.Password(); ok {
		return "holds a password: keep it in the isis-database-password Secret (the URL is committed in a ConfigMap)"
	}
	if u.User.Username() == "" || strings.Trim(u.Path, "/") == "" {
		return "names no user or database (postgres://USER@HOST:PORT/DB?sslmode=verify-full)"
	}
	if m := u.Query().Get("sslmode"); m != "verify-full" {
		return fmt.Sprintf("sslmode is %q: an external database must use sslmode=verify-full (TLS with the server's certificate and name checked)", m)
	}
	return ""
}

// KubeImage is the image the manifests run: kube.image, else image:tag.
func (c *Config) KubeImage(tag string) string {
	if c.Kube.Image != "" {
		return c.Kube.Image
	}
	return c.BackendImage(tag)
}

// KubePlaceholderError is PlaceholderError for the keys that reach the
// manifests: the secrets: section does not.
func (c *Config) KubePlaceholderError() error {
	var ph []string
	for _, k := range c.Placeholders() {
		if !strings.HasPrefix(k, "secrets.") {
			ph = append(ph, k)
		}
	}
	if len(ph) > 0 {
		return &Error{File: c.File, Key: ph[0], Msg: fmt.Sprintf("still holds a changeme-* placeholder (%d key(s): %s)", len(ph), strings.Join(ph, ", "))}
	}
	return nil
}

// ExternalDatabase reports whether kube.database_url replaces the StatefulSet.
func (c *Config) ExternalDatabase() bool { return c.Kube.DatabaseURL != "" }
