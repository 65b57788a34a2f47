package host

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/image"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
)

// PrepareHostDirs creates the backend's host directories (local hosts only)
// and gives them to the backend's user as the container sees it: chown as
// root; as any other user (a rootless Podman, where container uid 65532 is
// one of the user's subordinate ids), `podman unshare chown` inside the
// user's namespace. Without this the backend cannot open its log file and
// restarts until it gives up. Only a directory it creates, or an empty one,
// is handed over: a directory already holding files that is not the
// backend's (a home, /var/log, a Django deployment's static root) is an
// error naming it, never chowned.
func PrepareHostDirs(c *config.Config, local bool) error {
	if !local {
		return nil
	}
	euid := os.Geteuid()
	var mine []string
	for _, dir := range []struct{ key, path string }{{"backend.log_dir", c.Backend.LogDir}, {"backend.static_dir", c.Backend.StaticDir}} {
		d := dir.path
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("%s %s: %w", dir.key, d, err)
		}
		owner := -1
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owner = int(st.Uid)
		}
		// Already handed over: as root, the backend's uid; rootless, a
		// subordinate id (anything but the user's own).
		if euid == 0 && owner == spec.BackendUID || euid != 0 && owner != euid {
			continue
		}
		if entries, err := os.ReadDir(d); err != nil || len(entries) > 0 {
			return c.KeyError(dir.key, fmt.Sprintf(
				"%s holds files and belongs to uid %d, not the backend's user (%d in the container): isisctl hands over only a new or empty directory; name one of the backend's own, or give this one yourself (%s)",
				d, owner, spec.BackendUID, handOver(euid, d)))
		}
		if euid == 0 {
			if err := os.Chown(d, spec.BackendUID, spec.BackendUID); err != nil {
				return fmt.Errorf("chown %s: %w", d, err)
			}
			continue
		}
		mine = append(mine, d)
	}
	if len(mine) == 0 {
		return nil
	}
	id := strconv.Itoa(spec.BackendUID)
	args := append([]string{"unshare", "chown", id + ":" + id}, mine...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "podman", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("give %s to the backend's user (podman %s): %v: %s",
			strings.Join(mine, ", "), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// handOver is the command that gives dir to the backend's user.
func handOver(euid int, dir string) string {
	id := strconv.Itoa(spec.BackendUID)
	if euid == 0 {
		return "chown -R " + id + ":" + id + " " + dir
	}
	return "podman unshare chown -R " + id + ":" + id + " " + dir
}

// IsLocal reports whether url is a socket on this machine.
func IsLocal(url string) bool { return url == "" || strings.HasPrefix(url, "unix://") }

// EnsurePostgres creates or updates the database container and waits for it.
func EnsurePostgres(ctx context.Context, conn podman.Engine, c *config.Config) (string, error) {
	action, wait, err := StartPostgres(ctx, conn, c)
	if err != nil || wait == nil {
		return action, err
	}
	return action, wait()
}

// StartPostgres is EnsurePostgres without its last step: wait, when not
// nil, waits for the container's health check. A caller that proves the
// database answers another way (a deploy asks the backend's /api/ready/,
// which queries it) need not run it for a container left unchanged.
func StartPostgres(ctx context.Context, conn podman.Engine, c *config.Config) (action string, wait func() error, err error) {
	cs := spec.Postgres(c)
	if unit, err := SystemdOwned(ctx, conn, cs); unit != "" || err != nil {
		return "run by " + unit, nil, err
	}
	st, err := conn.Inspect(cs.Name)
	if err != nil {
		return "", nil, err
	}
	action = "unchanged"
	if st.Exists && st.SpecHash != cs.Hash() {
		if err := conn.Remove(cs.Name, cs.StopTimeout); err != nil {
			return "", nil, err
		}
		st.Exists, action = false, "recreated"
	}
	if !st.Exists {
		if ok, err := image.Exists(conn, cs.Image); err != nil || !ok {
			return "", nil, fmt.Errorf("image %s is missing on the host (podman pull %s)", cs.Image, cs.Image)
		}
		if err := conn.Create(cs); err != nil {
			return "", nil, err
		}
		if action == "unchanged" {
			action = "created"
		}
	}
	if !st.Running || action != "unchanged" {
		if err := conn.Start(cs.Name); err != nil {
			return "", nil, err
		}
		if action == "unchanged" {
			action = "started"
		}
	}
	return action, func() error { return conn.WaitHealthy(ctx, cs.Name, 90*time.Second, cs.Health) }, nil
}

// OneOff is a one-off container of the backend image running args.
func OneOff(conn podman.Engine, c *config.Config, image, name string, args ...string) (*podman.ContainerSpec, error) {
	cs, err := BackendSpecFor(conn, c, image)
	if err != nil {
		return nil, err
	}
	spec.Job(c, cs, name, args...)
	return cs, nil
}

// RunJob runs `isis ARGS` in a one-off container of image on the private
// network (a deploy migrates with the new code before replacing the old
// backend); a non-zero exit is an error naming the code.
func RunJob(conn podman.Engine, c *config.Config, image string, out func(string), args ...string) error {
	spec, err := OneOff(conn, c, image, c.Backend.Name+"-"+args[0], args...)
	if err != nil {
		return err
	}
	return RunIsis(conn, spec, out, args)
}

// RunIsis runs the one-off container spec of `isis ARGS`, streaming its
// output to out; a non-zero exit is an error naming the code and the last
// line it printed.
func RunIsis(conn podman.Engine, spec *podman.ContainerSpec, out func(string), args []string) error {
	var last string
	code, err := podman.RunOnce(conn, spec, func(l string) {
		if strings.TrimSpace(l) != "" {
			last = strings.TrimSpace(l)
		}
		if out != nil {
			out(l)
		}
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("isis %s exited with code %d: %s", strings.Join(args, " "), code, last)
	}
	return nil
}

// portFree reports whether addr can be bound here (local hosts only).
func PortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// BackendSpecFor is the backend spec for an image, with its ID in the hash.
func BackendSpecFor(conn podman.Engine, c *config.Config, img string) (*podman.ContainerSpec, error) {
	id, err := image.ID(conn, img)
	if err != nil {
		return nil, err
	}
	cs := spec.Backend(c, img)
	cs.ImageID = id // part of the hash: a rebuilt tag restarts the backend
	return cs, nil
}
