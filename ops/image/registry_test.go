package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/config"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestRegistryConfigErrors(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	for _, tc := range []struct{ body, want string }{
		{"registry:\n  repository: isis/backend\n", "key registry.repository: set registry.server too"},
		{"registry:\n  username: ci\n", "key registry.username: set registry.server too"},
		{"registry:\n  server: https://registry.example.com\n", "key registry.server: \"https://registry.example.com\": give host[:port] without a scheme"},
		{"registry:\n  server: Registry.Example.com\n", "key registry.server:"},
		{"registry:\n  server: r.example.com:5000\n  repository: Isis/Backend\n", "key registry.repository:"},
		{"registry:\n  server: r.example.com\n  repository: /isis\n", "key registry.repository:"},
		{"registry:\n  server: r.example.com\n  password: x\n", "key registry.username: required with a registry password"},
		{"registry:\n  server: r.example.com\n  username: ci\n  password: x\n  password_file: /p\n", "key registry.password: set either"},
		{"registry:\n  server: r.example.com\n  username: ci\n  auth_file: /a.json\n", "key registry.auth_file: set either"},
		{"registry:\n  server: r.example.com\n  ca_file: /nonexistent/ca.crt\n", "key registry.ca_file: /nonexistent/ca.crt: no such file"},
		{"registry:\n  server: r.example.com\n  ca_file: " + notPEM + "\n", "holds no PEM certificate"},
		{"registry:\n  server: r.example.com\n  tls_verify: maybe\n", "invalid YAML"},
		{"registry:\n  server: r.example.com\n  insecure: true\n", ":3: key registry.insecure: unknown key"},
		{"backend:\n  image: localhost/isis-backend:v1\n", "key backend.image:"},
		{"backend:\n  image: r.example.com/isis/backend@sha256:abc\n", "key backend.image:"},
		{"backend:\n  image: R.example.com/Isis\n", "key backend.image:"},
	} {
		_, err := config.Load(opstest.WriteYAML(t, tc.body), true, opstest.NoEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line with %q", tc.body, err, tc.want)
		}
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: %T is not a ConfigError (exit 2)", tc.body, err)
		}
	}
	// tls_verify defaults to true and ISISCTL_REGISTRY_TLS_VERIFY overrides it.
	c, err := config.Load(opstest.WriteYAML(t, "registry:\n  server: r.example.com\n"), true, opstest.NoEnv)
	if err != nil || !c.Registry.TLSVerify {
		t.Errorf("tls_verify default: %v %v", c, err)
	}
	c, err = config.Load(opstest.WriteYAML(t, "registry:\n  server: r.example.com\n"), true, func(k string) string {
		return map[string]string{"ISISCTL_REGISTRY_TLS_VERIFY": "false", "ISISCTL_REGISTRY_USERNAME": "ci", "ISISCTL_REGISTRY_PASSWORD": "pw"}[k]
	})
	if err != nil || c.Registry.TLSVerify || c.Registry.Username != "ci" || c.Registry.Password != "pw" {
		t.Errorf("env overrides: %+v %v", c.Registry, err)
	}
	_, err = config.Load(opstest.WriteYAML(t, ""), true, func(k string) string {
		return map[string]string{"ISISCTL_REGISTRY_TLS_VERIFY": "nope"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), `ISISCTL_REGISTRY_TLS_VERIFY="nope" is not true or false`) {
		t.Errorf("bad bool env: %v", err)
	}
}

func TestRegistryReferences(t *testing.T) {
	c, err := config.Load(opstest.WriteYAML(t, "backend:\n  image: localhost/isis-backend\nregistry:\n  server: 127.0.0.1:5000\n"), true, opstest.NoEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RegistryImage("c0ffee"); got != "127.0.0.1:5000/isis-backend:c0ffee" {
		t.Errorf("RegistryImage = %s (repository defaults to the last part of backend.image)", got)
	}
	c.Registry.Repository = "team/isis"
	if got := c.DigestReference(testDigest); got != "127.0.0.1:5000/team/isis@"+testDigest {
		t.Errorf("DigestReference = %s", got)
	}
	if c.PullsImage() || c.BackendImage("v1") != "localhost/isis-backend:v1" {
		t.Errorf("a named image is built here: %s", c.BackendImage("v1"))
	}
	ref := "127.0.0.1:5000/team/isis@" + testDigest
	for _, bad := range []string{"127.0.0.1:5000/team/isis:v1", "team/isis@sha256:12", "", "x@" + testDigest + " "} {
		if err := Use(c, bad); err == nil && bad != "" {
			t.Errorf("UseImage(%q) accepted", bad)
		}
	}
	if err := Use(c, ref); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("a digest backend.image must validate: %v", err)
	}
	if !c.PullsImage() || c.BackendImage("v9") != ref {
		t.Errorf("a digest reference is used as it is: %s", c.BackendImage("v9"))
	}
	if _, err := Build(nil, c, "", nil); err == nil || !strings.Contains(err.Error(), "backend.image: is a pushed digest reference") {
		t.Errorf("build with a digest backend.image: %v", err)
	}
}

func TestRegistryFailureIsOneLineWithoutSecrets(t *testing.T) {
	c := config.Default()
	c.Registry.Server, c.Registry.Repository = "r.example.com:5000", "isis/backend"
	const pw = "S3cret-pw"
	for _, tc := range []struct{ msg, want string }{
		{"trying to reuse blob sha256:ab at destination: checking whether a blob sha256:ab exists in r.example.com:5000/isis/backend: authentication required", "authentication failed"},
		{"initializing source docker://r.example.com:5000/isis/backend:x: reading manifest x in r.example.com:5000/isis/backend: unauthorized: authentication required", "authentication failed"},
		{"writing manifest: denied: requested access to the resource is denied", "access denied"},
		{"pinging container registry r.example.com:5000: Get \"https://r.example.com:5000/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority", "the Podman host does not trust the registry's TLS certificate"},
		{"pinging container registry r.example.com:5000: Get \"https://r.example.com:5000/v2/\": dial tcp 10.0.0.1:5000: connect: connection refused", "unreachable from the Podman host"},
		{"something odd with " + pw + "\nsecond line", "something odd with …"},
	} {
		err := registryFailure(c, "push r.example.com:5000/isis/backend:x", c.Registry.Server, errors.New(tc.msg), pw)
		s := err.Error()
		if !strings.Contains(s, "registry r.example.com:5000: "+tc.want) || strings.Contains(s, "\n") || strings.Contains(s, pw) {
			t.Errorf("%q -> %q, want one line with %q and no password", tc.msg, s, tc.want)
		}
	}
}

func TestRegistryAuth(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	auth := filepath.Join(dir, "auth.json")
	// base64("ci:from-auth-json"), as podman login writes it.
	os.WriteFile(auth, []byte(`{"auths":{"r.example.com:5000":{"auth":"Y2k6ZnJvbS1hdXRoLWpzb24="},"other.example.com":{"auth":"eDp5"}}}`), 0o600)
	for _, tc := range []struct {
		reg        config.RegistryConfig
		user, pass string
		err        string
	}{
		{reg: config.RegistryConfig{}},
		{reg: config.RegistryConfig{Username: "ci", Password: "pw"}, user: "ci", pass: "pw"},
		{reg: config.RegistryConfig{Username: "ci", PasswordFile: pwFile}, user: "ci", pass: "from-file"},
		{reg: config.RegistryConfig{Username: "ci"}, err: "registry.password: required"},
		{reg: config.RegistryConfig{Username: "ci", PasswordFile: filepath.Join(dir, "none")}, err: "registry.password_file"},
		{reg: config.RegistryConfig{AuthFile: auth}, user: "ci", pass: "from-auth-json"},
		{reg: config.RegistryConfig{AuthFile: filepath.Join(dir, "none.json")}, err: "registry.auth_file"},
	} {
		c := config.Default()
		tc.reg.Server = "r.example.com:5000"
		c.Registry = tc.reg
		u, p, err := registryAuth(c)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.reg, err, tc.err)
			}
			continue
		}
		if err != nil || u != tc.user || p != tc.pass {
			t.Errorf("%+v: got %q %q %v", tc.reg, u, p, err)
		}
	}
	c := config.Default()
	c.Registry = config.RegistryConfig{Server: "nothere.example.com", AuthFile: auth}
	if _, _, err := registryAuth(c); err == nil || !strings.Contains(err.Error(), "has no credentials for nothere.example.com") || strings.Contains(err.Error(), "eDp5") {
		t.Errorf("auth file without this registry: %v", err)
	}
}
