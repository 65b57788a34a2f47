package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/isis-project/isis/api/config"
	"github.com/isis-project/isis/api/media"
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
			var target static.Target
			where := dest
			if dest != "" {
				target = static.Dir(dest)
			} else {
				cfg, err := config.Load(os.Getenv)
				if err != nil {
					return exitError{2, err}
				}
				switch {
				case cfg.S3Enabled():
					s3, err := media.NewS3(cfg)
					if err != nil {
						return exitError{2, err}
					}
					target, where = media.NewStaticTarget(s3), "s3://"+cfg.AWSBucket+"/static/"
				case cfg.StaticRoot != "":
					target, where = static.Dir(cfg.StaticRoot), cfg.StaticRoot
				default:
					return exitError{2, fmt.Errorf("setting STATIC_ROOT: required (or AWS_STORAGE_BUCKET_NAME, or --dest)")}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			r, err := static.Collect(ctx, target)
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
				len(r.Copied), where, len(r.Skipped), len(r.Removed))
			return nil
		},
	}
	cmd.Flags().StringVar(&dest, "dest", "", "destination directory (default STATIC_ROOT)")
	return cmd
}
