package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// RollbackOptions tune a rollback.
type RollbackOptions struct {
	To     string // a tag; "" for the image before the current one
	Remote bool   // the Podman host is not this machine
}

// RollbackResult reports a rollback.
type RollbackResult struct {
	Image   string `json:"image"`
	Backend string `json:"backend"`
}

// previousImage is the image to roll back to: the one the running backend
// remembers (label), else the newest successful deploy in the audit trail
// that is not what runs now.
func previousImage(label, running string, audit []audit.Entry) (string, error) {
	if label != "" {
		return label, nil
	}
	for i := len(audit) - 1; i >= 0; i-- {
		if e := audit[i]; e.Result == "ok" && e.Image != "" && e.Image != running {
			return e.Image, nil
		}
	}
	return "", fmt.Errorf("no previous image is known; pass --to TAG")
}

// PreviousImage is the image the backend ran before the current one.
func PreviousImage(conn podman.Engine, c *config.Config) (string, error) {
	st, err := conn.Inspect(c.Backend.Name)
	if err != nil {
		return "", err
	}
	entries, _ := audit.Read(conn, 100)
	return previousImage(st.Labels["io.isis.previous-image"], st.Image, entries)
}

// Rollback puts the backend back on an earlier image with the same gapless
// switch as a deploy, under the deploy lock, and records it in the audit trail.
func Rollback(ctx context.Context, conn podman.Engine, c *config.Config, o RollbackOptions) (*RollbackResult, error) {
	start := time.Now()
	target := c.BackendImage(o.To)
	if o.To == "" {
		prev, err := PreviousImage(conn, c)
		if err != nil {
			return nil, err
		}
		target = prev
	}
	lock, err := audit.AcquireLock(conn)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	action, _, err := EnsureBackend(ctx, conn, c, target, o.Remote)
	res := "ok"
	if err != nil {
		res = "failed"
	}
	_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "rollback", Image: target, Result: res,
		Duration: time.Since(start).Round(time.Millisecond).String()})
	if err != nil {
		return nil, err
	}
	return &RollbackResult{Image: target, Backend: action}, nil
}
