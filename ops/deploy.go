package ops

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/steps"
)

// Progress receives each step as it ends.
type Progress func(s Step)

// Step is one step of a deploy or cutover as it ran.
type Step = steps.Step

// StepError is a step that failed (exit code 1).
type StepError = steps.Error

// UpResult reports what up changed.
type UpResult struct {
	Postgres string `json:"postgres"` // created, recreated, started, unchanged
	Backend  string `json:"backend"`
	Image    string `json:"image"`
	Previous string `json:"previous_image,omitempty"`
}

// PrepareHostDirs creates the backend's host directories (local hosts only)
// and gives them to the backend's user as the container sees it: chown as
// root; as any other user (a rootless Podman, where container uid 65532 is
// one of the user's subordinate ids), `podman unshare chown` inside the
// user's namespace. Without this the backend cannot open its log file and
// restarts until it gives up. Only a directory it creates, or an empty one,
// is handed over: a directory already holding files that is not the
// backend's (a home, /var/log, a Django deployment's static root) is an
// error naming it, never chowned.
func PrepareHostDirs(c *Config, local bool) error {
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
		if euid == 0 && owner == BackendUID || euid != 0 && owner != euid {
			continue
		}
		if entries, err := os.ReadDir(d); err != nil || len(entries) > 0 {
			return c.KeyError(dir.key, fmt.Sprintf(
				"%s holds files and belongs to uid %d, not the backend's user (%d in the container): isisctl hands over only a new or empty directory; name one of the backend's own, or give this one yourself (%s)",
				d, owner, BackendUID, handOver(euid, d)))
		}
		if euid == 0 {
			if err := os.Chown(d, BackendUID, BackendUID); err != nil {
				return fmt.Errorf("chown %s: %w", d, err)
			}
			continue
		}
		mine = append(mine, d)
	}
	if len(mine) == 0 {
		return nil
	}
	id := strconv.Itoa(BackendUID)
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
	id := strconv.Itoa(BackendUID)
	if euid == 0 {
		return "chown -R " + id + ":" + id + " " + dir
	}
	return "podman unshare chown -R " + id + ":" + id + " " + dir
}

// IsLocal reports whether url is a socket on this machine.
func IsLocal(url string) bool { return url == "" || strings.HasPrefix(url, "unix://") }

// EnsurePostgres creates or updates the database container and waits for it.
func EnsurePostgres(ctx context.Context, conn podman.Engine, c *Config) (string, error) {
	spec := Postgres(c)
	if unit, err := SystemdOwned(ctx, conn, spec); unit != "" || err != nil {
		return "run by " + unit, err
	}
	st, err := conn.Inspect(spec.Name)
	if err != nil {
		return "", err
	}
	action := "unchanged"
	if st.Exists && st.SpecHash != spec.Hash() {
		if err := conn.Remove(spec.Name, spec.StopTimeout); err != nil {
			return "", err
		}
		st.Exists, action = false, "recreated"
	}
	if !st.Exists {
		if ok, err := ImageExists(conn, spec.Image); err != nil || !ok {
			return "", fmt.Errorf("image %s is missing on the host (podman pull %s)", spec.Image, spec.Image)
		}
		if err := conn.Create(spec); err != nil {
			return "", err
		}
		if action == "unchanged" {
			action = "created"
		}
	}
	if !st.Running || action != "unchanged" {
		if err := conn.Start(spec.Name); err != nil {
			return "", err
		}
		if action == "unchanged" {
			action = "started"
		}
	}
	return action, conn.WaitHealthy(ctx, spec.Name, 90*time.Second, spec.Health)
}

// backendSpecFor is the backend spec for an image, with its ID in the hash.
func backendSpecFor(conn podman.Engine, c *Config, image string) (*ContainerSpec, error) {
	id, err := ImageID(conn, image)
	if err != nil {
		return nil, err
	}
	spec := Backend(c, image)
	spec.ImageID = id // part of the hash: a rebuilt tag restarts the backend
	return spec, nil
}

// Up applies the whole deployment through the API.
func Up(ctx context.Context, conn podman.Engine, c *Config, image string, local bool) (*UpResult, error) {
	if err := c.NeedDomain(); err != nil {
		return nil, err
	}
	if err := PrepareHostDirs(c, local); err != nil {
		return nil, err
	}
	if _, err := EnsureNetworks(conn, c); err != nil {
		return nil, err
	}
	if _, err := EnsureSecrets(conn, c, false); err != nil {
		return nil, err
	}
	r := &UpResult{Image: image}
	var err error
	if r.Postgres, err = EnsurePostgres(ctx, conn, c); err != nil {
		return r, err
	}
	if _, err := EnsureRoles(conn, c); err != nil {
		return r, err
	}
	r.Backend, r.Previous, err = EnsureBackend(ctx, conn, c, image, !local)
	return r, err
}

// oneOff is a one-off container of the backend image running args.
func OneOff(conn podman.Engine, c *Config, image, name string, args ...string) (*ContainerSpec, error) {
	spec, err := backendSpecFor(conn, c, image)
	if err != nil {
		return nil, err
	}
	Job(c, spec, name, args...)
	return spec, nil
}

// asJob makes a backend spec the one-off job running args: on the private
// network only, nothing published, run once, connected as the owner role
// (jobs migrate, import, check the migrations: they own the schema).
func Job(c *Config, spec *ContainerSpec, name string, args ...string) {
	spec.Name = name
	spec.Publish = nil
	spec.Networks = []string{c.Network}
	spec.Health = nil
	spec.Restart = "" // runs once
	spec.Command = args
	spec.Labels = map[string]string{LabelManaged: "true", LabelRole: "job"}
	WithDatabaseRole(spec, c.OwnerRole(), OwnerPasswordName)
}

// RunJob runs `isis ARGS` in a one-off container of image on the private
// network (a deploy migrates with the new code before replacing the old
// backend); a non-zero exit is an error naming the code.
func RunJob(conn podman.Engine, c *Config, image string, out func(string), args ...string) error {
	spec, err := OneOff(conn, c, image, c.Backend.Name+"-"+args[0], args...)
	if err != nil {
		return err
	}
	return RunIsis(conn, spec, out, args)
}

// runIsis runs the one-off container spec of `isis ARGS`, streaming its
// output to out; a non-zero exit is an error naming the code and the last
// line it printed.
func RunIsis(conn podman.Engine, spec *ContainerSpec, out func(string), args []string) error {
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

// CurrentImage is the image the backend runs ("" when none): slot A's,
// else slot B's.
func CurrentImage(conn podman.Engine, c *Config) (string, error) {
	for _, sl := range c.Slots() {
		st, err := conn.Inspect(sl.Name)
		if err != nil {
			return "", err
		}
		if st.Exists {
			return st.Image, nil
		}
	}
	return "", nil
}

// portFree reports whether addr can be bound here (local hosts only).
func PortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// Lock is the host-wide deploy lock: a Podman volume whose creation is
// atomic, labelled with its holder.
type Lock struct {
	conn podman.Engine
	name string
}

const lockVolume = "isisctl-deploy-lock"

// LockedError says who holds the deploy lock.
type LockedError struct{ Holder, Since string }

func (e *LockedError) Error() string {
	return fmt.Sprintf("another deploy holds the lock (%s, since %s); if it died, remove it: podman volume rm %s", e.Holder, e.Since, lockVolume)
}

// AcquireLock takes the deploy lock or says who has it.
func AcquireLock(conn podman.Engine) (*Lock, error) {
	holder := whoami()
	err := conn.VolumeCreate(lockVolume,
		map[string]string{"holder": holder, "since": time.Now().UTC().Format(time.RFC3339), LabelManaged: "true"})
	if err != nil {
		if labels, ierr := conn.VolumeLabels(lockVolume); ierr == nil {
			return nil, &LockedError{Holder: labels["holder"], Since: labels["since"]}
		}
		return nil, fmt.Errorf("take the deploy lock: %w", err)
	}
	return &Lock{conn: conn, name: lockVolume}, nil
}

// Release drops the lock.
func (l *Lock) Release() {
	_ = l.conn.WithoutCancel().VolumeRemove(l.name, true)
}

// WhoAmI names the operator for the lock and the audit trail: user@host pid.
func WhoAmI() string { return whoami() }

func whoami() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

// AuditEntry is one line of the audit trail.
type Entry struct {
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	Action   string    `json:"action"`
	Image    string    `json:"image"`
	ImageID  string    `json:"image_id,omitempty"`
	Result   string    `json:"result"`
	Duration string    `json:"duration"`
	Detail   string    `json:"detail,omitempty"`
}

// The audit trail lives on the Podman host itself, whatever machine isisctl
// runs on: one empty, labelled volume per entry (created atomically, listed
// with a label filter, readable over ssh:// as over a local socket).
const (
	auditPrefix = "isisctl-audit-"
	auditLabel  = "io.isis.audit"
	Keep   = 200
)

// AppendAudit adds an entry to the host's audit trail, keeping the newest
// auditKeep entries.
func Append(conn podman.Engine, e Entry) error {
	labels := map[string]string{
		auditLabel: "1", LabelManaged: "true",
		"time": e.Time.UTC().Format(time.RFC3339Nano), "user": e.User, "action": e.Action, "image": e.Image,
		"image_id": e.ImageID, "result": e.Result, "duration": e.Duration, "detail": truncate(e.Detail, 500),
	}
	name := fmt.Sprintf("%s%d", auditPrefix, e.Time.UnixNano())
	if err := conn.VolumeCreate(name, labels); err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	all, err := Read(conn, 1<<30)
	if err != nil || len(all) <= Keep {
		return err
	}
	for _, old := range all[:len(all)-Keep] {
		_ = conn.VolumeRemove(fmt.Sprintf("%s%d", auditPrefix, old.Time.UnixNano()), false)
	}
	return nil
}

// ReadAudit returns the newest n entries, oldest first.
func Read(conn podman.Engine, n int) ([]Entry, error) {
	vols, err := conn.VolumeList(auditLabel + "=1")
	if err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	out := make([]Entry, 0, len(vols))
	for _, l := range vols {
		t, err := time.Parse(time.RFC3339Nano, l["time"])
		if err != nil {
			continue
		}
		out = append(out, Entry{Time: t, User: l["user"], Action: l["action"], Image: l["image"], ImageID: l["image_id"],
			Result: l["result"], Duration: l["duration"], Detail: l["detail"]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
