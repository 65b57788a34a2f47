// Command isisctl deploys isis and its PostgreSQL to a Podman host through
// the Podman API, and renders the same deployment as quadlet units.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/drill"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/verify"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

// Exit codes (docs/operations.md).
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitVerify      = 3
	exitUnreachable = 4
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)) }

// usageError is bad usage of flags or arguments (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// exitCode picks the exit code of an error, in one place.
func exitCode(err error) int {
	var ce *config.Error
	var ue *podman.UnreachableError
	var ve *verify.FailedError
	var de *drill.FailedError
	var us usageError
	var pe *config.UnpinnedImageError
	var es exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return es.code
	case errors.As(err, &ue):
		return exitUnreachable
	case errors.As(err, &ce), errors.As(err, &us), errors.As(err, &pe):
		return exitUsage
	case errors.As(err, &ve), errors.As(err, &de):
		return exitVerify
	}
	return exitFailed
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	f := &factory{io: ioStreams{In: stdin, Out: stdout, ErrOut: stderr}, getenv: getenv}
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err != nil {
		if f.output == "json" && f.jsonErrorPrinted {
			return exitCode(err)
		}
		msg := err.Error()
		if strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
			strings.Contains(msg, "flag needs an argument") || strings.Contains(msg, "accepts ") || strings.HasPrefix(msg, "invalid argument") {
			err = usageError{err}
		}
		if f.output == "json" {
			json.NewEncoder(stdout).Encode(map[string]any{"ok": false, "error": err.Error(), "exit_code": exitCode(err)})
		}
		fmt.Fprintln(stderr, "isisctl: "+err.Error())
	}
	return exitCode(err)
}

type ioStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// factory lazily provides configuration and the Podman connection.
type factory struct {
	io     ioStreams
	getenv func(string) string

	url, configPath, output string
	verbose                 bool
	jsonErrorPrinted        bool

	cfg  *config.Config
	conn podman.Engine
}

// Config loads isisctl.yaml (once): --config, else ISISCTL_CONFIG, else ./isisctl.yaml.
func (f *factory) Config() (*config.Config, error) {
	if f.cfg != nil {
		return f.cfg, nil
	}
	path, explicit := f.configPath, f.configPath != ""
	if path == "" {
		if p := f.getenv("ISISCTL_CONFIG"); p != "" {
			path, explicit = p, true
		} else {
			path = "isisctl.yaml"
		}
	}
	c, err := config.Load(path, explicit, f.getenv)
	if err != nil {
		return nil, err
	}
	f.cfg = c
	return c, nil
}

// URL is --url, else CONTAINER_HOST, else podman_url, else the default socket.
func (f *factory) URL() string {
	if f.url != "" {
		return f.url
	}
	if u := f.getenv("CONTAINER_HOST"); u != "" {
		return u
	}
	if c, err := f.Config(); err == nil && c.PodmanURL != "" {
		return c.PodmanURL
	}
	return podman.DefaultURL()
}

// Podman connects (once).
func (f *factory) Podman(ctx context.Context) (podman.Engine, error) {
	if f.conn != nil {
		return f.conn, nil
	}
	conn, err := host.Connect(ctx, f.URL())
	if err != nil {
		return nil, err
	}
	f.conn = conn
	return conn, nil
}

// print writes v as JSON with --output json, else calls text.
func (f *factory) print(v any, text func(w io.Writer)) {
	if f.output == "json" {
		enc := json.NewEncoder(f.io.Out)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return
	}
	text(f.io.Out)
}

// printFailure prints a failed result in JSON mode (the error line still goes to stderr).
func (f *factory) printFailure(v any) {
	if f.output == "json" {
		f.print(v, nil)
		f.jsonErrorPrinted = true
	}
}

func (f *factory) logf(format string, args ...any) {
	if f.output != "json" {
		fmt.Fprintf(f.io.Out, format+"\n", args...)
	} else if f.verbose {
		fmt.Fprintf(f.io.ErrOut, format+"\n", args...)
	}
}

func newRootCmd(f *factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "isisctl",
		Short: "Deploy isis and its PostgreSQL to a Podman host",
		Long: "isisctl builds the isis image, creates the networks and secrets, renders quadlet units, migrates,\n" +
			"deploys and verifies, all through the Podman API.\n\n" +
			"Exit codes: 0 success, 1 a step failed, 2 bad usage or configuration, 3 verify failed, 4 Podman unreachable.",
		Example:       "  isisctl init\n  isisctl deploy --dry-run\n  isisctl deploy && isisctl verify --public-url https://api.example.com",
		Version:       api.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if f.output != "text" && f.output != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q", f.output)}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&f.url, "url", "", "Podman API URL: unix:///path/podman.sock or ssh://user@host/run/podman/podman.sock (default CONTAINER_HOST, then podman_url)")
	pf.StringVar(&f.configPath, "config", "", "configuration file (default ISISCTL_CONFIG, then ./isisctl.yaml)")
	pf.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	pf.BoolVarP(&f.verbose, "verbose", "v", false, "more detail (secrets are never printed)")
	root.AddCommand(
		newInitCmd(f), newBuildCmd(f), newNetworkCmd(f), newSecretsCmd(f), withKube(f, newRenderCmd(f)), newUpCmd(f),
		newInstallCmd(f), newMigrateCmd(f, "migrate"), newMigrateCmd(f, "collectstatic"), newVerifyCmd(f),
		newDeployCmd(f), newRollbackCmd(f), newStatusCmd(f), newLogsCmd(f),
		newImportDjangoCmd(f), newCutoverCmd(f), newBackupCmd(f), newRestoreCmd(f), newManageCmd(f),
		newDrillCmd(f),
	)
	return root
}
