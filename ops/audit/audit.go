package audit

import (
	"fmt"
	"os"
	"os/user"
	"sort"
	"time"

	"github.com/isis-project/isis/ops/spec"

	"github.com/isis-project/isis/ops/podman"
)

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
	holder := WhoAmI()
	err := conn.VolumeCreate(lockVolume,
		map[string]string{"holder": holder, "since": time.Now().UTC().Format(time.RFC3339), spec.LabelManaged: "true"})
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

func WhoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

// Entry is one line of the audit trail.
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
	Keep        = 200
)

// Append adds an entry to the host's audit trail, keeping the newest
// auditKeep entries.
func Append(conn podman.Engine, e Entry) error {
	labels := map[string]string{
		auditLabel: "1", spec.LabelManaged: "true",
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

// Read returns the newest n entries, oldest first.
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
