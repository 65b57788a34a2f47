package main

import (
	"context"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type logsOptions struct {
	f       *factory
	Service string
	host.LogsOptions
}

func newLogsCmd(f *factory) *cobra.Command {
	opts := &logsOptions{f: f}
	cmd := &cobra.Command{
		Use:     "logs [SERVICE]",
		Short:   "Show a container's logs: backend (default), standby (slot B) or postgres",
		Example: "  isisctl logs\n  isisctl logs -f postgres",
		Args:    cobra.MaximumNArgs(1),
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, args []string) error {
			if len(args) == 1 {
				opts.Service = args[0]
			}
			return logsRun(ctx, conn, c, opts)
		}),
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "follow the log")
	cmd.Flags().StringVar(&opts.Tail, "tail", "100", "lines from the end (all for everything)")
	return cmd
}

func logsRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *logsOptions) error {
	name, err := c.ServiceContainer(opts.Service)
	if err != nil {
		return usageError{err}
	}
	return host.Logs(ctx, conn, name, opts.LogsOptions, opts.f.io.Out)
}
