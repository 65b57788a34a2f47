package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
)

// TestRenderRefusesUnpinned: without a Podman host to pin it by digest,
// render, render --kube, install and deploy refuse a moving image in one
// line that names what pins it, and write nothing; a pinned reference
// (a tag other than latest, a digest) renders.
func TestRenderRefusesUnpinned(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("domain: api.example.com\nkube:\n  trusted_proxies: 10.244.0.0/16\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain.yaml", "")
	tagged := write("tagged.yaml", "backend:\n  tag: v7\n")
	kubeLatest := write("kube-latest.yaml", "  image: registry.example.com:5000/isis/backend:latest\n")
	kubeDigest := write("kube-digest.yaml", "  image: registry.example.com:5000/isis/backend@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n")
	pulled := write("pulled.yaml", "backend:\n  image: registry.example.com:5000/isis/backend@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n")
	quadlet := []string{"is not pinned", "--tag", "backend.tag", "build --push"}
	kube := []string{"render --kube", "is not pinned", "kube.image", "--tag", "build --push"}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		want   []string
		render string // the image the rendered files name, when it renders
	}{
		{"bare name", []string{"--config", plain, "render"}, exitUsage, append(quadlet, "localhost/isis-backend:latest"), ""},
		{"--tag latest", []string{"--config", plain, "render", "--tag", "latest"}, exitUsage, quadlet, ""},
		{"check too", []string{"--config", plain, "render", "--check"}, exitUsage, quadlet, ""},
		{"kube bare name", []string{"--config", plain, "render", "--kube"}, exitUsage, append(kube, "localhost/isis-backend:latest"), ""},
		{"kube --tag latest", []string{"--config", plain, "render", "--kube", "--tag", "latest"}, exitUsage, kube, ""},
		{"kube.image latest", []string{"--config", kubeLatest, "render", "--kube"}, exitUsage, append(kube, "registry.example.com:5000/isis/backend:latest"), ""},
		{"install", []string{"--config", plain, "install"}, exitUsage, quadlet, ""},
		{"other tag", []string{"--config", plain, "render", "--tag", "v1"}, exitOK, nil, "Image=localhost/isis-backend:v1"},
		{"backend.tag", []string{"--config", tagged, "render"}, exitOK, nil, "Image=localhost/isis-backend:v7"},
		{"digest", []string{"--config", pulled, "render"}, exitOK, nil, "Image=registry.example.com:5000/isis/backend@sha256:0123"},
		{"kube other tag", []string{"--config", plain, "render", "--kube", "--tag", "v1"}, exitOK, nil, "image: localhost/isis-backend:v1"},
		{"kube.image digest", []string{"--config", kubeDigest, "render", "--kube"}, exitOK, nil, "image: registry.example.com:5000/isis/backend@sha256:0123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"--url", "unix:///nonexistent/podman.sock"}, tc.args...)
			if tc.args[2] == "render" {
				args = append(args, "--out", out)
			}
			var stdout, stderr bytes.Buffer
			code := run(args, strings.NewReader(""), &stdout, &stderr, func(k string) string {
				if k == "HOME" || k == "XDG_CONFIG_HOME" {
					return t.TempDir() // install writes nowhere real
				}
				return ""
			})
			msg := strings.TrimSpace(stderr.String())
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout.String(), msg)
			}
			if tc.code != exitOK {
				if strings.Contains(msg, "\n") {
					t.Errorf("more than one line:\n%s", msg)
				}
				for _, w := range tc.want {
					if !strings.Contains(msg, w) {
						t.Errorf("error lacks %q: %s", w, msg)
					}
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("refused, but wrote %s", out)
				}
				return
			}
			name := "isis-backend.container"
			if strings.HasPrefix(tc.render, "image:") {
				name = "backend-deployment.yaml"
			}
			b, err := os.ReadFile(filepath.Join(out, name))
			if err != nil || !strings.Contains(string(b), tc.render) {
				t.Errorf("%s lacks %q (%v)", name, tc.render, err)
			}
		})
	}
}

// TestDeployRefusesLatest: deploy --tag latest would write and run a moving
// tag; refused before anything is built.
func TestDeployRefusesLatest(t *testing.T) {
	f, _ := testFactory("")
	c := config.Default()
	c.Domain = "api.example.com"
	fake := podmantest.New()
	o := &deployOptions{f: f}
	o.Tag = "latest"
	err := deployRun(context.Background(), fake, c, o)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "localhost/isis-backend:latest is not pinned") {
		t.Errorf("deploy --tag latest: %v (exit %d)", err, exitCode(err))
	}
	if len(fake.Images) != 0 || len(fake.Containers) != 0 {
		t.Errorf("deploy --tag latest built or ran something: %v %v", fake.Images, fake.Containers)
	}
}

// TestRenderPinsByDigest: with a Podman host that has the image, render
// writes it pinned to the digest Podman knows (the real Podman's side is
// in TestPinnedImageE2E).
func TestRenderPinsByDigest(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	config := filepath.Join(dir, "isisctl.yaml")
	if err := os.WriteFile(config, []byte("domain: api.example.com\nkube:\n  trusted_proxies: 10.244.0.0/16\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := podmantest.New()
	fake.Images["localhost/isis-backend:latest"] = &podman.Image{ID: "abc", Digest: digest,
		RepoDigests: []string{"localhost/isis-backend@" + digest}}
	for _, kube := range []bool{false, true} {
		f, out := testFactory(config)
		f.conn = fake
		cmd := withKube(f, newRenderCmd(f))
		args := []string{"--out", filepath.Join(dir, "units")}
		file, want := "isis-backend.container", "Image=localhost/isis-backend@"+digest
		if kube {
			args = []string{"--kube", "--out", filepath.Join(dir, "kube")}
			file, want = "../kube/backend-deployment.yaml", "image: localhost/isis-backend@"+digest
		}
		cmd.SetArgs(args)
		cmd.SetOut(out)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("render (kube %v): %v\n%s", kube, err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "units", file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q (%v)", file, want, err)
		}
		if kube && !strings.Contains(out.String(), "pinned to the digest the Podman host knows") {
			t.Errorf("render --kube does not say the image was pinned:\n%s", out)
		}
	}
}
