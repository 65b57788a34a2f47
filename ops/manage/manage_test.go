package manage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/doctest"
	"github.com/isis-project/isis/internal/opstest"
	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
	"github.com/isis-project/isis/ops/spec"
)

// TestParseManage: the command lines isisctl manage runs, and the ones it
// refuses before anything runs, each with one line naming the problem.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" accepted, else a part of the error
	}{
		{[]string{"createsuperuser", "--email", "a@example.com"}, ""},
		{[]string{"createsuperuser", "--email=a@example.com", "--no-input"}, ""},
		{[]string{"createsuperuser", "--noinput"}, ""},
		{[]string{"createsuperuser", "--help"}, ""},
		{[]string{"changepassword", "a@example.com"}, ""},
		{[]string{"changepassword", "--", "-odd@example.com"}, ""},
		{[]string{"flushexpiredtokens"}, ""},
		{[]string{"migrate", "status"}, ""},
		{[]string{"migrate", "status", "--json"}, ""},
		{[]string{"check", "--deploy"}, ""},
		{[]string{"check"}, ""},

		{nil, "name the isis command to run"},
		{[]string{"serve"}, "does not run isis serve: the backend serves in its two slots"},
		{[]string{"migrate"}, "does not run isis migrate: it changes the schema"},
		{[]string{"migrate", "--json"}, "does not run isis migrate"},
		{[]string{"collectstatic"}, "isisctl collectstatic"},
		{[]string{"import-django"}, "isisctl import-django"},
		{[]string{"healthcheck"}, "isisctl verify"},
		{[]string{"shell"}, `unknown isis management command "shell"`},
		{[]string{"--email", "a@example.com"}, "the isis command comes first"},
		{[]string{"createsuperuser", "--password", "hunter2"}, "takes no --password: a password never goes on a command line"},
		{[]string{"createsuperuser", "--password=hunter2"}, "takes no --password:"},
		{[]string{"changepassword", "a@example.com", "hunter2"}, "takes no password on its command line"},
		{[]string{"changepassword"}, "takes EMAIL, not 0 argument(s)"},
		{[]string{"createsuperuser", "a@example.com"}, "takes no arguments, not 1"},
		{[]string{"createsuperuser", "--email"}, "--email needs a value"},
		{[]string{"createsuperuser", "--no-input=yes"}, "--no-input takes no value"},
		{[]string{"createsuperuser", "--username", "x"}, "takes no flag --username (its flags: --email, --no-input)"},
		{[]string{"flushexpiredtokens", "--all"}, "takes no flag --all (it takes none)"},
		{[]string{"check", "--database"}, "its flags: --deploy"},
	} {
		call, err := Parse(tc.args)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want == "" && !slices.Equal(call.Args, tc.args):
			t.Errorf("%q: runs %q", tc.args, call.Args)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		case err != nil && (strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "hunter2")):
			t.Errorf("%q: error %q is not one line without the password", tc.args, err)
		}
	}
}

// manageFake is a deployment whose slots run img:v1 (ID v1id) in the fake.
func manageFake(t *testing.T, slots ...string) (*config.Config, *podmantest.Fake) {
	t.Helper()
	c, f := opstest.ExampleConfig(), podmantest.New()
	f.Images["img:v1"] = &podman.Image{ID: "v1id"}
	for _, sl := range c.Slots() {
		if slices.Contains(slots, sl.ID) {
			s := spec.ForSlot(c, sl, "img:v1")
			s.ImageID = "v1id"
			f.Run(s, time.Now().Add(-time.Hour))
		}
	}
	return c, f
}

func mustParse(t *testing.T, args ...string) *Call {
	t.Helper()
	call, err := Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	return call
}

func lastAudit(t *testing.T, f *podmantest.Fake) audit.Entry {
	t.Helper()
	a, err := audit.Read(f, 100)
	if err != nil || len(a) == 0 {
		t.Fatalf("no audit entry: %v", err)
	}
	return a[len(a)-1]
}

// TestManageRuns: the one-off container is the slot's spec as a one-off on
// the private network, connected as the application role, on the image ID
// the slot runs; it gets the streams, its exit code comes back, and it is
// gone afterwards, with the run in the audit trail.
func TestManageRuns(t *testing.T) {
	c, f := manageFake(t, "a", "b")
	f.Images["img:v1"].ID = "v2id" // the tag moved on: the slot's image still runs
	var got podman.ContainerSpec
	f.Attached = func(s podman.ContainerSpec, st podman.Streams) int {
		got = s
		line, _ := bufio.NewReader(st.Stdin).ReadString('\n')
		fmt.Fprintf(st.Stdout, "got %q\n", line)
		fmt.Fprintln(st.Stderr, "isis: refused")
		return 3
	}
	var out, errs strings.Builder
	var warnings []string
	r, err := Run(context.Background(), f, c, Options{Call: mustParse(t, "createsuperuser", "--email", "a@example.com", "--no-input"),
		Streams: podman.Streams{Stdin: strings.NewReader("pw-line\n"), Stdout: &out, Stderr: &errs},
		Warn:    func(l string) { warnings = append(warnings, l) }})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 3 || r.ImageID != "v1id" || r.Slot != c.Backend.Name {
		t.Errorf("result %+v", r)
	}
	if out.String() != "got \"pw-line\\n\"\n" || errs.String() != "isis: refused\n" {
		t.Errorf("streams: %q %q", out.String(), errs.String())
	}
	if len(warnings) > 0 {
		t.Errorf("warnings for a slot that runs the file's settings: %v", warnings)
	}
	slot := spec.ForSlot(c, c.Slots()[0], "img:v1")
	switch {
	case got.Image != "v1id":
		t.Errorf("image %q, want the slot's image ID", got.Image)
	case !strings.HasPrefix(got.Name, c.Backend.Name+"-manage-"):
		t.Errorf("name %q", got.Name)
	case got.Env["DATABASE_USER"] != c.AppRole() || got.Env["DATABASE_PASSWORD_FILE"] != "/run/secrets/"+config.AppPasswordName:
		t.Errorf("database role %q (%s), want the application role", got.Env["DATABASE_USER"], got.Env["DATABASE_PASSWORD_FILE"])
	case !slices.Equal(got.Networks, []string{c.Network}) || len(got.Publish) > 0 || got.Health != nil || got.Restart != "":
		t.Errorf("not a one-off on the private network: %+v", got)
	case !got.Stdin || got.Terminal:
		t.Errorf("stdin %v terminal %v, want stdin without a TTY", got.Stdin, got.Terminal)
	case !slices.Equal(got.Command, []string{"createsuperuser", "--email", "a@example.com", "--no-input"}):
		t.Errorf("command %q", got.Command)
	case got.Labels[spec.LabelRole] != "manage":
		t.Errorf("labels %v", got.Labels)
	case !reflect.DeepEqual(got.Secrets, slot.Secrets) || !reflect.DeepEqual(got.Mounts, slot.Mounts) || got.User != slot.User || !got.ReadOnly:
		t.Errorf("not the slot's secrets, mounts, user and read-only root: %+v", got)
	}
	for k, v := range slot.Env {
		if got.Env[k] != v && k != "DATABASE_USER" {
			t.Errorf("env %s = %q, the slot's is %q", k, got.Env[k], v)
		}
	}
	if got := f.Names(); !slices.Equal(got, []string{c.Backend.Name, c.StandbyName()}) {
		t.Errorf("containers after the run: %v", got)
	}
	if a := lastAudit(t, f); a.Action != "manage" || a.Result != "exit 3" || a.ImageID != "v1id" ||
		a.Detail != "createsuperuser --email a@example.com --no-input (with "+c.Backend.Name+"'s image and settings)" {
		t.Errorf("audit %+v", a)
	}
}

// TestManageSlot: slot B's image when only B runs; nothing to run without
// a backend (and nothing audited).
func TestManageSlot(t *testing.T) {
	c, f := manageFake(t, "b")
	r, err := Run(context.Background(), f, c, Options{Call: mustParse(t, "flushexpiredtokens")})
	if err != nil || r.Slot != c.StandbyName() || r.ExitCode != 0 {
		t.Errorf("with slot B only: %+v %v", r, err)
	}
	c, f = manageFake(t)
	_, err = Run(context.Background(), f, c, Options{Call: mustParse(t, "flushexpiredtokens")})
	if err == nil || !strings.Contains(err.Error(), "no backend is running") {
		t.Errorf("without a backend: %v", err)
	}
	if len(f.Volumes) != 0 || len(f.Calls) != 0 {
		t.Errorf("a refused run changed something: %v", f.Calls)
	}
}

// TestManageWarnsOfChangedSettings: a slot deployed with other settings
// than isisctl.yaml's now holds is said in a warning.
func TestManageWarnsOfChangedSettings(t *testing.T) {
	c, f := manageFake(t, "a")
	c.Backend.Env = map[string]string{"LOG_LEVEL": "debug"}
	var warnings []string
	if _, err := Run(context.Background(), f, c, Options{Call: mustParse(t, "check"), Warn: func(l string) { warnings = append(warnings, l) }}); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "settings other than isisctl.yaml's") {
		t.Errorf("warnings %v", warnings)
	}
}

// TestManageCleansUpOnFailure: whatever fails, the one-off container is
// gone afterwards and the run is audited as failed.
func TestManageCleansUpOnFailure(t *testing.T) {
	for _, op := range []string{"create", "attach"} {
		c, f := manageFake(t, "a")
		f.Fail = func(o, name string) error {
			if o == op && strings.HasPrefix(name, c.Backend.Name+"-manage-") {
				return errors.New("injected " + op + " failure")
			}
			return nil
		}
		_, err := Run(context.Background(), f, c, Options{Call: mustParse(t, "migrate", "status")})
		if err == nil || !strings.Contains(err.Error(), "injected "+op) {
			t.Errorf("%s failure: %v", op, err)
		}
		if got := f.Names(); !slices.Equal(got, []string{c.Backend.Name}) {
			t.Errorf("%s failure: containers left %v", op, got)
		}
		if a := lastAudit(t, f); a.Result != "failed" || !strings.Contains(a.Detail, "injected "+op) {
			t.Errorf("%s failure: audit %+v", op, a)
		}
	}
}

// TestManageInterrupted: a signal (the context) while isis runs stops and
// removes its container; the run is audited as interrupted.
func TestManageInterrupted(t *testing.T) {
	c, f := manageFake(t, "a")
	removed := make(chan struct{})
	f.Fail = func(op, name string) error {
		if op == "remove" && strings.HasPrefix(name, c.Backend.Name+"-manage-") {
			select {
			case <-removed:
			default:
				close(removed)
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Attached = func(podman.ContainerSpec, podman.Streams) int {
		cancel() // the operator's Ctrl-C
		select { // isis ends when its container is stopped
		case <-removed:
		case <-time.After(5 * time.Second):
			t.Error("the interrupted run's container was not removed while it ran")
		}
		return 143
	}
	_, err := Run(ctx, f, c, Options{Call: mustParse(t, "changepassword", "a@example.com"), Streams: podman.Streams{Stdin: strings.NewReader("")}})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err %v", err)
	}
	if got := f.Names(); !slices.Equal(got, []string{c.Backend.Name}) {
		t.Errorf("containers left %v", got)
	}
	if a := lastAudit(t, f); a.Result != "interrupted" {
		t.Errorf("audit %+v", a)
	}
}

// TestManageTTY: with a TTY the container gets one, sized once it runs and
// again on every change of the terminal's size.
func TestManageTTY(t *testing.T) {
	c, f := manageFake(t, "a")
	sizes := make(chan TermSize, 1)
	sizes <- TermSize{80, 24}
	var terminal bool
	// A resize asked before the container runs would be lost: the start
	// waits long enough for one to come first.
	var attaching, early atomic.Bool
	f.Fail = func(op, name string) error {
		switch op {
		case "attach":
			time.Sleep(50 * time.Millisecond)
			attaching.Store(true)
		case "resize":
			if !attaching.Load() {
				early.Store(true)
			}
		}
		return nil
	}
	f.Attached = func(s podman.ContainerSpec, st podman.Streams) int {
		terminal = s.Terminal
		waitCall(t, f, "resize "+s.Name+" 80x24")
		sizes <- TermSize{132, 43}
		waitCall(t, f, "resize "+s.Name+" 132x43")
		io.WriteString(st.Stdout, "done\r\n")
		return 0
	}
	var out strings.Builder
	r, err := Run(context.Background(), f, c, Options{Call: mustParse(t, "createsuperuser"), TTY: true, Sizes: sizes,
		Streams: podman.Streams{Stdin: strings.NewReader(""), Stdout: &out}})
	if err != nil || r.ExitCode != 0 || out.String() != "done\r\n" || !terminal {
		t.Fatalf("%+v %v %q terminal %v", r, err, out.String(), terminal)
	}
	if early.Load() {
		t.Error("the TTY was resized before the container ran")
	}
	if a := lastAudit(t, f); !strings.HasSuffix(a.Detail, ", on a TTY)") {
		t.Errorf("audit %+v", a)
	}
}

func waitCall(t *testing.T, f *podmantest.Fake, call string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if slices.Contains(f.Called(), call) {
			return
		}
	}
	t.Errorf("no %q in %v", call, f.Called())
}

// TestManageSweepsLeftovers: a stopped one-off container a killed isisctl
// left is removed by the next run; a running one (another operator's) is not.
func TestManageSweepsLeftovers(t *testing.T) {
	c, f := manageFake(t, "a")
	for _, n := range []string{"dead", "busy"} {
		s := spec.Backend(c, "img:v1")
		spec.OneOff(c, s, c.Backend.Name+"-manage-"+n)
		s.Labels[spec.LabelRole] = "manage"
		f.Run(s, time.Now())
	}
	f.Stop(c.Backend.Name+"-manage-dead", 0)
	if _, err := Run(context.Background(), f, c, Options{Call: mustParse(t, "check")}); err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !slices.Equal(got, []string{c.Backend.Name, c.Backend.Name + "-manage-busy"}) {
		t.Errorf("containers %v", got)
	}
}

// TestDocsManageCommands: the table of docs/operations.md's manage section
// names the commands isisctl manage runs, and only those.
func TestDocsManageCommands(t *testing.T) {
	row := regexp.MustCompile("^\\| `([a-z -]+)` \\| ")
	documented := map[string]bool{}
	for _, line := range doctest.Section(t, "../../docs/operations.md", "### manage: management commands on the host") {
		if m := row.FindStringSubmatch(line); m != nil {
			documented[m[1]] = true
		}
	}
	commands := map[string]bool{}
	for _, c := range Commands {
		commands[c.Name] = true
	}
	if missing, extra := doctest.Diff(commands, documented); len(missing) > 0 || len(extra) > 0 {
		t.Errorf("docs/operations.md's manage table and manage.Commands differ\nnot in the table: %v\nnot commands: %v", missing, extra)
	}
}
