package host

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/spec"
)

// TestPrepareHostDirs: as root (as CI runs), the backend's directories are
// created and handed to its user; an empty one is handed over too; one that
// already holds files and is not the backend's is refused, naming the key
// and the fix, and left as it was (a home or /var/log must never be chowned).
func TestPrepareHostDirs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown (the rootless path runs in TestSystemd)")
	}
	owner := func(d string) int {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		return int(fi.Sys().(*syscall.Stat_t).Uid)
	}
	dir := t.TempDir()
	c := config.Default()
	c.File = "isisctl.yaml"
	c.Backend.LogDir, c.Backend.StaticDir = filepath.Join(dir, "new", "log"), filepath.Join(dir, "empty")
	os.Mkdir(c.Backend.StaticDir, 0o755)
	if err := PrepareHostDirs(c, true); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c.Backend.LogDir, c.Backend.StaticDir} {
		if got := owner(d); got != spec.BackendUID {
			t.Errorf("%s belongs to %d, want %d", d, got, spec.BackendUID)
		}
	}
	// The backend's own, with files: nothing to do.
	os.WriteFile(filepath.Join(c.Backend.LogDir, "isis.log"), []byte("x"), 0o644)
	if err := PrepareHostDirs(c, true); err != nil {
		t.Errorf("second run: %v", err)
	}
	// Somebody else's directory with files in it.
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o700)
	os.WriteFile(filepath.Join(home, ".profile"), []byte("x"), 0o644)
	c.Backend.StaticDir = home
	err := PrepareHostDirs(c, true)
	if err == nil || !strings.Contains(err.Error(), "backend.static_dir") || !strings.Contains(err.Error(), "chown -R 65532:65532 "+home) {
		t.Errorf("a directory with files: %v", err)
	}
	if got := owner(home); got != 0 {
		t.Errorf("%s was chowned to %d", home, got)
	}
	// Remote hosts: nothing is touched here.
	c.Backend.LogDir = filepath.Join(dir, "remote")
	if err := PrepareHostDirs(c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Backend.LogDir); !os.IsNotExist(err) {
		t.Errorf("a remote deploy created %s here", c.Backend.LogDir)
	}
}
