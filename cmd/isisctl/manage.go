package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/manage"
	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type manageOptions struct {
	f    *factory
	call *manage.Call
}

// exitStatus is isis's own non-zero exit code, passed back as isisctl's.
type exitStatus struct {
	cmd  string
	code int
}

func (e exitStatus) Error() string { return fmt.Sprintf("isis %s exited with code %d", e.cmd, e.code) }

func newManageCmd(f *factory) *cobra.Command {
	opts := &manageOptions{f: f}
	cmd := &cobra.Command{
		Use:   "manage -- COMMAND [FLAGS] [ARGS]",
		Short: "Run an isis management command (createsuperuser, changepassword, …) in a one-off container of the running backend's image",
		Long: "Runs `isis COMMAND` in a one-off container of the image the serving slot runs (by its ID), with the slot's\n" +
			"settings and secrets, on the private network, connected as the application role; it is removed afterwards\n" +
			"(also on SIGINT, SIGTERM, SIGHUP). Standard input, output and error are the container's; when standard input\n" +
			"is a terminal the container gets a TTY of its size, for the password prompts. The exit code is isis's.\n" +
			"Each run is in the audit trail (isisctl status). Commands: " + manage.Names() + ".",
		Example: "  isisctl manage -- createsuperuser --email admin@example.com\n" +
			"  printf '%s\\n' \"$PASSWORD\" | isisctl manage -- createsuperuser --email admin@example.com --no-input\n" +
			"  isisctl manage -- changepassword ana@example.com\n" +
			"  isisctl manage -- migrate status\n" +
			"  isisctl --url ssh://root@vps.example.com/run/podman/podman.sock manage -- check --deploy",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.output == "json" {
				return usageError{errors.New("isisctl manage passes isis's own output through: -o json is not for it (isis migrate status --json prints JSON)")}
			}
			call, err := manage.Parse(args)
			if err != nil {
				return usageError{err}
			}
			opts.call = call
			return f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
				return manageRun(ctx, conn, c, opts)
			})(cmd, args)
		},
	}
	// Everything after the command's name is isis's: `isisctl manage
	// createsuperuser --email …` works without the `--` too.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func manageRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *manageOptions) error {
	f := opts.f
	o := manage.Options{
		Call:    opts.call,
		Streams: podman.Streams{Stdin: f.io.In, Stdout: f.io.Out, Stderr: f.io.ErrOut},
		Warn:    func(l string) { fmt.Fprintln(f.io.ErrOut, "isisctl: warning: "+l) },
	}
	if in, ok := f.io.In.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
		restore, sizes, err := rawTerminal(in, f.io.Out)
		if err != nil {
			return err
		}
		defer restore()
		o.TTY, o.Sizes = true, sizes
	}
	r, err := manage.Run(ctx, conn, c, o)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return exitStatus{cmd: opts.call.Command.Name, code: r.ExitCode}
	}
	return nil
}

// rawTerminal puts the terminal in into raw mode (keys, Ctrl-C included,
// go to the container's TTY, which echoes and signals) and sends its size
// now and on every SIGWINCH; restore puts it back and stops following.
func rawTerminal(in *os.File, out any) (restore func(), sizes <-chan manage.TermSize, err error) {
	fd := int(in.Fd())
	sizeFd := fd
	if o, ok := out.(*os.File); ok && term.IsTerminal(int(o.Fd())) {
		sizeFd = int(o.Fd())
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("put the terminal into raw mode: %w", err)
	}
	ch := make(chan manage.TermSize, 1)
	send := func() {
		w, h, err := term.GetSize(sizeFd)
		if err != nil {
			return
		}
		select { // the newest size only
		case <-ch:
		default:
		}
		ch <- manage.TermSize{Width: w, Height: h}
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	send()
	go func() {
		for {
			select {
			case <-done:
				return
			case <-winch:
				send()
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(done)
		_ = term.Restore(fd, state)
	}, ch, nil
}
