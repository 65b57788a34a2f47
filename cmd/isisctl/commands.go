package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/isis-project/isis/ops"
	"github.com/spf13/cobra"
)

func cmdContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// withPodman makes a RunE that loads the configuration, connects (in that
// order, so a bad file is exit 2 before Podman is tried), and runs f with a
// context that ends on SIGINT/SIGTERM.
func (f *factory) withPodman(run func(ctx, conn context.Context, c *ops.Config, args []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		ctx, cancel := cmdContext()
		defer cancel()
		c, conn, err := f.setup(ctx)
		if err != nil {
			return err
		}
		return run(ctx, conn, c, args)
	}
}

// setup loads the configuration and connects, in that order.
func (f *factory) setup(ctx context.Context) (*ops.Config, context.Context, error) {
	c, err := f.Config()
	if err != nil {
		return nil, nil, err
	}
	conn, err := f.Podman(ctx)
	return c, conn, err
}

func newInitCmd(f *factory) *cobra.Command {
	var domain string
	var force bool
	cmd := &cobra.Command{
		Use:     "init",
		Short:   "Write a starter isisctl.yaml with changeme-* placeholders and comments",
		Example: "  isisctl init --domain api.example.com\n  isisctl init --config /etc/isisctl.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := f.configPath
			if path == "" {
				path = "isisctl.yaml"
			}
			if _, err := os.Stat(path); err == nil && !force {
				return usageError{fmt.Errorf("%s exists; pass --force to overwrite", path)}
			}
			b, err := ops.StarterConfig(domain)
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				return err
			}
			f.print(map[string]string{"written": path}, func(w io.Writer) {
				fmt.Fprintf(w, "Wrote %s: replace every changeme-* value, then run isisctl deploy --dry-run.\n", path)
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&domain, "domain", "api.example.com", "the public host name")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

func newBuildCmd(f *factory) *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:     "build",
		Short:   "Build and tag the backend image through the API, streaming the build output",
		Example: "  isisctl build\n  isisctl build --tag v1.4.0",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			var out io.Writer = f.io.Out
			if f.output == "json" {
				out = f.io.ErrOut
			}
			start := time.Now()
			r, err := ops.BuildImage(conn, c, tag, out)
			if err != nil {
				return err
			}
			f.print(r, func(w io.Writer) {
				verb := "Built"
				if !r.Built {
					verb = "Up to date:"
				}
				fmt.Fprintf(w, "%s %s (%s, %.1f MB) in %s\n", verb, r.Image, shortID(r.ID), float64(r.Size)/1e6, time.Since(start).Round(time.Millisecond))
			})
			return nil
		}),
	}
	cmd.Flags().StringVar(&tag, "tag", "", "image tag (default: a digest of the image's content)")
	return cmd
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func newNetworkCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "network",
		Short:   "Create the private (internal) and egress networks if missing; never recreate one in use",
		Example: "  isisctl network",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			nets, err := ops.EnsureNetworks(conn, c)
			if err != nil {
				return err
			}
			f.print(nets, func(w io.Writer) {
				for _, n := range nets {
					state := "exists"
					if n.Created {
						state = "created"
					}
					fmt.Fprintf(w, "network %s: %s (internal %v, DNS %v)\n", n.Name, state, n.Internal, n.DNS)
				}
			})
			return nil
		}),
	}
}

func newSecretsCmd(f *factory) *cobra.Command {
	var rotate bool
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Create the missing Podman secrets from the configuration (values, *_file or ISISCTL_SECRETS_*)",
		Example: "  ISISCTL_SECRETS_SECRET_KEY=$(openssl rand -base64 48) isisctl secrets\n" +
			"  isisctl secrets --rotate",
		Args: cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			res, err := ops.EnsureSecrets(conn, c, rotate)
			if err != nil {
				return err
			}
			f.print(res, func(w io.Writer) {
				for _, s := range res {
					state := "exists"
					switch {
					case s.Rotated:
						state = "rotated (restart the containers to use it)"
					case s.Created:
						state = "created"
					}
					fmt.Fprintf(w, "secret %s: %s\n", s.Name, state)
				}
			})
			return nil
		}),
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace existing secrets with the configured values")
	return cmd
}

func newRenderCmd(f *factory) *cobra.Command {
	var out, tag string
	var check, allow, system bool
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render the quadlet units and reverse-proxy snippets from templates/",
		Example: "  isisctl render --check --out ./units\n" +
			"  isisctl render            # to ~/.config/containers/systemd (or /etc/containers/systemd as root)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.Config()
			if err != nil {
				return err
			}
			if !allow {
				if err := c.PlaceholderError(); err != nil {
					return err
				}
			}
			if out == "" {
				out = unitsDir(c)
			}
			files, err := ops.Render(c, ops.RenderOptions{Image: c.BackendImage(firstNonEmpty(tag, c.Backend.Tag)), System: system})
			if err != nil {
				return err
			}
			if check {
				if err := ops.CheckUnits(files, !system); err != nil {
					return err
				}
			}
			changed, err := ops.WriteFiles(out, files)
			if err != nil {
				return err
			}
			f.print(map[string]any{"dir": out, "files": files, "changed": changed, "checked": check}, func(w io.Writer) {
				for _, fl := range files {
					fmt.Fprintf(w, "%s\n", filepath.Join(out, fl.Name))
				}
				if check {
					fmt.Fprintln(w, "All units pass Podman's quadlet conversion.")
				}
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output directory (default: the quadlet directory for this user)")
	cmd.Flags().StringVar(&tag, "tag", "", "backend image tag (default backend.tag, else latest)")
	cmd.Flags().BoolVar(&check, "check", false, "convert each unit with Podman's quadlet code; fail on any error or unknown key")
	cmd.Flags().BoolVar(&allow, "allow-placeholders", false, "render even with changeme-* values")
	cmd.Flags().BoolVar(&system, "system", os.Geteuid() == 0, "units for the system manager (multi-user.target)")
	return cmd
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func unitsDir(c *ops.Config) string {
	if c.Units.Dir != "" {
		return c.Units.Dir
	}
	return ops.DefaultUnitsDir()
}

func newUpCmd(f *factory) *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:     "up",
		Short:   "Apply the deployment directly through the API (hosts without a systemd user session, CI)",
		Example: "  isisctl up\n  isisctl up --tag c0ffee123456",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			if err := c.PlaceholderError(); err != nil {
				return err
			}
			image, err := targetImage(conn, c, tag)
			if err != nil {
				return err
			}
			r, err := ops.Up(ctx, conn, c, image, ops.IsLocal(f.URL()))
			if err != nil {
				f.printFailure(r)
				return err
			}
			f.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %s\n%s: %s (%s)\n", c.Postgres.Name, r.Postgres, c.Backend.Name, r.Backend, r.Image)
			})
			return nil
		}),
	}
	cmd.Flags().StringVar(&tag, "tag", "", "backend image tag (default: what the backend runs, else backend.tag, else latest)")
	return cmd
}

// targetImage picks the image for up/migrate: --tag, backend.tag, the running
// backend's image, or :latest; it must exist.
func targetImage(conn context.Context, c *ops.Config, tag string) (string, error) {
	image := ""
	switch {
	case tag != "":
		image = c.BackendImage(tag)
	case c.Backend.Tag != "":
		image = c.BackendImage(c.Backend.Tag)
	default:
		if cur, _ := ops.CurrentImage(conn, c); cur != "" {
			image = cur
		} else {
			image = c.BackendImage("latest")
		}
	}
	ok, err := ops.ImageExists(conn, image)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("image %s is missing on the host: run isisctl build", image)
	}
	return image, nil
}

func newInstallCmd(f *factory) *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:     "install",
		Short:   "Write the quadlet units, then systemctl daemon-reload and enable --now when systemd is there",
		Example: "  isisctl install",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.Config()
			if err != nil {
				return err
			}
			if err := c.PlaceholderError(); err != nil {
				return err
			}
			system := os.Geteuid() == 0
			files, err := ops.Render(c, ops.RenderOptions{Image: c.BackendImage(firstNonEmpty(tag, c.Backend.Tag)), System: system})
			if err != nil {
				return err
			}
			if err := ops.CheckUnits(files, !system); err != nil {
				return err
			}
			dir := unitsDir(c)
			if _, err := ops.WriteFiles(dir, files); err != nil {
				return err
			}
			fmt.Fprintf(f.io.Out, "Units written to %s.\n", dir)
			scope := []string{"--user"}
			if system {
				scope = nil
			}
			if _, err := os.Stat("/run/systemd/system"); err != nil {
				fmt.Fprintf(f.io.Out, "systemd is not running here: start the deployment with `isisctl up`, or on a systemd host run:\n"+
					"  systemctl %s daemon-reload && systemctl %s start %s\n", strings.Join(scope, " "), strings.Join(scope, " "),
					strings.TrimSuffix(c.Backend.Name, "")+".service")
				return nil
			}
			if err := ops.PrepareUnitHostDirs(c); err != nil {
				return err
			}
			for _, args := range [][]string{append(scope, "daemon-reload"), append(scope, "start", c.Network+"-postgres.service", c.Backend.Name+".service")} {
				out, err := exec.Command("systemctl", args...).CombinedOutput()
				if err != nil {
					return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
				}
			}
			fmt.Fprintln(f.io.Out, "Services started (quadlet units are enabled through their [Install] section).")
			return nil
		},
	}
	cmd.Flags().StringVar(&tag, "tag", "", "backend image tag")
	return cmd
}

// newMigrateCmd makes `migrate` and `collectstatic`: `isis NAME` in a one-off
// container of the target image, or with --exec in the running backend.
func newMigrateCmd(f *factory, name string) *cobra.Command {
	var tag string
	var inRunning bool
	what := map[string]string{"migrate": "database migrations", "collectstatic": "static asset sync"}[name]
	cmd := &cobra.Command{
		Use:     name,
		Short:   fmt.Sprintf("Run the %s (isis %s) in a one-off container of the target image on the private network", what, name),
		Example: fmt.Sprintf("  isisctl %s\n  isisctl %s --tag c0ffee123456\n  isisctl %s --exec", name, name, name),
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			print := func(l string) { fmt.Fprintln(f.io.Out, l) }
			if inRunning {
				code, err := ops.Exec(conn, c.Backend.Name, []string{"/isis", name}, f.io.Out)
				if err != nil {
					return err
				}
				if code != 0 {
					return fmt.Errorf("isis %s exited with code %d", name, code)
				}
				return nil
			}
			image, err := targetImage(conn, c, tag)
			if err != nil {
				return err
			}
			if name == "migrate" {
				if _, err := ops.EnsureNetworks(conn, c); err != nil {
					return err
				}
				if _, err := ops.EnsurePostgres(ctx, conn, c); err != nil {
					return err
				}
			}
			return ops.RunJob(conn, c, image, print, name)
		}),
	}
	cmd.Flags().StringVar(&tag, "tag", "", "image tag to run (default: the running backend's)")
	cmd.Flags().BoolVar(&inRunning, "exec", false, "run inside the running backend instead")
	return cmd
}

func newVerifyCmd(f *factory) *cobra.Command {
	var public string
	cmd := &cobra.Command{
		Use:     "verify",
		Short:   "Smoke-test the deployment: every check printed as pass/fail; exit 0 only if all pass",
		Example: "  isisctl verify\n  isisctl verify --public-url https://api.example.com",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			if err := c.NeedDomain(); err != nil {
				return err
			}
			r := ops.Verify(ctx, conn, c, ops.VerifyOptions{PublicURL: public, Remote: !ops.IsLocal(f.URL())})
			f.print(r, func(w io.Writer) { printChecks(w, r) })
			if !r.OK {
				var failed []string
				for _, ch := range r.Checks {
					if !ch.OK {
						failed = append(failed, ch.Name)
					}
				}
				f.jsonErrorPrinted = true
				return &ops.VerifyFailedError{Failed: failed}
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&public, "public-url", "", "also check the API through the reverse proxy (HTTPS, certificate verified)")
	return cmd
}

func printChecks(w io.Writer, r *ops.VerifyResult) {
	for _, ch := range r.Checks {
		mark := "PASS"
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s: %s\n", mark, ch.Name, ch.Detail)
	}
}

func newDeployCmd(f *factory) *cobra.Command {
	var o ops.DeployOptions
	cmd := &cobra.Command{
		Use:     "deploy",
		Short:   "preflight, build, network, secrets, render, migrate, up, wait healthy, collectstatic, verify; rolls back on failure",
		Example: "  isisctl deploy --dry-run\n  isisctl deploy\n  isisctl deploy --public-url https://api.example.com",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			o.URL = f.URL()
			if o.Install && o.UnitsDir == "" {
				o.UnitsDir = unitsDir(c)
			}
			if f.output == "text" {
				o.Progress = func(s ops.Step) {
					detail := ""
					if s.Detail != "" {
						detail = ": " + s.Detail
					}
					fmt.Fprintf(f.io.Out, "[%d/%d] %-13s %-9s %7s%s\n", s.N, s.Total, s.Name, s.Status, s.Duration.Round(time.Millisecond), detail)
				}
				if f.verbose {
					o.Out = f.io.Out
				}
			}
			start := time.Now()
			r, err := ops.Deploy(ctx, conn, c, o)
			if err != nil {
				f.printFailure(r)
				return err
			}
			f.print(r, func(w io.Writer) {
				if o.DryRun {
					fmt.Fprintln(w, "Plan (dry run, nothing changed):")
					for i, p := range r.Plan {
						fmt.Fprintf(w, "  %d. %s\n", i+1, p)
					}
					fmt.Fprintf(w, "Units (%s):\n%s", firstNonEmpty(o.UnitsDir, unitsDir(c)), r.UnitDiff)
					return
				}
				state := "deployed"
				if !r.Changed {
					state = "already up to date; nothing restarted"
				}
				fmt.Fprintf(w, "%s %s in %s\n", r.Image, state, time.Since(start).Round(time.Millisecond))
			})
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.DryRun, "dry-run", false, "print the plan and the unit diff; change nothing")
	fl.StringVar(&o.Tag, "tag", "", "image tag (default: a digest of the image's content)")
	fl.StringVar(&o.PublicURL, "public-url", "", "verify through the reverse proxy too")
	fl.BoolVar(&o.Install, "install", false, "also write the quadlet units to the units directory")
	fl.StringVar(&o.UnitsDir, "units-dir", "", "where units go (default: the quadlet directory for this user)")
	return cmd
}

func newRollbackCmd(f *factory) *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:     "rollback",
		Short:   "Put the backend back on its previous image (or --to TAG)",
		Example: "  isisctl rollback\n  isisctl rollback --to c0ffee123456",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			start := time.Now()
			target := c.BackendImage(tag)
			if tag == "" {
				prev, err := ops.PreviousImage(conn, c)
				if err != nil {
					return err
				}
				target = prev
			}
			lock, err := ops.AcquireLock(conn)
			if err != nil {
				return err
			}
			defer lock.Release()
			action, _, err := ops.EnsureBackend(ctx, conn, c, target)
			res := "ok"
			if err != nil {
				res = "failed"
			}
			_ = ops.AppendAudit(conn, ops.AuditEntry{Time: start.UTC(), User: ops.WhoAmI(), Action: "rollback", Image: target, Result: res,
				Duration: time.Since(start).Round(time.Millisecond).String()})
			if err != nil {
				return err
			}
			f.print(map[string]string{"image": target, "backend": action}, func(w io.Writer) {
				fmt.Fprintf(w, "%s now runs %s (%s)\n", c.Backend.Name, target, action)
			})
			return nil
		}),
	}
	cmd.Flags().StringVar(&tag, "to", "", "the tag to go back to (default: the image before the current one)")
	return cmd
}

func newStatusCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the containers, networks and the last deploys from the audit trail",
		Example: "  isisctl status\n  isisctl status -o json",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			var sts []*ops.ContainerState
			for _, n := range []string{c.Postgres.Name, c.Backend.Name} {
				st, err := ops.InspectContainer(conn, n)
				if err != nil {
					return err
				}
				sts = append(sts, st)
			}
			audit, err := ops.ReadAudit(conn, 10)
			if err != nil {
				return err
			}
			f.print(map[string]any{"containers": sts, "audit": audit}, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CONTAINER\tSTATE\tHEALTH\tIMAGE\tPUBLISHED")
				for _, st := range sts {
					state := "missing"
					if st.Exists {
						state = map[bool]string{true: "running", false: "stopped"}[st.Running]
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", st.Name, state, firstNonEmpty(st.Health, "-"), firstNonEmpty(st.Image, "-"), firstNonEmpty(strings.Join(st.Published, ","), "-"))
				}
				tw.Flush()
				fmt.Fprintln(w, "\nLast deploys (audit trail on the host):")
				if len(audit) == 0 {
					fmt.Fprintln(w, "  none")
				}
				for _, e := range audit {
					fmt.Fprintf(w, "  %s  %-8s %-11s %s  %s by %s\n", e.Time.Format(time.RFC3339), e.Action, e.Result, e.Image, e.Duration, e.User)
				}
			})
			return nil
		}),
	}
}

func newLogsCmd(f *factory) *cobra.Command {
	var follow bool
	var tail string
	cmd := &cobra.Command{
		Use:     "logs [SERVICE]",
		Short:   "Show a container's logs: backend (default) or postgres",
		Example: "  isisctl logs\n  isisctl logs -f postgres",
		Args:    cobra.MaximumNArgs(1),
		RunE: f.withPodman(func(ctx, conn context.Context, c *ops.Config, args []string) error {
			name := c.Backend.Name
			if len(args) == 1 {
				switch args[0] {
				case "backend", c.Backend.Name:
				case "postgres", "db", c.Postgres.Name:
					name = c.Postgres.Name
				default:
					return usageError{fmt.Errorf("unknown service %q: use backend or postgres", args[0])}
				}
			}
			lines := make(chan string, 100)
			done := make(chan error, 1)
			go func() {
				done <- containers.Logs(conn, name, new(containers.LogOptions).WithStdout(true).WithStderr(true).WithFollow(follow).WithTail(tail), lines, lines)
				close(lines)
			}()
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						err := <-done
						if err != nil && !errors.Is(err, context.Canceled) {
							return fmt.Errorf("logs of %s: %w", name, err)
						}
						return nil
					}
					fmt.Fprint(f.io.Out, l)
					if !strings.HasSuffix(l, "\n") {
						fmt.Fprintln(f.io.Out)
					}
				case <-ctx.Done():
					return nil
				}
			}
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log")
	cmd.Flags().StringVar(&tail, "tail", "100", "lines from the end (all for everything)")
	return cmd
}
