package ops

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// PrepareUnitHostDirs creates the backend's host directories for units that
// systemd starts on this machine (isisctl install), owned by the backend's
// user as the container sees it: chown as root; for a rootless Podman,
// inside the user's namespace (`podman unshare chown`), where container uid
// 65532 is one of the user's subordinate ids. Without this the backend cannot
// open its log file and systemd restarts it until it gives up.
func PrepareUnitHostDirs(c *Config) error {
	if err := prepareHostDirs(c, true); err != nil || os.Geteuid() == 0 {
		return err
	}
	var dirs []string
	for _, d := range []string{c.Backend.LogDir, c.Backend.StaticDir} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil
	}
	id := strconv.Itoa(backendUID)
	args := append([]string{"unshare", "chown", id + ":" + id}, dirs...)
	if out, err := exec.Command("podman", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("give %s to the backend's user (podman %s): %v: %s",
			strings.Join(dirs, ", "), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// labelSystemdUnit is the label Podman gives a container that a systemd
// unit runs (quadlet's `podman run`, or --sdnotify and the like).
const labelSystemdUnit = "PODMAN_SYSTEMD_UNIT"

// systemdOwned reports the unit that runs container name, "" when none does.
// Such a container belongs to systemd: isisctl does not replace or start it
// (systemd would start its own again, Restart=always, and the two would take
// turns killing each other's); it waits for it to be healthy, or says which
// unit to start.
func systemdOwned(ctx, conn context.Context, spec *ContainerSpec) (string, error) {
	data, err := containers.Inspect(conn, spec.Name, nil)
	if err != nil {
		if isNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("inspect container %q: %w", spec.Name, err)
	}
	if data.Config == nil || data.Config.Labels[labelSystemdUnit] == "" {
		return "", nil
	}
	unit := data.Config.Labels[labelSystemdUnit]
	if data.State == nil || !data.State.Running {
		return unit, fmt.Errorf("container %s belongs to systemd's %s and is not running: systemctl start %s (with --user for a user's units)", spec.Name, unit, unit)
	}
	return unit, WaitHealthy(ctx, conn, spec.Name, 90*time.Second, spec.Health)
}
