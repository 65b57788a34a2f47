package main

import (
	"fmt"
	"io"
	"os"

	"github.com/isis-project/isis/ops/deploy"

	"github.com/spf13/cobra"
)

type installOptions struct {
	f   *factory
	Tag string
}

func newInstallCmd(f *factory) *cobra.Command {
	opts := &installOptions{f: f}
	cmd := &cobra.Command{
		Use:     "install",
		Short:   "Write the quadlet units, then systemctl daemon-reload and start the services when systemd is there",
		Example: "  isisctl install",
		Args:    cobra.NoArgs,
		RunE:    func(*cobra.Command, []string) error { return installRun(opts) },
	}
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "backend image tag (default backend.tag, else latest pinned to the digest the Podman host knows)")
	return cmd
}

func installRun(opts *installOptions) error {
	f := opts.f
	c, err := f.Config()
	if err != nil {
		return err
	}
	if err := c.PlaceholderError(); err != nil {
		return err
	}
	ctx, cancel := cmdContext()
	defer cancel()
	img, _, err := f.pinned(ctx, c.BackendImage(firstNonEmpty(opts.Tag, c.Backend.Tag)), false)
	if err != nil {
		return err
	}
	r, err := deploy.Install(c, deploy.InstallOptions{Image: img, Dir: unitsDir(c),
		System: os.Geteuid() == 0})
	if err != nil {
		return err
	}
	f.print(r, func(w io.Writer) {
		fmt.Fprintf(w, "Units written to %s.\n", r.Dir)
		if r.Hint != "" {
			fmt.Fprintln(w, r.Hint)
			return
		}
		fmt.Fprintln(w, "Services started (quadlet units are enabled through their [Install] section).")
	})
	return nil
}
