package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/audit"
)

func TestTargetImageName(t *testing.T) {
	c := opstest.ExampleConfig()
	for _, tc := range []struct{ tag, configTag, running, want string }{
		{"v2", "v1", "localhost/isis-backend:v0", "localhost/isis-backend:v2"},
		{"", "v1", "localhost/isis-backend:v0", "localhost/isis-backend:v1"},
		{"", "", "localhost/isis-backend:v0", "localhost/isis-backend:v0"},
		{"", "", "", "localhost/isis-backend:latest"},
	} {
		c.Backend.Tag = tc.configTag
		if got := c.TargetImageName(tc.tag, tc.running); got != tc.want {
			t.Errorf("tag %q, backend.tag %q, running %q: %s, want %s", tc.tag, tc.configTag, tc.running, got, tc.want)
		}
	}
}

func TestPreviousImage(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC) }
	trail := []audit.Entry{
		{Time: at(1), Action: "deploy", Image: "x:1", Result: "ok"},
		{Time: at(2), Action: "deploy", Image: "x:2", Result: "ok"},
		{Time: at(3), Action: "deploy", Image: "x:bad", Result: "rolled back"},
		{Time: at(4), Action: "deploy", Image: "x:3", Result: "ok"},
	}
	for _, tc := range []struct {
		label, running string
		trail          []audit.Entry
		want, wantErr  string
	}{
		{"x:2", "x:3", trail, "x:2", ""},        // the running backend remembers
		{"", "x:3", trail, "x:2", ""},           // else the audit trail, skipping what runs and failures
		{"", "x:3", trail[3:], "", "pass --to"}, // nothing before
		{"", "", nil, "", "no previous image"},
	} {
		got, err := previousImage(tc.label, tc.running, tc.trail)
		if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("label %q running %q: %q, %v; want %q, %q", tc.label, tc.running, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestServiceContainer(t *testing.T) {
	c := opstest.ExampleConfig()
	for in, want := range map[string]string{"": "isis-backend", "backend": "isis-backend", "standby": "isis-backend-b",
		"isis-backend-b": "isis-backend-b", "db": "postgres18", "postgres18": "postgres18"} {
		if got, err := c.ServiceContainer(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := c.ServiceContainer("redis"); err == nil || !strings.Contains(err.Error(), `"redis"`) {
		t.Errorf("unknown service: %v", err)
	}
}

// TestInstall: the units are written and checked, then systemctl is run
// (recorded: no systemd runs in CI) for the user or the system manager.
func TestInstall(t *testing.T) {
	c := opstest.ExampleConfig()
	for _, system := range []bool{false, true} {
		dir := t.TempDir()
		var calls []string
		r, err := Install(c, InstallOptions{Image: "x:1", Dir: dir, System: system, SystemdRunning: func() bool { return true },
			Systemctl: func(args ...string) ([]byte, error) { calls = append(calls, strings.Join(args, " ")); return nil, nil }})
		if err != nil {
			t.Fatal(err)
		}
		scope := "--user "
		if system {
			scope = ""
		}
		// The daily backup's timer (exampleConfig sets backup.dir) is linked
		// from the units directory, then enabled and started.
		want := scope + "daemon-reload|" + scope + "start swe2-postgres.service isis-backend.service isis-backend-b.service|" +
			scope + "link " + filepath.Join(dir, "backup/isis-backup.service") + " " + filepath.Join(dir, "backup/isis-backup.timer") + "|" +
			scope + "enable --now isis-backup.timer"
		if got := strings.Join(calls, "|"); got != want {
			t.Errorf("system %v: systemctl calls %q, want %q", system, got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "isis-backend-b.container")); err != nil || len(r.Written) == 0 {
			t.Errorf("units not written: %v", err)
		}
	}
	// No systemd: the units are written and the hint says what to run.
	r, err := Install(c, InstallOptions{Image: "x:1", Dir: t.TempDir(), SystemdRunning: func() bool { return false },
		Systemctl: func(...string) ([]byte, error) { t.Error("systemctl run without systemd"); return nil, nil }})
	if err != nil || !strings.Contains(r.Hint, "isisctl up") || !strings.Contains(r.Hint, "isis-backend-b.service") ||
		!strings.Contains(r.Hint, "enable --now isis-backup.timer") {
		t.Errorf("without systemd: %v %q", err, r.Hint)
	}
	// A failing systemctl is one clear error with its output.
	_, err = Install(c, InstallOptions{Image: "x:1", Dir: t.TempDir(), SystemdRunning: func() bool { return true },
		Systemctl: func(...string) ([]byte, error) {
			return []byte("Failed to connect to bus"), errors.New("exit status 1")
		}})
	if err == nil || !strings.Contains(err.Error(), "daemon-reload") || !strings.Contains(err.Error(), "Failed to connect to bus") {
		t.Errorf("failing systemctl: %v", err)
	}
}
