package main

import (
	"context"
	"fmt"
	"io"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type networkOptions struct{ f *factory }

func newNetworkCmd(f *factory) *cobra.Command {
	opts := &networkOptions{f: f}
	return &cobra.Command{
		Use:     "network",
		Short:   "Create the private (internal) and egress networks if missing; never recreate one in use",
		Example: "  isisctl network",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return networkRun(conn, c, opts)
		}),
	}
}

func networkRun(conn podman.Engine, c *config.Config, opts *networkOptions) error {
	nets, err := host.EnsureNetworks(conn, c)
	if err != nil {
		return err
	}
	opts.f.print(nets, func(w io.Writer) {
		for _, n := range nets {
			state := "exists"
			if n.Created {
				state = "created"
			}
			fmt.Fprintf(w, "network %s: %s (internal %v, DNS %v)\n", n.Name, state, n.Internal, n.DNS)
		}
	})
	return nil
}
