package host

import (
	"context"
	"fmt"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// PrepareUnitHostDirs creates the backend's host directories for units that
// systemd starts on this machine (isisctl install), as isisctl up does.
func PrepareUnitHostDirs(c *config.Config) error { return PrepareHostDirs(c, true) }

// LabelSystemdUnit is the label Podman gives a container that a systemd
// unit runs (quadlet's `podman run`, or --sdnotify and the like).
const LabelSystemdUnit = "PODMAN_SYSTEMD_UNIT"

// systemdOwned reports the unit that runs container name, "" when none does.
// Such a container belongs to systemd: isisctl does not replace or start it
// (systemd would start its own again, Restart=always, and the two would take
// turns killing each other's); it waits for it to be healthy, or says which
// unit to start.
func SystemdOwned(ctx context.Context, conn podman.Engine, spec *podman.ContainerSpec) (string, error) {
	st, err := conn.Inspect(spec.Name)
	if err != nil {
		return "", err
	}
	if !st.Exists || st.Labels[LabelSystemdUnit] == "" {
		return "", nil
	}
	unit := st.Labels[LabelSystemdUnit]
	if !st.Running {
		return unit, fmt.Errorf("container %s belongs to systemd's %s and is not running: systemctl start %s (with --user for a user's units)", spec.Name, unit, unit)
	}
	return unit, conn.WaitHealthy(ctx, spec.Name, 90*time.Second, spec.Health)
}
