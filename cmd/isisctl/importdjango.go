package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/cutover"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

// importSource is the Django database an import reads, from the flags
// import-django and cutover share.
type importSource struct {
	o             cutover.ImportDjangoOptions
	fromFile, tag string
}

func (s *importSource) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&s.o.FromDatabase, "from-database", "", "the Django database's name on the postgres container's server")
	fl.StringVar(&s.o.FromDSN, "from", "", "the Django database elsewhere: a PostgreSQL URL or key=value string (prefer --from-file: a command line is visible to other users)")
	fl.StringVar(&s.fromFile, "from-file", "", "a file holding the Django database's connection string")
	fl.StringVar(&s.o.UserTable, "user-table", "", "Django's user table (default: found by the import)")
	fl.StringVar(&s.tag, "tag", "", "image tag to run (default: the running backend's)")
	fl.BoolVar(&s.o.Merge, "merge", false, "let a first import write into an isis that already has users of its own (refused without it)")
}

// resolve reads --from-file and checks the options (usage errors).
func (s *importSource) resolve() error {
	if s.fromFile != "" {
		if s.o.FromDSN != "" {
			return usageError{errors.New("use one of --from and --from-file")}
		}
		b, err := os.ReadFile(s.fromFile)
		if err != nil {
			return usageError{fmt.Errorf("--from-file: %w", err)}
		}
		s.o.FromDSN = strings.TrimSpace(string(b))
		if s.o.FromDSN == "" {
			return usageError{fmt.Errorf("--from-file %s is empty", s.fromFile)}
		}
	}
	if err := s.o.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

func newImportDjangoCmd(f *factory) *cobra.Command {
	src := &importSource{}
	cmd := &cobra.Command{
		Use:   "import-django",
		Short: "Import the old Django database into isis (isis import-django in a one-off container on the private network)",
		Long: "Runs `isis import-django` in a one-off container of the backend image on the private network, against the\n" +
			"Django database: --from-database NAME on the same PostgreSQL server (read as isis_import_django, a temporary\n" +
			"read-only role made for the import and dropped after it, never with the backend's own credentials), or --from\n" +
			"DSN / --from-file PATH elsewhere (the connection string goes to the container in a temporary Podman secret).\n" +
			"One transaction: conflicts or an interruption (SIGINT, SIGTERM, SIGHUP) leave isis as it was; what a killed\n" +
			"run left behind (container, secret, role) is removed by the next one. Each run is in the audit trail. Run it\n" +
			"again to bring what changed on Django since (the final import of the cutover). The steps:\n" + cutover.ImportHelp(),
		Example: "  isisctl import-django --from-database django --dry-run\n" +
			"  isisctl import-django --from-database django\n" +
			"  isisctl import-django --from-file /root/django-dsn --output json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := src.resolve(); err != nil {
				return err
			}
			o := src.o
			return f.withPodman(func(ctx context.Context, conn podman.Engine, c *config.Config, _ []string) error {
				img, err := image.Target(conn, c, src.tag)
				if err != nil {
					return err
				}
				progress, out := f.stepsTo()
				start := time.Now()
				r, err := cutover.ImportDjango(ctx, conn, c, img, o, progress, out)
				cutover.AuditImport(conn, start, img, o, r, err)
				if err != nil {
					if r != nil {
						f.printFailure(r)
					}
					return err
				}
				f.print(r, func(w io.Writer) { printImportSummary(w, r) })
				return nil
			})(cmd, args)
		},
	}
	src.flags(cmd)
	cmd.Flags().BoolVar(&src.o.DryRun, "dry-run", false, "print the counts and the conflicts; write nothing")
	return cmd
}

func printImportSummary(w io.Writer, r *cutover.ImportDjangoResult) {
	var s struct {
		DryRun bool `json:"dry_run"`
		Users  struct {
			Source, Created, Updated, Unchanged int
		} `json:"users"`
		Profiles struct {
			Source, Created, Updated, Unchanged int
		} `json:"profiles"`
		OutstandingTokens struct{ Source, Created int } `json:"outstanding_tokens"`
		BlacklistedTokens struct{ Source, Created int } `json:"blacklisted_tokens"`
		Changes           int                           `json:"changes"`
		Seconds           float64                       `json:"seconds"`
	}
	if json.Unmarshal(r.Summary, &s) != nil {
		fmt.Fprintf(w, "import-django with %s: done (no summary)\n", r.Image)
		return
	}
	fmt.Fprintf(w, "Users: %d in Django, %d created, %d updated, %d unchanged\n", s.Users.Source, s.Users.Created, s.Users.Updated, s.Users.Unchanged)
	fmt.Fprintf(w, "Profiles: %d in Django, %d created, %d updated, %d unchanged\n", s.Profiles.Source, s.Profiles.Created, s.Profiles.Updated, s.Profiles.Unchanged)
	fmt.Fprintf(w, "Refresh tokens: %d live, %d created; blacklisted: %d, %d created\n", s.OutstandingTokens.Source, s.OutstandingTokens.Created,
		s.BlacklistedTokens.Source, s.BlacklistedTokens.Created)
	if s.DryRun {
		fmt.Fprintf(w, "Dry run with %s: %d change(s) would be written; nothing was.\n", r.Image, s.Changes)
	} else {
		fmt.Fprintf(w, "Imported with %s: %d change(s) in one transaction (%.1fs).\n", r.Image, s.Changes, s.Seconds)
	}
}
