package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/backup"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/verify"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

type statusOptions struct{ f *factory }

func newStatusCmd(f *factory) *cobra.Command {
	opts := &statusOptions{f: f}
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the containers, networks and the last deploys from the audit trail",
		Example: "  isisctl status\n  isisctl status -o json",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			return statusRun(ctx, conn, c, opts)
		}),
	}
}

func statusRun(ctx context.Context, conn podman.Engine, c *config.Config, opts *statusOptions) error {
	var sts []*podman.ContainerState
	for _, n := range []string{c.Postgres.Name, c.Backend.Name, c.StandbyName()} {
		st, err := conn.Inspect(n)
		if err != nil {
			return err
		}
		sts = append(sts, st)
	}
	audit, err := audit.Read(conn, 10)
	if err != nil {
		return err
	}
	// In JSON, "containers" stays PostgreSQL and the backend (slot A), as
	// before the standby existed; slot B is "standby".
	// The backend's key numbers, when its metrics are on: they never fail
	// the status, which is for a server in trouble too.
	out := map[string]any{"containers": sts[:2], "standby": sts[2], "audit": audit, "metrics": nil}
	var metrics *verify.MetricsSummary
	var metricsErr error
	metricsAddr := verify.MetricsAddress(sts[1].Env)
	if metricsAddr != "" && sts[1].Running {
		metrics, metricsErr = verify.FetchMetrics(conn, c, metricsAddr, time.Now())
		out["metrics"] = metrics
		if metricsErr != nil {
			out["metrics_error"] = metricsErr.Error()
		}
	}
	// The conditions of docs/runbook.md this look finds.
	alarms := verify.StatusAlarms(conn, c, sts, metrics)
	backup.Check(ctx, c, sts[0].StartTime, func(alarm, _ string, err error, _ string) {
		if err != nil {
			alarms = append(alarms, verify.NewAlarm(alarm, err))
		}
	})
	out["alarms"] = alarms
	opts.f.print(out, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONTAINER\tSTATE\tHEALTH\tRESTARTS\tIMAGE\tPUBLISHED")
		for _, st := range sts {
			state := "missing"
			if st.Exists {
				state = map[bool]string{true: "running", false: "stopped"}[st.Running]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", st.Name, state, firstNonEmpty(st.Health, "-"), st.RestartCount,
				firstNonEmpty(st.Image, "-"), firstNonEmpty(strings.Join(st.Published, ","), "-"))
		}
		tw.Flush()
		fmt.Fprintln(w, "\nLast deploys and commands (audit trail on the host):")
		if len(audit) == 0 {
			fmt.Fprintln(w, "  none")
		}
		for _, e := range audit {
			fmt.Fprintf(w, "  %s  %-8s %-11s %s  %s by %s\n", e.Time.Format(time.RFC3339), e.Action, e.Result, e.Image, e.Duration, e.User)
			if e.Action == "manage" {
				fmt.Fprintf(w, "      isis %s\n", e.Detail)
			}
		}
		fmt.Fprintln(w)
		switch {
		case metrics != nil:
			verify.WriteMetricsSummary(w, metrics)
		case metricsErr != nil:
			fmt.Fprintf(w, "Backend metrics (METRICS_ADDRESS %s): unavailable: %v\n", metricsAddr, metricsErr)
		case metricsAddr != "":
			fmt.Fprintf(w, "Backend metrics (METRICS_ADDRESS %s): the backend is not running\n", metricsAddr)
		default:
			fmt.Fprintln(w, "Backend metrics: off (set backend.env.METRICS_ADDRESS, e.g. 127.0.0.1:9100, to see them here)")
		}
		writeAlarms(w, alarms)
	})
	return nil
}

// writeAlarms prints status's alarms, each with its runbook entry.
func writeAlarms(w io.Writer, alarms []verify.Alarm) {
	if len(alarms) == 0 {
		fmt.Fprintln(w, "\nAlarms: none")
		return
	}
	fmt.Fprintf(w, "\nAlarms (%d):\n", len(alarms))
	for _, a := range alarms {
		fmt.Fprintf(w, "  %s: %s\n      runbook %s\n", a.ID, a.Detail, a.Runbook)
	}
}
