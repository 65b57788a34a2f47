package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/deploy"
	"github.com/isis-project/isis/ops/steps"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type deployOptions struct {
	f     *factory
	Image string
	deploy.Options
}

func newDeployCmd(f *factory) *cobra.Command {
	opts := &deployOptions{f: f}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: strings.Join(deploy.StepNames(), ", ") + "; rolls back on failure",
		Long: "Deploy the configured backend, step by step:\n\n" + deploy.Help() +
			"\nWhen a step after up fails, the backend goes back to its previous image, as gaplessly as it came.",
		Example: "  isisctl deploy --dry-run\n  isisctl deploy\n  isisctl deploy --public-url https://api.example.com",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return deployRun(ctx, conn, c, opts)
		}),
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and the unit diff; change nothing")
	fl.StringVar(&opts.Tag, "tag", "", "image tag (default: a digest of the image's content)")
	fl.StringVar(&opts.PublicURL, "public-url", "", "verify through the reverse proxy too")
	fl.BoolVar(&opts.Install, "install", false, "also write the quadlet units to the units directory")
	fl.StringVar(&opts.UnitsDir, "units-dir", "", "where units go (default: the quadlet directory for this user)")
	fl.StringVar(&opts.Image, "image", "", imageFlagHelp+"; skips the build")
	return cmd
}

func deployRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *deployOptions) error {
	f := opts.f
	o := opts.Options
	o.URL = f.URL()
	if err := f.useImage(c, opts.Image); err != nil {
		return err
	}
	// The units deploy renders name its image: never a moving :latest.
	if image := c.BackendImage(o.Tag); o.Tag != "" && !config.IsPinnedRef(image) {
		return &config.UnpinnedImageError{Image: image}
	}
	if o.Install && o.UnitsDir == "" {
		o.UnitsDir = unitsDir(c)
	}
	if f.output == "text" {
		o.Progress = func(s steps.Step) { printStep(f.io.Out, s) }
		if f.verbose {
			o.Out = f.io.Out
		}
	}
	start := time.Now()
	r, err := deploy.Run(ctx, conn, c, o)
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
}

// printStep prints one step of a multi-step operation.
func printStep(w io.Writer, s steps.Step) { fmt.Fprintln(w, s.String()) }
