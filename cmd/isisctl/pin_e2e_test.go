package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/isis-project/isis/ops/host"
)

// TestPinnedImageE2E: on the real Podman service, render and render --kube
// pin a built image's moving :latest to the digest Podman knows, and that
// reference is the same image to Podman (what quadlet's podman run and a
// podman kube play look up); an image the host lacks is refused.
func TestPinnedImageE2E(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	e := newE2E(t, 3047, "")
	const name = "localhost/isis-pin-e2e"
	if err := os.WriteFile(e.config, []byte("domain: api.e2e.test\nbackend:\n  image: "+name+"\n"+
		"kube:\n  trusted_proxies: 10.244.0.0/16\nsecrets:\n  secret_key: pin-e2e-secret-key-0123456789-abcdefghijklmnop\n  database_password: pin-e2e-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("podman", "--url", e.url, "rmi", "-f", name+":latest").Run() })

	// Nothing built yet: refused, naming the image and why.
	out, code := e.isisctl("render", "--out", filepath.Join(e.dir, "none"))
	if code != exitUsage || !strings.Contains(out, name+":latest is not pinned") || !strings.Contains(out, "has no image") {
		t.Fatalf("render before a build: exit %d\n%s", code, out)
	}

	if out, code := e.isisctl("build"); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, out)
	}
	units, kube := filepath.Join(e.dir, "units"), filepath.Join(e.dir, "kube")
	if out, code := e.isisctl("render", "--out", units); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, out)
	}
	out, code = e.isisctl("render", "--kube", "--out", kube)
	if code != 0 || !strings.Contains(out, "pinned to the digest the Podman host knows") {
		t.Fatalf("render --kube: exit %d\n%s", code, out)
	}
	digestRef := regexp.MustCompile(regexp.QuoteMeta(name) + `@sha256:[0-9a-f]{64}`)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ref := digestRef.FindString(read(filepath.Join(units, "isis-backend.container")))
	if ref == "" || !strings.Contains(read(filepath.Join(units, "isis-backend.container")), "Image="+ref+"\n") {
		t.Fatalf("the unit does not run a digest reference:\n%s", read(filepath.Join(units, "isis-backend.container")))
	}
	for _, f := range []string{"isis-backend-b.container"} {
		if !strings.Contains(read(filepath.Join(units, f)), "Image="+ref+"\n") {
			t.Errorf("%s does not run %s", f, ref)
		}
	}
	for _, f := range []string{"backend-deployment.yaml", "migrate-job.yaml", "collectstatic-job.yaml"} {
		if !strings.Contains(read(filepath.Join(kube, f)), "image: "+ref+"\n") {
			t.Errorf("%s does not run %s", f, ref)
		}
	}

	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := conn.Image(name + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := conn.Image(ref)
	if err != nil || pinned.ID != latest.ID {
		t.Fatalf("Podman resolves %s to %v (%v), want %s", ref, pinned, err, latest.ID)
	}
}
