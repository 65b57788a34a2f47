package backup

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/ops/steps"
)

// RestoreOptions tune a restore.
type RestoreOptions struct {
	Yes bool // without it, Restore only says what it would replace
	// AllowForeign restores a backup whose manifest is not authenticated
	// (no HMAC, or one that does not verify) or that another database
	// server took; it still runs as the owner role.
	AllowForeign bool
	Progress     func(steps.Step) // each step as it ends
	Out          func(string)     // what the steps say on the way (nil: dropped)
}

// RestoreResult is what `isisctl restore` reports.
type RestoreResult struct {
	Backup    string           `json:"backup"`
	Database  string           `json:"database"`
	Old       string           `json:"old_database"` // the replaced database, kept until --drop-old
	Migration string           `json:"migration"`
	Migrated  []string         `json:"migrated,omitempty"` // applied after the restore (the image is newer)
	Tables    map[string]int64 `json:"tables"`
	Restarted []string         `json:"restarted"`
	Duration  time.Duration    `json:"duration_ns"`
	Image     string           `json:"image,omitempty"` // the backend image of the backup's manifest
	// AllowForeign: restored with --allow-foreign.
	AllowForeign bool         `json:"allow_foreign,omitempty"`
	Steps        []steps.Step `json:"steps"`
}

// ConfirmError: a restore without --yes (exit code 2); it says what would
// be replaced.
type ConfirmError struct {
	Plan string
	// NotYes: refused for another reason than a missing --yes.
	NotYes bool
	// Steps is what --yes would do, one line per step.
	Steps []string
}

func (e *ConfirmError) Error() string {
	if e.NotYes {
		return e.Plan
	}
	return e.Plan + "; run again with --yes to do it"
}

// CorruptBackupError: the dump failed a check; nothing was touched.
type CorruptBackupError struct{ Name, Problem string }

func (e *CorruptBackupError) Error() string {
	return fmt.Sprintf("backup %s is refused: %s; nothing was changed", e.Name, e.Problem)
}

// ForeignBackupError: the backup is not this deployment's own, as far as
// its manifest proves; nothing was changed.
type ForeignBackupError struct{ Name, Reason string }

func (e *ForeignBackupError) Error() string {
	return fmt.Sprintf("backup %s is refused: %s; nothing was changed. If you trust it, restore it with --allow-foreign "+
		"(it then runs as the owner role, which can do no more than the application's migrations can)", e.Name, e.Reason)
}

// BadBackupNameError: the name given to restore is not a plain backup name.
type BadBackupNameError struct{ Name, Problem string }

func (e *BadBackupNameError) Error() string {
	return fmt.Sprintf("backup name %q is refused: %s; give a plain name as isisctl backup list shows it (e.g. isis-20261130T030000Z)", e.Name, e.Problem)
}

// checkBackupName accepts plain names only: a backup is a file in
// backup.dir (or a key under backup.s3_prefix), never a path.
func checkBackupName(name string) error {
	problem := ""
	switch {
	case name == "":
		problem = "it is empty"
	case strings.ContainsAny(name, "/\\"):
		problem = "it holds a path separator"
	case strings.Contains(name, ".."):
		problem = `it holds ".."`
	case strings.HasPrefix(name, "."):
		problem = "it starts with a dot"
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		problem = "it holds a control character"
	case len(name) > 200:
		problem = "it is longer than 200 bytes"
	}
	if problem != "" {
		return &BadBackupNameError{Name: name, Problem: problem}
	}
	return nil
}

// authenticate says why the manifest is not this deployment's own ("" when
// its HMAC verifies); the server identity is checked apart, on the server.
func (m *Manifest) authenticate(key string) string {
	switch {
	case m.HMAC == "":
		return "its manifest carries no HMAC (a backup taken before isisctl signed them, or not by isisctl), so nothing proves it is this deployment's"
	case !hmac.Equal([]byte(m.HMAC), []byte(m.manifestMAC(key))):
		return "its manifest's HMAC does not verify (the manifest was changed, or another deployment with another database password signed it)"
	}
	return ""
}

func restoreStamp(t time.Time) string { return t.UTC().Format("20060102150405") }

// Restore puts backup name back: it checks the dump (size and sha256 against
// the manifest, then a full read with pg_restore: table of contents, every
// row, the row counts of the manifest), restores it into a new database on
// the same server (DB_restore_STAMP), checks that (row counts equal the
// dump's; migrations: none the backend image does not know, and the pending
// ones applied), then switches: the backend containers stop, the current
// database is renamed DB_old_STAMP (kept until DropOldDatabase) and the new
// one takes its name, the backends start again and must become healthy (else
// the names are switched back). Renaming keeps every configuration and unit
// as it is: the backend still reads DATABASE_NAME=DB.
func Restore(ctx context.Context, conn podman.Engine, c *config.Config, name string, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".dump"), ".json")
	if err := checkBackupName(name); err != nil {
		return nil, err
	}
	if !o.Yes {
		_, err := prepareRestore(ctx, conn, c, name, o, start)
		return nil, err
	}
	// The audit trail: every restore attempted, refused ones too.
	r, err := restore(ctx, conn, c, name, o, start)
	res, detail := "ok", fmt.Sprintf("backup %s; allow-foreign %t", name, o.AllowForeign)
	var fe *ForeignBackupError
	switch {
	case errors.As(err, &fe):
		res, detail = "refused", detail+"; "+fe.Reason
	case err != nil:
		res, detail = "failed", detail+"; "+err.Error()
	}
	image := ""
	if r != nil {
		image = r.Image
	}
	_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "restore", Image: image,
		Result: res, Duration: time.Since(start).Round(time.Millisecond).String(), Detail: detail})
	return r, err
}

// prepareRestore reads and authenticates the manifest and names the
// databases; without --yes it stops there with a ConfirmError holding the
// plan. Nothing is touched.
func prepareRestore(ctx context.Context, conn podman.Engine, c *config.Config, name string, o RestoreOptions, start time.Time) (*restoreRun, error) {
	out := o.Out
	if out == nil {
		out = func(string) {}
	}
	store, err := openStore(c)
	if err != nil {
		return nil, err
	}
	m, err := readManifest(ctx, store, name)
	if err != nil {
		return nil, err
	}
	key, err := c.ManifestKey()
	if err != nil {
		return nil, err
	}
	if why := m.authenticate(key); why != "" {
		if !o.AllowForeign {
			return nil, &ForeignBackupError{Name: name, Reason: why}
		}
		out("--allow-foreign: " + why)
	}
	db := c.Postgres.Database
	stamp := restoreStamp(start)
	rr := &restoreRun{ctx: ctx, conn: conn, c: c, o: o, out: out, store: store, m: m, db: db,
		newDB: db + "_restore_" + stamp, oldDB: db + "_old_" + stamp}
	if len(rr.newDB) > 63 {
		return nil, &config.Error{File: c.File, Key: "postgres.database", Msg: fmt.Sprintf("%q is too long to restore beside it (%s has over 63 bytes)", db, rr.newDB)}
	}
	if !o.Yes {
		return nil, &ConfirmError{Plan: fmt.Sprintf("restore replaces database %q on %s with backup %s (taken %s, migration %s, %d users, image %s); "+
			"the backend (%s) restarts, the current database is kept as %s",
			db, c.Postgres.Name, m.Name, m.Created.Format(time.RFC3339), cmp.Or(m.Level, "none"), m.Tables["public.users"], cmp.Or(m.Image, "none"), c.Backend.Name, rr.oldDB),
			Steps: steps.Plans(RestoreSteps, rr)}
	}
	rr.r = &RestoreResult{Backup: name, Database: db, Old: rr.oldDB, Migration: m.Level, Image: m.Image, AllowForeign: o.AllowForeign}
	return rr, nil
}

// restore runs RestoreSteps under the deploy lock. A step that fails undoes
// the ones before it: the error then says the live database is as it was.
func restore(ctx context.Context, conn podman.Engine, c *config.Config, name string, o RestoreOptions, start time.Time) (*RestoreResult, error) {
	rr, err := prepareRestore(ctx, conn, c, name, o, start)
	if err != nil {
		return nil, err
	}
	lock, err := audit.AcquireLock(conn)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := rr.run(0); err != nil {
		return rr.r, err
	}
	rr.r.Duration = time.Since(start)
	return rr.r, nil
}

// renameDatabases makes next the database db, and db prev: new connections
// to db are refused first, the open ones ended (the backends are stopped;
// this catches anything else), then both renames commit together.
func renameDatabases(h *host.PGHelper, db, next, prev string) error {
	q, qn, qp := host.QuoteIdent(db), host.QuoteIdent(next), host.QuoteIdent(prev)
	_, err := h.Psql("postgres",
		"ALTER DATABASE "+q+" ALLOW_CONNECTIONS false",
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ("+host.QuoteLiteral(db)+", "+host.QuoteLiteral(next)+") AND pid <> pg_backend_pid()",
		"BEGIN; ALTER DATABASE "+q+" RENAME TO "+qp+"; ALTER DATABASE "+qn+" RENAME TO "+q+"; COMMIT",
		"ALTER DATABASE "+qp+" ALLOW_CONNECTIONS true",
		"ALTER DATABASE "+q+" ALLOW_CONNECTIONS true")
	if err != nil {
		_, _ = h.Psql("postgres", "ALTER DATABASE "+q+" ALLOW_CONNECTIONS true")
		return fmt.Errorf("rename the databases: %w", err)
	}
	return nil
}

func startAll(conn podman.Engine, names []string) {
	for _, n := range names {
		_ = conn.Start(n)
	}
}

// runningBackends are the running backend containers on the private network
// (every container of this deployment that holds database connections).
func runningBackends(conn podman.Engine, c *config.Config) ([]string, error) {
	list, err := conn.List(podman.ListFilter{Filters: map[string][]string{
		"label": {spec.LabelManaged + "=true", spec.LabelRole + "=backend"}, "network": {c.Network}, "status": {"running"}}})
	if err != nil {
		return nil, fmt.Errorf("list the backend containers: %w", err)
	}
	var out []string
	for _, ct := range list {
		if ct.Name != "" {
			out = append(out, ct.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func diffCounts(want, got map[string]int64) string {
	var d []string
	for t, n := range want {
		if g, ok := got[t]; !ok {
			d = append(d, t+" missing")
		} else if g != n {
			d = append(d, fmt.Sprintf("%s has %d rows, want %d", t, g, n))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

// MigrationStatus is a database's migration level as an image sees it.
type MigrationLevel struct {
	Applied []string `json:"applied"`
	Pending []string `json:"pending"` // the image's migrations not applied
	Unknown []string `json:"unknown"` // applied, but the image does not know them
}

// MigrationState runs `isis migrate status --json` of image against database
// db (the configured one when empty) in a one-off container.
func MigrationState(conn podman.Engine, c *config.Config, image, db string) (*MigrationLevel, error) {
	var lines []string
	err := runJobOn(conn, c, image, db, func(l string) { lines = append(lines, l) }, "migrate", "status", "--json")
	// exit 1 means "pending": the JSON is printed all the same
	var doc struct {
		Migrations []struct {
			Version   string `json:"version"`
			AppliedAt string `json:"applied_at"`
		} `json:"migrations"`
		Unknown []string `json:"unknown"`
	}
	js := ""
	in := false
	for _, l := range lines {
		if strings.TrimSpace(l) == "{" && strings.HasPrefix(l, "{") {
			in, js = true, ""
		}
		if in {
			js += l + "\n"
		}
		if in && strings.HasPrefix(l, "}") {
			in = false
		}
	}
	if jerr := json.Unmarshal([]byte(js), &doc); jerr != nil || js == "" {
		if err == nil {
			err = fmt.Errorf("no JSON in its output")
		}
		return nil, fmt.Errorf("isis migrate status with %s: %w", image, err)
	}
	lv := &MigrationLevel{}
	unknown := map[string]bool{}
	for _, u := range doc.Unknown {
		unknown[u] = true
	}
	lv.Unknown = doc.Unknown
	for _, mg := range doc.Migrations {
		switch {
		case mg.AppliedAt != "":
			lv.Applied = append(lv.Applied, mg.Version)
		case !unknown[mg.Version]:
			lv.Pending = append(lv.Pending, mg.Version)
		}
	}
	return lv, nil
}

// runJobOn runs `isis ARGS` of image in a one-off container against database
// db (the configured one when empty), with only the database's settings (no
// S3: these jobs need none).
func runJobOn(conn podman.Engine, c *config.Config, image, db string, out func(string), args ...string) error {
	spec, err := host.OneOff(conn, c, image, c.Backend.Name+"-"+strings.Join(args[:1], "")+"-db", args...)
	if err != nil {
		return err
	}
	if db != "" {
		spec.Env["DATABASE_NAME"] = db
	}
	for k := range spec.Env {
		if strings.HasPrefix(k, "AWS_") {
			delete(spec.Env, k)
		}
	}
	var keep []podman.SecretRef
	for _, s := range spec.Secrets {
		if s.Name != config.AWSSecretName {
			keep = append(keep, s)
		}
	}
	spec.Secrets = keep
	return host.RunIsis(conn, spec, out, args)
}

// OldDatabases lists the databases restores replaced (DB_old_STAMP) or left
// (DB_restore_STAMP), oldest first.
func OldDatabases(conn podman.Engine, c *config.Config) ([]string, error) {
	h, err := host.StartPGHelper(conn, c, "list")
	if err != nil {
		return nil, err
	}
	defer h.Remove()
	re := oldDBRE(c.Postgres.Database)
	out, err := h.Psql("postgres", "SELECT datname FROM pg_database ORDER BY datname")
	if err != nil {
		return nil, err
	}
	var dbs []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if re.MatchString(l) {
			dbs = append(dbs, l)
		}
	}
	return dbs, nil
}

func oldDBRE(db string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(db) + `_(old|restore)_\d{14}$`)
}

// DropOldDatabase drops a database a restore replaced (only such names).
func DropOldDatabase(conn podman.Engine, c *config.Config, name string, yes bool) error {
	if !oldDBRE(c.Postgres.Database).MatchString(name) {
		return &ConfirmError{NotYes: true, Plan: fmt.Sprintf("--drop-old %q: not a database a restore replaced (%s_old_YYYYMMDDHHMMSS; isisctl backup list shows them)", name, c.Postgres.Database)}
	}
	if !yes {
		return &ConfirmError{Plan: fmt.Sprintf("this drops database %q on %s for good", name, c.Postgres.Name)}
	}
	h, err := host.StartPGHelper(conn, c, "drop")
	if err != nil {
		return err
	}
	defer h.Remove()
	out, err := h.Psql("postgres", "SELECT 1 FROM pg_database WHERE datname = "+host.QuoteLiteral(name))
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "" {
		return fmt.Errorf("no database %s on %s", name, c.Postgres.Name)
	}
	if _, err := h.Psql("postgres", "DROP DATABASE "+host.QuoteIdent(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}
