package cutover

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/steps"
	"github.com/isis-project/isis/ops/verify"
)

// Options drive the switch from Django to isis (isisctl cutover):
// a catch-up import while Django still serves, the operator's command that
// points the proxy at isis, final imports of what Django wrote meanwhile,
// then verify.
type Options struct {
	Import ImportDjangoOptions
	// Switch is the shell command (sh -c, on the machine isisctl runs on)
	// that points the reverse proxy at isis and reloads it.
	Switch        string
	SwitchTimeout time.Duration // default 5 minutes
	PublicURL     string        // verify through the proxy too
	Remote        bool          // the Podman host is not this machine
	// FinalRuns bounds the final imports: they repeat, Settle apart, until
	// one brings no change (default 3 runs, 2 s).
	FinalRuns int
	Settle    time.Duration
	Progress  func(steps.Step) // each step as it ends
	ImportOut func(string)     // the imports' progress lines (nil: dropped)
	SwitchOut func(string)     // the switch command's output lines
}

// Steps are the steps of a cutover, in order (the command's help
// and docs/cutover.md list them from here).
var Steps = []steps.Def[*cutoverRun]{
	{Name: "check", Summary: "a dry-run import: Django's data fits isis (no conflicts)", Run: cutoverCheck},
	{Name: "import", Summary: "the catch-up import, while Django still serves", Run: cutoverImport},
	{Name: "switch", Summary: "the --switch command points the proxy at isis", Run: cutoverSwitch},
	{Name: "final import", Summary: "what Django wrote meanwhile, repeated until a run brings no change", Run: cutoverFinal},
	{Name: "verify", Summary: "the smoke test of isisctl verify (with --public-url, through the proxy)", Run: cutoverVerify},
}

// Help is the step list as the command's help prints it.
func Help() string { return steps.Help(Steps, 1) }

// Result is what a cutover did.
type Result struct {
	Image    string            `json:"image"`
	Imports  []json.RawMessage `json:"imports"` // each import's summary, the dry run first
	Switched bool              `json:"switched"`
	Verify   *verify.Result    `json:"verify,omitempty"`
	Steps    []steps.Step      `json:"steps"`
}

// importChanges is the changes count of an import summary.
func importChanges(summary json.RawMessage) int {
	var s struct{ Changes int }
	json.Unmarshal(summary, &s)
	return s.Changes
}

// Cutover runs the switch from Django to isis with image (see Steps).
// Before the switch command succeeds nothing has changed for users (Django
// serves; isis holds imported data, which a later import brings up to date);
// after it, a failure says so and points to the way back.
func Run(ctx context.Context, conn podman.Engine, c *config.Config, image string, o Options) (r *Result, err error) {
	if strings.TrimSpace(o.Switch) == "" {
		return nil, errors.New("--switch is required: the command that points the reverse proxy at isis and reloads it")
	}
	start := time.Now()
	defer func() {
		res, detail := "ok", importSourceDetail(o.Import)
		if r != nil {
			changes := 0
			for _, s := range r.Imports {
				changes += importChanges(s)
			}
			detail += fmt.Sprintf("; %d import(s), %d change(s); switched: %v", len(r.Imports), changes, r.Switched)
		}
		if err != nil {
			res = "failed"
			msg, _, _ := strings.Cut(err.Error(), "\n")
			detail += "; " + printable(msg)
		}
		_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "cutover", Image: image,
			Result: res, Duration: time.Since(start).Round(time.Millisecond).String(), Detail: detail})
	}()
	if o.FinalRuns <= 0 {
		o.FinalRuns = 3
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	if o.SwitchTimeout <= 0 {
		o.SwitchTimeout = 5 * time.Minute
	}
	out, switchOut := o.ImportOut, o.SwitchOut
	if out == nil {
		out = func(string) {}
	}
	if switchOut == nil {
		switchOut = func(string) {}
	}
	r = &Result{Image: image}
	cr := &cutoverRun{ctx: ctx, conn: conn, c: c, image: image, o: o, r: r, out: out, switchOut: switchOut}
	run := &steps.Runner[*cutoverRun]{Table: Steps, State: cr, Rec: &r.Steps, Progress: o.Progress, Fail: cutoverFailed}
	return r, run.Run(0, len(Steps)-1)
}

// cutoverFailed says, with a step's error, where the cutover stopped:
// before the switch nothing has changed for users, after it the way back is
// to point the proxy at Django again.
func cutoverFailed(i int, err error) error {
	switch Steps[i].Name {
	case "check", "import":
		return fmt.Errorf("%w (nothing was switched: Django still serves)", err)
	case "switch":
		return fmt.Errorf("the switch command failed: %w (check that the proxy still points at Django; isis holds the import, and a later cutover brings what changed)", err)
	}
	return fmt.Errorf("%w (the proxy points at isis; to go back, point it at Django again: docs/cutover.md, The way back)", err)
}

// cutoverRun is the state one cutover's steps share.
type cutoverRun struct {
	ctx            context.Context
	conn           podman.Engine
	c              *config.Config
	image          string
	o              Options
	r              *Result
	out, switchOut func(string)
}

// importOnce runs one import (a dry run with dry) and returns its changes.
func (cr *cutoverRun) importOnce(dry bool) (int, error) {
	imp := cr.o.Import
	imp.DryRun = dry
	res, err := ImportDjango(cr.ctx, cr.conn, cr.c, cr.image, imp, nil, cr.out)
	if res != nil && len(res.Summary) > 0 {
		cr.r.Imports = append(cr.r.Imports, res.Summary)
	}
	if se := (*steps.Error)(nil); errors.As(err, &se) {
		return 0, se.Err // the cutover's step names it
	}
	if err != nil {
		return 0, err
	}
	return importChanges(res.Summary), nil
}

func cutoverCheck(cr *cutoverRun) (string, string, error) {
	n, err := cr.importOnce(true)
	return "ok", fmt.Sprintf("%d change(s) to bring, no conflict", n), err
}

func cutoverImport(cr *cutoverRun) (string, string, error) {
	n, err := cr.importOnce(false)
	return "ok", fmt.Sprintf("%d change(s) imported", n), err
}

func cutoverSwitch(cr *cutoverRun) (string, string, error) {
	if err := runSwitch(cr.ctx, cr.o.Switch, cr.o.SwitchTimeout, cr.switchOut); err != nil {
		return "ok", "the proxy points at isis", err
	}
	cr.r.Switched = true
	return "ok", "the proxy points at isis", nil
}

func cutoverFinal(cr *cutoverRun) (string, string, error) {
	total := 0
	for i := 1; ; i++ {
		n, err := cr.importOnce(false)
		if err != nil {
			return "ok", "", err
		}
		total += n
		if n == 0 {
			return "ok", fmt.Sprintf("%d change(s) in %d run(s), the last bringing none", total, i), nil
		}
		if i == cr.o.FinalRuns {
			return "ok", fmt.Sprintf("%d change(s) in %d run(s), the last still bringing %d: Django is still written to; run isisctl import-django again once it is stopped", total, i, n), nil
		}
		select {
		case <-cr.ctx.Done():
			return "ok", "", cr.ctx.Err()
		case <-time.After(cr.o.Settle):
		}
	}
}

func cutoverVerify(cr *cutoverRun) (string, string, error) {
	r := cr.r
	r.Verify = verify.Run(cr.ctx, cr.conn, cr.c, verify.Options{PublicURL: cr.o.PublicURL, Remote: cr.o.Remote})
	if r.Verify.OK {
		return "ok", fmt.Sprintf("%d checks passed", len(r.Verify.Checks)), nil
	}
	var failed []string
	for _, ch := range r.Verify.Checks {
		if !ch.OK {
			failed = append(failed, ch.Name+": "+ch.Detail)
		}
	}
	return "ok", "", errors.New(strings.Join(failed, "; "))
}

// runSwitch runs cmd with sh -c, its output lines to out, within timeout.
func runSwitch(ctx context.Context, cmd string, timeout time.Duration, out func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sh := exec.CommandContext(ctx, "sh", "-c", cmd)
	// At the timeout the whole command goes, children included (a reload
	// that hangs must not keep isisctl waiting on its output).
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sh.Cancel = func() error { return syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) }
	sh.WaitDelay = time.Second
	pr, pw := io.Pipe()
	sh.Stdout, sh.Stderr = pw, pw
	var wg sync.WaitGroup
	wg.Add(1)
	var last string
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				last = l
			}
			out(sc.Text())
		}
	}()
	err := sh.Run()
	pw.Close()
	wg.Wait()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("still running after %s", timeout)
	}
	if err != nil {
		if last != "" {
			return fmt.Errorf("%v: %s", err, last)
		}
		return err
	}
	return nil
}
