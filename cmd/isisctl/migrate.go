package main

import (
	"context"
	"fmt"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type migrateOptions struct {
	f         *factory
	Name      string // migrate or collectstatic
	Tag       string
	InRunning bool
}

// newMigrateCmd makes `migrate` and `collectstatic`: `isis NAME` in a one-off
// container of the target image, or with --exec in the running backend.
func newMigrateCmd(f *factory, name string) *cobra.Command {
	opts := &migrateOptions{f: f, Name: name}
	what := map[string]string{"migrate": "database migrations", "collectstatic": "static asset sync"}[name]
	cmd := &cobra.Command{
		Use:     name,
		Short:   fmt.Sprintf("Run the %s (isis %s) in a one-off container of the target image on the private network", what, name),
		Example: fmt.Sprintf("  isisctl %s\n  isisctl %s --tag c0ffee123456\n  isisctl %s --exec", name, name, name),
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return migrateRun(ctx, conn, c, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "image tag to run (default: the running backend's)")
	cmd.Flags().BoolVar(&opts.InRunning, "exec", false, "run inside the running backend instead")
	return cmd
}

func migrateRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *migrateOptions) error {
	out := opts.f.io.Out
	if opts.InRunning {
		code, err := podman.Exec(conn, c.Backend.Name, []string{"/isis", opts.Name}, out)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("isis %s exited with code %d", opts.Name, code)
		}
		return nil
	}
	img, err := image.Target(conn, c, opts.Tag)
	if err != nil {
		return err
	}
	if opts.Name == "migrate" {
		if _, err := host.EnsureNetworks(conn, c); err != nil {
			return err
		}
		if _, err := host.EnsureSecrets(conn, c, false); err != nil {
			return err
		}
		if _, err := host.EnsurePostgres(ctx, conn, c); err != nil {
			return err
		}
		// The job runs as the owner role: made (or a single-role
		// deployment converted) first, as deploy does.
		if _, err := host.EnsureRoles(conn, c); err != nil {
			return err
		}
	}
	// The job mounts the backend's log and static directories: on a
	// fresh host (migrate before the first up) they do not exist yet.
	if err := host.PrepareHostDirs(c, host.IsLocal(opts.f.URL())); err != nil {
		return err
	}
	return host.RunJob(conn, c, img, func(l string) { fmt.Fprintln(out, l) }, opts.Name)
}
