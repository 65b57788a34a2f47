package ops

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and the example units in quadlets/")

// ExampleConfig is the configuration of the committed example units.
func exampleConfig() *Config {
	c := DefaultConfig()
	c.Domain = "api.example.com"
	c.Backend.Env = map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com"}
	c.Backup.Dir = "/var/backups/isis"
	c.Kube.TrustedProxies = "10.244.0.0/16" // required by render --kube only
	return c
}

// customConfig exercises the other branches: host-path data, S3, odd names.
func customConfig() *Config {
	c := DefaultConfig()
	c.Domain = "api.isis.test"
	c.Network = "private1"
	c.EgressNetwork = "out1"
	c.Backend.Name = "api"
	c.Backend.Publish = "127.0.0.1:8080"
	c.Postgres.Data = "/srv/isis/pgdata"
	c.Postgres.Image = "localhost/pg:15"
	c.Secrets.AWSSecretAccessKey = "s3cr3t"
	c.Backend.Env = map[string]string{"AWS_STORAGE_BUCKET_NAME": "media", "CORS_ALLOWED_ORIGINS": "https://a.test https://b.test"}
	c.Proxy = ProxyConfig{HTTP: "8080", HTTPS: "127.0.0.1:8443", Certificate: "/etc/isis/tls/cert.pem", CertificateKey: "/etc/isis/tls/key.pem"}
	c.Backup = BackupConfig{S3Prefix: "db-backups/", Keep: "30", Schedule: "*-*-* 03:30:00", Isisctl: "/opt/isis/bin/isisctl"}
	c.File = "/etc/isis/isisctl.yaml"
	c.Kube.TrustedProxies = "10.244.0.0/16"
	return c
}

func checkGolden(t *testing.T, dir string, files []File) {
	t.Helper()
	if *update {
		os.RemoveAll(dir)
		if _, err := WriteFiles(dir, files); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]bool{}
	for _, f := range files {
		want[f.Name] = true
		got, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Errorf("%s: %v (run go test ./ops -run Render -update)", f.Name, err)
			continue
		}
		if string(got) != f.Content {
			t.Errorf("%s/%s differs from the template's output (run go test ./ops -run Render -update):\n--- got\n%s\n--- want\n%s", dir, f.Name, f.Content, got)
		}
	}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if !want[filepath.ToSlash(rel)] {
				t.Errorf("%s: stale file not rendered any more", p)
			}
		}
		return nil
	})
}

// TestRenderExampleUnits keeps quadlets/ in sync with the templates.
func TestRenderExampleUnits(t *testing.T) {
	files, err := Render(exampleConfig(), RenderOptions{Image: "localhost/isis-backend:latest"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "../quadlets", files)
	if err := CheckUnits(files, true); err != nil {
		t.Fatal(err)
	}
}

func TestRenderGolden(t *testing.T) {
	files, err := Render(customConfig(), RenderOptions{Image: "localhost/isis-backend:abc123", System: true})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/render", files)
	if err := CheckUnits(files, false); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, f := range files {
		names = append(names, f.Name)
		if strings.Contains(f.Content, "s3cr3t") {
			t.Errorf("%s holds a secret value", f.Name)
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "api-b.container api.container backup/isis-backup.service backup/isis-backup.timer out1.network private1-postgres.container private1.network proxy/Caddyfile proxy/nginx-isis.conf" {
		t.Errorf("files = %s", got)
	}
}

func TestCheckUnitsRejects(t *testing.T) {
	files, _ := Render(exampleConfig(), RenderOptions{Image: "x:1"})
	for name, mutate := range map[string]func(string) string{
		"unknown key": func(s string) string { return strings.Replace(s, "[Container]", "[Container]\nFrobnicate=yes", 1) },
		"no image":    func(s string) string { return strings.Replace(s, "Image=x:1\n", "", 1) },
		"bad group":   func(s string) string { return strings.Replace(s, "[Container]", "[Contianer]", 1) },
	} {
		broken := append([]File(nil), files...)
		for i := range broken {
			if broken[i].Name == "isis-backend.container" {
				broken[i].Content = mutate(broken[i].Content)
			}
		}
		if err := CheckUnits(broken, true); err == nil {
			t.Errorf("%s: CheckUnits accepted it", name)
		}
	}
}

// quadletBin builds Podman's real quadlet generator from the pinned module
// once, into the tests' cache directory: $ISIS_TEST_CACHE (scripts/test.sh
// sets it), else isis-test in the user's cache directory.
func quadletBin(t *testing.T) string {
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
	cmd := exec.Command("go", "build", "-tags", buildTags, "-o", bin, "github.com/containers/podman/v5/cmd/quadlet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build quadlet: %v\n%s", err, out)
	}
	return bin
}

const buildTags = "remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp"

// runQuadlet runs `quadlet -dryrun` on files and returns its output.
func runQuadlet(t *testing.T, files []File, user bool) (string, error) {
	t.Helper()
	dir := t.TempDir()
	if _, err := WriteFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	args := []string{"-dryrun", "-no-kmsg-log"}
	if user {
		args = append(args, "-user")
	}
	cmd := exec.Command(quadletBin(t), args...)
	cmd.Env = append(os.Environ(), "QUADLET_UNIT_DIRS="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRealQuadletGenerator runs Podman's own generator binary on the example
// units: no error, no warning, and the services it makes.
func TestRealQuadletGenerator(t *testing.T) {
	files, _ := Render(exampleConfig(), RenderOptions{Image: "localhost/isis-backend:latest"})
	out, err := runQuadlet(t, files, true)
	if err != nil {
		t.Fatalf("quadlet -dryrun: %v\n%s", err, out)
	}
	for _, want := range []string{"---isis-backend.service---", "---isis-backend-b.service---", "---swe2-postgres.service---", "---swe2-network.service---",
		"---isis-egress-network.service---", "---isis-pgdata-volume.service---"} {
		if !strings.Contains(out, want) {
			t.Errorf("quadlet output lacks %s", want)
		}
	}
	for _, bad := range []string{"nsupported", "rror", "arning"} {
		if strings.Contains(out, bad) {
			t.Errorf("quadlet output mentions %q:\n%s", bad, out)
		}
	}
	// An unknown key fails the real generator too.
	for i := range files {
		if files[i].Name == "isis-backend.container" {
			files[i].Content = strings.Replace(files[i].Content, "[Container]", "[Container]\nFrobnicate=yes", 1)
		}
	}
	if out, err := runQuadlet(t, files, true); err == nil && !strings.Contains(out, "Frobnicate") {
		t.Errorf("quadlet accepted an unknown key:\n%s", out)
	}
}
