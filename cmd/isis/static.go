package main

import (
	"fmt"
	"io"
	"os"

	"github.com/isis-project/isis/api/config"
	"github.com/isis-project/isis/api/static"
	"github.com/spf13/cobra"
)

func newCollectStaticCmd(stdout io.Writer) *cobra.Command {
	var dest string
	cmd := &cobra.Command{
		Use:     "collectstatic",
		Short:   "Write the embedded static assets to STATIC_ROOT (or --dest), skipping unchanged files",
		Example: "  isis collectstatic\n  isis collectstatic --dest /var/lib/isis/static",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dest == "" {
				cfg, err := config.Load(os.Getenv)
				if err != nil {
					return exitError{2, err}
				}
				dest = cfg.StaticRoot
				if dest == "" {
					return exitError{2, fmt.Errorf("setting STATIC_ROOT: required (or pass --dest)")}
				}
			}
			r, err := static.Collect(dest)
			if err != nil {
				return err
			}
			for _, p := range r.Copied {
				fmt.Fprintf(stdout, "Copied %s\n", p)
			}
			for _, p := range r.Removed {
				fmt.Fprintf(stdout, "Removed %s\n", p)
			}
			fmt.Fprintf(stdout, "%d static file(s) copied to %s, %d unmodified, %d removed.\n",
				len(r.Copied), dest, len(r.Skipped), len(r.Removed))
			return nil
		},
	}
	cmd.Flags().StringVar(&dest, "dest", "", "destination directory (default STATIC_ROOT)")
	return cmd
}
