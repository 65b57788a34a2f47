package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/render"
)

// backupTimer is the daily backup's timer, which render writes with its
// service under backup/ when a backup target is set.
const backupTimer = "isis-backup.timer"

// InstallOptions say where and how the quadlet units are installed.
type InstallOptions struct {
	Image  string
	Dir    string
	System bool // root's systemd (multi-user.target) rather than a user's
	// Systemctl runs systemctl (default: the real one).
	Systemctl func(args ...string) ([]byte, error)
	// SystemdRunning reports whether systemd manages this machine (default:
	// /run/systemd/system exists).
	SystemdRunning func() bool
}

// InstallResult reports an install.
type InstallResult struct {
	Dir     string   `json:"dir"`
	Written []string `json:"written"`
	Started []string `json:"started,omitempty"`
	// Timers are the systemd timers enabled (the daily backup).
	Timers []string `json:"timers,omitempty"`
	// Hint says what to run when systemd is not there.
	Hint string `json:"hint,omitempty"`
}

// InstallServices are the systemd services quadlet makes that install starts.
func InstallServices(c *config.Config) []string {
	out := []string{render.ServiceName(c.PostgresUnit())}
	for _, sl := range c.Slots() {
		out = append(out, render.ServiceName(sl.Name+".container"))
	}
	return out
}

// Install renders and checks the units, writes them to o.Dir, then runs
// systemctl daemon-reload and starts the services when systemd is there.
func Install(c *config.Config, o InstallOptions) (*InstallResult, error) {
	realSystemd := o.Systemctl == nil // tests pass a stand-in and want no host directories
	if o.Systemctl == nil {
		o.Systemctl = func(args ...string) ([]byte, error) { return exec.Command("systemctl", args...).CombinedOutput() }
	}
	if o.SystemdRunning == nil {
		o.SystemdRunning = func() bool { _, err := os.Stat("/run/systemd/system"); return err == nil }
	}
	files, err := render.Render(c, render.Options{Image: o.Image, System: o.System})
	if err != nil {
		return nil, err
	}
	if err := render.CheckUnits(files, !o.System); err != nil {
		return nil, err
	}
	r := &InstallResult{Dir: o.Dir}
	if r.Written, err = render.WriteFiles(o.Dir, files); err != nil {
		return r, err
	}
	var scope []string
	if !o.System {
		scope = []string{"--user"}
	}
	services := InstallServices(c)
	// The daily backup is a plain systemd timer (quadlet has none): linked
	// from the units directory, then enabled and started.
	var backupUnits []string
	for _, f := range files {
		if strings.HasPrefix(f.Name, "backup/") {
			backupUnits = append(backupUnits, filepath.Join(o.Dir, f.Name))
		}
	}
	if !o.SystemdRunning() {
		sc := strings.Join(scope, " ")
		r.Hint = fmt.Sprintf("systemd is not running here: start the deployment with `isisctl up`, or on a systemd host run:\n"+
			"  systemctl %s daemon-reload && systemctl %s start %s", sc, sc, strings.Join(services, " "))
		if len(backupUnits) > 0 {
			r.Hint += fmt.Sprintf("\n  systemctl %s link %s && systemctl %s enable --now %s", sc, strings.Join(backupUnits, " "), sc, backupTimer)
		}
		return r, nil
	}
	// The backend's log and static directories, owned by its user (the
	// units bind-mount them; isis cannot start without its log file).
	if realSystemd {
		if err := host.PrepareUnitHostDirs(c); err != nil {
			return r, err
		}
	}
	calls := [][]string{append(append([]string{}, scope...), "daemon-reload"), append(append(append([]string{}, scope...), "start"), services...)}
	if len(backupUnits) > 0 {
		calls = append(calls, append(append(append([]string{}, scope...), "link"), backupUnits...),
			append(append([]string{}, scope...), "enable", "--now", backupTimer))
		r.Timers = []string{backupTimer}
	}
	for _, args := range calls {
		if out, err := o.Systemctl(args...); err != nil {
			return r, fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	r.Started = services
	return r, nil
}
