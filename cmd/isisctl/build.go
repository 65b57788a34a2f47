package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type buildOptions struct {
	f    *factory
	Tag  string
	Push pushFlags
}

func newBuildCmd(f *factory) *cobra.Command {
	opts := &buildOptions{f: f}
	cmd := &cobra.Command{
		Use:     "build",
		Short:   "Build and tag the backend image through the API, streaming the build output",
		Example: "  isisctl build\n  isisctl build --tag v1.4.0",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return buildRun(conn, c, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "image tag (default: a digest of the image's content)")
	opts.Push.add(cmd)
	return cmd
}

func buildRun(conn podman.Engine, c *config.Config, opts *buildOptions) error {
	f := opts.f
	var out io.Writer = f.io.Out
	if f.output == "json" {
		out = f.io.ErrOut
	}
	start := time.Now()
	r, err := image.Build(conn, c, opts.Tag, out)
	if err != nil {
		return err
	}
	if opts.Push.push {
		return f.pushBuilt(conn, c, &opts.Push, r, out, start)
	}
	f.print(r, func(w io.Writer) {
		verb := "Built"
		if !r.Built {
			verb = "Up to date:"
		}
		fmt.Fprintf(w, "%s %s (%s, %.1f MB) in %s\n", verb, r.Image, shortID(r.ID), float64(r.Size)/1e6, time.Since(start).Round(time.Millisecond))
	})
	return nil
}
