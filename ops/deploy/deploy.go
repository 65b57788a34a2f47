package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/backup"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/render"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/ops/steps"
	"github.com/isis-project/isis/ops/verify"
)

// Options tune a deploy.
type Options struct {
	URL       string // the Podman URL (local hosts get host-side checks)
	Tag       string
	DryRun    bool
	PublicURL string
	Install   bool   // write quadlet units and use systemd (else: up through the API)
	UnitsDir  string // with Install
	Out       io.Writer
	Progress  steps.Progress
	Verify    verify.Options
}

// Result reports a deploy.
type Result struct {
	Image      string         `json:"image"`
	ImageID    string         `json:"image_id,omitempty"`
	Previous   string         `json:"previous_image,omitempty"`
	Changed    bool           `json:"changed"`
	RolledBack bool           `json:"rolled_back"`
	Steps      []steps.Step   `json:"steps"`
	Verify     *verify.Result `json:"verify,omitempty"`
	Plan       []string       `json:"plan,omitempty"`
	UnitDiff   string         `json:"unit_diff,omitempty"`
	Duration   time.Duration  `json:"duration_ns"`
}

// deployRun is the state one deploy's steps share.
type deployRun struct {
	ctx         context.Context
	conn        podman.Engine
	c           *config.Config
	o           Options
	r           *Result
	local       bool
	current     string         // the image the backend ran before this deploy
	action      string         // what the up step did to the backend
	upToDate    bool           // both slots already run this image as configured
	sameContent bool           // slot A ran this image's content before (under this tag or another)
	ready       *error         // slot A's /api/ready/ before the deploy changed anything (readyOK)
	dropped     chan struct{}  // closed once the old containers are removed (joinDrop)
	backup      *backup.Result // taken before this deploy's migrations, if any
}

func (d *deployRun) out(line string) {
	if d.o.Out != nil {
		fmt.Fprintln(d.o.Out, "    "+line)
	}
}

// Step is one step of a deploy, a value in the ordered table that the
// flow, the dry-run plan and the command's help all read.
type Step = steps.Def[*deployRun]

// Steps is the deploy, in order.
var Steps = []Step{
	{Name: "preflight", Summary: "Podman reachable, configuration complete, ports free", Run: stepPreflight},
	{Name: "build", Summary: "build the image (nothing when its content is unchanged)", Plan: planBuild, Run: stepBuild},
	{Name: "network", Summary: "create the private and egress networks if missing", Plan: planNetwork, Run: stepNetwork},
	{Name: "secrets", Summary: "create the missing Podman secrets", Run: stepSecrets},
	{Name: "render", Summary: "render the quadlet units and check them with Podman's quadlet code", Run: stepRender},
	{Name: "migrate", Summary: "create or maintain the database's owner and application roles, then migrate with the new image in a one-off container as the owner role, before anything is replaced (a database backup first, when backup.dir or backup.s3_prefix is set and migrations are pending)", Plan: planMigrate, Run: stepMigrate},
	{Name: "up", Summary: "replace slot B, prove it, then drain and replace slot A (gapless)", Plan: planUp, Run: stepUp, Undo: undoUp},
	{Name: "wait healthy", Summary: "both slots healthy", Run: stepWaitHealthy},
	{Name: "collectstatic", Summary: "sync the static files", Run: stepCollectstatic},
	{Name: "verify", Summary: "the smoke test of isisctl verify", Run: stepVerify},
}

// StepNames are the steps' names, in order.
func StepNames() []string { return steps.Names(Steps) }

// Help describes the steps, one line each, for the command's help.
func Help() string { return steps.Help(Steps, 2) }

// Deploy runs Steps in order; when one fails, the steps before it are
// undone newest first (the backend goes back to its previous image, as
// gaplessly as it came). With DryRun it runs preflight and prints the plan.
func Run(ctx context.Context, conn podman.Engine, c *config.Config, o Options) (*Result, error) {
	start := time.Now()
	d := &deployRun{ctx: ctx, conn: conn, c: c, o: o, r: &Result{}, local: host.IsLocal(o.URL)}
	r := d.r
	run := &steps.Runner[*deployRun]{Table: Steps, State: d, Rec: &r.Steps, Progress: o.Progress}
	if err := run.Run(0, 0); err != nil {
		return r, unwrapConfig(err)
	}
	if o.DryRun {
		return r, dryRun(d)
	}
	lock, err := audit.AcquireLock(conn)
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
		_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "deploy", Image: r.Image, ImageID: r.ImageID,
			Result: res, Duration: time.Since(start).Round(time.Millisecond).String()})
	}()
	// Steps after preflight that fail undo the ones before them, newest first.
	err = run.Run(1, len(Steps)-1)
	d.joinDrop()
	if err != nil {
		if ue := (*steps.UndoError)(nil); errors.As(err, &ue) {
			return r, err
		}
		if d.backup != nil {
			err = fmt.Errorf("%w (the database was backed up before the migrations: %s)", err, d.backup.RestoreHint())
		}
		return r, rolledBack(err, r)
	}
	r.Duration = time.Since(start)
	return r, nil
}

func stepPreflight(d *deployRun) (string, string, error) {
	c := d.c
	v, err := d.conn.Version()
	if err != nil {
		return "", "", err
	}
	if err := c.NeedDomain(); err != nil {
		return "", "", err
	}
	if err := c.PlaceholderError(); err != nil {
		return "", "", err
	}
	if _, err := c.SecretValues(); err != nil {
		return "", "", err
	}
	if _, err := c.IsisBinary(); err != nil && !c.PullsImage() {
		return "", "", err
	}
	if d.local {
		for _, sl := range c.Slots() {
			if be, _ := d.conn.Inspect(sl.Name); be == nil || !be.Running {
				if err := host.PortFree(sl.Addr.String()); err != nil {
					return "", "", fmt.Errorf("port %s (for %s) is taken by another program: %v", sl.Addr, sl.Name, unwrapOp(err))
				}
			}
		}
	}
	return "ok", "podman " + v, nil
}

func stepBuild(d *deployRun) (string, string, error) {
	b, err := image.BuildOrPull(d.conn, d.c, d.o.Tag, d.local, d.o.Out)
	if err != nil {
		return "", "", err
	}
	d.r.Image, d.r.ImageID = b.Image, b.ID
	switch {
	case b.Pulled:
		return "changed", b.Image + " (pulled, not built)", nil
	case d.c.PullsImage():
		return "unchanged", b.Image + " (already on the host, not built)", nil
	}
	if b.Tagged {
		return "changed", b.Image + " (same content as an earlier build: tagged, not rebuilt)", nil
	}
	if !b.Built {
		return "unchanged", b.Image + " (same content, not rebuilt)", nil
	}
	return "changed", fmt.Sprintf("%s, %.1f MB", b.Image, float64(b.Size)/1e6), nil
}

func stepNetwork(d *deployRun) (string, string, error) {
	nets, err := host.EnsureNetworks(d.conn, d.c)
	return changedIf(nets != nil && (nets[0].Created || nets[1].Created)), d.c.Network + ", " + d.c.EgressNetwork, err
}

func stepSecrets(d *deployRun) (string, string, error) {
	secs, err := host.EnsureSecrets(d.conn, d.c, false)
	created := 0
	for _, s := range secs {
		if s.Created {
			created++
		}
	}
	return changedIf(created > 0), fmt.Sprintf("%d present, %d created", len(secs), created), err
}

func stepRender(d *deployRun) (string, string, error) {
	files, err := render.Render(d.c, render.Options{Image: d.r.Image})
	if err != nil {
		return "", "", err
	}
	if err := render.CheckUnits(files, true); err != nil {
		return "", "", err
	}
	if !d.o.Install {
		return "ok", "units checked with quadlet (applied through the API)", nil
	}
	changed, err := render.WriteFiles(d.o.UnitsDir, files)
	return changedIf(len(changed) > 0), fmt.Sprintf("%d file(s) changed in %s", len(changed), d.o.UnitsDir), err
}

func stepMigrate(d *deployRun) (string, string, error) {
	d.current, _ = image.Current(d.conn, d.c)
	if err := host.PrepareHostDirs(d.c, d.local); err != nil {
		return "", "", err
	}
	pg, waitPG, err := host.StartPostgres(d.ctx, d.conn, d.c)
	if err != nil {
		return "", "", fmt.Errorf("postgres: %w", err)
	}
	// A PostgreSQL left running as it was is proven by slot A's /api/ready/
	// (a query) when that answers; its health check, an exec, is the proof
	// otherwise.
	if waitPG != nil && (pg != "unchanged" || d.readyOK() != nil) {
		if err := waitPG(); err != nil {
			return "", "", fmt.Errorf("postgres: %w", err)
		}
	}
	// The owner and application roles, before anything connects as them
	// (a deployment from before them is converted here).
	if _, err := host.EnsureRoles(d.conn, d.c); err != nil {
		return "", "", err
	}
	// A deploy that changes nothing runs no job: the backend already runs
	// this image and says no migration is pending.
	d.upToDate = pg == "unchanged" && BackendUpToDate(d.conn, d.c, d.r.Image)
	if d.upToDate && d.readyOK() == nil {
		return "unchanged", "the backend runs this image; no migration pending", nil
	}
	d.sameContent = runsContent(d.conn, d.c, d.r.ImageID)
	if pg == "unchanged" && d.sameContent && d.readyOK() == nil {
		return "unchanged", "slot A runs this image's content (another tag); no migration pending", nil
	}
	// With a backup target, the database is dumped first when the new image
	// brings migrations it lacks; a later failure names the backup and the
	// command that restores it.
	b, why, err := backup.BeforeMigrate(d.ctx, d.conn, d.c, d.r.Image, d.out)
	if err != nil {
		return "", "", fmt.Errorf("backup before migrating: %w", err)
	}
	if b != nil {
		d.backup = b
		d.out("backup: " + why)
	}
	var lines []string
	err = host.RunJob(d.conn, d.c, d.r.Image, func(l string) { lines = append(lines, l); d.out(l) }, "migrate")
	return "ok", lastLine(lines), err
}

func stepUp(d *deployRun) (string, string, error) {
	var err error
	r := d.r
	var drop func()
	d.action, r.Previous, drop, err = switchSlots(d.ctx, d.conn, d.c, r.Image, !d.local)
	// The old containers are removed beside the steps after this one
	// (joinDrop waits for it before verify ends or anything is undone).
	done := make(chan struct{})
	go func() {
		defer close(done)
		drop()
	}()
	d.dropped = done
	if err != nil && d.current != "" {
		// EnsureBackend put the previous containers back itself.
		r.RolledBack = true
		r.Previous = d.current
	}
	r.Changed = err == nil && d.action != "unchanged"
	return changedIf(d.action != "unchanged"), d.c.Backend.Name + " " + d.action, err
}

// undoUp puts the backend back on the image it ran before the deploy.
func undoUp(d *deployRun) error {
	d.joinDrop()
	r := d.r
	if !r.Changed || d.current == "" || d.current == r.Image {
		return nil
	}
	if _, _, err := EnsureBackend(d.ctx, d.conn, d.c, d.current, !d.local); err != nil {
		return fmt.Errorf("rollback to %s: %w", d.current, err)
	}
	r.RolledBack = true
	r.Previous = d.current
	return nil
}

// joinDrop waits until the old containers the switch left are removed.
func (d *deployRun) joinDrop() {
	if d.dropped != nil {
		<-d.dropped
	}
}

// readyOK asks slot A's /api/ready/ (on its port, or inside it on a remote
// host), once: the migrate step's questions all come before anything changes.
func (d *deployRun) readyOK() error {
	if d.ready == nil {
		err := d.askReady()
		d.ready = &err
	}
	return *d.ready
}

func (d *deployRun) askReady() error {
	sl := d.c.Slots()[0]
	if !d.local {
		return verify.ExecCheckIn(d.conn, d.c, sl.Name, "GET", "/api/ready/", verify.ReadyOK)
	}
	return verify.HTTPCheck(d.ctx, &http.Client{Timeout: 5 * time.Second}, "GET", "http://"+sl.Addr.String()+"/api/ready/", d.c.Domain, verify.ReadyOK)
}

func stepWaitHealthy(d *deployRun) (string, string, error) {
	if d.action == "unchanged" {
		return "ok", "unchanged; verify checks both slots", nil
	}
	slots := d.c.Slots()
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, sl := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitHealthy(d.ctx, d.conn, sl, spec.Backend(d.c, "").Health, !d.local)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", "", err
	}
	return "ok", "both slots", nil
}

func stepCollectstatic(d *deployRun) (string, string, error) {
	if d.upToDate && d.action == "unchanged" {
		return "unchanged", "the backend runs this image; its static files are in place", nil
	}
	if d.sameContent {
		return "unchanged", "slot A ran this image's content (another tag); its static files are in place", nil
	}
	// In slot A, which now runs the new image with the static files' mount:
	// no one-off container to create and remove.
	var buf strings.Builder
	code, err := podman.Exec(d.conn, d.c.Backend.Name, []string{"/isis", "collectstatic"}, &buf)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		lines = append(lines, l)
		d.out(l)
	}
	if err == nil && code != 0 {
		err = fmt.Errorf("isis collectstatic exited with code %d: %s", code, lastLine(lines))
	}
	return "ok", lastLine(lines), err
}

func stepVerify(d *deployRun) (string, string, error) {
	vo := d.o.Verify
	vo.PublicURL = d.o.PublicURL
	vo.Remote = !d.local
	vo.SlotHealthOverHTTP = true // as the switch proved them
	r := d.r
	r.Verify = verify.Run(d.ctx, d.conn, d.c, vo)
	d.joinDrop()
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
}

// rolledBack names the image a failed deploy went back to.
func rolledBack(err error, r *Result) error {
	if !r.RolledBack {
		return err
	}
	var se *steps.Error
	if errors.As(err, &se) {
		se.RolledBack = r.Previous
		return se
	}
	return &steps.Error{Step: "deploy", Err: err, RolledBack: r.Previous}
}

// unwrapConfig lets a configuration problem (exit 2) or an unreachable
// Podman (exit 4) keep its own exit code rather than a step failure's.
func unwrapConfig(err error) error {
	var ce *config.Error
	var ue *podman.UnreachableError
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

// dryRun fills the plan (one line per step after preflight, from the
// table) and the unit diff, changing nothing.
func dryRun(d *deployRun) error {
	c, o, r := d.c, d.o, d.r
	tag, err := image.ContentTag(c)
	if err != nil {
		return err
	}
	if o.Tag != "" {
		tag = o.Tag
	}
	r.Image = c.BackendImage(tag)
	d.current, _ = image.Current(d.conn, c)
	r.Plan = append(r.Plan, steps.Plans(Steps[1:], d)...)
	files, err := render.Render(c, render.Options{Image: r.Image})
	if err != nil {
		return err
	}
	dirUnits := o.UnitsDir
	if dirUnits == "" {
		dirUnits = render.DefaultUnitsDir()
	}
	r.UnitDiff = render.DiffUnits(dirUnits, files)
	return nil
}

func planBuild(d *deployRun) string {
	exists, _ := image.Exists(d.conn, d.r.Image)
	return fmt.Sprintf("%s (%s)", d.r.Image, map[bool]string{true: "exists: no rebuild", false: "new"}[exists])
}

func planNetwork(d *deployRun) string {
	return d.c.Network + " " + host.NetworkPlan(d.conn, d.c.Network) + ", " + d.c.EgressNetwork + " " + host.NetworkPlan(d.conn, d.c.EgressNetwork)
}

func planMigrate(d *deployRun) string {
	return "with " + d.r.Image + " in a one-off container on " + d.c.Network
}

func planUp(d *deployRun) string {
	if d.current == d.r.Image {
		return d.c.Backend.Name + " already runs " + d.r.Image + " (replaced only if its specification changed)"
	}
	sl := d.c.Slots()
	return fmt.Sprintf("%s (%s) to %s: %s first, proven by its health check and a smoke request, then %s", sl[0].Name,
		cmp.Or(d.current, "none"), d.r.Image, sl[1].Name, sl[0].Name)
}
