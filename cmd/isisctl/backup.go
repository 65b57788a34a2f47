package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/isis-project/isis/ops/backup"
	"github.com/isis-project/isis/ops/config"

	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/steps"
	"github.com/spf13/cobra"
)

// progressWriter is where progress goes: standard output (text) or
// standard error (JSON, so standard output holds the JSON alone).
func (f *factory) progressWriter() io.Writer {
	if f.output == "json" {
		return f.io.ErrOut
	}
	return f.io.Out
}

// progressTo prints progress lines where progressWriter says.
func (f *factory) progressTo() func(string) {
	w := f.progressWriter()
	return func(l string) { fmt.Fprintln(w, l) }
}

// stepsTo prints an operation's steps as they end (deploy's format) and,
// indented under them, what the steps say on the way, where progressWriter
// says.
func (f *factory) stepsTo() (progress func(steps.Step), out func(string)) {
	w := f.progressWriter()
	return func(s steps.Step) { printStep(w, s) }, func(l string) { fmt.Fprintln(w, "    "+l) }
}

// printPlan prints, in text, the plan a refused restore carries.
func (f *factory) printPlan(err error) {
	var ce *backup.ConfirmError
	if f.output != "json" && errors.As(err, &ce) && len(ce.Steps) > 0 {
		fmt.Fprintln(f.io.Out, "Plan (nothing changed):")
		for i, p := range ce.Steps {
			fmt.Fprintf(f.io.Out, "  %d. %s\n", i+1, p)
		}
	}
}

// confirmUsage makes a missing --yes a usage error (exit 2).
func confirmUsage(err error) error {
	var ce *backup.ConfirmError
	var be *backup.BadBackupNameError
	if errors.As(err, &ce) || errors.As(err, &be) {
		return usageError{err}
	}
	return err
}

func newBackupCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Dump the database (pg_dump in a one-off container) to backup.dir or the S3/R2 bucket; keep the newest backup.keep",
		Long: "Runs pg_dump --format=custom in a one-off container of the PostgreSQL server's image on the private network\n" +
			"(nothing published; the password stays in its Podman secret), reads the dump back in full with pg_restore,\n" +
			"and stores it with a manifest (NAME.json: sha256, size, the backend image and its digest, the migration\n" +
			"level, the rows of every table) in backup.dir or under backup.s3_prefix in the S3/R2 bucket. The API keeps\n" +
			"serving throughout. Then only the newest backup.keep backups are kept. The steps:\n" + backup.CreateHelp(),
		Example: "  isisctl backup\n  isisctl backup -o json\n  isisctl backup list",
		Args:    cobra.NoArgs,
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
			progress, _ := f.stepsTo()
			r, err := backup.Create(ctx, conn, c, progress)
			if err != nil {
				f.printFailure(r)
				return err
			}
			f.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "Backed up %s to %s%s (%s, sha256 %s, migration %s, image %s) in %s\n", r.Database, r.Location, sep(r.Location)+r.Dump,
					humanBytes(r.Size), r.SHA256[:12], firstNonEmpty(r.Level, "none"), firstNonEmpty(r.Image, "none"), r.Duration.Round(time.Millisecond))
				fmt.Fprintf(w, "Rows: %s\n", keyRows(r.Tables))
				fmt.Fprintf(w, "Kept %d backup(s)", r.Kept)
				if len(r.Removed) > 0 {
					fmt.Fprintf(w, "; removed %s", strings.Join(r.Removed, ", "))
				}
				fmt.Fprintln(w)
			})
			return nil
		}),
	}
	cmd.AddCommand(newBackupListCmd(f))
	return cmd
}

func sep(loc string) string {
	if strings.HasSuffix(loc, "/") {
		return ""
	}
	return "/"
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// keyRows prints the rows of the tables an operator looks at first.
func keyRows(tables map[string]int64) string {
	var parts []string
	for _, t := range []string{"users", "profiles", "token_outstanding", "token_blacklisted"} {
		if n, ok := tables["public."+t]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", t, n))
		}
	}
	parts = append(parts, fmt.Sprintf("%d tables", len(tables)))
	return strings.Join(parts, ", ")
}

func newBackupListCmd(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the backups (newest first) and the databases restores replaced and kept",
		Example: "  isisctl backup list\n  isisctl backup list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := cmdContext()
			defer cancel()
			c, err := f.Config()
			if err != nil {
				return err
			}
			l, err := backup.List(ctx, c)
			if err != nil {
				return err
			}
			// The kept databases need the server; the list works without it.
			if conn, err := f.Podman(ctx); err == nil {
				l.OldDatabases, _ = backup.OldDatabases(conn, c)
			}
			f.print(l, func(w io.Writer) {
				fmt.Fprintf(w, "Backups in %s:\n", l.Location)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tTAKEN\tSIZE\tMIGRATION\tUSERS\tIMAGE")
				for _, b := range l.Backups {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", b.Name, b.Created.Format(time.RFC3339), humanBytes(b.Size), firstNonEmpty(b.Level, "-"),
						b.Tables["public.users"], firstNonEmpty(b.Image, "-"))
				}
				tw.Flush()
				if len(l.Backups) == 0 {
					fmt.Fprintln(w, "  none")
				}
				if len(l.OldDatabases) > 0 {
					sort.Strings(l.OldDatabases)
					fmt.Fprintf(w, "Databases kept by restores (isisctl restore --drop-old NAME --yes): %s\n", strings.Join(l.OldDatabases, ", "))
				}
			})
			return nil
		},
	}
}

func newRestoreCmd(f *factory) *cobra.Command {
	var yes, allowForeign bool
	var dropOld string
	cmd := &cobra.Command{
		Use:   "restore NAME",
		Short: "Restore a backup into a new database, check it, then switch the backend to it (keeps the old one)",
		Long: "Checks the dump first (size and sha256 against its manifest, then a full read with pg_restore in a one-off\n" +
			"container): a corrupted or truncated dump is refused before anything is touched. Then restores it into a new\n" +
			"database on the same server (DB_restore_STAMP), checks it (every table's rows against the dump; migrations:\n" +
			"none the backend image does not know, pending ones applied), stops the backend, renames the current database\n" +
			"DB_old_STAMP and the new one DB, and starts the backend again (if it does not become healthy, the names are\n" +
			"switched back). The replaced database is kept until `isisctl restore --drop-old DB_old_STAMP --yes`.\n" +
			"A backup whose manifest is not authenticated (its HMAC, keyed by the database password, missing or wrong)\n" +
			"or that another database server took is refused unless --allow-foreign; every restore runs as the owner\n" +
			"role, never as the superuser. NAME is a plain backup name (no path).\n" +
			"Without --yes it only says what it would replace, and prints the plan. The steps:\n" + backup.RestoreHelp(),
		Example: "  isisctl backup list\n  isisctl restore isis-20261130T030000Z\n  isisctl restore isis-20261130T030000Z --yes\n" +
			"  isisctl restore --drop-old isis_old_20261130101500 --yes",
		Args: func(cmd *cobra.Command, args []string) error {
			if dropOld != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, args []string) error {
			if dropOld != "" {
				if err := backup.DropOldDatabase(conn, c, dropOld, yes); err != nil {
					return confirmUsage(err)
				}
				f.print(map[string]string{"dropped": dropOld}, func(w io.Writer) { fmt.Fprintf(w, "Dropped database %s.\n", dropOld) })
				return nil
			}
			o := backup.RestoreOptions{Yes: yes, AllowForeign: allowForeign}
			o.Progress, o.Out = f.stepsTo()
			r, err := backup.Restore(ctx, conn, c, args[0], o)
			if err != nil {
				if r != nil {
					f.printFailure(r)
				}
				f.printPlan(err)
				return confirmUsage(err)
			}
			f.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "Restored %s into %s (migration %s; %s) in %s\n", r.Backup, r.Database, firstNonEmpty(r.Migration, "none"), keyRows(r.Tables),
					r.Duration.Round(time.Millisecond))
				if len(r.Migrated) > 0 {
					fmt.Fprintf(w, "Applied since the backup: %s\n", strings.Join(r.Migrated, ", "))
				}
				fmt.Fprintf(w, "Restarted: %s\n", firstNonEmpty(strings.Join(r.Restarted, ", "), "none"))
				fmt.Fprintf(w, "The replaced database is kept as %s; drop it with: isisctl restore --drop-old %s --yes\n", r.Old, r.Old)
			})
			return nil
		}),
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do it (without: say what would be replaced)")
	cmd.Flags().BoolVar(&allowForeign, "allow-foreign", false, "restore a backup this deployment did not take or whose manifest is not authenticated")
	cmd.Flags().StringVar(&dropOld, "drop-old", "", "drop a database a restore replaced and kept (DB_old_STAMP)")
	return cmd
}
