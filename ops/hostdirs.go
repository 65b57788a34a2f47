package ops

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
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
