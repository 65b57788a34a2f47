package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets the test binary stand in for isisctl (ISISCTL_TEST_AS_MAIN=1:
// run the command line, not the tests), and removes what the tests built.
func TestMain(m *testing.M) {
	if os.Getenv("ISISCTL_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// asUser runs this test binary as isisctl with HOME and XDG_CONFIG_HOME in
// dir, as an unprivileged user when the tests run as root (so a default
// directory is the user's, never root's live /etc/containers/systemd).
func asUser(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "isisctl")
	if _, err := os.Stat(bin); err != nil {
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"ISISCTL_TEST_AS_MAIN=1", "PATH=/usr/bin:/bin", "HOME=" + filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg")}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// filesUnder lists the regular files below dir.
func filesUnder(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestRenderCheckWritesNothing: `render --check` writes nothing anywhere;
// plain `render` writes to the user's quadlet directory and says so, file by
// file; `--check --out DIR` checks, then writes to DIR.
func TestRenderCheckWritesNothing(t *testing.T) {
	dir, err := os.MkdirTemp("", "isisctl-render-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"", "home", "xdg"} { // the unprivileged user writes here
		os.Mkdir(filepath.Join(dir, d), 0o777)
		if err := os.Chmod(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "isisctl.yaml")
	if err := os.WriteFile(config, []byte("domain: api.example.com\nbackend:\n  tag: v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	units := filepath.Join(dir, "xdg", "containers", "systemd")
	etc := filesUnder(t, "/etc/containers/systemd")

	out, code := asUser(t, dir, "--config", config, "render", "--check")
	if code != 0 || !strings.Contains(out, "Nothing written") {
		t.Fatalf("render --check: exit %d\n%s", code, out)
	}
	if got := append(filesUnder(t, filepath.Join(dir, "xdg")), filesUnder(t, filepath.Join(dir, "home"))...); len(got) > 0 {
		t.Errorf("render --check wrote %v", got)
	}
	if got := filesUnder(t, "/etc/containers/systemd"); len(got) != len(etc) {
		t.Errorf("render --check changed /etc/containers/systemd: %v", got)
	}

	out, code = asUser(t, dir, "--config", config, "render")
	written := filesUnder(t, units)
	if code != 0 || len(written) < 5 || !strings.Contains(out, "to "+units) {
		t.Fatalf("render: exit %d, %d files in %s\n%s", code, len(written), units, out)
	}
	for _, p := range written {
		if !strings.Contains(out, p) {
			t.Errorf("render wrote %s without saying so:\n%s", p, out)
		}
	}

	explicit := filepath.Join(dir, "units")
	out, code = asUser(t, dir, "--config", config, "render", "--check", "--out", explicit)
	if code != 0 || len(filesUnder(t, explicit)) != len(written) || !strings.Contains(out, explicit) {
		t.Errorf("render --check --out: exit %d, files %v\n%s", code, filesUnder(t, explicit), out)
	}
}
