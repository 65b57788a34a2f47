package backup

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/steps"
)

// Manifest is the JSON file written beside each dump (NAME.json next
// to NAME.dump): what the dump holds and what it belongs to.
type Manifest struct {
	Name     string           `json:"name"`
	Created  time.Time        `json:"created"`
	Database string           `json:"database"`
	Server   string           `json:"server"`     // the postgres container
	PgDump   string           `json:"pg_dump"`    // pg_dump --version
	Image    string           `json:"image"`      // the backend image running when it was taken
	ImageID  string           `json:"image_id"`   // and its digest
	Level    string           `json:"migration"`  // the newest applied migration
	Applied  []string         `json:"migrations"` // every applied migration
	Tables   map[string]int64 `json:"tables"`     // rows per table, read back from the dump
	Dump     string           `json:"dump"`       // the dump's file name
	Size     int64            `json:"size"`
	SHA256   string           `json:"sha256"`
	// ServerID is the database server's system identifier (pg_control_system():
	// made by initdb, kept across restarts and upgrades of the container,
	// different on every other server). A restore refuses a backup of
	// another server unless --allow-foreign.
	ServerID string `json:"server_id,omitempty"`
	// HMAC authenticates everything above (HMAC-SHA256, hex) with a key
	// derived from the superuser's password, which the backend never holds.
	HMAC string `json:"hmac,omitempty"`
}

// manifestMAC is the HMAC of the manifest's content (every field but HMAC).
func (m *Manifest) manifestMAC(key string) string {
	c := *m
	c.HMAC = ""
	b, _ := json.Marshal(c)
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte("isis backup manifest\n"))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// serverID is the database server's system identifier.
func serverID(h *host.PGHelper) (string, error) {
	out, err := h.Psql("postgres", "SELECT system_identifier FROM pg_control_system()")
	if err != nil {
		return "", fmt.Errorf("the database server's system identifier: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// Result is what `isisctl backup` reports.
type Result struct {
	Manifest
	Location string        `json:"location"`
	Kept     int           `json:"kept"`
	Removed  []string      `json:"removed,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []steps.Step  `json:"steps"`
}

// RestoreHint is the command that puts this backup back.
func (r *Result) RestoreHint() string {
	return "isisctl restore " + r.Name + " --yes"
}

const backupStamp = "20060102T150405Z"

// backupNameRE matches the backups of database db.
func backupNameRE(db string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(db) + `-\d{8}T\d{6}Z$`)
}

// Backup dumps the database (pg_dump --format=custom in a one-off container of
// the server's image on the private network), reads the dump back in full
// (pg_restore: every table's rows, the applied migrations), streams it to
// backup.dir or the S3/R2 bucket with a manifest (sha256, size, backend image
// and digest, migration level, row counts), then keeps the newest
// backup.keep (CreateSteps). It takes no lock and stops nothing: pg_dump
// reads a snapshot. progress (nil: none) gets each step as it ends.
func Create(ctx context.Context, conn podman.Engine, c *config.Config, progress func(steps.Step)) (*Result, error) {
	start := time.Now()
	store, err := openStore(c)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	name := c.Postgres.Database + "-" + now.Format(backupStamp)
	r := &Result{Location: store.Where()}
	m := &r.Manifest
	m.Name, m.Created, m.Database, m.Server, m.Dump = name, now, c.Postgres.Database, c.Postgres.Name, name+".dump"
	if be, err := conn.Inspect(c.Backend.Name); err == nil && be.Exists {
		m.Image, m.ImageID = be.Image, be.ImageID
	}
	br := &backupRun{ctx: ctx, conn: conn, c: c, store: store, r: r, tmp: "/tmp/" + m.Dump}
	run := &steps.Runner[*backupRun]{Table: CreateSteps, State: br, Rec: &r.Steps, Progress: progress}
	err = run.Run(0, len(CreateSteps)-1)
	r.Duration = time.Since(start)
	return r, err
}

// backupNames lists the complete backups (a manifest and its dump), oldest first.
func backupNames(ctx context.Context, c *config.Config, store backupStore) ([]string, error) {
	files, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
	}
	re := backupNameRE(c.Postgres.Database)
	var names []string
	for _, f := range files {
		if n, ok := strings.CutSuffix(f, ".json"); ok && re.MatchString(n) && have[n+".dump"] {
			names = append(names, n)
		}
	}
	sort.Strings(names) // the stamp sorts by time
	return names, nil
}

// rotateBackups keeps the newest backup.keep backups.
func rotateBackups(ctx context.Context, c *config.Config, store backupStore) (removed []string, kept int, err error) {
	names, err := backupNames(ctx, c, store)
	if err != nil {
		return nil, 0, err
	}
	keep := c.Backup.KeepN()
	for len(names) > keep {
		old := names[0]
		names = names[1:]
		if err := store.Delete(ctx, old+".dump"); err != nil {
			return removed, len(names) + 1, fmt.Errorf("remove old backup %s: %w", old, err)
		}
		if err := store.Delete(ctx, old+".json"); err != nil {
			return removed, len(names) + 1, fmt.Errorf("remove old backup %s: %w", old, err)
		}
		removed = append(removed, old)
	}
	return removed, len(names), nil
}

// Listing is what `isisctl backup list` shows.
type Listing struct {
	Location string     `json:"location"`
	Backups  []Manifest `json:"backups"` // newest first
	// OldDatabases are databases a restore replaced and kept (only when the
	// database server is reachable).
	OldDatabases []string `json:"old_databases,omitempty"`
}

// List reads every backup's manifest, newest first.
func List(ctx context.Context, c *config.Config) (*Listing, error) {
	store, err := openStore(c)
	if err != nil {
		return nil, err
	}
	names, err := backupNames(ctx, c, store)
	if err != nil {
		return nil, err
	}
	l := &Listing{Location: store.Where(), Backups: []Manifest{}}
	for i := len(names) - 1; i >= 0; i-- {
		m, err := readManifest(ctx, store, names[i])
		if err != nil {
			return nil, err
		}
		l.Backups = append(l.Backups, *m)
	}
	return l, nil
}

func readManifest(ctx context.Context, store backupStore, name string) (*Manifest, error) {
	rc, _, err := store.Get(ctx, name+".json")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &NotFoundError{Name: name, Where: store.Where()}
		}
		return nil, fmt.Errorf("manifest of %s: %w", name, err)
	}
	defer rc.Close()
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(rc, 10<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s.json in %s is not valid JSON: %v", name, store.Where(), err)
	}
	if m.Name != name || m.Dump != name+".dump" || len(m.SHA256) != 64 || m.Size <= 0 {
		return nil, fmt.Errorf("manifest %s.json in %s does not describe %s.dump", name, store.Where(), name)
	}
	return &m, nil
}

// NotFoundError: no backup of that name.
type NotFoundError struct{ Name, Where string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no backup %s in %s (isisctl backup list shows them)", e.Name, e.Where)
}

// BeforeMigrate is the deploy's backup step: before image migrates the
// database, it takes a backup when a backup target is configured and the
// database has applied migrations and image brings new ones (a schema
// change). It returns nil and why when it takes none; a failed backup is an
// error (the deploy stops before anything changed).
func BeforeMigrate(ctx context.Context, conn podman.Engine, c *config.Config, image string, progress func(string)) (*Result, string, error) {
	if !c.Backup.Configured() {
		return nil, "no backup target (backup.dir or backup.s3_prefix)", nil
	}
	if pg, err := conn.Inspect(c.Postgres.Name); err != nil || !pg.Exists || !pg.Running {
		return nil, "no database yet", err
	}
	lv, err := MigrationState(conn, c, image, "")
	if err != nil {
		return nil, "", err
	}
	if len(lv.Applied) == 0 {
		return nil, "empty database", nil
	}
	if len(lv.Pending) == 0 {
		return nil, "no migration pending", nil
	}
	var lines func(steps.Step)
	if progress != nil {
		lines = func(s steps.Step) { progress("backup " + s.String()) }
	}
	r, err := Create(ctx, conn, c, lines)
	if err != nil {
		return nil, "", fmt.Errorf("backup before migrating (%s pending): %w", strings.Join(lv.Pending, ", "), err)
	}
	return r, fmt.Sprintf("%s before %s (%s)", r.Name, strings.Join(lv.Pending, ", "), r.RestoreHint()), nil
}
