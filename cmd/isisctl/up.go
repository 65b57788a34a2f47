package main

import (
	"context"
	"fmt"
	"io"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/deploy"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type upOptions struct {
	f          *factory
	Tag, Image string
}

func newUpCmd(f *factory) *cobra.Command {
	opts := &upOptions{f: f}
	cmd := &cobra.Command{
		Use:     "up",
		Short:   "Apply the deployment directly through the API (hosts without a systemd user session, CI)",
		Example: "  isisctl up\n  isisctl up --tag c0ffee123456",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return upRun(ctx, conn, c, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "backend image tag (default: what the backend runs, else backend.tag, else latest)")
	cmd.Flags().StringVar(&opts.Image, "image", "", imageFlagHelp)
	return cmd
}

func upRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *upOptions) error {
	f := opts.f
	if err := c.PlaceholderError(); err != nil {
		return err
	}
	if err := f.useImage(c, opts.Image); err != nil {
		return err
	}
	img, err := image.Target(conn, c, opts.Tag)
	if err != nil {
		return err
	}
	r, err := deploy.Up(ctx, conn, c, img, host.IsLocal(f.URL()))
	if err != nil {
		f.printFailure(r)
		return err
	}
	f.print(r, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %s\n%s: %s (%s)\n", c.Postgres.Name, r.Postgres, c.Backend.Name, r.Backend, r.Image)
	})
	return nil
}
