package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/isis-project/isis/ops/render"

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
		Long: "Render the quadlet units and the reverse-proxy snippets (Caddy, nginx) for this configuration.\n\n" +
			"Without --out they are written to the quadlet directory systemd reads: ~/.config/containers/systemd\n" +
			"($XDG_CONFIG_HOME/containers/systemd when set), or /etc/containers/systemd as root (units.dir overrides).\n" +
			"--check converts every unit with Podman's quadlet code and writes nothing, unless --out names a directory.",
		Example: "  isisctl render --check               # check only: nothing is written\n" +
			"  isisctl render --out ./units         # write to ./units\n" +
			"  isisctl render                       # write to the quadlet directory (printed)",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return renderRun(opts) },
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "output directory (default: the quadlet directory for this user, printed)")
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "backend image tag (default backend.tag, else latest pinned to the digest the Podman host knows)")
	cmd.Flags().BoolVar(&opts.Check, "check", false, "convert each unit with Podman's quadlet code, fail on any error or unknown key; writes nothing without --out")
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
	// A check writes nothing unless asked to write somewhere.
	write := !opts.Check || opts.Out != ""
	out := opts.Out
	if out == "" {
		out = unitsDir(c)
	}
	ctx, cancel := cmdContext()
	defer cancel()
	img, _, err := f.pinned(ctx, c.BackendImage(firstNonEmpty(opts.Tag, c.Backend.Tag)), false)
	if err != nil {
		return err
	}
	files, err := render.Render(c, render.Options{Image: img, System: opts.System})
	if err != nil {
		return err
	}
	if opts.Check {
		if err := render.CheckUnits(files, !opts.System); err != nil {
			return err
		}
	}
	var changed []string
	if write {
		if changed, err = render.WriteFiles(out, files); err != nil {
			return err
		}
	}
	result := map[string]any{"files": files, "checked": opts.Check, "written": write}
	if write {
		result["dir"], result["changed"] = out, changed
	}
	f.print(result, func(w io.Writer) {
		if opts.Check {
			fmt.Fprintf(w, "%d files rendered; every unit passes Podman's quadlet conversion.\n", len(files))
		}
		if !write {
			fmt.Fprintln(w, "Nothing written (add --out DIR to write the files).")
			return
		}
		isChanged := map[string]bool{}
		for _, name := range changed {
			isChanged[name] = true
		}
		fmt.Fprintf(w, "Wrote %d files to %s (%d changed):\n", len(files), out, len(changed))
		for _, fl := range files {
			state := "unchanged"
			if isChanged[fl.Name] {
				state = "written"
			}
			fmt.Fprintf(w, "  %-9s %s\n", state, filepath.Join(out, fl.Name))
		}
	})
	return nil
}
