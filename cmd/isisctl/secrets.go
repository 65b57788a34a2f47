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

type secretsOptions struct {
	f      *factory
	Rotate bool
}

func newSecretsCmd(f *factory) *cobra.Command {
	opts := &secretsOptions{f: f}
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Create the missing Podman secrets from the configuration (values, *_file or ISISCTL_SECRETS_*)",
		Example: "  ISISCTL_SECRETS_SECRET_KEY=$(openssl rand -base64 48) isisctl secrets\n" +
			"  isisctl secrets --rotate",
		Args: cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return secretsRun(conn, c, opts)
		}),
	}
	cmd.Flags().BoolVar(&opts.Rotate, "rotate", false, "replace existing secrets with the configured values")
	return cmd
}

func secretsRun(conn podman.Engine, c *config.Config, opts *secretsOptions) error {
	res, err := host.EnsureSecrets(conn, c, opts.Rotate)
	if err != nil {
		return err
	}
	opts.f.print(res, func(w io.Writer) {
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
}
