package main

import (
	"fmt"
	"io"
	"os"

	"github.com/isis-project/isis/ops/config"

	"github.com/spf13/cobra"
)

type initOptions struct {
	f      *factory
	Domain string
	Force  bool
}

func newInitCmd(f *factory) *cobra.Command {
	opts := &initOptions{f: f}
	cmd := &cobra.Command{
		Use:     "init",
		Short:   "Write a starter isisctl.yaml with changeme-* placeholders and comments",
		Example: "  isisctl init --domain api.example.com\n  isisctl init --config /etc/isisctl.yaml",
		Args:    cobra.NoArgs,
		RunE:    func(*cobra.Command, []string) error { return initRun(opts) },
	}
	cmd.Flags().StringVar(&opts.Domain, "domain", "api.example.com", "the public host name")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite an existing file")
	return cmd
}

func initRun(opts *initOptions) error {
	f := opts.f
	path := f.configPath
	if path == "" {
		path = "isisctl.yaml"
	}
	if _, err := os.Stat(path); err == nil && !opts.Force {
		return usageError{fmt.Errorf("%s exists; pass --force to overwrite", path)}
	}
	b, err := config.Starter(opts.Domain)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	f.print(map[string]string{"written": path}, func(w io.Writer) {
		fmt.Fprintf(w, "Wrote %s: replace every changeme-* value, then run isisctl deploy --dry-run.\n", path)
	})
	return nil
}
