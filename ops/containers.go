package ops

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

// isNotFound reports whether a bindings error is a 404.
func isNotFound(err error) bool {
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
	return g
}

// ContainerState is what isisctl needs to know of a container.
type ContainerState struct {
	Name      string   `json:"name"`
	Exists    bool     `json:"exists"`
	Running   bool     `json:"running"`
	Health    string   `json:"health,omitempty"`
	Image     string   `json:"image,omitempty"`
	ImageID   string   `json:"image_id,omitempty"`
	SpecHash  string   `json:"spec_hash,omitempty"`
	Networks  []string `json:"networks,omitempty"`
	Published []string `json:"published,omitempty"`
	Env       []string `json:"-"`
	StartedAt string   `json:"started_at,omitempty"`
	// RestartCount is how often Podman restarted it under its restart policy.
	RestartCount int               `json:"restart_count"`
	Restart      string            `json:"restart_policy,omitempty"`
	Labels       map[string]string `json:"-"`
	started      time.Time
}

// InspectContainer returns the state of name (Exists false when missing).
func InspectContainer(conn context.Context, name string) (*ContainerState, error) {
	data, err := containers.Inspect(conn, name, nil)
	if err != nil {
		if isNotFound(err) {
			return &ContainerState{Name: name}, nil
		}
		return nil, fmt.Errorf("inspect container %q: %w", name, err)
	}
	return stateOf(data), nil
}

func stateOf(d *define.InspectContainerData) *ContainerState {
	st := &ContainerState{Name: d.Name, Exists: true, ImageID: d.Image, Image: d.ImageName}
	if d.State != nil {
		st.Running = d.State.Running
		if d.State.Health != nil {
			st.Health = d.State.Health.Status
		}
		if d.State.Running {
			st.StartedAt = d.State.StartedAt.UTC().Format(time.RFC3339)
			st.started = d.State.StartedAt
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
		for n := range d.NetworkSettings.Networks {
			st.Networks = append(st.Networks, n)
		}
		for port, binds := range d.NetworkSettings.Ports {
			for _, b := range binds {
				st.Published = append(st.Published, b.HostIP+":"+b.HostPort+"->"+port)
			}
		}
	}
	return st
}

// CreateContainer creates (not starts) a container from spec.
func CreateContainer(conn context.Context, s *ContainerSpec) error {
	if _, err := containers.CreateWithSpec(conn, s.SpecGenerator(), nil); err != nil {
		return fmt.Errorf("create container %q: %w", s.Name, err)
	}
	return nil
}

// StartContainer starts name.
func StartContainer(conn context.Context, name string) error {
	if err := containers.Start(conn, name, nil); err != nil {
		return fmt.Errorf("start container %q: %w", name, err)
	}
	return nil
}

// RemoveContainer stops and removes name; a missing container is fine.
func RemoveContainer(conn context.Context, name string, timeout uint) error {
	force := true
	_, err := containers.Remove(conn, name, new(containers.RemoveOptions).WithForce(force).WithTimeout(timeout).WithVolumes(false))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container %q: %w", name, err)
	}
	return nil
}

// RenameContainer renames from to to.
func RenameContainer(conn context.Context, from, to string) error {
	if err := containers.Rename(conn, from, new(containers.RenameOptions).WithName(to)); err != nil {
		return fmt.Errorf("rename container %q to %q: %w", from, to, err)
	}
	return nil
}

// StopContainer stops name.
func StopContainer(conn context.Context, name string, timeout uint) error {
	if err := containers.Stop(conn, name, new(containers.StopOptions).WithTimeout(timeout)); err != nil && !isNotFound(err) {
		return fmt.Errorf("stop container %q: %w", name, err)
	}
	return nil
}

// WaitHealthy runs the container's health check through the API (so it works
// without systemd timers) until it passes, the container dies, it fails h's
// retries after its start period, or timeout.
func WaitHealthy(ctx, conn context.Context, name string, timeout time.Duration, h *Health) error {
	start := time.Now()
	deadline := start.Add(timeout)
	var last string
	for {
		st, err := InspectContainer(conn, name)
		if err != nil {
			return err
		}
		if !st.Exists || !st.Running {
			logs := tailLogs(conn, name, 5)
			return fmt.Errorf("container %q is not running%s", name, logs)
		}
		res, err := containers.RunHealthCheck(conn, name, nil)
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
		if d, ierr := containers.Inspect(conn, name, nil); ierr == nil && d.State != nil && d.State.Health != nil {
			hs := d.State.Health
			if n := len(hs.Log); n > 0 {
				last = hs.Status + ": " + strings.TrimSpace(hs.Log[n-1].Output)
			}
			if h != nil && hs.Status == define.HealthCheckUnhealthy && hs.FailingStreak >= int(h.Retries) && time.Since(start) > h.StartPeriod {
				return fmt.Errorf("container %q is unhealthy (%s)%s", name, last, tailLogs(conn, name, 5))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %q not healthy after %s (%s)%s", name, timeout.Round(time.Second), last, tailLogs(conn, name, 5))
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
func tailLogs(conn context.Context, name string, n int) string {
	out := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- containers.Logs(conn, name, new(containers.LogOptions).WithStdout(true).WithStderr(true).WithTail(strconv.Itoa(n)), out, out)
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
func RunOnce(conn context.Context, s *ContainerSpec, out func(line string)) (int, error) {
	_ = RemoveContainer(conn, s.Name, 0)
	if err := CreateContainer(conn, s); err != nil {
		return -1, err
	}
	defer RemoveContainer(context.WithoutCancel(conn), s.Name, 0)
	if err := StartContainer(conn, s.Name); err != nil {
		return -1, err
	}
	code, err := containers.Wait(conn, s.Name, new(containers.WaitOptions).WithCondition([]define.ContainerStatus{define.ContainerStateExited, define.ContainerStateStopped}))
	if err != nil {
		return -1, fmt.Errorf("wait for %q: %w", s.Name, err)
	}
	lines := make(chan string, 10000)
	done := make(chan error, 1)
	go func() {
		done <- containers.Logs(conn, s.Name, new(containers.LogOptions).WithStdout(true).WithStderr(true), lines, lines)
		close(lines)
	}()
	for l := range lines {
		if out != nil {
			out(strings.TrimRight(l, "\n"))
		}
	}
	<-done
	return int(code), nil
}

// Exec runs cmd in a running container, streaming its output to out, and
// returns its exit code.
func Exec(conn context.Context, name string, cmd []string, out io.Writer) (int, error) {
	cfg := new(handlers.ExecCreateConfig)
	cfg.Cmd, cfg.AttachStdout, cfg.AttachStderr = cmd, true, true
	id, err := containers.ExecCreate(conn, name, cfg)
	if err != nil {
		return -1, fmt.Errorf("exec in %q: %w", name, err)
	}
	opts := new(containers.ExecStartAndAttachOptions).WithOutputStream(out).WithErrorStream(out).WithAttachOutput(true).WithAttachError(true)
	if err := containers.ExecStartAndAttach(conn, id, opts); err != nil {
		return -1, err
	}
	insp, err := containers.ExecInspect(conn, id, nil)
	if err != nil {
		return -1, err
	}
	return insp.ExitCode, nil
}
