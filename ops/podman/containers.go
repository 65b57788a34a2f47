package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/api/handlers"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/errorhandling"
	"github.com/containers/podman/v5/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"
	nettypes "go.podman.io/common/libnetwork/types"
	"go.podman.io/image/v5/manifest"
)

// IsNotFound reports whether a bindings error is a 404.
func IsNotFound(err error) bool {
	var me *errorhandling.ErrorModel
	if errors.As(err, &me) {
		return me.ResponseCode == http.StatusNotFound
	}
	return err != nil && strings.Contains(err.Error(), "no such")
}

// SpecGenerator turns the spec into Podman's create request.
func (s *ContainerSpec) SpecGenerator() *specgen.SpecGenerator {
	g := specgen.NewSpecGenerator(s.Image, false)
	g.Name = s.Name
	g.Env = s.Env
	g.Labels = map[string]string{LabelSpecHash: s.Hash()}
	for k, v := range s.Labels {
		g.Labels[k] = v
	}
	g.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
	if s.NoNetwork {
		g.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	}
	if s.HostPID {
		g.PidNS = specgen.Namespace{NSMode: specgen.Host}
	}
	g.Networks = map[string]nettypes.PerNetworkOptions{}
	for _, n := range s.Networks {
		g.Networks[n] = nettypes.PerNetworkOptions{}
	}
	for _, p := range s.Publish {
		parts := strings.Split(p, ":")
		hp, _ := strconv.Atoi(parts[1])
		cp, _ := strconv.Atoi(parts[2])
		g.PortMappings = append(g.PortMappings, nettypes.PortMapping{HostIP: parts[0], HostPort: uint16(hp),
			ContainerPort: uint16(cp), Protocol: "tcp", Range: 1})
	}
	for _, sec := range s.Secrets {
		g.Secrets = append(g.Secrets, specgen.Secret{Source: sec.Name, Target: sec.Target, UID: sec.UID, GID: sec.GID, Mode: 0o400})
	}
	for _, m := range s.Mounts {
		if m.IsVolume() {
			g.Volumes = append(g.Volumes, &specgen.NamedVolume{Name: m.Source, Dest: m.Dest, Options: m.Options})
		} else {
			g.Mounts = append(g.Mounts, spec.Mount{Type: "bind", Source: m.Source, Destination: m.Dest,
				Options: append([]string{"rbind"}, m.Options...)})
		}
	}
	for _, p := range s.Tmpfs {
		g.Mounts = append(g.Mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: p,
			Options: []string{"rw", "nosuid", "nodev"}})
	}
	g.User = s.User
	t := true
	if s.ReadOnly {
		// As `podman run --read-only` (and quadlet's ReadOnly=true): tmpfs on
		// /run, /tmp and /var/tmp, so secrets can be mounted under /run/secrets.
		g.ReadOnlyFilesystem, g.ReadWriteTmpfs = &t, &t
	}
	if s.NoNewPrivileges {
		g.NoNewPrivileges = &t
	}
	g.CapDrop = s.DropCaps
	g.CapAdd = s.AddCaps
	if h := s.Health; h != nil {
		g.HealthConfig = &manifest.Schema2HealthConfig{Test: append([]string{"CMD"}, h.Cmd...), Interval: h.Interval,
			Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: int(h.Retries)}
	}
	g.Command = s.Command
	if s.Restart != "" {
		g.RestartPolicy = s.Restart
	}
	if len(s.Entrypoint) > 0 {
		g.Entrypoint = s.Entrypoint
	}
	stop := s.StopTimeout
	g.StopTimeout = &stop
	if s.Stdin {
		g.Stdin = &t
	}
	if s.Terminal {
		g.Terminal = &t
	}
	return g
}

// Inspect returns the state of container name (Exists false when missing).
func (c *Conn) Inspect(name string) (*ContainerState, error) {
	data, err := containers.Inspect(c.ctx, name, nil)
	if err != nil {
		if IsNotFound(err) {
			return &ContainerState{Name: name}, nil
		}
		return nil, fmt.Errorf("inspect container %q: %w", name, err)
	}
	return stateOf(data), nil
}

func stateOf(d *define.InspectContainerData) *ContainerState {
	st := &ContainerState{ID: d.ID, Name: d.Name, Exists: true, ImageID: d.Image, Image: d.ImageName}
	if d.State != nil {
		st.Running = d.State.Running
		if d.State.Health != nil {
			st.Health = d.State.Health.Status
		}
		if d.State.Running {
			st.StartedAt = d.State.StartedAt.UTC().Format(time.RFC3339)
			st.StartTime = d.State.StartedAt
			st.PID = d.State.Pid
		}
	}
	st.RestartCount = int(d.RestartCount)
	if d.HostConfig != nil && d.HostConfig.RestartPolicy != nil {
		st.Restart = d.HostConfig.RestartPolicy.Name
	}
	if d.Config != nil {
		st.SpecHash = d.Config.Labels[LabelSpecHash]
		st.Env = d.Config.Env
		st.Labels = d.Config.Labels
	}
	if d.NetworkSettings != nil {
		for n, ns := range d.NetworkSettings.Networks {
			st.Networks = append(st.Networks, n)
			if ns != nil && ns.IPAddress != "" {
				if st.IPs == nil {
					st.IPs = map[string]string{}
				}
				st.IPs[n] = ns.IPAddress
			}
		}
		for port, binds := range d.NetworkSettings.Ports {
			for _, b := range binds {
				st.Published = append(st.Published, b.HostIP+":"+b.HostPort+"->"+port)
			}
		}
	}
	return st
}

// Create creates (not starts) a container from spec.
func (c *Conn) Create(s *ContainerSpec) error {
	if _, err := containers.CreateWithSpec(c.ctx, s.SpecGenerator(), nil); err != nil {
		return fmt.Errorf("create container %q: %w", s.Name, err)
	}
	return nil
}

// Start starts container name.
func (c *Conn) Start(name string) error {
	if err := containers.Start(c.ctx, name, nil); err != nil {
		return fmt.Errorf("start container %q: %w", name, err)
	}
	return nil
}

// Remove stops and removes container name; a missing container is fine.
func (c *Conn) Remove(name string, timeout uint) error {
	force := true
	_, err := containers.Remove(c.ctx, name, new(containers.RemoveOptions).WithForce(force).WithTimeout(timeout).WithVolumes(false))
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove container %q: %w", name, err)
	}
	return nil
}

// Rename renames container from to to.
func (c *Conn) Rename(from, to string) error {
	if err := containers.Rename(c.ctx, from, new(containers.RenameOptions).WithName(to)); err != nil {
		return fmt.Errorf("rename container %q to %q: %w", from, to, err)
	}
	return nil
}

// Stop stops container name.
func (c *Conn) Stop(name string, timeout uint) error {
	if err := containers.Stop(c.ctx, name, new(containers.StopOptions).WithTimeout(timeout)); err != nil && !IsNotFound(err) {
		return fmt.Errorf("stop container %q: %w", name, err)
	}
	return nil
}

// WaitHealthy runs the container's health check through the API (so it works
// without systemd timers) until it passes, the container dies, it fails h's
// retries after its start period, or timeout.
func (c *Conn) WaitHealthy(ctx context.Context, name string, timeout time.Duration, h *Health) error {
	start := time.Now()
	deadline := start.Add(timeout)
	var last string
	for {
		st, err := c.Inspect(name)
		if err != nil {
			return err
		}
		if !st.Exists || !st.Running {
			logs := c.tailLogs(name, 5)
			return fmt.Errorf("container %q is not running%s", name, logs)
		}
		res, err := containers.RunHealthCheck(c.ctx, name, nil)
		if err == nil && res.Status == define.HealthCheckHealthy {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = res.Status
		}
		// The container's own record counts the streak (the check's answer
		// does not on Podman 4): once it failed its retries, stop waiting.
		if d, ierr := containers.Inspect(c.ctx, name, nil); ierr == nil && d.State != nil && d.State.Health != nil {
			hs := d.State.Health
			if n := len(hs.Log); n > 0 {
				last = hs.Status + ": " + strings.TrimSpace(hs.Log[n-1].Output)
			}
			if h != nil && hs.Status == define.HealthCheckUnhealthy && hs.FailingStreak >= int(h.Retries) && time.Since(start) > h.StartPeriod {
				return fmt.Errorf("container %q is unhealthy (%s)%s", name, last, c.tailLogs(name, 5))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %q not healthy after %s (%s)%s", name, timeout.Round(time.Second), last, c.tailLogs(name, 5))
		}
		// Often at first (a new isis listens within a fraction of a
		// second), then every second.
		pause := 100 * time.Millisecond
		if time.Since(start) > 5*time.Second {
			pause = time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// tailLogs returns the last n log lines of a container, for error messages.
func (c *Conn) tailLogs(name string, n int) string {
	out := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- containers.Logs(c.ctx, name, new(containers.LogOptions).WithStdout(true).WithStderr(true).WithTail(strconv.Itoa(n)), out, out)
		close(out)
	}()
	var lines []string
	for l := range out {
		lines = append(lines, strings.TrimRight(l, "\n"))
	}
	<-done
	if len(lines) == 0 {
		return ""
	}
	return "; last log lines: " + strings.Join(lines, " | ")
}

// RunOnce runs a one-off container to completion and returns its exit code,
// streaming its output to out.
func RunOnce(e Engine, s *ContainerSpec, out func(line string)) (int, error) {
	_ = e.Remove(s.Name, 0)
	if err := e.Create(s); err != nil {
		return -1, err
	}
	defer e.WithoutCancel().Remove(s.Name, 0)
	if err := e.Start(s.Name); err != nil {
		return -1, err
	}
	code, err := e.Wait(s.Name)
	if err != nil {
		return -1, fmt.Errorf("wait for %q: %w", s.Name, err)
	}
	lines := make(chan string, 10000)
	done := make(chan error, 1)
	go func() {
		done <- e.Logs(s.Name, LogOptions{}, lines, lines)
		close(lines)
	}()
	for l := range lines {
		if out != nil {
			out(strings.TrimRight(l, "\n"))
		}
	}
	<-done
	return code, nil
}

// Wait waits for container name to exit (or stop) and returns its exit code.
func (c *Conn) Wait(name string) (int, error) {
	code, err := containers.Wait(c.ctx, name, new(containers.WaitOptions).WithCondition([]define.ContainerStatus{define.ContainerStateExited, define.ContainerStateStopped}))
	return int(code), err
}

// Logs sends container name's log lines (standard output to stdout,
// standard error to stderr, which may be the same channel) until they end,
// or the connection's context does with Follow.
func (c *Conn) Logs(name string, o LogOptions, stdout, stderr chan string) error {
	opts := new(containers.LogOptions).WithStdout(true).WithStderr(true)
	if o.Follow {
		opts = opts.WithFollow(true)
	}
	if o.Tail != "" {
		opts = opts.WithTail(o.Tail)
	}
	if !o.Until.IsZero() {
		opts = opts.WithUntil(strconv.FormatInt(o.Until.Add(time.Second-1).Unix(), 10))
	}
	return containers.Logs(c.ctx, name, opts, stdout, stderr)
}

// Exec runs cmd in a running container, streaming its output to out, and
// returns its exit code.
func Exec(e Engine, name string, cmd []string, out io.Writer) (int, error) {
	return e.Exec(name, cmd, out, out)
}

// Exec runs cmd in a running container, standard output and error apart,
// and returns its exit code.
func (c *Conn) Exec(name string, cmd []string, stdout, stderr io.Writer) (int, error) {
	cfg := new(handlers.ExecCreateConfig)
	cfg.Cmd, cfg.AttachStdout, cfg.AttachStderr = cmd, true, true
	id, err := containers.ExecCreate(c.ctx, name, cfg)
	if err != nil {
		return -1, fmt.Errorf("exec in %q: %w", name, err)
	}
	opts := new(containers.ExecStartAndAttachOptions).WithOutputStream(stdout).WithErrorStream(stderr).WithAttachOutput(true).WithAttachError(true)
	if err := containers.ExecStartAndAttach(c.ctx, id, opts); err != nil {
		return -1, fmt.Errorf("exec in %q: %w", name, err)
	}
	insp, err := containers.ExecInspect(c.ctx, id, nil)
	if err != nil {
		return -1, fmt.Errorf("exec in %q: %w", name, err)
	}
	return insp.ExitCode, nil
}
