package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/drill"
	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type drillOptions struct {
	f         *factory
	PublicURL string
	Bound     string
	Yes       bool
}

func newDrillCmd(f *factory) *cobra.Command {
	opts := &drillOptions{f: f}
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Crash drill: SIGKILL the backend, then PostgreSQL; time the way back through the proxy; no acknowledged write may be lost",
		Long: "Kills slot A's process and then PostgreSQL's as a crash would (SIGKILL from a one-off helper, not podman kill,\n" +
			"which Podman takes for a user's stop and does not restart), and times, for each, until the container runs\n" +
			"again, passes its health check and GET /api/ready/ answers 200 through the reverse proxy. Before each crash a\n" +
			"test user's profile is written through the proxy (an acknowledged 200); after it, the write must be there.\n" +
			"The test user is deleted at the end; the drill goes to the audit trail. Exit 3 when a crash took longer than\n" +
			"--bound or a write was lost. A deployment that serves traffic is refused without --yes.",
		Example: "  isisctl drill --yes\n  isisctl drill --public-url https://api.example.com --bound 20s --yes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The flags first: a bad one is exit 2 before Podman is tried.
			bound, err := parseBound(opts.Bound)
			if err != nil {
				return err
			}
			if err := drill.CheckOptions(drill.Options{PublicURL: opts.PublicURL, Bound: bound}); err != nil {
				return err
			}
			return f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
				return drillRun(ctx, conn, c, bound, opts)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&opts.PublicURL, "public-url", "", "the reverse proxy the drill writes and probes through (default https://<domain>; http:// only on loopback)")
	cmd.Flags().StringVar(&opts.Bound, "bound", drill.DefaultBound.String(), "how long each crash may take to recover (exit 3 past it)")
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "run it on a deployment that serves traffic")
	return cmd
}

func drillRun(ctx context.Context, conn podman.Engine, c *config.Config, bound time.Duration, opts *drillOptions) error {
	f := opts.f
	r, err := drill.Run(ctx, conn, c, drill.Options{PublicURL: opts.PublicURL, Bound: bound, Yes: opts.Yes, Progress: f.progressTo()})
	var refused *drill.RefusedError
	if errors.As(err, &refused) {
		return usageError{err}
	}
	if r == nil {
		return err
	}
	f.print(r, func(w io.Writer) {
		if r.OK {
			var figures []string
			for _, p := range r.Phases {
				figures = append(figures, p.Name+" "+p.Recovered)
			}
			fmt.Fprintf(w, "drill passed: every crash recovered within %s (%s), no acknowledged write lost\n", r.Bound, strings.Join(figures, ", "))
		}
	})
	if err != nil {
		f.jsonErrorPrinted = f.output == "json"
	}
	return err
}

// parseBound reads --bound: a Go duration ("30s", "1m").
func parseBound(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usageError{fmt.Errorf("--bound %q is not a positive duration like 30s", s)}
	}
	return d, nil
}
