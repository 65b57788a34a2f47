package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/isis-project/isis/ops"
	"github.com/spf13/cobra"
)

type renderOptions struct {
	f                    *factory
	Out, Tag             string
	Check, Allow, System bool
}

func newRenderCmd(f *factory) *cobra.Command {
	opts := &renderOptions{f: f}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render the quadlet units and reverse-proxy snippets from templates/",
		Example: "  isisctl render --check --out ./units\n" +
			"  isisctl render            # to ~/.config/containers/systemd (or /etc/containers/systemd as root)",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return renderRun(opts) },
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "output directory (default: the quadlet directory for this user)")
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "backend image tag (default backend.tag, else latest)")
	cmd.Flags().BoolVar(&opts.Check, "check", false, "convert each unit with Podman's quadlet code; fail on any error or unknown key")
	cmd.Flags().BoolVar(&opts.Allow, "allow-placeholders", false, "render even with changeme-* values")
	cmd.Flags().BoolVar(&opts.System, "system", os.Geteuid() == 0, "units for the system manager (multi-user.target)")
	return cmd
}

func renderRun(opts *renderOptions) error {
	f := opts.f
	c, err := f.Config()
	if err != nil {
		return err
	}
	if !opts.Allow {
		if err := c.PlaceholderError(); err != nil {
			return err
		}
	}
	out := opts.Out
	if out == "" {
		out = unitsDir(c)
	}
	files, err := ops.Render(c, ops.RenderOptions{Image: c.BackendImage(firstNonEmpty(opts.Tag, c.Backend.Tag)), System: opts.System})
	if err != nil {
		return err
	}
	if opts.Check {
		if err := ops.CheckUnits(files, !opts.System); err != nil {
			return err
		}
	}
	changed, err := ops.WriteFiles(out, files)
	if err != nil {
		return err
	}
	f.print(map[string]any{"dir": out, "files": files, "changed": changed, "checked": opts.Check}, func(w io.Writer) {
		for _, fl := range files {
			fmt.Fprintf(w, "%s\n", filepath.Join(out, fl.Name))
		}
		if opts.Check {
			fmt.Fprintln(w, "All units pass Podman's quadlet conversion.")
		}
	})
	return nil
}
