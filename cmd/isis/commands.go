package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/postgres"
	"github.com/spf13/cobra"
)

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "isis",
		Short:         "The isis API server and its management commands",
		Version:       api.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newImportDjangoCmd(stdin, stdout, root.ErrOrStderr()))
	root.AddCommand(newServeCmd(stdout), newMigrateCmd(stdout), newHealthcheckCmd(stdout),
		newCreateSuperuserCmd(stdin, stdout), newChangePasswordCmd(stdin, stdout), newFlushExpiredTokensCmd(stdout), newCollectStaticCmd(stdout), newCheckCmd(stdout))
	return root
}

func newServeCmd(stdout io.Writer) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:     "serve",
		Short:   "Serve the API (settings from the environment)",
		Example: "  SECRET_KEY=… ALLOWED_HOSTS=api.example.com DATABASE_URL=postgres://… isis serve",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := NewMain(os.Getenv, stdout)
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.Listen(addr); err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			return m.Serve(ctx)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address host:port (default LISTEN_ADDRESS:PORT)")
	return cmd
}

func newMigrateCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "migrate",
		Short:   "Apply the pending database migrations (safe to run concurrently)",
		Example: "  isis migrate\n  isis migrate status",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, ctx, done, err := openMain(24 * time.Hour)
			if err != nil {
				return err
			}
			defer done()
			start := time.Now()
			applied, err := m.DB.Migrate(ctx)
			for _, v := range applied {
				fmt.Fprintf(stdout, "  Applying %s... OK\n", v)
			}
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(stdout, "No migrations to apply.")
			} else {
				fmt.Fprintf(stdout, "Applied %d migration(s) in %s.\n", len(applied), time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "List the migrations and whether each is applied; exit 1 when any is pending",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, ctx, done, err := openMain(30 * time.Second)
			if err != nil {
				return err
			}
			defer done()
			sts, err := m.DB.MigrationStatuses(ctx)
			if err != nil {
				return err
			}
			pending := 0
			for _, st := range sts {
				if !st.Applied() {
					pending++
				}
			}
			if asJSON {
				// unknown: applied versions this binary does not have (a newer
				// release ran), for isisctl restore's check.
				known := map[string]bool{}
				for _, m := range postgres.Migrations() {
					known[m.Version] = true
				}
				unknown := []string{}
				for _, st := range sts {
					if !known[st.Version] {
						unknown = append(unknown, st.Version)
					}
				}
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"migrations": sts, "pending": pending, "unknown": unknown}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				for _, st := range sts {
					mark, at := "[ ]", "pending"
					if st.Applied() {
						mark, at = "[X]", st.AppliedAt.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, st.Version, at)
				}
				tw.Flush()
			}
			if pending > 0 {
				return exitError{1, fmt.Errorf("%d migration(s) pending: run isis migrate", pending)}
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(status)
	return cmd
}

// newHealthcheckCmd probes the local server, for container health checks
// that have no shell or curl.
func newHealthcheckCmd(stdout io.Writer) *cobra.Command {
	var url, host, method string
	var timeout time.Duration
	var body bool
	cmd := &cobra.Command{
		Use:     "healthcheck",
		Short:   "Probe the local server's /api/health/ (exit 0 when it answers 200)",
		Example: "  isis healthcheck\n  isis healthcheck --url http://127.0.0.1:3003/api/ready/ --host api.example.com --body",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				port := os.Getenv("PORT")
				if _, err := strconv.Atoi(port); err != nil {
					port = "3003"
				}
				url = "http://127.0.0.1:" + port + "/api/health/"
			}
			req, err := http.NewRequest(method, url, nil)
			if err != nil {
				return exitError{2, fmt.Errorf("healthcheck: %w", err)}
			}
			if host != "" {
				req.Host = host
			}
			res, err := (&http.Client{Timeout: timeout}).Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", url, err)
			}
			defer res.Body.Close()
			limit := int64(64 << 10)
			if body {
				limit = 16 << 20 // a metrics scrape (isisctl status) can pass 64 KiB
			}
			b, _ := io.ReadAll(io.LimitReader(res.Body, limit))
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: status %d: %.200s", url, res.StatusCode, b)
			}
			if body {
				fmt.Fprintln(stdout, string(b))
			} else {
				fmt.Fprintln(stdout, "ok")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to probe (default http://127.0.0.1:$PORT/api/health/)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "probe timeout")
	cmd.Flags().StringVar(&host, "host", "", "Host header to send (the served domain, for ALLOWED_HOSTS)")
	cmd.Flags().StringVar(&method, "method", "GET", "HTTP method (GET or HEAD)")
	cmd.Flags().BoolVar(&body, "body", false, "print the answer's body instead of ok")
	return cmd
}
