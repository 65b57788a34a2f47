package main

import (
	"context"
	"io"
	"time"

	"github.com/isis-project/isis/ops/backup"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/verify"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type verifyOptions struct {
	f         *factory
	PublicURL string
}

func newVerifyCmd(f *factory) *cobra.Command {
	opts := &verifyOptions{f: f}
	cmd := &cobra.Command{
		Use:     "verify",
		Short:   "Smoke-test the deployment: every check printed as pass/fail; exit 0 only if all pass",
		Example: "  isisctl verify\n  isisctl verify --public-url https://api.example.com",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return verifyRun(ctx, conn, c, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.PublicURL, "public-url", "", "also check the API through the reverse proxy (HTTPS, certificate verified)")
	return cmd
}

func verifyRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *verifyOptions) error {
	f := opts.f
	if err := c.NeedDomain(); err != nil {
		return err
	}
	r := verify.Run(ctx, conn, c, verify.Options{PublicURL: opts.PublicURL, Remote: !host.IsLocal(f.URL()), Standing: true})
	var pgStarted time.Time
	if pg, err := conn.Inspect(c.Postgres.Name); err == nil && pg.Exists {
		pgStarted = pg.StartTime
	}
	backup.Check(ctx, c, pgStarted, r.Add) // the backups' age and room: isisctl verify's, not a deploy's
	f.print(r, func(w io.Writer) { printChecks(w, r) })
	if !r.OK {
		var failed []string
		for _, ch := range r.Checks {
			if !ch.OK {
				failed = append(failed, ch.Name)
			}
		}
		f.jsonErrorPrinted = true
		return &verify.FailedError{Failed: failed}
	}
	return nil
}
