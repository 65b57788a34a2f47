// Package opstest holds what the tests of ops/'s packages share: the example
// configurations, golden files, Podman's quadlet generator and a connection
// to the test Podman service. It imports only ops/config, ops/host and
// ops/podman, so that the tests of every other ops package can use it.
package opstest

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/isis-project/isis/internal/testenv"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// Update rewrites golden files (and the example units in quadlets/).
var Update = flag.Bool("update", false, "rewrite golden files and the example units in quadlets/")

// BuildTags are the Makefile's tags, for the binaries tests build.
const BuildTags = "remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp"

// ExampleUnitImage is the image of the example units in quadlets/: a
// content tag, as isisctl build and deploy write (a placeholder, never
// :latest).
const ExampleUnitImage = "localhost/isis-backend:c0123456789ab"

// ExampleKubeImage is the image of the example manifests without a
// registry: localhost/ pinned to a digest, as render --kube pins a built
// image (a placeholder digest).
const ExampleKubeImage = "localhost/isis-backend@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// ExampleConfig is the configuration of the committed example units.
func ExampleConfig() *config.Config {
	c := config.Default()
	c.Domain = "api.example.com"
	c.Backend.Env = map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com"}
	c.Backup.Dir = "/var/backups/isis"
	c.Kube.TrustedProxies = "10.244.0.0/16" // required by render --kube only
	return c
}

// CustomConfig exercises the other branches: host-path data, S3, odd names.
func CustomConfig() *config.Config {
	c := config.Default()
	c.Domain = "api.isis.test"
	c.Network = "private1"
	c.EgressNetwork = "out1"
	c.Backend.Name = "api"
	c.Backend.Publish = "127.0.0.1:8080"
	c.Postgres.Data = "/srv/isis/pgdata"
	c.Postgres.Image = "localhost/pg:15"
	c.Secrets.AWSSecretAccessKey = "s3cr3t"
	c.Backend.Env = map[string]string{"AWS_STORAGE_BUCKET_NAME": "media", "CORS_ALLOWED_ORIGINS": "https://a.test https://b.test"}
	c.Proxy = config.ProxyConfig{HTTP: "8080", HTTPS: "127.0.0.1:8443", Certificate: "/etc/isis/tls/cert.pem", CertificateKey: "/etc/isis/tls/key.pem"}
	c.Backup = config.BackupConfig{S3Prefix: "db-backups/", Keep: "30", Schedule: "*-*-* 03:30:00", Isisctl: "/opt/isis/bin/isisctl"}
	c.File = "/etc/isis/isisctl.yaml"
	c.Kube.TrustedProxies = "10.244.0.0/16"
	return c
}

// CheckGolden compares files (name → content) with the golden directory dir,
// stale files included; with -update it rewrites dir first.
func CheckGolden(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if *Update {
		os.RemoveAll(dir)
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, content := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v (run the test again with -update)", name, err)
			continue
		}
		if string(got) != content {
			t.Errorf("%s/%s differs from the template's output (run the test again with -update):\n--- got\n%s\n--- want\n%s", dir, name, content, got)
		}
	}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if _, ok := files[filepath.ToSlash(rel)]; !ok {
				t.Errorf("%s: stale file not rendered any more", p)
			}
		}
		return nil
	})
}

// QuadletBin builds Podman's real quadlet generator from the pinned module
// once, into the tests' cache directory: $ISIS_TEST_CACHE (scripts/test.sh
// sets it), else isis-test in the user's cache directory.
func QuadletBin(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("ISIS_TEST_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(dir, "isis-test")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "quadlet-v5.7.0-"+runtime.GOARCH)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "build", "-tags", BuildTags, "-o", bin, "github.com/containers/podman/v5/cmd/quadlet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build quadlet: %v\n%s", err, out)
	}
	return bin
}

// RunQuadlet runs `quadlet -dryrun` on the units in dir and returns its output.
func RunQuadlet(t *testing.T, dir string, user bool) (string, error) {
	t.Helper()
	args := []string{"-dryrun", "-no-kmsg-log"}
	if user {
		args = append(args, "-user")
	}
	cmd := exec.Command(QuadletBin(t), args...)
	cmd.Env = append(os.Environ(), "QUADLET_UNIT_DIRS="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// PodmanConn connects to the tests' Podman service (ISIS_PODMAN_URL).
func PodmanConn(t *testing.T) *podman.Conn {
	u := os.Getenv("ISIS_PODMAN_URL")
	if u == "" {
		testenv.Missing(t, "ISIS_PODMAN_URL", "run the tests through scripts/test.sh, which starts Podman")
	}
	conn, err := podman.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// WriteYAML writes body to an isisctl.yaml of the test's own.
func WriteYAML(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "isisctl.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// NoEnv is an environment without variables.
func NoEnv(string) string { return "" }
