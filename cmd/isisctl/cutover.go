package main

import (
	"context"
	"fmt"
	"io"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/cutover"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type cutoverOptions struct {
	f         *factory
	src       importSource
	Switch    string
	PublicURL string
}

// newCutoverCmd makes `cutover`: the runbook's switch from Django to isis
// as one command (docs/cutover.md).
func newCutoverCmd(f *factory) *cobra.Command {
	opts := &cutoverOptions{f: f}
	cmd := &cobra.Command{
		Use:   "cutover",
		Short: "Switch from the Django system to isis: import, point the proxy at isis, import what changed, verify",
		Long: "The cutover of docs/cutover.md's runbook as one command, once isis is deployed beside Django and an\n" +
			"import-django has been rehearsed:\n\n" + cutover.Help() +
			"\nUntil the --switch command succeeds nothing changes for users (Django serves). The command runs with\n" +
			"sh -c on this machine and must point the reverse proxy at isis and reload it. Nobody is logged out:\n" +
			"Django's tokens work on isis (same SECRET_KEY, same user ids).",
		Example: "  isisctl cutover --from-database django \\\n" +
			"    --switch 'cp /etc/nginx/isis.conf /etc/nginx/conf.d/api.conf && systemctl reload nginx' \\\n" +
			"    --public-url https://api.example.com",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Switch == "" {
				return usageError{fmt.Errorf("--switch is required: the command that points the reverse proxy at isis and reloads it")}
			}
			if err := opts.src.resolve(); err != nil {
				return err
			}
			return f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
				return cutoverRun(ctx, conn, c, opts)
			})(cmd, args)
		},
	}
	opts.src.flags(cmd)
	cmd.Flags().StringVar(&opts.Switch, "switch", "", "shell command that points the reverse proxy at isis and reloads it (required)")
	cmd.Flags().StringVar(&opts.PublicURL, "public-url", "", "verify through the reverse proxy too (HTTPS, certificate verified)")
	return cmd
}

func cutoverRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *cutoverOptions) error {
	f := opts.f
	img, err := image.Target(conn, c, opts.src.tag)
	if err != nil {
		return err
	}
	o := cutover.Options{Import: opts.src.o, Switch: opts.Switch, PublicURL: opts.PublicURL, Remote: !host.IsLocal(f.URL())}
	o.Progress, o.SwitchOut = f.stepsTo()
	if f.verbose {
		o.ImportOut = o.SwitchOut
	}
	r, err := cutover.Run(ctx, conn, c, img, o)
	if err != nil {
		f.printFailure(r)
		return err
	}
	f.print(r, func(w io.Writer) {
		fmt.Fprintf(w, "Switched to isis (%s). The way back: point the proxy at Django again (docs/cutover.md, The way back).\n", img)
	})
	return nil
}
