package main

// Each command lives in a file of its own, shaped as GitHub's cli/cli does:
// an options struct holding the parsed flags and what the command needs, a
// newXCmd that fills it from the command line, and an xRun the tests can
// call. What the commands do lives in ops; here is the wiring.

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/render"
	"github.com/isis-project/isis/ops/verify"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

func cmdContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}

// withPodman makes a RunE that loads the configuration, connects (in that
// order, so a bad file is exit 2 before Podman is tried), and runs f with a
// context that ends on SIGINT, SIGTERM or SIGHUP (a closed terminal: what
// the command made is cleaned up before it exits).
func (f *factory) withPodman(run func(ctx context.Context, conn podman.Engine, c *config.Config, args []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		ctx, cancel := cmdContext()
		defer cancel()
		c, conn, err := f.setup(ctx)
		if err != nil {
			return err
		}
		return run(ctx, conn, c, args)
	}
}

// setup loads the configuration and connects, in that order.
func (f *factory) setup(ctx context.Context) (*config.Config, podman.Engine, error) {
	c, err := f.Config()
	if err != nil {
		return nil, nil, err
	}
	conn, err := f.Podman(ctx)
	return c, conn, err
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func unitsDir(c *config.Config) string {
	if c.Units.Dir != "" {
		return c.Units.Dir
	}
	return render.DefaultUnitsDir()
}

func printChecks(w io.Writer, r *verify.Result) {
	for _, ch := range r.Checks {
		mark := "PASS"
		if !ch.OK {
			mark = "FAIL"
		}
		io.WriteString(w, mark+"  "+ch.Name+": "+ch.Detail+"\n")
		if ch.Runbook != "" {
			io.WriteString(w, "      "+ch.Alarm+": runbook "+ch.Runbook+"\n")
		}
	}
}
