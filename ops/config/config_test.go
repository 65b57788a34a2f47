package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/ops/config"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/render"
)

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string // substring of the one-line error
	}{
		{"domain: api.example.com\nfoo: 1\n", ":2: key foo: unknown key"},
		{"domain: api.example.com\npostgres:\n  image: x\n  pasword: y\n", ":4: key postgres.pasword: unknown key"},
		{"domain: [unclosed\n", "invalid YAML"},
		{"domain: API_EXAMPLE\n", "key domain:"},
		{"domain: a.b\nbackend:\n  publish: 0.0.0.0:3003\n", "key backend.publish: \"0.0.0.0:3003\" is not a loopback address"},
		{"domain: a.b\nbackend:\n  publish: 3003\n", "key backend.publish:"},
		{"domain: a.b\nproxy:\n  https: all\n", "key proxy.https: \"all\" is not a port or address:port"},
		{"domain: a.b\nproxy:\n  http: 70000\n", "key proxy.http:"},
		{"domain: a.b\nproxy:\n  certificate: /etc/c.pem\n", "key proxy.certificate: certificate and certificate_key go together"},
		{"domain: a.b\nproxy:\n  certificate: c.pem\n  certificate_key: /k.pem\n", "key proxy.certificate: \"c.pem\" is not an absolute path"},
		{"domain: a.b\nproxy:\n  listen: 80\n", "key proxy.listen: unknown key"},
		{"domain: a.b\nnetwork: same\negress_network: same\n", "key egress_network: must differ"},
		{"domain: a.b\nbackend:\n  log_dir: relative/logs\n", "key backend.log_dir:"},
		{"domain: a.b\nbackend:\n  env:\n    SECRET_KEY: oops\n", "key backend.env.SECRET_KEY: secrets are not plain environment values"},
		{"domain: a.b\nbackend:\n  env:\n    lower: x\n", "key backend.env.lower:"},
		{"domain: a.b\npostgres:\n  data: rel/path\n", "key postgres.data:"},
		{"domain: a.b\nsecrets:\n  secret_key: x\n  secret_key_file: /y\n", "key secrets.secret_key: set either"},
		{"domain: a.b\npostgres:\n  user: " + strings.Repeat("u", 58) + "\n", "key postgres.user: \"" + strings.Repeat("u", 58) + "\" is too long: the owner role"},
	} {
		_, err := config.Load(opstest.WriteYAML(t, tc.body), true, opstest.NoEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line with %q", tc.body, err, tc.want)
		}
		if _, ok := err.(*config.Error); !ok {
			t.Errorf("%q: %T is not a ConfigError (exit 2)", tc.body, err)
		}
	}
	if _, err := config.Load("/nonexistent/isisctl.yaml", true, opstest.NoEnv); err == nil || !strings.Contains(err.Error(), "isisctl init") {
		t.Errorf("missing explicit file: %v", err)
	}
}

func TestDomainNeededOnlyWhereUsed(t *testing.T) {
	c, err := config.Load(opstest.WriteYAML(t, "network: swe2\n"), true, opstest.NoEnv)
	if err != nil {
		t.Fatalf("a file without domain must load (status, logs): %v", err)
	}
	if err := c.NeedDomain(); err == nil || !strings.Contains(err.Error(), "key domain: required") {
		t.Errorf("NeedDomain = %v", err)
	}
	if _, err := render.Render(c, render.Options{Image: "x:1"}); err == nil || !strings.Contains(err.Error(), "key domain") {
		t.Errorf("Render without a domain: %v", err)
	}
}

func TestLoadConfigEnvOverrides(t *testing.T) {
	env := map[string]string{"ISISCTL_DOMAIN": "api.other.test", "ISISCTL_BACKEND_PUBLISH": "127.0.0.1:4000",
		"ISISCTL_SECRETS_SECRET_KEY": "from-env-0123456789-abcdefghijklmnopqrstuvwxyz"}
	c, err := config.Load(opstest.WriteYAML(t, "domain: api.example.com\n"), true, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "api.other.test" || c.Backend.Publish != "127.0.0.1:4000" || c.Secrets.SecretKey != env["ISISCTL_SECRETS_SECRET_KEY"] {
		t.Errorf("env not applied: %+v", c)
	}
	// Defaults fill what the file leaves out.
	if c.Network != "swe2" || c.Postgres.Name != "postgres18" || c.Backend.Name != "isis-backend" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestPlaceholders(t *testing.T) {
	b, err := config.Starter("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(opstest.WriteYAML(t, string(b)), true, opstest.NoEnv)
	if err != nil {
		t.Fatalf("the starter config does not load: %v", err)
	}
	ph := c.Placeholders()
	if len(ph) != 2 || ph[0] != "secrets.database_password" || ph[1] != "secrets.secret_key" {
		t.Errorf("placeholders = %v", ph)
	}
	if err := c.PlaceholderError(); err == nil || !strings.Contains(err.Error(), "changeme") {
		t.Errorf("PlaceholderError = %v", err)
	}
	if _, err := config.Starter("not a host"); err == nil {
		t.Error("StarterConfig accepted a bad domain")
	}
}

func TestSecretValues(t *testing.T) {
	c := opstest.ExampleConfig()
	if _, err := c.SecretValues(); err == nil || !strings.Contains(err.Error(), "secrets.secret_key") {
		t.Errorf("missing secret: %v", err)
	}
	f := filepath.Join(t.TempDir(), "key")
	os.WriteFile(f, []byte("file-secret-0123456789-abcdefghijklmnopqrstuvwxyz\n"), 0o600)
	c.Secrets.SecretKeyFile, c.Secrets.DatabasePassword = f, "pw"
	v, err := c.SecretValues()
	if err != nil || v[config.SecretKeyName] != "file-secret-0123456789-abcdefghijklmnopqrstuvwxyz" || v[config.DatabasePasswordName] != "pw" {
		t.Errorf("secretValues = %v, %v", v, err)
	}
	c.Secrets.SecretKeyFile, c.Secrets.SecretKey = "", "short"
	if _, err := c.SecretValues(); err == nil || strings.Contains(err.Error(), "short\"") {
		t.Errorf("short key: %v", err)
	}
}

// FuzzLoadConfig: any file gives a config or one Error line.
func FuzzLoadConfig(f *testing.F) {
	f.Add("domain: api.example.com\n")
	f.Add("domain: a.b\nbackend:\n  env:\n    X: y\n")
	f.Add("- [\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(body), 0o600)
		_, err := config.Load(p, true, opstest.NoEnv)
		if err != nil {
			if _, ok := err.(*config.Error); !ok {
				t.Fatalf("%T: %v", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
		}
	})
}

// TestPlaceholderErrorNamesLine: the placeholder error points at the first
// placeholder's line, names every other one with its line, and names the
// variable when an ISISCTL_* variable set it.
func TestPlaceholderErrorNamesLine(t *testing.T) {
	b, err := config.Starter("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(prefix string) int {
		for i, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				return i + 1
			}
		}
		t.Fatalf("the starter config has no %q", prefix)
		return 0
	}
	p := opstest.WriteYAML(t, string(b))
	c, err := config.Load(p, true, opstest.NoEnv)
	if err != nil {
		t.Fatal(err)
	}
	key, pw := lineOf("  secret_key: changeme"), lineOf("  database_password: changeme")
	err = c.PlaceholderError()
	want := fmt.Sprintf("%s:%d: key secrets.secret_key: ", p, key)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("secrets.database_password (line %d)", pw)) {
		t.Errorf("PlaceholderError = %v\nwant it to start with %q and name line %d", err, want, pw)
	}
	if _, ok := err.(*config.Error); !ok {
		t.Errorf("%T is not a ConfigError (exit 2)", err)
	}

	// From the environment: the variable is named instead of a line.
	env := map[string]string{"ISISCTL_SECRETS_SECRET_KEY": "changeme-too", "ISISCTL_SECRETS_DATABASE_PASSWORD": "a-real-password"}
	c, err = config.Load(opstest.WriteYAML(t, "domain: a.b\n"), true, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PlaceholderError(); err == nil || !strings.HasPrefix(err.Error(), "ISISCTL_SECRETS_SECRET_KEY: key secrets.secret_key:") {
		t.Errorf("placeholder from the environment: %v", err)
	}

	// Other bad values name their line too.
	_, err = config.Load(opstest.WriteYAML(t, "domain: a.b\n\nbackend:\n  name: ok\n  publish: 0.0.0.0:3003\n"), true, opstest.NoEnv)
	if err == nil || !strings.Contains(err.Error(), ":5: key backend.publish:") {
		t.Errorf("a bad value does not name its line: %v", err)
	}
}
