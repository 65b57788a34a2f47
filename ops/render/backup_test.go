package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/internal/testenv"
	"github.com/isis-project/isis/ops/config"
)

// systemdVerify runs systemd's own checker on the rendered backup timer and
// service (ExecStart pointed at an executable that exists here).
func systemdVerify(t *testing.T, files []File) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Missing(t, "systemd-analyze", "scripts/setup.sh test installs systemd")
	}
	dir := t.TempDir()
	var paths []string
	for _, f := range files {
		if strings.HasPrefix(f.Name, BackupUnitsDir+"/") {
			p := filepath.Join(dir, filepath.Base(f.Name))
			os.WriteFile(p, []byte(f.Content), 0o644)
			paths = append(paths, p)
		}
	}
	if len(paths) != 2 {
		t.Fatalf("rendered %d backup units, want a timer and a service", len(paths))
	}
	cmd := exec.Command(bin, append([]string{"verify", "--man=no"}, paths...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestBackupUnits: the timer and service render passes systemd-analyze
// verify, for the user and the system manager; a bad schedule fails it;
// without a backup target, or with schedule off, nothing is rendered.
func TestBackupUnits(t *testing.T) {
	self, _ := os.Executable()
	for name, c := range map[string]*config.Config{"example": opstest.ExampleConfig(), "custom": opstest.CustomConfig()} {
		c.Backup.Isisctl = self
		files, err := Render(c, Options{Image: "x:1", System: name == "custom"})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := systemdVerify(t, files); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("%s: systemd-analyze verify: %v\n%s", name, err, out)
		}
		if err := CheckUnits(files, name != "custom"); err != nil {
			t.Errorf("%s: render --check: %v", name, err)
		}
		c.Backup.Schedule = "dailyy"
		files, _ = Render(c, Options{Image: "x:1"})
		if out, err := systemdVerify(t, files); err == nil {
			t.Errorf("%s: systemd-analyze accepted OnCalendar=dailyy:\n%s", name, out)
		}
	}
	for name, mutate := range map[string]func(c *config.Config){
		"no target":    func(c *config.Config) { c.Backup.Dir = "" },
		"schedule off": func(c *config.Config) { c.Backup.Schedule = "off" },
	} {
		c := opstest.ExampleConfig()
		mutate(c)
		files, _ := Render(c, Options{Image: "x:1"})
		for _, f := range files {
			if strings.HasPrefix(f.Name, BackupUnitsDir+"/") {
				t.Errorf("%s: rendered %s", name, f.Name)
			}
		}
	}
}

// TestBackupConfig: each bad backup key is named.
func TestBackupConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"backup:\n  dir: relative/dir\n", "backup.dir"},
		{"backup:\n  dir: /var/backups\n  s3_prefix: backups/\n", "backup.dir"},
		{"backup:\n  s3_prefix: /abs\n", "backup.s3_prefix"},
		{"backup:\n  keep: 0\n", "backup.keep"},
		{"backup:\n  keep: many\n", "backup.keep"},
		{"backup:\n  isisctl: isisctl\n", "backup.isisctl"},
		{"backup:\n  schedule: \"daily\\\\\"\n", "backup.schedule"},
		{"backup:\n  colour: blue\n", "backup.colour"},
	} {
		p := filepath.Join(t.TempDir(), "isisctl.yaml")
		os.WriteFile(p, []byte("domain: api.example.com\n"+tc.yaml), 0o600)
		_, err := config.Load(p, true, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: err = %v, want one naming %s", tc.yaml, err, tc.key)
		}
	}
	p := filepath.Join(t.TempDir(), "isisctl.yaml")
	os.WriteFile(p, []byte("domain: api.example.com\nbackup:\n  dir: /var/backups/isis\n  keep: 14\n"), 0o600)
	c, err := config.Load(p, true, func(k string) string { return map[string]string{"ISISCTL_BACKUP_SCHEDULE": "*-*-* 02:00:00"}[k] })
	if err != nil || c.Backup.KeepN() != 14 || c.Backup.Schedule != "*-*-* 02:00:00" || !c.Backup.Timer() {
		t.Errorf("config = %+v, %v", c.Backup, err)
	}
}
