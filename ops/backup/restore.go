package backup

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
)

// RestoreOptions tune a restore.
type RestoreOptions struct {
	Yes bool // without it, Restore only says what it would replace
	// AllowForeign restores a backup whose manifest is not authenticated
	// (no HMAC, or one that does not verify) or that another database
	// server took; it still runs as the owner role.
	AllowForeign bool
	Progress     func(string)
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
	AllowForeign bool `json:"allow_foreign,omitempty"`
}

// ConfirmError: a restore without --yes (exit code 2); it says what would
// be replaced.
type ConfirmError struct {
	Plan string
	// NotYes: refused for another reason than a missing --yes.
	NotYes bool
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
	var r *RestoreResult
	if o.Yes {
		// The audit trail: every restore attempted, refused ones too.
		var failure error
		defer func() {
			res, detail := "ok", fmt.Sprintf("backup %s; allow-foreign %t", name, o.AllowForeign)
			var fe *ForeignBackupError
			switch {
			case errors.As(failure, &fe):
				res, detail = "refused", detail+"; "+fe.Reason
			case failure != nil:
				res, detail = "failed", detail+"; "+failure.Error()
			}
			image := ""
			if r != nil {
				image = r.Image
			}
			_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "restore", Image: image,
				Result: res, Duration: time.Since(start).Round(time.Millisecond).String(), Detail: detail})
		}()
		res, err := restore(ctx, conn, c, name, o, start)
		r, failure = res, err
		return res, err
	}
	return restore(ctx, conn, c, name, o, start)
}

func restore(ctx context.Context, conn podman.Engine, c *config.Config, name string, o RestoreOptions, start time.Time) (*RestoreResult, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
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
		progress("--allow-foreign: " + why)
	}
	db := c.Postgres.Database
	stamp := restoreStamp(start)
	newDB, oldDB := db+"_restore_"+stamp, db+"_old_"+stamp
	if len(newDB) > 63 {
		return nil, &config.Error{File: c.File, Key: "postgres.database", Msg: fmt.Sprintf("%q is too long to restore beside it (%s has over 63 bytes)", db, newDB)}
	}
	if !o.Yes {
		return nil, &ConfirmError{Plan: fmt.Sprintf("restore replaces database %q on %s with backup %s (taken %s, migration %s, %d users, image %s); "+
			"the backend (%s) restarts, the current database is kept as %s",
			db, c.Postgres.Name, m.Name, m.Created.Format(time.RFC3339), cmp.Or(m.Level, "none"), m.Tables["public.users"], cmp.Or(m.Image, "none"), c.Backend.Name, oldDB)}
	}
	lock, err := audit.AcquireLock(conn)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	r := &RestoreResult{Backup: name, Database: db, Old: oldDB, Migration: m.Level, Image: m.Image, AllowForeign: o.AllowForeign}

	// 1. The dump: its size, its checksum, a full read. Nothing is touched yet.
	src, size, err := store.Get(ctx, m.Dump)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", m.Dump, store.Where(), err)
	}
	defer src.Close()
	if size != m.Size {
		return nil, &CorruptBackupError{name, fmt.Sprintf("the dump has %d bytes, its manifest says %d (truncated?)", size, m.Size)}
	}
	h, err := host.StartPGHelper(conn, c, "restore")
	if err != nil {
		return nil, err
	}
	defer h.Remove()
	if h.Owner == "" {
		return nil, host.RolesMissing(c, host.ErrNoOwnerRole)
	}
	// The server that took it: this one, unless --allow-foreign.
	id, err := serverID(h)
	if err != nil {
		return nil, err
	}
	if m.ServerID != id {
		why := fmt.Sprintf("it was taken on another database server (system identifier %s; this one is %s: another deployment, or this one's data volume was made anew)", cmp.Or(m.ServerID, "none"), id)
		if !o.AllowForeign {
			return nil, &ForeignBackupError{Name: name, Reason: why}
		}
		progress("--allow-foreign: " + why)
	}
	progress(fmt.Sprintf("checking %s (%d bytes)", m.Dump, m.Size))
	sum := sha256.New()
	if err := h.CopyIn("/tmp", m.Dump, io.TeeReader(src, sum), size); err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != m.SHA256 {
		return nil, &CorruptBackupError{name, fmt.Sprintf("its sha256 is %s, its manifest says %s (corrupted)", got, m.SHA256)}
	}
	tmp := "/tmp/" + m.Dump
	dc, err := h.InspectDump(tmp)
	if err != nil {
		return nil, &CorruptBackupError{name, err.Error()}
	}
	if diff := diffCounts(m.Tables, dc.Tables); diff != "" {
		return nil, &CorruptBackupError{name, "its rows differ from its manifest: " + diff}
	}
	img, _ := image.Current(conn, c)
	if img == "" {
		img = c.BackendImage(c.Backend.Tag)
	}
	if ok, _ := image.Exists(conn, img); !ok {
		return nil, fmt.Errorf("the backend image %s is missing: the restored database's migrations cannot be checked (isisctl build)", img)
	}

	// 2. A new database beside the current one.
	exists, err := h.Psql("postgres", "SELECT datname FROM pg_database WHERE datname IN ("+host.QuoteLiteral(newDB)+", "+host.QuoteLiteral(oldDB)+")")
	if err != nil {
		return nil, fmt.Errorf("database server: %w", err)
	}
	if strings.TrimSpace(exists) != "" {
		return nil, fmt.Errorf("database %s already exists; wait a second and try again", strings.TrimSpace(exists))
	}
	progress("pg_restore into " + newDB)
	// Created by the superuser for the owner role, which alone then reads
	// and runs the dump's content: whatever the dump's functions, checks,
	// defaults or triggers try, they can do no more than the owner role.
	if _, err := h.Psql("postgres", "CREATE DATABASE "+host.QuoteIdent(newDB)+" OWNER "+host.QuoteIdent(c.OwnerRole())+" TEMPLATE template0"); err != nil {
		return nil, fmt.Errorf("create database %s: %w", newDB, err)
	}
	dropNew := func(cause error) error {
		if _, err := h.Psql("postgres", "DROP DATABASE IF EXISTS "+host.QuoteIdent(newDB)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("%w (and dropping %s failed: %v)", cause, newDB, err)
		}
		return fmt.Errorf("%w; %s is as it was", cause, db)
	}
	if _, err := h.Sh(host.RunScript, newDB, "SET search_path = pg_catalog, pg_temp;\n"+host.SchemaSQL(c)); err != nil {
		return nil, dropNew(fmt.Errorf("schema public of %s: %w", newDB, err))
	}
	if _, err := h.ShOwner(`pg_restore --dbname="$1" --no-owner --no-privileges --exit-on-error --single-transaction "$2"`, newDB, tmp); err != nil {
		return nil, dropNew(fmt.Errorf("pg_restore as %s: %w", c.OwnerRole(), err))
	}

	// 3. Check it: rows, then migrations with the backend's image.
	tables := make([]string, 0, len(dc.Tables))
	for t := range dc.Tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	got, err := h.CountRows(newDB, tables)
	if err != nil {
		return nil, dropNew(fmt.Errorf("count the restored rows: %w", err))
	}
	if diff := diffCounts(dc.Tables, got); diff != "" {
		return nil, dropNew(fmt.Errorf("the restored database differs from the dump: %s", diff))
	}
	r.Tables = got
	st, err := MigrationState(conn, c, img, newDB)
	if err != nil {
		return nil, dropNew(err)
	}
	if len(st.Unknown) > 0 {
		return nil, dropNew(fmt.Errorf("the backup has migrations %s that %s does not know: deploy the release it was taken with (%s) first",
			strings.Join(st.Unknown, ", "), img, cmp.Or(m.Image, "none")))
	}
	if len(st.Pending) > 0 {
		progress(fmt.Sprintf("applying %d migration(s) of %s to the restored database", len(st.Pending), img))
		if err := runJobOn(conn, c, img, newDB, progress, "migrate"); err != nil {
			return nil, dropNew(err)
		}
		r.Migrated = st.Pending
		r.Migration = st.Pending[len(st.Pending)-1]
	}

	// The application role's grants, by the owner role.
	if _, err := h.ShOwner(host.RunScript, newDB, host.AppGrantSQL(c)); err != nil {
		return nil, dropNew(fmt.Errorf("grant %s on %s: %w", c.AppRole(), newDB, err))
	}

	// 4. The switch.
	backends, err := runningBackends(conn, c)
	if err != nil {
		return nil, dropNew(err)
	}
	progress(fmt.Sprintf("switching: %s becomes %s, %s becomes %s", db, oldDB, newDB, db))
	t := time.Now()
	for _, b := range backends {
		if err := conn.Stop(b, 30); err != nil {
			startAll(conn, backends)
			return nil, dropNew(err)
		}
	}
	progress(fmt.Sprintf("stopped %s (%s)", strings.Join(backends, ", "), time.Since(t).Round(time.Millisecond)))
	if err := renameDatabases(h, db, newDB, oldDB); err != nil {
		startAll(conn, backends)
		return nil, dropNew(err)
	}
	t = time.Now()
	r.Restarted = backends
	health := spec.Backend(c, "").Health
	for _, b := range backends {
		err := conn.Start(b)
		if err == nil {
			err = conn.WaitHealthy(ctx, b, 90*time.Second, health)
		}
		if err != nil {
			cause := fmt.Errorf("backend %s on the restored database: %w", b, err)
			for _, b := range backends {
				_ = conn.Stop(b, 10)
			}
			if rerr := renameDatabases(h, db, oldDB, newDB); rerr != nil {
				return r, fmt.Errorf("%v; switching back failed too: %v", cause, rerr)
			}
			startAll(conn, backends)
			return r, dropNew(fmt.Errorf("%v; switched back", cause))
		}
	}
	progress(fmt.Sprintf("started %s on the restored database (%s)", strings.Join(backends, ", "), time.Since(t).Round(time.Millisecond)))
	r.Duration = time.Since(start)
	return r, nil
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
