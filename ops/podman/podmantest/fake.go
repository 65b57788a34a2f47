// Package podmantest is an in-memory podman.Engine for unit tests of the
// failure points (a step that fails half way must put things back); the
// end-to-end tests run against a real Podman.
package podmantest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/isis-project/isis/ops/podman"
)

// Container is one container the fake holds.
type Container struct {
	ID      string
	Spec    podman.ContainerSpec
	Running bool
	Started time.Time
}

// Fake is an in-memory Podman. Fail, when set, is asked before every
// operation ("inspect", "create", "start", "stop", "rename", "remove",
// "healthy" (WaitHealthy), "healthcheck" (one run of the check: unhealthy),
// "exec", "volume-create", ...; name is the object's) and a non-nil answer
// is that operation's error. Calls records every operation that changed
// something, as "op name".
type Fake struct {
	mu         sync.Mutex
	ctx        context.Context
	Containers map[string]*Container
	Volumes    map[string]map[string]string
	Secrets    map[string]string
	Networks   map[string]*podman.Network
	Images     map[string]*podman.Image
	Fail       func(op, name string) error
	// ExecOut answers Exec: its output and exit code.
	ExecOut func(name string, cmd []string) (string, int)
	// Run answers Wait and Logs for a one-off container: its exit code and
	// its log lines (standard output, standard error); nil: 0, no lines.
	// It is asked once per Wait; Logs sends the lines of the last answer.
	RunOut  func(name string) (code int, stdout, stderr []string)
	lastOut map[string][2][]string
	// Attached is the process of a container AttachStart runs: it reads
	// the streams' Stdin, writes their output and returns its exit code,
	// which Wait answers; nil: it exits 0 at once. It runs unlocked.
	Attached func(spec podman.ContainerSpec, s podman.Streams) int
	exits    map[string]int
	Calls    []string
	nextID   int
}

// New returns an empty fake.
func New() *Fake {
	return &Fake{ctx: context.Background(), Containers: map[string]*Container{}, Volumes: map[string]map[string]string{},
		Secrets: map[string]string{}, Networks: map[string]*podman.Network{}, Images: map[string]*podman.Image{}}
}

var _ podman.Engine = (*Fake)(nil)

func notFound(kind, name string) error { return fmt.Errorf("no such %s: %q", kind, name) }

// fail asks Fail; the caller holds mu.
func (f *Fake) fail(op, name string) error {
	if f.Fail == nil {
		return nil
	}
	return f.Fail(op, name)
}

func (f *Fake) record(op, name string) { f.Calls = append(f.Calls, op+" "+name) }

// Run adds a running container made from spec, as a deploy before would have.
func (f *Fake) Run(spec *podman.ContainerSpec, started time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.Containers[spec.Name] = &Container{ID: fmt.Sprintf("id%d", f.nextID), Spec: *spec, Running: true, Started: started}
}

// Names are the containers' names, sorted, with " (stopped)" after those not running.
func (f *Fake) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n, c := range f.Containers {
		if !c.Running {
			n += " (stopped)"
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (f *Fake) Version() (string, error)     { return "5.0.0-fake", nil }
func (f *Fake) Context() context.Context     { return f.ctx }
func (f *Fake) WithoutCancel() podman.Engine { return f }

func (f *Fake) state(c *Container) *podman.ContainerState {
	labels := map[string]string{podman.LabelSpecHash: c.Spec.Hash()}
	maps.Copy(labels, c.Spec.Labels)
	var env []string
	for k, v := range c.Spec.Env {
		env = append(env, k+"="+v)
	}
	st := &podman.ContainerState{ID: c.ID, Name: c.Spec.Name, Exists: true, Running: c.Running, Image: c.Spec.Image,
		ImageID: c.Spec.ImageID, SpecHash: c.Spec.Hash(), Networks: slices.Clone(c.Spec.Networks), Env: env,
		Labels: labels, Restart: c.Spec.Restart}
	if c.Running {
		st.Health = "healthy"
		fmt.Sscanf(c.ID, "id%d", &st.PID)
		st.PID += 1000
		st.StartTime = c.Started
		st.StartedAt = c.Started.UTC().Format(time.RFC3339)
	}
	return st
}

func (f *Fake) Inspect(name string) (*podman.ContainerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("inspect", name); err != nil {
		return nil, err
	}
	for _, c := range f.Containers {
		if c.Spec.Name == name || c.ID == name {
			return f.state(c), nil
		}
	}
	return &podman.ContainerState{Name: name}, nil
}

func (f *Fake) List(lf podman.ListFilter) ([]*podman.ContainerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*podman.ContainerState
	for _, c := range f.Containers {
		if !lf.All && !c.Running {
			continue
		}
		st := f.state(c)
		ok := true
		for _, l := range lf.Filters["label"] {
			k, v, _ := strings.Cut(l, "=")
			ok = ok && st.Labels[k] == v
		}
		for _, n := range lf.Filters["network"] {
			ok = ok && slices.Contains(st.Networks, n)
		}
		for _, s := range lf.Filters["status"] {
			ok = ok && (s == "running") == c.Running
		}
		if ok {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *Fake) Create(s *podman.ContainerSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("create", s.Name); err != nil {
		return fmt.Errorf("create container %q: %w", s.Name, err)
	}
	if _, ok := f.Containers[s.Name]; ok {
		return fmt.Errorf("create container %q: name is already in use", s.Name)
	}
	f.nextID++
	f.Containers[s.Name] = &Container{ID: fmt.Sprintf("id%d", f.nextID), Spec: *s}
	f.record("create", s.Name)
	return nil
}

func (f *Fake) Start(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("start", name); err != nil {
		return fmt.Errorf("start container %q: %w", name, err)
	}
	c, ok := f.Containers[name]
	if !ok {
		return fmt.Errorf("start container %q: %w", name, notFound("container", name))
	}
	c.Running, c.Started = true, time.Now()
	f.record("start", name)
	return nil
}

func (f *Fake) Stop(name string, _ uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("stop", name); err != nil {
		return fmt.Errorf("stop container %q: %w", name, err)
	}
	if c, ok := f.Containers[name]; ok {
		c.Running = false
		f.record("stop", name)
	}
	return nil
}

func (f *Fake) Remove(name string, _ uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("remove", name); err != nil {
		return fmt.Errorf("remove container %q: %w", name, err)
	}
	if _, ok := f.Containers[name]; ok {
		delete(f.Containers, name)
		f.record("remove", name)
	}
	return nil
}

func (f *Fake) Rename(from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("rename", from); err != nil {
		return fmt.Errorf("rename container %q to %q: %w", from, to, err)
	}
	c, ok := f.Containers[from]
	if !ok {
		return fmt.Errorf("rename container %q to %q: %w", from, to, notFound("container", from))
	}
	if _, ok := f.Containers[to]; ok {
		return fmt.Errorf("rename container %q to %q: name is already in use", from, to)
	}
	delete(f.Containers, from)
	c.Spec.Name = to
	f.Containers[to] = c
	f.record("rename", from+" "+to)
	return nil
}

func (f *Fake) WaitHealthy(_ context.Context, name string, _ time.Duration, _ *podman.Health) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.Containers[name]; !ok || !c.Running {
		return fmt.Errorf("container %q is not running", name)
	}
	if err := f.fail("healthy", name); err != nil {
		return fmt.Errorf("container %q is unhealthy (%v)", name, err)
	}
	return nil
}

func (f *Fake) HealthCheck(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.Containers[name]; !ok || !c.Running {
		return "", notFound("container", name)
	}
	if err := f.fail("healthcheck", name); err != nil {
		return "unhealthy", nil
	}
	return "healthy", nil
}

func (f *Fake) Wait(name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.Containers[name]
	if !ok {
		return -1, notFound("container", name)
	}
	c.Running = false
	if code, ok := f.exits[name]; ok {
		return code, nil
	}
	if f.RunOut == nil {
		return 0, nil
	}
	code, out, errs := f.RunOut(name)
	if f.lastOut == nil {
		f.lastOut = map[string][2][]string{}
	}
	f.lastOut[name] = [2][]string{out, errs}
	return code, nil
}

// Logs sends the lines RunOut gave for name's run; with Follow it waits
// for that run (Wait) first, as a followed log ends when the container does.
func (f *Fake) Logs(name string, o podman.LogOptions, stdout, stderr chan string) error {
	for {
		f.mu.Lock()
		c, ok := f.Containers[name]
		running := ok && c.Running
		lines := f.lastOut[name]
		f.mu.Unlock()
		if !o.Follow || !running {
			for _, l := range lines[0] {
				stdout <- l + "\n"
			}
			for _, l := range lines[1] {
				stderr <- l + "\n"
			}
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *Fake) Exec(name string, cmd []string, stdout, _ io.Writer) (int, error) {
	f.mu.Lock()
	if err := f.fail("exec", name); err != nil {
		f.mu.Unlock()
		return -1, fmt.Errorf("exec in %q: %w", name, err)
	}
	c, ok := f.Containers[name]
	f.mu.Unlock()
	if !ok || !c.Running {
		return -1, fmt.Errorf("exec in %q: %w", name, notFound("container", name))
	}
	if f.ExecOut == nil {
		return 0, nil
	}
	out, code := f.ExecOut(name, cmd)
	_, _ = io.WriteString(stdout, out)
	return code, nil
}

// AttachStart starts container name and runs Attached as its process.
func (f *Fake) AttachStart(name string, s podman.Streams) error {
	f.mu.Lock()
	if err := f.fail("attach", name); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("attach to container %q: %w", name, err)
	}
	c, ok := f.Containers[name]
	if !ok {
		f.mu.Unlock()
		return fmt.Errorf("attach to container %q: %w", name, notFound("container", name))
	}
	c.Running, c.Started = true, time.Now()
	f.record("start", name)
	spec := c.Spec
	f.mu.Unlock()
	if s.Started != nil {
		s.Started()
	}
	code := 0
	if f.Attached != nil {
		code = f.Attached(spec, s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exits == nil {
		f.exits = map[string]int{}
	}
	f.exits[name] = code
	if c, ok := f.Containers[name]; ok {
		c.Running = false
	}
	return nil
}

// Resize records "resize NAME WxH" for a running container.
func (f *Fake) Resize(name string, width, height int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("resize", name); err != nil {
		return fmt.Errorf("resize the TTY of container %q: %w", name, err)
	}
	if c, ok := f.Containers[name]; !ok || !c.Running {
		return fmt.Errorf("resize the TTY of container %q: not running", name)
	}
	f.record("resize", fmt.Sprintf("%s %dx%d", name, width, height))
	return nil
}

// Called returns the calls recorded so far (safe while the fake is in use).
func (f *Fake) Called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Calls)
}

func (f *Fake) CopyOut(name, path string, _ io.Writer) (func() error, error) {
	return nil, fmt.Errorf("copy %s out of %s: the fake holds no files", path, name)
}

func (f *Fake) CopyIn(name, dir string, _ io.Reader) (func() error, error) {
	return nil, fmt.Errorf("copy into %s:%s: the fake holds no files", name, dir)
}

func (f *Fake) VolumeCreate(name string, labels map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("volume-create", name); err != nil {
		return err
	}
	if _, ok := f.Volumes[name]; ok {
		return fmt.Errorf("volume with name %s already exists", name)
	}
	f.Volumes[name] = maps.Clone(labels)
	f.record("volume-create", name)
	return nil
}

func (f *Fake) VolumeLabels(name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.Volumes[name]
	if !ok {
		return nil, notFound("volume", name)
	}
	return maps.Clone(l), nil
}

func (f *Fake) VolumeRemove(name string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.Volumes[name]; !ok {
		return notFound("volume", name)
	}
	delete(f.Volumes, name)
	f.record("volume-remove", name)
	return nil
}

func (f *Fake) VolumeList(label string) ([]map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, v, _ := strings.Cut(label, "=")
	var names []string
	for n, l := range f.Volumes {
		if l[k] == v {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]map[string]string, 0, len(names))
	for _, n := range names {
		out = append(out, maps.Clone(f.Volumes[n]))
	}
	return out, nil
}

func (f *Fake) SecretExists(name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.Secrets[name]
	return ok, nil
}

func (f *Fake) SecretCreate(name, value string, _ map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("secret-create", name); err != nil {
		return err
	}
	if _, ok := f.Secrets[name]; ok {
		return fmt.Errorf("secret name in use: %s", name)
	}
	f.Secrets[name] = value
	f.record("secret-create", name)
	return nil
}

func (f *Fake) SecretRemove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.Secrets[name]; !ok {
		return notFound("secret", name)
	}
	delete(f.Secrets, name)
	f.record("secret-remove", name)
	return nil
}

func (f *Fake) NetworkInspect(name string) (*podman.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.Networks[name]
	if !ok {
		return nil, notFound("network", name)
	}
	c := *n
	return &c, nil
}

func (f *Fake) NetworkCreate(n *podman.Network) (*podman.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("network-create", n.Name); err != nil {
		return nil, err
	}
	c := *n
	f.Networks[n.Name] = &c
	f.record("network-create", n.Name)
	return n, nil
}

func (f *Fake) ImageExists(ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.Images[ref]
	return ok, nil
}

func (f *Fake) Image(ref string) (*podman.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.Images[ref]
	if !ok {
		return nil, notFound("image", ref)
	}
	c := *img
	return &c, nil
}

func (f *Fake) ImageTag(id, tag, repo string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, img := range f.Images {
		if img.ID == id {
			c := *img
			f.Images[repo+":"+tag] = &c
			return nil
		}
	}
	return notFound("image", id)
}

func (f *Fake) Build(b *podman.BuildOptions) (string, error) {
	return "", fmt.Errorf("build %s: the fake does not build", b.Ref)
}

func (f *Fake) Push(source, _ string, _ *podman.TransferOptions) (string, error) {
	return "", fmt.Errorf("push %s: the fake has no registry", source)
}

func (f *Fake) Pull(ref string, _ *podman.TransferOptions) error {
	return fmt.Errorf("pull %s: the fake has no registry", ref)
}
