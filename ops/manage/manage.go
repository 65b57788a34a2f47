package manage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
)

// isisctl manage runs one of isis's management commands in a one-off
// container of the image the serving slot runs (by its ID: what the slot
// runs even when the tag has moved on), with the slot's settings and
// secrets from the same spec code, on the private network, connected as the
// application role, and attached to isisctl's own standard streams through
// the Podman API: no shell in the image, no SSH session on the host, and
// the same over ssh:// as over a local socket.

// Command is an isis management command isisctl manage runs.
type Command struct {
	// Name as typed after `isisctl manage --` (a subcommand after a space).
	Name string
	// Flags it takes; true for one that takes a value. None takes a secret:
	// the whole command line goes to the audit trail.
	Flags map[string]bool
	// Args names its positional arguments.
	Args []string
	// Why the application role is enough (docs/operations.md).
	Why string
}

// Commands are the commands isisctl manage runs, all as the
// application role: none changes the schema, and every one of them only
// reads or writes rows, which is what that role may do.
var Commands = []Command{
	{Name: "createsuperuser", Flags: map[string]bool{"--email": true, "--no-input": false, "--noinput": false},
		Why: "inserts a row into users (INSERT and the id sequence)"},
	{Name: "changepassword", Args: []string{"EMAIL"},
		Why: "updates the user's row and blacklists their refresh tokens (UPDATE, INSERT)"},
	{Name: "flushexpiredtokens", Why: "deletes expired token rows (DELETE)"},
	{Name: "migrate status", Flags: map[string]bool{"--json": false}, Why: "reads schema_migrations (SELECT)"},
	{Name: "check", Flags: map[string]bool{"--deploy": false}, Why: "reads the settings only"},
}

// refused are isis's other commands, with what to run instead.
var refused = map[string]string{
	"serve":         "the backend serves in its two slots: isisctl deploy",
	"migrate":       "it changes the schema, which only the owner role may: isisctl migrate",
	"collectstatic": "isisctl collectstatic",
	"import-django": "isisctl import-django",
	"healthcheck":   "isisctl verify, or isisctl status",
}

// Call is a command line isisctl manage accepted.
type Call struct {
	Command *Command
	Args    []string // the whole command line, as isis gets it
}

// String is the command line, for the audit trail and the messages.
func (m *Call) String() string { return strings.Join(m.Args, " ") }

// Names lists the Commands' names.
func Names() string {
	var names []string
	for _, c := range Commands {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// Parse checks a command line for isisctl manage: a command of
// Commands with the flags and arguments it takes (help flags too).
// Anything else is refused before anything runs, in one line.
func Parse(args []string) (*Call, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("name the isis command to run, e.g. isisctl manage -- createsuperuser --email you@example.com (one of: %s)", Names())
	}
	var cmd *Command
	for i := range Commands {
		c := &Commands[i]
		words := strings.Fields(c.Name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			cmd = c
			break
		}
	}
	if cmd == nil {
		if instead, ok := refused[args[0]]; ok {
			return nil, fmt.Errorf("isisctl manage does not run isis %s: %s", args[0], instead)
		}
		if strings.HasPrefix(args[0], "-") {
			return nil, fmt.Errorf("the isis command comes first: isisctl manage -- COMMAND [FLAGS] (one of: %s)", Names())
		}
		return nil, fmt.Errorf("unknown isis management command %q: isisctl manage runs %s", args[0], Names())
	}
	rest := args[len(strings.Fields(cmd.Name)):]
	positional := 0
	onlyArgs := false
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case onlyArgs || a == "-" || !strings.HasPrefix(a, "-"):
			positional++
			if looksLikePassword(cmd, positional) {
				return nil, fmt.Errorf("isis %s takes no password on its command line (the process list and the audit trail would show it): it prompts for it, or reads it from standard input", cmd.Name)
			}
			continue
		case a == "--":
			onlyArgs = true
			continue
		case a == "-h" || a == "--help":
			continue
		}
		name, _, hasValue := strings.Cut(a, "=")
		takesValue, ok := cmd.Flags[name]
		switch {
		case !ok && strings.Contains(strings.ToLower(name), "password"):
			return nil, fmt.Errorf("isis %s takes no %s: a password never goes on a command line (the process list and the audit trail would show it); it prompts for it, or reads it from standard input", cmd.Name, name)
		case !ok:
			return nil, fmt.Errorf("isis %s takes no flag %s (%s)", cmd.Name, name, flagList(cmd))
		case takesValue && !hasValue:
			if i+1 >= len(rest) {
				return nil, fmt.Errorf("isis %s: %s needs a value", cmd.Name, name)
			}
			i++
		case !takesValue && hasValue:
			return nil, fmt.Errorf("isis %s: %s takes no value", cmd.Name, name)
		}
	}
	if positional != len(cmd.Args) {
		want := "no arguments"
		if len(cmd.Args) > 0 {
			want = strings.Join(cmd.Args, " ")
		}
		return nil, fmt.Errorf("isis %s takes %s, not %d argument(s)", cmd.Name, want, positional)
	}
	return &Call{Command: cmd, Args: slices.Clone(args)}, nil
}

// looksLikePassword: a positional argument past the ones the command takes
// (changepassword EMAIL PASSWORD) is refused before the count is, so that
// it reaches neither the container nor the audit trail.
func looksLikePassword(cmd *Command, n int) bool {
	return n > len(cmd.Args) && cmd.Name == "changepassword"
}

func flagList(cmd *Command) string {
	var fl []string
	for f := range cmd.Flags {
		if f != "--noinput" {
			fl = append(fl, f)
		}
	}
	sort.Strings(fl)
	if len(fl) == 0 {
		return "it takes none"
	}
	return "its flags: " + strings.Join(fl, ", ")
}

// TermSize is a TTY's size in characters.
type TermSize struct{ Width, Height int }

// Options are one run of isisctl manage.
type Options struct {
	Call *Call
	// Stdin, Stdout and Stderr are the command's (Started is Run's).
	Streams podman.Streams
	// TTY gives the container a TTY (isisctl's standard input is a
	// terminal); Sizes then sends its size, at once and on every change.
	TTY   bool
	Sizes <-chan TermSize
	// Warn receives a warning line.
	Warn func(string)
}

// Result is a run of isisctl manage.
type Result struct {
	Command   string `json:"command"`
	Slot      string `json:"slot"`
	Image     string `json:"image"`
	ImageID   string `json:"image_id"`
	Container string `json:"container"`
	ExitCode  int    `json:"exit_code"`
}

// stopTimeout is how long an interrupted command has to end on
// SIGTERM before it is killed: isis's commands stop on it, except while
// they wait for a password, and PostgreSQL rolls back the statement a
// killed one was in.
const stopTimeout = 3

// exitGrace is how long isis may take to exit once its output ended;
// an attach that ended without it (detached with Podman's ctrl-p ctrl-q)
// is stopped then.
const exitGrace = 10 * time.Second

// ServingSlot is the slot whose image and settings isisctl manage uses:
// slot A when it runs, else slot B.
func ServingSlot(conn podman.Engine, c *config.Config) (config.Slot, *podman.ContainerState, error) {
	slots := c.Slots()
	for _, sl := range slots {
		st, err := conn.Inspect(sl.Name)
		if err != nil {
			return config.Slot{}, nil, err
		}
		if st.Running {
			return sl, st, nil
		}
	}
	return config.Slot{}, nil, fmt.Errorf("no backend is running (neither %s nor %s): isisctl manage runs the image the backend runs; deploy first (isisctl deploy)",
		slots[0].Name, slots[1].Name)
}

// Spec is the one-off container of call for the backend of slot sl
// as inspected in st: the slot's spec (settings, secrets, mounts, user,
// read-only root) as a one-off on the private network, running st's image
// by its ID. same reports whether the slot runs this configuration's spec.
func Spec(c *config.Config, sl config.Slot, st *podman.ContainerState, name string, call *Call, tty bool) (s *podman.ContainerSpec, same bool) {
	s = spec.ForSlot(c, sl, st.Image)
	s.ImageID = st.ImageID
	same = s.Hash() == st.SpecHash
	spec.OneOff(c, s, name, call.Args...)
	s.Image = st.ImageID
	s.Labels[spec.LabelRole] = roleLabel
	s.Stdin, s.Terminal = true, tty
	return s, same
}

// roleLabel labels the one-off containers (spec.LabelRole).
const roleLabel = "manage"

// containerName is a container name of its own per run: two operators may
// run commands at once.
func containerName(c *config.Config) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix(c) + hex.EncodeToString(b)
}

func prefix(c *config.Config) string { return c.Backend.Name + "-manage-" }

// sweep removes the stopped one-off containers of runs that could
// not remove their own (isisctl killed): running ones may be another
// operator's.
func sweep(conn podman.Engine, c *config.Config) {
	sts, err := conn.List(podman.ListFilter{All: true, Filters: map[string][]string{"label": {spec.LabelRole + "=" + roleLabel, spec.LabelManaged + "=true"}}})
	if err != nil {
		return
	}
	for _, st := range sts {
		if !st.Running && strings.HasPrefix(st.Name, prefix(c)) {
			_ = conn.Remove(st.Name, 0)
		}
	}
}

// Run runs o.Call in a one-off container (Spec), attached to
// o.Streams, and removes it afterwards: when it ends, fails, or ctx ends
// (SIGINT, SIGTERM, SIGHUP: stopped first, stopTimeout seconds). The
// result has isis's exit code. Each run goes to the audit trail.
func Run(ctx context.Context, conn podman.Engine, c *config.Config, o Options) (r *Result, err error) {
	sl, st, err := ServingSlot(conn, c)
	if err != nil {
		return nil, err
	}
	name := containerName(c)
	s, same := Spec(c, sl, st, name, o.Call, o.TTY)
	if !same && o.Warn != nil {
		o.Warn(fmt.Sprintf("%s was deployed with settings other than isisctl.yaml's (changed since the last deploy?): the command runs with the file's", sl.Name))
	}
	r = &Result{Command: o.Call.String(), Slot: sl.Name, Image: st.Image, ImageID: st.ImageID, Container: name, ExitCode: -1}
	sweep(conn, c)
	start := time.Now()
	interrupted := false
	defer func() { record(conn, start, r, o.TTY, interrupted, err) }()

	keep := conn.WithoutCancel()
	if err := conn.Create(s); err != nil {
		return r, err
	}
	defer keep.Remove(name, stopTimeout)

	quit := make(chan struct{})
	defer close(quit)
	streams := o.Streams
	streams.Started = func() {
		if o.TTY && o.Sizes != nil {
			go followSize(keep, name, quit, o.Sizes) // a TTY can be sized once it runs
		}
	}
	attached := make(chan error, 1)
	go func() { attached <- conn.AttachStart(name, streams) }()
	select {
	case err = <-attached:
	case <-ctx.Done():
		interrupted = true
		return r, stop(keep, name, attached)
	}
	if err != nil {
		return r, err
	}
	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		code, err := keep.Wait(name)
		exited <- exit{code, err}
	}()
	select {
	case e := <-exited:
		if e.err != nil {
			return r, fmt.Errorf("wait for %s: %w", name, e.err)
		}
		r.ExitCode = e.code
		return r, nil
	case <-ctx.Done():
		interrupted = true
		return r, stop(keep, name, nil)
	case <-time.After(exitGrace):
		_ = keep.Remove(name, stopTimeout)
		return r, fmt.Errorf("isis %s did not exit within %s of its output ending (detached with ctrl-p ctrl-q?): its container %s was stopped and removed",
			o.Call.Command.Name, exitGrace, name)
	}
}

// stop stops and removes an interrupted run's container, which also
// ends its attach.
func stop(conn podman.Engine, name string, attached <-chan error) error {
	err := conn.Remove(name, stopTimeout)
	if attached != nil {
		select {
		case <-attached:
		case <-time.After(stopTimeout*time.Second + 5*time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("interrupted; removing the one-off container failed: %w", err)
	}
	return fmt.Errorf("interrupted: the one-off container %s was stopped and removed", name)
}

// followSize sizes the running container's TTY, now and on every change,
// until quit.
func followSize(conn podman.Engine, name string, quit <-chan struct{}, sizes <-chan TermSize) {
	for {
		select {
		case <-quit:
			return
		case s, ok := <-sizes:
			if !ok {
				return
			}
			_ = conn.Resize(name, s.Width, s.Height) // it may have ended already
		}
	}
}

// record puts a run of isisctl manage: the command line (no
// secret goes on one: Parse), the slot and exit code, who and when.
func record(conn podman.Engine, start time.Time, r *Result, tty, interrupted bool, err error) {
	res := "ok"
	switch {
	case interrupted:
		res = "interrupted"
	case err != nil:
		res = "failed"
	case r.ExitCode != 0:
		res = fmt.Sprintf("exit %d", r.ExitCode)
	}
	detail := r.Command + " (with " + r.Slot + "'s image and settings"
	if tty {
		detail += ", on a TTY"
	}
	detail += ")"
	if err != nil && !interrupted {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		detail += "; " + msg
	}
	_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "manage", Image: r.Image, ImageID: r.ImageID,
		Result: res, Duration: time.Since(start).Round(time.Millisecond).String(), Detail: detail})
}
