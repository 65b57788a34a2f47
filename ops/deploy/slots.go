package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/ops/verify"
)

// Before a slot is drained, the one that will serve must have been up this
// long: slot A longer than nginx's fail_timeout for it (2 s in the rendered
// config), so nginx has come back to it. Slot B is never skipped by nginx;
// Caddy's active health check (every 100 ms in the rendered Caddyfile) must
// have seen it healthy: it has been up, and answered the smoke request,
// three of those intervals ago. (Were Caddy to see neither slot healthy, it
// would hold a GET up to lb_try_duration; before Caddy 2.7.5, Debian's 2.6
// among them, it answers any other method 503 at once: these waits keep a
// deploy from either.)
//
// nginx's fail_timeout counts from slot A's last failed connection, which on
// a loaded machine can come well after its container started: that is when
// isis began to listen (its "isis serving" line). So A has also been
// serving for longer than that window (with a margin) before B is drained.
const (
	settlePrimary = 3 * time.Second
	settleStandby = 300 * time.Millisecond
	settleProven  = 300 * time.Millisecond
	settleServing = 2500 * time.Millisecond
)

// EnsureBackend brings both slots to image. Unchanged when both already run
// the same specification; otherwise the slot not serving is replaced first,
// then the other, each proven healthy and smoke-tested before the next step.
// A failure puts back what was replaced (the old containers are kept, renamed
// *-previous, until the whole switch succeeds). remote: the Podman host is
// not this machine, so the smoke request runs inside the container.
func EnsureBackend(ctx context.Context, conn podman.Engine, c *config.Config, img string, remote bool) (action, previous string, err error) {
	action, previous, drop, err := switchSlots(ctx, conn, c, img, remote)
	drop()
	return action, previous, err
}

// switchSlots is EnsureBackend but for the removal of the old containers,
// which drop does (at once; it does nothing after a failure): a deploy runs
// it beside its last steps.
func switchSlots(ctx context.Context, conn podman.Engine, c *config.Config, img string, remote bool) (action, previous string, drop func(), err error) {
	drop = func() {}
	specs, states, previous, err := slotSpecs(conn, c, img)
	if err != nil {
		return "", "", drop, err
	}
	slots := c.Slots()
	serving, order := replaceOrder(ctx, conn, slots, specs, states, remote)
	var undo []func() error
	var commits []func()
	var proven time.Time // when the last slot replaced passed its smoke request
	replaced, created, started := 0, 0, 0
	for n, i := range order {
		st, cs := states[i], specs[i]
		if st.Exists && st.SpecHash == cs.Hash() {
			if st.Running {
				continue
			}
			// Same specification, stopped: start it again.
			if err = conn.Start(cs.Name); err == nil {
				err = proveSlot(ctx, conn, c, slots[i], cs, remote)
			}
			if err != nil {
				return "", previous, drop, undoAll(err, undo)
			}
			proven = time.Now()
			serving[i] = true
			started++
			continue
		}
		if other := order[1-n]; st.Running && serving[other] {
			settleBeforeDrain(ctx, conn, slots[other], other == 0, proven)
		}
		u, err := replaceSlot(ctx, conn, c, slots[i], cs, st, remote)
		if err != nil {
			return "", previous, drop, undoAll(fmt.Errorf("new backend %s in %s: %w", img, slots[i].Name, err), undo)
		}
		undo = append(undo, u.undo)
		commits = append(commits, u.commit)
		proven = time.Now()
		serving[i] = true
		if st.Exists {
			replaced++
		} else {
			created++
		}
	}
	// The old containers go at once (each removal tears down what Podman
	// kept of it: a few tens of milliseconds).
	drop = func() {
		var wg sync.WaitGroup
		for _, f := range commits {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f()
			}()
		}
		wg.Wait()
	}
	switch {
	case replaced > 0:
		return "replaced", previous, drop, nil
	case created > 0:
		return "created", previous, drop, nil
	case started > 0:
		return "started", previous, drop, nil
	}
	return "unchanged", previous, drop, nil
}

// slotSpecs are the slots' specifications for img, their containers' states
// and the image they ran before (labelled on the new ones, for rollback).
func slotSpecs(conn podman.Engine, c *config.Config, img string) (specs []*podman.ContainerSpec, states []*podman.ContainerState, previous string, err error) {
	id, err := image.ID(conn, img)
	if err != nil {
		return nil, nil, "", err
	}
	slots := c.Slots()
	specs = make([]*podman.ContainerSpec, len(slots))
	states = make([]*podman.ContainerState, len(slots))
	for i, sl := range slots {
		specs[i] = spec.ForSlot(c, sl, img)
		specs[i].ImageID = id // part of the hash: a rebuilt tag restarts the backend
		if states[i], err = conn.Inspect(sl.Name); err != nil {
			return nil, nil, "", err
		}
	}
	if a := states[0]; a.Exists {
		previous = a.Image
		if a.Image == img {
			previous = a.Labels["io.isis.previous-image"]
		}
	} else if b := states[1]; b.Exists {
		previous = b.Image
	}
	for _, s := range specs {
		if previous != "" && previous != img {
			s.Labels["io.isis.previous-image"] = previous
		}
	}
	return specs, states, previous, nil
}

// replaceOrder says which slots serve and the order to replace them in:
// the slot that is not serving first, normally B, the standby; A first when
// A is down and B is what the proxies are using. Which serves is asked (a
// health check of each, at once) only when a slot is to be replaced: a deploy
// that changes nothing spends no time on it.
func replaceOrder(ctx context.Context, conn podman.Engine, slots []config.Slot, specs []*podman.ContainerSpec, states []*podman.ContainerState, remote bool) (serving []bool, order []int) {
	serving, order = []bool{true, true}, []int{1, 0}
	for i, st := range states {
		if !st.Exists || st.SpecHash != specs[i].Hash() {
			var wg sync.WaitGroup
			for j := range serving {
				wg.Add(1)
				go func() {
					defer wg.Done()
					serving[j] = servingOK(ctx, conn, slots[j], states[j], remote)
				}()
			}
			wg.Wait()
			if !serving[0] && serving[1] {
				order = []int{0, 1}
			}
			break
		}
	}
	return serving, order
}

// settleBeforeDrain waits until other, the slot that serves while the next
// one is drained, is what the proxies have come back to: up for a while,
// and proven a few of Caddy's health-check intervals ago.
func settleBeforeDrain(ctx context.Context, conn podman.Engine, other config.Slot, primary bool, proven time.Time) {
	settle := settleStandby
	if primary {
		settle = settlePrimary
	}
	waitSettled(ctx, conn, other.Name, settle, primary)
	if d := settleProven - time.Since(proven); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// BackendUpToDate reports whether both slots run image with the current
// specification (then EnsureBackend changes nothing).
func BackendUpToDate(conn podman.Engine, c *config.Config, img string) bool {
	id, err := image.ID(conn, img)
	if err != nil {
		return false
	}
	for _, sl := range c.Slots() {
		cs := spec.ForSlot(c, sl, img)
		cs.ImageID = id
		st, err := conn.Inspect(sl.Name)
		if err != nil || !st.Running || st.SpecHash != cs.Hash() {
			return false
		}
	}
	return true
}

// undoAll undoes the replaced slots, newest first.
func undoAll(cause error, undo []func() error) error {
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i](); err != nil {
			return fmt.Errorf("%w; putting the previous backend back failed too: %v", cause, err)
		}
	}
	return cause
}

// servingOK reports whether a slot is running and its health check passes.
func servingOK(ctx context.Context, conn podman.Engine, sl config.Slot, st *podman.ContainerState, remote bool) bool {
	if st == nil || !st.Exists || !st.Running {
		return false
	}
	if remote {
		return verify.ContainerCheck(conn, st, nil) == nil
	}
	status, err := getHealth(ctx, sl)
	return err == nil && status == http.StatusOK
}

// healthClient asks a slot's /api/health/ on its published port.
var healthClient = &http.Client{Timeout: time.Second}

// getHealth asks the slot's /api/health/ on its published port: what its
// container's health check (isis healthcheck) asks on the container's
// loopback, without an exec (about 0.1 s each through Podman).
func getHealth(ctx context.Context, sl config.Slot) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sl.Addr.String()+"/api/health/", nil)
	if err != nil {
		return 0, err
	}
	res, err := healthClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode, nil
}

// waitHealthy waits for a slot's health check to pass. On a remote host it
// is Podman's (an exec in the container, every 100 ms). Here it is the same
// request on the published port, every 20 ms, and Podman is asked only
// whether the container still runs: a new isis listens within a fraction of
// a second. The check's answer failing h.Retries times in a row is a
// failure; no answer by h.StartPeriod hands over to Podman's check for the
// rest of the minute (its start period, retries, and the container's last
// log lines in the error).
func waitHealthy(ctx context.Context, conn podman.Engine, sl config.Slot, h *podman.Health, remote bool) error {
	const timeout = 60 * time.Second
	if remote || h == nil {
		return conn.WaitHealthy(ctx, sl.Name, timeout, h)
	}
	start := time.Now()
	var inspected time.Time
	failed := 0
	for {
		status, err := getHealth(ctx, sl)
		switch {
		case err == nil && status == http.StatusOK:
			return nil
		case err == nil:
			if failed++; failed >= max(int(h.Retries), 1) {
				return fmt.Errorf("container %q is unhealthy (GET /api/health/ on %s: status %d)", sl.Name, sl.Addr, status)
			}
		default:
			failed = 0
		}
		if time.Since(inspected) >= 250*time.Millisecond || time.Since(start) >= h.StartPeriod {
			st, err := conn.Inspect(sl.Name)
			if err != nil {
				return err
			}
			if !st.Exists || !st.Running || time.Since(start) >= h.StartPeriod {
				// Podman's own check says why (not running, with its last
				// log lines), or waits on with its start period.
				return conn.WaitHealthy(ctx, sl.Name, timeout-time.Since(start), h)
			}
			inspected = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitSettled waits until name has been running for settle and, with
// serving, until isis in it has been serving for settleServing.
func waitSettled(ctx context.Context, conn podman.Engine, name string, settle time.Duration, serving bool) {
	st, err := conn.Inspect(name)
	if err != nil || st.StartTime.IsZero() {
		return
	}
	until := st.StartTime.Add(settle)
	// Only a recent start needs its log read (its first seconds of it).
	if serving && time.Since(st.StartTime) < settle+settleServing+servingLogSpan {
		if at := servingSince(conn, name, st.StartTime); !at.IsZero() && at.Add(settleServing).After(until) {
			until = at.Add(settleServing)
		}
	}
	if d := time.Until(until); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// servingLogSpan bounds the log servingSince reads: the seconds after the
// container's start (a slot serving traffic logs every request).
const servingLogSpan = 10 * time.Second

// servingSince is when isis in container name logged that it serves (its
// listener is open from then on), within servingLogSpan of started; zero
// when that is not in its log.
func servingSince(conn podman.Engine, name string, started time.Time) time.Time {
	lines := make(chan string, 256)
	done := make(chan error, 1)
	go func() {
		done <- conn.Logs(name, podman.LogOptions{Until: started.Add(servingLogSpan)}, lines, lines)
		close(lines)
	}()
	var at time.Time
	for l := range lines {
		if at.IsZero() {
			at = servingAt(l)
		}
	}
	<-done
	return at
}

// servingAt is the time of isis's api.ServingMessage log line; zero for any
// other line.
func servingAt(line string) time.Time {
	if !strings.Contains(line, `"msg":"`+api.ServingMessage+`"`) {
		return time.Time{}
	}
	var rec struct {
		Time time.Time `json:"time"`
		Msg  string    `json:"msg"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != api.ServingMessage {
		return time.Time{}
	}
	return rec.Time
}

type slotChange struct {
	undo   func() error // put the old container back
	commit func()       // drop the old container
}

// replaceSlot drains the old container of a slot (isis's graceful SIGTERM:
// in-flight requests finish, new connections are refused so the proxies go
// to the other slot), keeps it as NAME-previous, and starts spec in its
// place; the new one must pass its health check and a smoke request. On
// failure the old one is put back.
func replaceSlot(ctx context.Context, conn podman.Engine, c *config.Config, sl config.Slot, spec *podman.ContainerSpec, old *podman.ContainerState, remote bool) (*slotChange, error) {
	prev := sl.Name + "-previous"
	if old.Exists {
		_ = conn.Remove(prev, 0)
		if err := conn.Stop(sl.Name, spec.StopTimeout); err != nil {
			return nil, err
		}
		if err := conn.Rename(sl.Name, prev); err != nil {
			// Still under its name: start it again, or the slot stays down.
			if !old.Running {
				return nil, err
			}
			if rerr := conn.Start(sl.Name); rerr != nil {
				return nil, fmt.Errorf("%w; restarting the previous %s failed too: %v", err, sl.Name, rerr)
			}
			if rerr := conn.WaitHealthy(ctx, sl.Name, 60*time.Second, spec.Health); rerr != nil {
				return nil, fmt.Errorf("%w; restarting the previous %s failed too: %v", err, sl.Name, rerr)
			}
			return nil, err
		}
	}
	restore := func() error {
		if err := conn.Remove(sl.Name, 5); err != nil {
			return err
		}
		if !old.Exists {
			return nil
		}
		if err := conn.Rename(prev, sl.Name); err != nil {
			return err
		}
		if !old.Running {
			return nil
		}
		if err := conn.Start(sl.Name); err != nil {
			return err
		}
		return conn.WaitHealthy(ctx, sl.Name, 60*time.Second, spec.Health)
	}
	fail := func(err error) (*slotChange, error) {
		if rerr := restore(); rerr != nil {
			return nil, fmt.Errorf("%w; restoring the previous %s failed too: %v", err, sl.Name, rerr)
		}
		return nil, err
	}
	if err := conn.Create(spec); err != nil {
		return fail(err)
	}
	if err := conn.Start(sl.Name); err != nil {
		return fail(err)
	}
	if err := proveSlot(ctx, conn, c, sl, spec, remote); err != nil {
		return fail(err)
	}
	return &slotChange{
		undo: func() error {
			if err := conn.Stop(sl.Name, spec.StopTimeout); err != nil {
				return err
			}
			return restore()
		},
		commit: func() { _ = conn.WithoutCancel().Remove(prev, 0) },
	}, nil
}

// proveSlot waits for the slot's health check, then sends it a smoke
// request: GET /api/ready/ under the public host name (database and
// migrations ok), on its published port, or inside it on a remote host.
func proveSlot(ctx context.Context, conn podman.Engine, c *config.Config, sl config.Slot, spec *podman.ContainerSpec, remote bool) error {
	if err := waitHealthy(ctx, conn, sl, spec.Health, remote); err != nil {
		return err
	}
	var err error
	if remote {
		err = verify.ExecCheckIn(conn, c, sl.Name, http.MethodGet, "/api/ready/", verify.ReadyOK)
	} else {
		client := &http.Client{Timeout: 10 * time.Second}
		err = verify.HTTPCheck(ctx, client, http.MethodGet, "http://"+sl.Addr.String()+"/api/ready/", c.Domain, verify.ReadyOK)
	}
	if err != nil {
		return fmt.Errorf("smoke request GET /api/ready/ on %s: %w", sl.Name, err)
	}
	return nil
}
