package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// DeployOptions tune a deploy.
type DeployOptions struct {
	URL       string // the Podman URL (local hosts get host-side checks)
	Tag       string
	DryRun    bool
	PublicURL string
	Install   bool   // write quadlet units and use systemd (else: up through the API)
	UnitsDir  string // with Install
	Out       io.Writer
	Progress  Progress
	Verify    VerifyOptions
}

// DeployResult reports a deploy.
type DeployResult struct {
	Image      string        `json:"image"`
	ImageID    string        `json:"image_id,omitempty"`
	Previous   string        `json:"previous_image,omitempty"`
	Changed    bool          `json:"changed"`
	RolledBack bool          `json:"rolled_back"`
	Steps      []Step        `json:"steps"`
	Verify     *VerifyResult `json:"verify,omitempty"`
	Plan       []string      `json:"plan,omitempty"`
	UnitDiff   string        `json:"unit_diff,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

var deploySteps = []string{"preflight", "build", "network", "secrets", "render", "migrate", "up", "wait healthy", "collectstatic", "verify"}

// Deploy runs preflight → build → network → secrets → render → migrate (new
// image) → up → wait healthy → collectstatic → verify, rolling the backend
// back to its previous image when anything fails after the new one started.
func Deploy(ctx, conn context.Context, c *Config, o DeployOptions) (*DeployResult, error) {
	start := time.Now()
	r := &DeployResult{}
	n := 0
	step := func(name string, f func() (status, detail string, err error)) error {
		n++
		t := time.Now()
		status, detail, err := f()
		s := Step{N: n, Total: len(deploySteps), Name: name, Status: status, Detail: detail, Duration: time.Since(t)}
		if err != nil {
			s.Status, s.Detail = "failed", err.Error()
		}
		r.Steps = append(r.Steps, s)
		if o.Progress != nil {
			o.Progress(s)
		}
		if err != nil {
			return &StepError{Step: name, Err: err}
		}
		return nil
	}
	out := func(line string) {
		if o.Out != nil {
			fmt.Fprintln(o.Out, "    "+line)
		}
	}
	local := IsLocal(o.URL)

	if err := step("preflight", func() (string, string, error) {
		v, err := PodmanVersion(conn)
		if err != nil {
			return "", "", err
		}
		if err := c.NeedDomain(); err != nil {
			return "", "", err
		}
		if err := c.PlaceholderError(); err != nil {
			return "", "", err
		}
		if _, err := c.secretValues(); err != nil {
			return "", "", err
		}
		if _, err := c.IsisBinary(); err != nil && !c.PullsImage() {
			return "", "", err
		}
		if local {
			if be, _ := InspectContainer(conn, c.Backend.Name); be == nil || !be.Running {
				if err := portFree(c.Backend.Publish); err != nil {
					return "", "", fmt.Errorf("port %s is taken by another program: %v", c.Backend.Publish, unwrapOp(err))
				}
			}
		}
		return "ok", "podman " + v, nil
	}); err != nil {
		return r, unwrapConfig(err)
	}

	if o.DryRun {
		return r, dryRun(conn, c, o, r)
	}
	lock, err := AcquireLock(conn)
	if err != nil {
		return r, err
	}
	defer lock.Release()
	defer func() {
		res := "ok"
		switch {
		case r.RolledBack:
			res = "rolled back"
		case len(r.Steps) > 0 && r.Steps[len(r.Steps)-1].Status == "failed":
			res = "failed"
		}
		_ = AppendAudit(context.WithoutCancel(conn), AuditEntry{Time: start.UTC(), User: whoami(), Action: "deploy", Image: r.Image, ImageID: r.ImageID,
			Result: res, Duration: time.Since(start).Round(time.Millisecond).String()})
	}()

	if err := step("build", func() (string, string, error) {
		b, err := BuildOrPull(conn, c, o.Tag, local, o.Out)
		if err != nil {
			return "", "", err
		}
		r.Image, r.ImageID = b.Image, b.ID
		if b.Pulled {
			return "changed", b.Image + " (pulled, not built)", nil
		} else if c.PullsImage() {
			return "unchanged", b.Image + " (already on the host, not built)", nil
		}
		if !b.Built {
			return "unchanged", b.Image + " (same content, not rebuilt)", nil
		}
		return "changed", fmt.Sprintf("%s, %.1f MB", b.Image, float64(b.Size)/1e6), nil
	}); err != nil {
		return r, err
	}
	if err := step("network", func() (string, string, error) {
		nets, err := EnsureNetworks(conn, c)
		return changedIf(nets != nil && (nets[0].Created || nets[1].Created)), c.Network + ", " + c.EgressNetwork, err
	}); err != nil {
		return r, err
	}
	if err := step("secrets", func() (string, string, error) {
		secs, err := EnsureSecrets(conn, c, false)
		created := 0
		for _, s := range secs {
			if s.Created {
				created++
			}
		}
		return changedIf(created > 0), fmt.Sprintf("%d present, %d created", len(secs), created), err
	}); err != nil {
		return r, err
	}
	if err := step("render", func() (string, string, error) {
		files, err := Render(c, RenderOptions{Image: r.Image})
		if err != nil {
			return "", "", err
		}
		if err := CheckUnits(files, true); err != nil {
			return "", "", err
		}
		if !o.Install {
			return "ok", "units checked with quadlet (applied through the API)", nil
		}
		changed, err := WriteFiles(o.UnitsDir, files)
		return changedIf(len(changed) > 0), fmt.Sprintf("%d file(s) changed in %s", len(changed), o.UnitsDir), err
	}); err != nil {
		return r, err
	}
	current, _ := CurrentImage(conn, c)
	if err := step("migrate", func() (string, string, error) {
		if err := prepareHostDirs(c, local); err != nil {
			return "", "", err
		}
		if _, err := EnsurePostgres(ctx, conn, c); err != nil {
			return "", "", fmt.Errorf("postgres: %w", err)
		}
		var lines []string
		err := RunJob(conn, c, r.Image, func(l string) { lines = append(lines, l); out(l) }, "migrate")
		return "ok", lastLine(lines), err
	}); err != nil {
		return r, err
	}
	var action string
	if err := step("up", func() (string, string, error) {
		var err error
		action, r.Previous, err = EnsureBackend(ctx, conn, c, r.Image)
		if err != nil && current != "" {
			r.RolledBack = true
			r.Previous = current
		}
		return changedIf(action != "unchanged"), c.Backend.Name + " " + action, err
	}); err != nil {
		return r, rolledBack(err, r)
	}
	r.Changed = action != "unchanged"
	fail := func(err error) error {
		if r.Changed && current != "" && current != r.Image {
			if _, _, rerr := EnsureBackend(ctx, conn, c, current); rerr != nil {
				return fmt.Errorf("%w; rollback to %s failed too: %v", err, current, rerr)
			}
			r.RolledBack = true
			r.Previous = current
			return rolledBack(err, r)
		}
		return err
	}
	if err := step("wait healthy", func() (string, string, error) {
		return "ok", "", WaitHealthy(ctx, conn, c.Backend.Name, 60*time.Second, c.BackendSpec("").Health)
	}); err != nil {
		return r, fail(err)
	}
	if err := step("collectstatic", func() (string, string, error) {
		var lines []string
		err := RunJob(conn, c, r.Image, func(l string) { lines = append(lines, l); out(l) }, "collectstatic")
		return "ok", lastLine(lines), err
	}); err != nil {
		return r, fail(err)
	}
	if err := step("verify", func() (string, string, error) {
		vo := o.Verify
		vo.PublicURL = o.PublicURL
		vo.Remote = !local
		r.Verify = Verify(ctx, conn, c, vo)
		if !r.Verify.OK {
			var failed []string
			for _, ch := range r.Verify.Checks {
				if !ch.OK {
					failed = append(failed, ch.Name+": "+ch.Detail)
				}
			}
			return "", "", fmt.Errorf("%s", strings.Join(failed, "; "))
		}
		return "ok", fmt.Sprintf("%d checks passed", len(r.Verify.Checks)), nil
	}); err != nil {
		return r, fail(err)
	}
	r.Duration = time.Since(start)
	return r, nil
}

// rolledBack names the image a failed deploy went back to.
func rolledBack(err error, r *DeployResult) error {
	if !r.RolledBack {
		return err
	}
	var se *StepError
	if errors.As(err, &se) {
		se.RolledBack = r.Previous
		return se
	}
	return &StepError{Step: "deploy", Err: err, RolledBack: r.Previous}
}

// unwrapConfig lets a configuration problem (exit 2) or an unreachable
// Podman (exit 4) keep its own exit code rather than a step failure's.
func unwrapConfig(err error) error {
	var ce *ConfigError
	var ue *UnreachableError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &ue):
		return ue
	}
	return err
}

func unwrapOp(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

func changedIf(b bool) string {
	if b {
		return "changed"
	}
	return "unchanged"
}

func lastLine(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

// dryRun fills the plan and the unit diff, changing nothing.
func dryRun(conn context.Context, c *Config, o DeployOptions, r *DeployResult) error {
	dir, tag, err := StageContext(c)
	if err != nil {
		return err
	}
	defer removeAll(dir)
	if o.Tag != "" {
		tag = o.Tag
	}
	r.Image = c.BackendImage(tag)
	exists, _ := ImageExists(conn, r.Image)
	current, _ := CurrentImage(conn, c)
	r.Plan = append(r.Plan, fmt.Sprintf("build %s (%s)", r.Image, map[bool]string{true: "exists: no rebuild", false: "new"}[exists]))
	for _, n := range []string{c.Network, c.EgressNetwork} {
		r.Plan = append(r.Plan, "network "+n+": "+networkPlan(conn, n))
	}
	r.Plan = append(r.Plan, "secrets: create the missing ones", "render and check quadlet units",
		"migrate with "+r.Image+" in a one-off container on "+c.Network)
	if current == r.Image {
		r.Plan = append(r.Plan, "up: "+c.Backend.Name+" already runs "+r.Image+" (restart only if its specification changed)")
	} else {
		r.Plan = append(r.Plan, fmt.Sprintf("up: replace %s (%s) with %s after a candidate passes its health check", c.Backend.Name, orNone(current), r.Image))
	}
	r.Plan = append(r.Plan, "collectstatic", "verify")
	files, err := Render(c, RenderOptions{Image: r.Image})
	if err != nil {
		return err
	}
	dirUnits := o.UnitsDir
	if dirUnits == "" {
		dirUnits = DefaultUnitsDir()
	}
	r.UnitDiff = DiffUnits(dirUnits, files)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
