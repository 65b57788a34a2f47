package main

import (
	"context"
	"fmt"
	"io"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/deploy"
	"github.com/isis-project/isis/ops/host"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type rollbackOptions struct {
	f  *factory
	To string
}

func newRollbackCmd(f *factory) *cobra.Command {
	opts := &rollbackOptions{f: f}
	cmd := &cobra.Command{
		Use:     "rollback",
		Short:   "Put the backend back on its previous image (or --to TAG), with the same gapless switch as a deploy",
		Example: "  isisctl rollback\n  isisctl rollback --to c0ffee123456",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return rollbackRun(ctx, conn, c, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.To, "to", "", "the tag to go back to (default: the image before the current one)")
	return cmd
}

func rollbackRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *rollbackOptions) error {
	r, err := deploy.Rollback(ctx, conn, c, deploy.RollbackOptions{To: opts.To, Remote: !host.IsLocal(opts.f.URL())})
	if err != nil {
		return err
	}
	opts.f.print(r, func(w io.Writer) {
		fmt.Fprintf(w, "%s now runs %s (%s)\n", c.Backend.Name, r.Image, r.Backend)
	})
	return nil
}
