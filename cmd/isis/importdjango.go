package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/api/postgres"
	"github.com/lib/pq"
	"github.com/spf13/cobra"
)

func newImportDjangoCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var from, fromFile, fromDatabase, userTable, output string
	var dryRun, merge bool
	var headroom int64
	cmd := &cobra.Command{
		Use:   "import-django",
		Short: "Import users, profiles, geography and refresh tokens from the old Django database (one transaction)",
		Long: "Reads the Django database (--from DSN, --from-file PATH holding the DSN, or --from-database NAME on the\n" +
			"server and with the credentials of DATABASE_*, often a superuser: isisctl import-django gives the import a\n" +
			"temporary read-only role instead) and writes isis's tables in one transaction: users with the\n" +
			"same ids and password hashes, profiles, the departments and municipalities Django added, SimpleJWT's live\n" +
			"outstanding and blacklisted refresh tokens. A second run writes only what changed on Django since; conflicts\n" +
			"stop it before anything is written (exit 1), one per line with the old row's id. The source is read in one\n" +
			"read-only snapshot, with pg_catalog first on the search path, and only from plain tables without row-level\n" +
			"security or rules whose columns are of PostgreSQL's own types: anything else (a view can run code) stops it.",
		Example: "  isis import-django --from postgres://django@db.example.com/django --dry-run\n" +
			"  isis import-django --from-database django --output json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if headroom < 0 {
				return exitError{2, errors.New("--id-headroom must be 0 or more")}
			}
			if output != "text" && output != "json" {
				return exitError{2, fmt.Errorf("--output must be text or json, not %q", output)}
			}
			n := 0
			for _, s := range []string{from, fromFile, fromDatabase} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				return exitError{2, errors.New("name the Django database with exactly one of --from, --from-file, --from-database")}
			}
			m, ctx, done, err := openMain(24 * time.Hour)
			if err != nil {
				return err
			}
			defer done()
			dsn := from
			switch {
			case fromFile != "":
				b, err := os.ReadFile(fromFile)
				if err != nil {
					return exitError{2, fmt.Errorf("--from-file: %w", err)}
				}
				dsn = strings.TrimSpace(string(b))
			case fromDatabase != "":
				if dsn, err = withDatabase(m.Config.DatabaseDSN, fromDatabase); err != nil {
					return exitError{2, err}
				}
			}
			if _, err := pq.NewConfig(dsn); err != nil {
				return exitError{2, errors.New("the Django database: not a valid PostgreSQL URL or connection string")}
			}
			src, err := postgres.Open(dsn, postgres.Options{MaxOpenConns: 2, StatementTimeout: "0"})
			if err != nil {
				return exitError{2, fmt.Errorf("the Django database: %w", err)}
			}
			defer src.Close()
			progress := func(format string, args ...any) {
				fmt.Fprintf(stderr, "import-django: "+format+"\n", args...)
			}
			sum, err := djangoimport.Import(ctx, src.DB, m.DB.DB, djangoimport.Options{UserTable: userTable, DryRun: dryRun, Merge: merge, Progress: progress, IDHeadroom: headroom})
			if sum != nil {
				if output == "json" {
					json.NewEncoder(stdout).Encode(sum)
				} else {
					printImportSummary(stdout, sum)
				}
			}
			if err != nil {
				if djangoimport.IsConflict(err) {
					return exitError{1, err}
				}
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the Django database: a PostgreSQL URL or key=value connection string (a command line is visible to other users: prefer --from-file)")
	f.StringVar(&fromFile, "from-file", "", "a file holding the Django database's connection string (e.g. a Podman secret)")
	f.StringVar(&fromDatabase, "from-database", "", "the Django database's name on isis's own PostgreSQL server (same host, and DATABASE_*'s user and password)")
	f.StringVar(&userTable, "user-table", "", "Django's user table (default: found from SimpleJWT's tokens or django_content_type)")
	f.Int64Var(&headroom, "id-headroom", 1000, "start isis's new ids this far past Django's next one (room for sign-ups Django takes during the switch)")
	f.BoolVar(&dryRun, "dry-run", false, "print the counts and the conflicts, write nothing")
	f.BoolVar(&merge, "merge", false, "let a first import write into an isis that already has users of its own (refused without it)")
	f.StringVarP(&output, "output", "o", "text", "summary format: text or json (progress goes to standard error)")
	return cmd
}

// withDatabase is dsn (a URL or key=value string) with its database name
// replaced.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("DATABASE_URL: not a valid URL")
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name)
	return dsn + " dbname='" + q + "'", nil
}

func printImportSummary(w io.Writer, s *djangoimport.Summary) {
	counts := func(name string, c djangoimport.Counts, extra string) {
		fmt.Fprintf(w, "%-15s %6d in Django: %d created, %d updated, %d unchanged%s\n", name, c.Source, c.Created, c.Updated, c.Unchanged, extra)
	}
	counts("Users", s.Users, "")
	if s.UsersGone > 0 {
		fmt.Fprintf(w, "%-15s %6d imported before and no longer in Django: left as they are in isis\n", "", s.UsersGone)
	}
	if s.Source.ProfileTable != "" {
		counts("Profiles", s.Profiles, "")
	}
	if s.Source.DepartmentTable != "" {
		counts("Departments", s.Departments.Counts, fmt.Sprintf(" (%d renamed on Django: official name kept)", s.Departments.OfficialKept))
	}
	if s.Source.MunicipalityTable != "" {
		counts("Municipalities", s.Municipalities.Counts, fmt.Sprintf(" (%d changed on Django: official data kept)", s.Municipalities.OfficialKept))
	}
	if s.Source.OutstandingTable != "" {
		fmt.Fprintf(w, "%-15s %6d live in Django: %d created, %d already there (%d expired, skipped)\n", "Refresh tokens",
			s.OutstandingTokens.Source, s.OutstandingTokens.Created, s.OutstandingTokens.Unchanged, s.ExpiredTokens)
		fmt.Fprintf(w, "%-15s %6d in Django: %d created, %d already there\n", "Blacklisted",
			s.BlacklistedTokens.Source, s.BlacklistedTokens.Created, s.BlacklistedTokens.Unchanged)
	}
	for _, c := range s.Conflicts {
		fmt.Fprintf(w, "conflict: %s\n", c)
	}
	switch {
	case len(s.Conflicts) > 0:
		fmt.Fprintf(w, "%d conflict(s): nothing was written.\n", len(s.Conflicts))
	case s.DryRun:
		fmt.Fprintf(w, "Dry run: %d change(s) would be written; nothing was (%.1fs).\n", s.Changes, s.Seconds)
	default:
		fmt.Fprintf(w, "%d change(s) written in one transaction (%.1fs).\n", s.Changes, s.Seconds)
	}
}
